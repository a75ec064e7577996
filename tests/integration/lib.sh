# lib.sh - helpers for dialbackd's integration tests: a private network
# namespace with its own DNS (dnsmasq: A and _xmpp-server._tcp SRV records),
# dialbackd and Prosody instances on loopback addresses inside it. Every
# process is started here and stopped by its PID.
set -u

NS="dbdtest$$"
TOP_SRCDIR="${TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TOP_BUILDDIR="${TOP_BUILDDIR:-$TOP_SRCDIR}"
DIALBACKD="$TOP_BUILDDIR/src/dialbackd"
DBTOOL="$TOP_BUILDDIR/src/dialbackd-dbtool"
XMPP="/usr/bin/python3 $TOP_SRCDIR/tests/tools/xmpp.py"
WORK=""
PIDS=()
PASSED=0
FAILED=0
SKIPPED=0

log() { echo "  $*"; }
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }

in_ns() { ip netns exec "$NS" "$@"; }

# ns_up RECORDS: each record "domain address port [target]"; port "-" means
# no SRV record, "." an SRV record with target "." (no service).
ns_up() {
	WORK="$(mktemp -d -t dialbackd-it.XXXXXX)"
	chmod 755 "$WORK"
	ip netns add "$NS" || return 1
	ip -n "$NS" link set lo up
	mkdir -p "/etc/netns/$NS"
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"/etc/netns/$NS/resolv.conf"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"/etc/netns/$NS/hosts"
	{
		echo "port=53"
		echo "listen-address=127.0.0.1"
		echo "bind-interfaces"
		echo "no-resolv"
		echo "no-hosts"
		echo "no-negcache"
		# DNS_QUIET=1 (the benchmark): no per-query log lines
		[ "${DNS_QUIET:-0}" = 1 ] || echo "log-queries"
		echo "log-facility=$WORK/dnsmasq.log"
		echo "pid-file=$WORK/dnsmasq.pid"
		echo "user=nobody"
		echo "local=/test/"
		while read -r dom addr port target; do
			[ -n "$dom" ] || continue
			target="${target:-$dom}"
			echo "host-record=$target,$addr"
			case "$port" in
			-) ;;
			.) echo "srv-host=_xmpp-server._tcp.$dom" ;;	# target ".": no service
			*) echo "srv-host=_xmpp-server._tcp.$dom,$target,$port,0,0" ;;
			esac
		done <<<"$1"
	} >"$WORK/dnsmasq.conf"
	while read -r dom addr port target; do
		[ -n "$addr" ] && [ "$addr" != "127.0.0.1" ] && ip -n "$NS" addr add "$addr/32" dev lo 2>/dev/null
	done <<<"$1"
	in_ns dnsmasq --conf-file="$WORK/dnsmasq.conf" || return 1
	for _ in $(seq 1 50); do [ -s "$WORK/dnsmasq.pid" ] && break; sleep 0.1; done
	PIDS+=("$(cat "$WORK/dnsmasq.pid")")
}

ns_down() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	PIDS=()
	ip netns del "$NS" 2>/dev/null
	rm -rf "/etc/netns/$NS"
	[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}

listening() { in_ns ss -Hltn "src $1:$2" 2>/dev/null | grep -q .; }

wait_listening() {
	for _ in $(seq 1 100); do listening "$1" "$2" && return 0; sleep 0.1; done
	return 1
}

gen_cert() { # gen_cert DOMAIN DIR (CERT_KEY: e.g. "ec -pkeyopt ec_paramgen_curve:P-256")
	# shellcheck disable=SC2086
	openssl req -x509 -newkey ${CERT_KEY:-rsa:2048} -nodes -days 2 -subj "/CN=$1" \
	    -addext "subjectAltName=DNS:$1" -keyout "$2/$1.key" -out "$2/$1.crt" >/dev/null 2>&1
	chmod 600 "$2/$1.key"
}

# dbd_start NAME DOMAIN ADDR TLS WORKERS [domain section lines] [s2s lines...]
# Writes $WORK/NAME/{dialbackd.conf,log} and sets DBD_PID_<NAME>.
dbd_start() {
	local name="$1" domain="$2" addr="$3" tls="$4" workers="$5" extra="${6:-}"
	local s2s_extra=""
	[ $# -gt 6 ] && s2s_extra="$(printf '%s\n' "${@:7}")"
	local dir="$WORK/$name"
	mkdir -p "$dir"
	gen_cert "$domain" "$dir"
	cat >"$dir/dialbackd.conf" <<CONF
[server]
workers = $workers
pidfile = $dir/dialbackd.pid
store = $dir/store
store_size = 16M
secret_file = $dir/secret
log_level = ${DBD_LOG_LEVEL:-debug}

[s2s]
listen = $addr:5269
tls = $tls
connect_timeout = 3s
${s2s_extra:-dialback_timeout = 4s}
${DBD_LIMITS:-max_new_per_ip = 100000
max_streams_per_ip = 100000}

[components]
listen = $addr:5347

[domain $domain]
certificate = $dir/$domain.crt
key = $dir/$domain.key
$extra
CONF
	if listening "$addr" 5269; then
		echo "$addr:5269 is still in use" >&2
		return 1
	fi
	chmod 600 "$dir/dialbackd.conf"
	# DBD_WRAPPER: e.g. valgrind, for the memcheck case
	ip netns exec "$NS" ${DBD_WRAPPER:-} "$DIALBACKD" -f -c "$dir/dialbackd.conf" >"$dir/log" 2>&1 &
	local pid=$!
	eval "DBD_PID_$name=$pid"
	PIDS+=("$pid")
	if ! wait_listening "$addr" 5269 && ! wait_listening "$addr" 5269; then
		cat "$dir/log"
		return 1
	fi
	# every worker ready
	for _ in $(seq 1 300); do
		[ "$(grep -c 'worker [0-9]* ready' "$dir/log")" -ge "$workers" ] && return 0
		grep -q "all $workers worker(s) ready" "$dir/log" && return 0
		sleep 0.1
	done
	return 1
}

# prosody_start NAME DOMAIN ADDR REQUIRE_ENC(true/false) ALLOW_ENC(true/false)
# Creates user alice/alicepw. Sets PROSODY_PID_<NAME>.
prosody_start() {
	local name="$1" domain="$2" addr="$3" req="$4" allow="$5"
	local dir="$WORK/$name"
	mkdir -p "$dir/data"
	gen_cert "$domain" "$dir"
	cat >"$dir/prosody.cfg.lua" <<CFG
run_as_root = true
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix" }
authentication = "internal_hashed"
storage = "internal"
interfaces = { "$addr" }
local_interfaces = { "$addr" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
use_ipv6 = false
unbound = { options = { ["local-zone:"] = "test. transparent" } }
s2s_require_encryption = $req
s2s_allow_encryption = $allow
s2s_secure_auth = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
network_settings = { nagle = false }
log = { { levels = { min = "debug" }, to = "file", filename = "$dir/prosody.log" } }
VirtualHost "$domain"
  ssl = { certificate = "$dir/$domain.crt"; key = "$dir/$domain.key" }
CFG
	prosodyctl --config "$dir/prosody.cfg.lua" register alice "$domain" alicepw >"$dir/prosodyctl.log" 2>&1 || return 1
	ip netns exec "$NS" prosody -F --config "$dir/prosody.cfg.lua" >"$dir/stdout" 2>&1 </dev/null &
	local pid=$!
	eval "PROSODY_PID_$name=$pid"
	PIDS+=("$pid")
	wait_listening "$addr" 5222 && wait_listening "$addr" 5269
}

# queue_depth STORE REMOTE: stanzas queued for any local -> REMOTE pair
queue_depth() {
	"$DBTOOL" -s "$1" --json queue | /usr/bin/python3 -c '
import json, sys
print(sum(q.get("depth", 0) for q in json.load(sys.stdin) if q.get("remote") == sys.argv[1]))' "$2"
}

stop_pid() { # stop_pid PID: TERM, wait up to 15 s, then KILL
	kill "$1" 2>/dev/null
	for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	return 1
}

# worker_pids MASTER_PID
worker_pids() { pgrep -P "$1" | sort -n; }
