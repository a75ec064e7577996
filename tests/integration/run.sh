#!/bin/bash
# run.sh - dialbackd integration tests: real dialbackd and Prosody processes
# federating inside a private network namespace with its own DNS server.
# Needs root (network namespaces); otherwise reports itself skipped (exit 77).
# Ends with "N passed, N failed".
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"

ONLY="${1:-}"

skip_all() {
	echo "SKIP integration tests: $1"
	echo "0 passed, 0 failed, 1 skipped"
	exit 77
}

[ "$(id -u)" = 0 ] || skip_all "they need root for network namespaces (run as root)"
command -v ip >/dev/null || skip_all "iproute2 (ip) is not installed"
command -v dnsmasq >/dev/null || skip_all "dnsmasq is not installed (apt-get install dnsmasq-base)"
command -v prosody >/dev/null || skip_all "prosody is not installed (apt-get install prosody lua-unbound)"
[ -x "$DIALBACKD" ] || skip_all "$DIALBACKD is not built"

# Address plan (all loopback, inside the namespace only).
RECORDS="d1.test 127.0.0.10 5269
d1b.test 127.0.0.10 5269
d1c.test 127.0.0.10 5269
d2.test 127.0.0.11 5269
d2b.test 127.0.0.11 5269
p1.test 127.0.0.20 5269
dead.test 127.0.0.30 5269
silent.test 127.0.0.31 5269
silent1.test 127.0.0.31 5269
silent2.test 127.0.0.31 5269
silent3.test 127.0.0.31 5269
silent4.test 127.0.0.31 5269
silent5.test 127.0.0.31 5269
silent6.test 127.0.0.31 5269
silent7.test 127.0.0.31 5269
silent8.test 127.0.0.31 5269
silent9.test 127.0.0.31 5269
silent10.test 127.0.0.31 5269
silent11.test 127.0.0.31 5269
silent12.test 127.0.0.31 5269
silent13.test 127.0.0.31 5269
silent14.test 127.0.0.31 5269
silent15.test 127.0.0.31 5269
silent16.test 127.0.0.31 5269
fake.test 127.0.0.32 5269
nosrv.test 127.0.0.33 -
nosrv-dot.test 127.0.0.33 .
fake1.test 127.0.0.32 5269
fake2.test 127.0.0.32 5269
fake3.test 127.0.0.32 5269
fake4.test 127.0.0.32 5269
fake5.test 127.0.0.32 5269
fake6.test 127.0.0.32 5269
fake7.test 127.0.0.32 5269
fake8.test 127.0.0.32 5269"

trap 'ns_down' EXIT
ns_up "$RECORDS" || skip_all "cannot create a network namespace here"

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# ---- cases ----------------------------------------------------------------

# A Prosody user pings d1.test and asks disco#info: Prosody verifies d1
# (authoritative role), d1 verifies Prosody (receiving) and originates the
# reply stream.
case_prosody_ping() { # NAME DBD_TLS PROSODY_REQUIRE PROSODY_ALLOW
	local name="$1" out
	dbd_start d1 d1.test 127.0.0.10 "$2" 1 || { fail "$name" "dialbackd did not start"; return; }
	prosody_start p1 p1.test 127.0.0.20 "$3" "$4" || { fail "$name" "prosody did not start"; stop_pid "$DBD_PID_d1"; return; }
	out="$(in_ns $XMPP c2s-ping --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw --to d1.test --timeout 20 2>&1)"
	if grep -q "^RESULT from=d1.test" <<<"$out"; then
		out="$(in_ns $XMPP c2s-ping --disco --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw --to d1.test --timeout 20 2>&1)"
		if grep -q "^RESULT from=d1.test .*urn:xmpp:ping" <<<"$out"; then
			pass "$name"
		else
			fail "$name" "disco#info: $out"
		fi
	else
		fail "$name" "ping: $out"
		tail -30 "$WORK/d1/log"
	fi
	stop_pid "$PROSODY_PID_p1"
	stop_pid "$DBD_PID_d1"
}

want prosody_ping_optional && case_prosody_ping prosody_ping_optional optional false true
want prosody_ping_required && case_prosody_ping prosody_ping_required required true true
want prosody_ping_off && case_prosody_ping prosody_ping_off off false false

# Raw peers against one dialbackd (d1) with Prosody (p1) as a real
# authoritative server for p1.test.
raw_script() { # NAME then script on stdin -> runs it against d1
	cat >"$WORK/$1.script"
	in_ns $XMPP s2s-raw --host 127.0.0.10 --port 5269 --script "$WORK/$1.script" --timeout 15 2>&1
}

# Starts fake.test's authority (127.0.0.32), a test server that vouches for
# every key unless told otherwise; AUTH_PID is its pid, NAME.log its log.
fake_authority() { # NAME [xmpp.py authority options...]
	local name="$1"
	shift
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --timeout 60 "$@" \
	    >"$WORK/$name.log" 2>&1 &
	AUTH_PID=$!
	PIDS+=("$AUTH_PID")
}

if want raw; then
	dbd_start d1 d1.test 127.0.0.10 optional 2 || fail raw_setup "dialbackd did not start"
	prosody_start p1 p1.test 127.0.0.20 false true || fail raw_setup "prosody did not start"

	out="$(raw_script unhosted <<'S'
header p1.test nothere.test
expect host-unknown
expect CLOSED
S
)" && pass raw_unhosted_domain_host_unknown || fail raw_unhosted_domain_host_unknown "$out"

	out="$(raw_script wrongkey <<'S'
header p1.test d1.test
expect HEADER
expect features
send <db:result from='p1.test' to='d1.test'>0000000000000000000000000000000000000000000000000000000000000000</db:result>
expect type="invalid"
expect CLOSED
S
)" && pass raw_wrong_key_invalid || fail raw_wrong_key_invalid "$out"

	out="$(raw_script before <<'S'
header p1.test d1.test
expect features
send <message from='alice@p1.test' to='d1.test'><body>hi</body></message>
expect not-authorized
expect CLOSED
S
)" && pass raw_stanza_before_validation_not_authorized || fail raw_stanza_before_validation_not_authorized "$out"

	out="$(raw_script verifyunknown <<'S'
header p1.test d1.test
expect features
send <db:verify from='p1.test' to='d1.test' id='nosuchstream'>abcdef</db:verify>
expect type="invalid"
S
)" && grep -q 'id="nosuchstream"' <<<"$out" && pass raw_verify_unknown_id_invalid || fail raw_verify_unknown_id_invalid "$out"

	out="$(raw_script unreachable <<'S'
header dead.test d1.test
expect features
send <db:result from='dead.test' to='d1.test'>1234</db:result>
expect type="error".*remote-server-(not-found|timeout)
S
)" && pass raw_unreachable_authority_dialback_error || fail raw_unreachable_authority_dialback_error "$out"

	# An authority that accepts TCP and never answers.
	ip netns exec "$NS" /usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.31", 5269)); s.listen(8)
conns = []
t = time.time()
while time.time() - t < 60:
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except socket.timeout: pass
' &
	SILENT_PID=$!
	PIDS+=("$SILENT_PID")
	sleep 0.3
	start=$(date +%s)
	out="$(raw_script silent <<'S'
header silent.test d1.test
expect features
send <db:result from='silent.test' to='d1.test'>1234</db:result>
expect type="error".*remote-server-timeout
S
)"
	rc=$?
	took=$(( $(date +%s) - start ))
	# dialback_timeout is 4 s in these configs
	if [ "$rc" = 0 ] && [ "$took" -ge 3 ]; then
		pass raw_silent_authority_timeout
	else
		fail raw_silent_authority_timeout "after ${took}s: $out"
	fi

	# fake.test's authority is a test server that vouches for every key,
	# so a raw peer can validate fake.test and then misbehave.
	fake_authority authority
	sleep 0.5
	out="$(raw_script validated <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <iq type='get' id='ping1' from='u@fake.test/r' to='d1.test'><ping xmlns='urn:xmpp:ping'/></iq>
sleep 1
send <message from='u@other.test' to='d1.test'><body>spoofed</body></message>
expect invalid-from
expect CLOSED
S
)"
	if [ $? = 0 ] && grep -q "id=\"ping1\".*type=\"result\"\|type=\"result\".*id=\"ping1\"" "$WORK/authority.log"; then
		pass raw_validated_ping_answered_then_spoofed_from_invalid_from
	else
		fail raw_validated_ping_answered_then_spoofed_from_invalid_from "$out $(cat "$WORK/authority.log")"
	fi

	# No SRV record: fall back to the domain's A record on port 5269.
	ip netns exec "$NS" $XMPP authority --host 127.0.0.33 --port 5269 --timeout 30 >"$WORK/nosrv.log" 2>&1 &
	NOSRV_PID=$!
	PIDS+=("$NOSRV_PID")
	sleep 0.5
	out="$(raw_script nosrv <<'S'
header nosrv.test d1.test
expect features
send <db:result from='nosrv.test' to='d1.test'>abcd</db:result>
expect type="valid"
S
)" && pass raw_no_srv_falls_back_to_a_record || fail raw_no_srv_falls_back_to_a_record "$out"

	# SRV target "." means the domain has no XMPP service: no fallback.
	out="$(raw_script dotsrv <<'S'
header nosrv-dot.test d1.test
expect features
send <db:result from='nosrv-dot.test' to='d1.test'>abcd</db:result>
expect type="error"
S
)" && grep -q "nosrv-dot.test: SRV target '.'" "$WORK/d1/log" && pass raw_srv_dot_target_no_service \
	    || fail raw_srv_dot_target_no_service "$out"

	out="$(raw_script unhostedto <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <message from='u@fake.test' to='x@elsewhere.test'><body>relay?</body></message>
expect host-unknown
S
)" && pass raw_stanza_to_unhosted_host_unknown || fail raw_stanza_to_unhosted_host_unknown "$out"

	# jabberd 1.x style: no version, no to/from on the header, xmlns:db
	# declared on each element; dialback starts at once, no features.
	out="$(raw_script legacy <<'S'
send <?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>
expect HEADER
send <db:result xmlns:db='jabber:server:dialback' from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
S
)" && ! grep -q "version=" <<<"$out" && ! grep -q features <<<"$out" && pass raw_legacy_stream_dialback \
	    || fail raw_legacy_stream_dialback "$out"

	out="$(raw_script plaintextafterstarttls <<'S'
header fake.test d1.test
expect features
send <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>not tls</message>
expect CLOSED
S
)" && pass raw_plaintext_after_starttls_closed || fail raw_plaintext_after_starttls_closed "$out"

	stop_pid "$AUTH_PID"
	stop_pid "$NOSRV_PID"
	stop_pid "$SILENT_PID"
	stop_pid "$PROSODY_PID_p1"
	stop_pid "$DBD_PID_d1"
fi

# Four workers, many concurrent attempts: eight peers (fake1..8.test) each
# validate themselves and ping d1; each reply makes d1 originate a stream
# with a key stored by the worker that issued it, and the test server
# verifies that key on a NEW connection, which the kernel may hand to any
# of d1's workers. Every attempt must succeed, and some verifications must
# be answered by a worker other than the issuer (shared LMDB store).
if want workers; then
	dbd_start d1 d1.test 127.0.0.10 off 4 || fail workers_setup "dialbackd did not start"
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --verify-host 127.0.0.10 --timeout 90 \
	    >"$WORK/authority.log" 2>&1 &
	AUTH_PID=$!
	PIDS+=("$AUTH_PID")
	sleep 0.5
	for i in $(seq 1 8); do
		cat >"$WORK/w$i.script" <<S
header fake$i.test d1.test
expect features
send <db:result from='fake$i.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <iq type='get' id='ping$i' from='u@fake$i.test/r' to='d1.test'><ping xmlns='urn:xmpp:ping'/></iq>
sleep 3
S
		ip netns exec "$NS" $XMPP s2s-raw --host 127.0.0.10 --port 5269 --script "$WORK/w$i.script" --timeout 20 >"$WORK/w$i.out" 2>&1 &
		pids[$i]=$!
	done
	ok=0
	for i in $(seq 1 8); do wait "${pids[$i]}" && ok=$((ok + 1)); done
	sleep 1
	pongs="$(grep -c "RECV <ns0:iq .*type=\"result\"" "$WORK/authority.log")"
	verified="$(grep -c "VERIFIED d1.test -> fake[0-9].test: valid" "$WORK/authority.log")"
	# "worker N[pid] info: s2s in conn C: db:verify ... valid (key issued by worker M)"
	cross="$(grep -h ': valid (key issued by worker' "$WORK/d1/log" |
	    sed -n 's/.* worker \([0-9]*\)\[.*key issued by worker \([0-9]*\)).*/\1 \2/p' |
	    awk '$1 != $2 { n++ } END { print n + 0 }')"
	if [ "$ok" = 8 ] && [ "$pongs" = 8 ] && [ "$verified" = 8 ]; then
		pass workers_concurrent_dialback_all_succeed
	else
		fail workers_concurrent_dialback_all_succeed "peers ok $ok/8, pongs $pongs/8, keys verified $verified/8"
	fi
	# Keys never reach the logs, even at debug level: every key d1 sent
	# (as the test server saw it) and d1's secret are absent from its log.
	leaked=0
	for k in $(grep -o '<ns0:result [^>]*>[0-9a-f]*<' "$WORK/authority.log" | grep -o '>[0-9a-f]*<' | tr -d '<>'); do
		grep -q "$k" "$WORK/d1/log" && leaked=$((leaked + 1))
	done
	nkeys="$(grep -c '<ns0:result [^>]*>[0-9a-f]*<' "$WORK/authority.log")"
	if [ "$nkeys" -ge 8 ] && [ "$leaked" = 0 ] && ! grep -q "$(cat "$WORK/d1/secret")" "$WORK/d1/log" &&
	    grep -q "debug:.*db:result" "$WORK/d1/log"; then
		pass no_keys_or_secret_in_debug_logs
	else
		fail no_keys_or_secret_in_debug_logs "$leaked of $nkeys keys found in the log"
	fi
	if [ "$cross" -ge 1 ]; then
		pass workers_verify_answered_by_other_worker
		log "$cross of $verified verifications were answered by a worker other than the issuer"
	else
		fail workers_verify_answered_by_other_worker "no cross-worker verification seen"
	fi
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# ---- components (XEP-0114) ------------------------------------------------
comp() { # comp ADDR DOMAIN SECRET [args...]: run the component test client
	local addr="$1" dom="$2" sec="$3"
	shift 3
	in_ns $XMPP component --host "$addr" --port 5347 --domain "$dom" --secret "$sec" "$@" 2>&1
}

if want components; then
	dbd_start d1 d1.test 127.0.0.10 optional 2 "component_secret = s1
[domain d1b.test]
component_secret = s1b
[domain d1c.test]" || fail components_setup "d1 did not start"
	dbd_start d2 d2.test 127.0.0.11 optional 2 "component_secret = s2
[domain d2b.test]
component_secret = s2b" || fail components_setup "d2 did not start"

	out="$(comp 127.0.0.10 d1.test wrongsecret --timeout 5)"
	grep -q "not-authorized" <<<"$out" && pass comp_bad_handshake_not_authorized \
	    || fail comp_bad_handshake_not_authorized "$out"
	out="$(comp 127.0.0.10 unknown.test x --timeout 5)"
	grep -q "host-unknown" <<<"$out" && pass comp_unknown_domain_host_unknown \
	    || fail comp_unknown_domain_host_unknown "$out"
	out="$(comp 127.0.0.10 d1c.test x --timeout 5)"
	grep -q "host-unknown" <<<"$out" && pass comp_domain_without_secret_host_unknown \
	    || fail comp_domain_without_secret_host_unknown "$out"

	# echo components on d2.test and d2b.test
	ip netns exec "$NS" $XMPP component --host 127.0.0.11 --port 5347 --domain d2.test --secret s2 \
	    --echo-count 100000 --timeout 120 >"$WORK/echo2.log" 2>&1 &
	ECHO2=$!; PIDS+=("$ECHO2")
	ip netns exec "$NS" $XMPP component --host 127.0.0.11 --port 5347 --domain d2b.test --secret s2b \
	    --echo-count 100000 --timeout 120 >"$WORK/echo2b.log" 2>&1 &
	ECHO2B=$!; PIDS+=("$ECHO2B")
	sleep 1

	out="$(comp 127.0.0.11 d2.test s2 --timeout 5)"
	grep -q "conflict" <<<"$out" && pass comp_duplicate_conflict || fail comp_duplicate_conflict "$out"

	out="$(comp 127.0.0.10 d1.test s1 --raw "<message from='x@evil.test' to='u@d2.test'><body>spoof</body></message>" --timeout 5)"
	grep -q "invalid-from" <<<"$out" && pass comp_spoofed_from_invalid_from || fail comp_spoofed_from_invalid_from "$out"

	# Several hundred messages over four pairs at once, both directions
	# through the echo components, in order.
	comp 127.0.0.10 d1.test s1 --to u@d2.test --to u@d2b.test --count 150 --timeout 60 >"$WORK/send1.log" &
	S1=$!
	comp 127.0.0.10 d1b.test s1b --to u@d2.test --to u@d2b.test --count 150 --timeout 60 >"$WORK/send1b.log" &
	S1B=$!
	wait $S1; r1=$?
	wait $S1B; r2=$?
	if [ $r1 = 0 ] && [ $r2 = 0 ]; then
		pass comp_two_servers_600_messages_in_order
	else
		fail comp_two_servers_600_messages_in_order "$(grep -h "OK\|FAIL\|ERROR" "$WORK/send1.log" "$WORK/send1b.log" | head)"
	fi
	if kill -0 "$ECHO2" && kill -0 "$ECHO2B"; then
		pass comp_other_components_unaffected_by_refusals
	else
		fail comp_other_components_unaffected_by_refusals
	fi

	# A remote that cannot be reached: bounced with remote-server-timeout.
	out="$(comp 127.0.0.10 d1.test s1 --raw "<message from='svc@d1.test' to='u@dead.test' id='dead1'><body>x</body></message>" --timeout 8)"
	grep -q "ERROR u@dead.test dead1 remote-server-timeout" <<<"$out" && pass comp_unreachable_remote_server_timeout \
	    || fail comp_unreachable_remote_server_timeout "$out"
	stop_pid "$ECHO2"; stop_pid "$ECHO2B"
	stop_pid "$DBD_PID_d1"
	stop_pid "$DBD_PID_d2"
fi

# A validated outbound stream that the peer closes (its idle timeout here)
# is not a failure: the next stanza opens a new stream at once instead of
# being bounced while a backoff runs.
if want reopen; then
	dbd_start d1 d1.test 127.0.0.10 off 1 "component_secret = s1" || fail reopen_setup "d1 did not start"
	dbd_start d2 d2.test 127.0.0.11 off 1 "component_secret = s2" "idle_timeout = 3s" \
	    || fail reopen_setup "d2 did not start"
	ip netns exec "$NS" $XMPP component --host 127.0.0.11 --port 5347 --domain d2.test --secret s2 \
	    --echo-count 100 --timeout 60 >"$WORK/echo-reopen.log" 2>&1 &
	ECHO=$!; PIDS+=("$ECHO")
	sleep 1
	out="$(comp 127.0.0.10 d1.test s1 --to u@d2.test --count 1 --timeout 10)" \
	    || fail reopen_first_message "$out"
	for _ in $(seq 1 100); do
		grep -Eq "s2s out d1.test -> d2.test: connection (closed|lost)" "$WORK/d1/log" && break
		sleep 0.1
	done
	if ! grep -Eq "s2s out d1.test -> d2.test: connection (closed|lost)" "$WORK/d1/log"; then
		fail reopen_peer_closed "d2 did not close the idle stream"
	elif out="$(comp 127.0.0.10 d1.test s1 --to u@d2.test --count 3 --timeout 10)"; then
		pass reopen_after_peer_close_delivers
	else
		fail reopen_after_peer_close_delivers "$out"
	fi
	grep -q "d2.test: 1 failure(s) in a row" "$WORK/d1/log" && fail reopen_no_backoff "a clean close counted as a failure" \
	    || pass reopen_no_backoff
	stop_pid "$ECHO"
	stop_pid "$DBD_PID_d1"
	stop_pid "$DBD_PID_d2"
fi

# A validated stream that stops reading is cut off at output_buffer_max;
# the stanzas still in its output buffer are queued again and go out over
# a new stream, not lost with the old one.
if want unsent; then
	dbd_start d1 d1.test 127.0.0.10 off 1 "component_secret = s1" "dialback_timeout = 10s" \
	    "output_buffer_max = 64K" "queue_max = 100000" || fail unsent_setup "d1 did not start"
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --stall-first --timeout 60 \
	    >"$WORK/auth-unsent.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	sleep 0.5
	# replies never come from fake.test: the helper just sends and waits.
	# One message validates the stream (it goes through the queue); the
	# rest are written straight to the stream, which stops being read.
	comp 127.0.0.10 d1.test s1 --to u@fake.test --count 1 --timeout 2 >/dev/null
	comp 127.0.0.10 d1.test s1 --to u@fake.test --count 3000 --timeout 8 >"$WORK/comp-unsent.log"
	for _ in $(seq 1 100); do
		grep -q 'id="m2999"' "$WORK/auth-unsent.log" && break
		sleep 0.1
	done
	line="$(grep -o "stream closed with [0-9]* stanza(s) unsent: [0-9]* queued" "$WORK/d1/log" | head -1)"
	if ! grep -q "^STALLED" "$WORK/auth-unsent.log"; then
		fail unsent_requeued "the authority never stalled: $(tail -3 "$WORK/auth-unsent.log")"
	elif [ -z "$line" ] || [ "$(awk '{ print $8 }' <<<"$line")" -eq 0 ]; then
		fail unsent_requeued "no unsent stanza was queued again: $(grep -i "s2s out" "$WORK/d1/log" | tail -3)"
	elif ! grep -q 'id="m2999"' "$WORK/auth-unsent.log"; then
		fail unsent_requeued "the last message never arrived ($line)"
	elif grep -q "^ERROR " "$WORK/comp-unsent.log"; then
		fail unsent_requeued "stanzas bounced: $(grep -m3 '^ERROR ' "$WORK/comp-unsent.log")"
	else
		pass unsent_requeued
	fi
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# Queue behaviour against a remote that holds dialback back (fake.test).
if want queue; then
	dbd_start d1 d1.test 127.0.0.10 off 2 "component_secret = s1" \
	    "dialback_timeout = 30s" "queue_max = 5" || fail queue_setup "d1 did not start"
	# invalid: the remote rejects our key -> internal-server-error
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --answer invalid --timeout 20 \
	    >"$WORK/auth-invalid.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	sleep 0.5
	out="$(comp 127.0.0.10 d1.test s1 --raw "<message from='svc@d1.test' to='u@fake.test' id='inv1'><body>x</body></message>" --timeout 8)"
	grep -q "ERROR u@fake.test inv1 internal-server-error" <<<"$out" && pass queue_invalid_internal_server_error \
	    || fail queue_invalid_internal_server_error "$out"
	stop_pid "$AUTH_PID"

	# overflow: queue_max = 5 while dialback is held -> resource-constraint
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --hold-file "$WORK/release1" --timeout 30 \
	    >"$WORK/auth-hold1.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	sleep 0.5
	raws=()
	for i in 1 2 3 4 5 6 7 8; do raws+=(--raw "<message from='svc@d1.test' to='u@fake1.test' id='q$i'><body>$i</body></message>"); done
	out="$(comp 127.0.0.10 d1.test s1 "${raws[@]}" --timeout 4)"
	n="$(grep -c "resource-constraint" <<<"$out")"
	[ "$n" = 3 ] && pass queue_overflow_resource_constraint || fail queue_overflow_resource_constraint "$n bounces: $out"
	touch "$WORK/release1"
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# kill -9 of the worker that owns a pair with stanzas queued: after the
# successor is up and the remote answers, exactly N arrive, in order.
if want crash; then
	dbd_start d1 d1.test 127.0.0.10 off 2 "component_secret = s1" \
	    "dialback_timeout = 60s" || fail crash_setup "d1 did not start"
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --hold-file "$WORK/release2" --timeout 60 \
	    >"$WORK/auth-hold2.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	sleep 0.5
	raws=()
	for i in $(seq 1 20); do raws+=(--raw "<message from='svc@d1.test' to='u@fake2.test' id='k$i'><body>$i</body></message>"); done
	comp 127.0.0.10 d1.test s1 "${raws[@]}" --timeout 3 >"$WORK/crash-send.log"
	owner="$("$DBTOOL" -s "$WORK/d1/store" --json routes | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r.get("remote") == "fake2.test": print(r["owner_pid"] if "owner_pid" in r else r.get("pid", ""))')"
	depth="$(queue_depth "$WORK/d1/store" fake2.test)"
	if [ -n "$owner" ] && [ "$depth" = 20 ]; then
		kill -9 "$owner"
		for _ in $(seq 1 60); do grep -q "taking over queued stanzas" "$WORK/d1/log" && break; sleep 0.1; done
		touch "$WORK/release2"
		for _ in $(seq 1 100); do [ "$(grep -c "RECV <ns0:message" "$WORK/auth-hold2.log")" -ge 20 ] && break; sleep 0.1; done
		got="$(grep "RECV <ns0:message" "$WORK/auth-hold2.log" | sed -n 's/.*:body>\([0-9]*\)<\/ns[0-9]:body>.*/\1/p' | tr '\n' ' ')"
		if [ "$got" = "$(seq 1 20 | tr '\n' ' ')" ]; then
			pass crash_queued_stanzas_delivered_once_in_order
		else
			fail crash_queued_stanzas_delivered_once_in_order "got: $got"
		fi
	else
		fail crash_queued_stanzas_delivered_once_in_order "owner '$owner' depth '$depth'"
	fi
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# A Prosody user and a component on dialbackd with 4 workers: the message
# and the echo cross dialback in both directions, and workers.
if want prosody_component; then
	dbd_start d1 d1.test 127.0.0.10 optional 4 "component_secret = s1" || fail pc_setup "d1 did not start"
	prosody_start p1 p1.test 127.0.0.20 false true || fail pc_setup "prosody did not start"
	ip netns exec "$NS" $XMPP component --host 127.0.0.10 --port 5347 --domain d1.test --secret s1 \
	    --echo-count 100 --timeout 90 >"$WORK/echo1.log" 2>&1 &
	ECHO1=$!; PIDS+=("$ECHO1")
	sleep 0.5
	ok=0
	for i in 1 2 3 4 5; do
		out="$(in_ns $XMPP c2s-message --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw \
		    --to echo@d1.test --body "hi $i" --timeout 20)"
		grep -q "^REPLY from=echo@d1.test.*body=hi $i" <<<"$out" && ok=$((ok + 1))
	done
	[ "$ok" = 5 ] && pass prosody_user_component_round_trip || fail prosody_user_component_round_trip "$ok of 5: $out"
	# The kernel spreads connections by hash: if Prosody's stream landed on
	# the component's worker, reconnect Prosody (new ports) until it does
	# not (each try has a 3 in 4 chance), then the message must cross.
	for attempt in 1 2 3 4 5 6 7 8; do
		grep -q "handed to worker" "$WORK/d1/log" && break
		stop_pid "$PROSODY_PID_p1"
		prosody_start p1 p1.test 127.0.0.20 false true || break
		# a slow round trip (a loaded machine) is no reason to stop trying
		in_ns $XMPP c2s-message --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw \
		    --to echo@d1.test --body "again $attempt" --timeout 20 >/dev/null || true
	done
	if grep -q "handed to worker" "$WORK/d1/log" && [ "$(grep -c "^MSG " "$WORK/echo1.log")" -ge 5 ]; then
		pass prosody_component_stanzas_crossed_workers
	else
		fail prosody_component_stanzas_crossed_workers "no hand-off between workers seen"
	fi
	stop_pid "$ECHO1"
	stop_pid "$PROSODY_PID_p1"
	stop_pid "$DBD_PID_d1"
fi

# A burst: four peers send 4000 messages of 1 KB each to a component (a
# Python script, far slower than the peers) as fast as they can; with 2
# workers about half cross between workers. Back-pressure must hold the
# peers back: nothing lost, nothing bounced, the component not cut off.
if want burst; then
	dbd_start d1 d1.test 127.0.0.10 off 2 "component_secret = s1" || fail burst_setup "d1 did not start"
	fake_authority burst-auth
	ip netns exec "$NS" $XMPP component --host 127.0.0.10 --port 5347 --domain d1.test --secret s1 \
	    --sink --echo-count 16000 --timeout 90 >"$WORK/sink.log" 2>&1 &
	SINK=$!; PIDS+=("$SINK")
	sleep 0.5
	BODY="$(head -c 1000 /dev/zero | tr '\0' 'b')"
	for i in 1 2 3 4; do
		cat >"$WORK/burst$i.script" <<S
header fake$i.test d1.test
expect features
send <db:result from='fake$i.test' to='d1.test'>abcd</db:result>
expect type="valid"
sendrepeat 4000 <message from='u@fake$i.test' to='sink@d1.test' type='chat'><body>$BODY</body></message>
sleep 20
S
		in_ns $XMPP s2s-raw --host 127.0.0.10 --port 5269 --script "$WORK/burst$i.script" --timeout 60 >/dev/null 2>&1 &
		bp[$i]=$!
	done
	for _ in $(seq 1 600); do kill -0 "$SINK" 2>/dev/null || break; sleep 0.1; done
	for i in 1 2 3 4; do kill "${bp[$i]}" 2>/dev/null; wait "${bp[$i]}" 2>/dev/null; done
	if grep -q "^COUNTED 16000" "$WORK/sink.log" && ! grep -q "bounced\|not reading" "$WORK/d1/log"; then
		pass burst_across_workers_nothing_lost
		log "$(grep -c 'handed to worker' "$WORK/d1/log") hand-offs between workers"
	else
		fail burst_across_workers_nothing_lost "$(tail -2 "$WORK/sink.log"); $(grep -c bounced "$WORK/d1/log") bounced"
	fi
	stop_pid "$SINK"
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# Reload: workers 2 -> 4 -> 1 while a federated stream carries traffic.
if want reload; then
	dbd_start d1 d1.test 127.0.0.10 off 2 "component_secret = s1" || fail reload_setup "d1 did not start"
	dbd_start d2 d2.test 127.0.0.11 off 2 "component_secret = s2" || fail reload_setup "d2 did not start"
	ip netns exec "$NS" $XMPP component --host 127.0.0.11 --port 5347 --domain d2.test --secret s2 \
	    --echo-count 100000 --timeout 60 >"$WORK/echo-reload.log" 2>&1 &
	ECHO=$!; PIDS+=("$ECHO")
	sleep 0.5
	comp 127.0.0.10 d1.test s1 --to u@d2.test --count 200 --interval 0.02 --timeout 40 >"$WORK/reload-send.log" &
	SENDER=$!
	sleep 1
	sed -i 's/^workers = 2/workers = 4/' "$WORK/d1/dialbackd.conf"
	kill -HUP "$DBD_PID_d1"
	sleep 1
	n4="$(worker_pids "$DBD_PID_d1" | wc -l)"
	sed -i 's/^workers = 4/workers = 1/' "$WORK/d1/dialbackd.conf"
	kill -HUP "$DBD_PID_d1"
	wait "$SENDER"; rc=$?
	live="$(grep -c "worker [0-9] (pid [0-9]*) drains" "$WORK/d1/log")"
	if [ "$rc" = 0 ] && [ "$n4" -ge 4 ] && [ "$live" = 3 ] && grep -q "OK u@d2.test 200 in order" "$WORK/reload-send.log"; then
		pass reload_workers_2_4_1_no_stanza_lost
	else
		fail reload_workers_2_4_1_no_stanza_lost "rc=$rc workers after 4: $n4, drained: $live; $(tail -3 "$WORK/reload-send.log")"
	fi
	# (a stream opened only to verify d2's key closes by design)
	if ! grep "d1.test -> d2.test: closed" "$WORK/d1/log" | grep -vq "verification done"; then
		pass reload_federated_stream_stays_up
	else
		fail reload_federated_stream_stays_up "$(grep "d1.test -> d2.test: closed" "$WORK/d1/log")"
	fi
	stop_pid "$ECHO"
	stop_pid "$DBD_PID_d1"
	stop_pid "$DBD_PID_d2"
fi

# Runs a raw s2s script against d1 in the background; after SECONDS edits
# d1's configuration with sed and reloads it. Passes when the script does.
reload_during_script() { # CASE SCRIPT TIMEOUT SECONDS SED_EXPR
	local live
	in_ns $XMPP s2s-raw --host 127.0.0.10 --port 5269 --script "$2" --timeout "$3" >"$WORK/$1.out" 2>&1 &
	live=$!
	sleep "$4"
	sed -i "$5" "$WORK/d1/dialbackd.conf"
	kill -HUP "$DBD_PID_d1"
	if wait "$live"; then
		pass "$1"
	else
		fail "$1" "$(cat "$WORK/$1.out")"
	fi
}

# Access control: [s2s] deny, applied on reload to a live stream, to new
# streams, and to stanzas from a component.
if want acl; then
	dbd_start d1 d1.test 127.0.0.10 off 1 "component_secret = s1" || fail acl_setup "d1 did not start"
	fake_authority acl-auth
	sleep 0.5
	cat >"$WORK/acl-live.script" <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
expect policy-violation
S
	reload_during_script acl_reload_closes_denied_stream "$WORK/acl-live.script" 15 1 \
	    's/^\[s2s\]$/[s2s]\ndeny = fake.test *.blocked.test/'
	out="$(raw_script aclnew <<'S'
header fake.test d1.test
expect policy-violation
expect CLOSED
S
)" && pass acl_denied_header_policy_violation || fail acl_denied_header_policy_violation "$out"
	out="$(raw_script aclresult <<'S'
header fake1.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="error".*forbidden
S
)" && pass acl_denied_db_result_forbidden || fail acl_denied_db_result_forbidden "$out"
	out="$(comp 127.0.0.10 d1.test s1 --raw "<message from='svc@d1.test' to='u@fake.test' id='acl1'><body>x</body></message>" --timeout 5)"
	grep -q "ERROR u@fake.test acl1 policy-violation" <<<"$out" && pass acl_denied_outbound_bounced \
	    || fail acl_denied_outbound_bounced "$out"
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# A hosted domain removed by a reload, while a stream that stays (its
# header names a domain still hosted) carries a validated pair to it:
# stanzas to the removed domain get host-unknown from then on. (Whether a
# pair's domain is hosted is asked once per configuration, not per stanza.)
if want hostgone; then
	dbd_start d1 d1.test 127.0.0.10 off 1 "component_secret = s1" || fail hostgone_setup "d1 did not start"
	printf '\n[domain gone.test]\n' >>"$WORK/d1/dialbackd.conf"
	kill -HUP "$DBD_PID_d1"
	for _ in $(seq 1 50); do grep -q "configuration reloaded" "$WORK/d1/log" && break; sleep 0.1; done
	fake_authority hostgone-auth
	sleep 0.5
	cat >"$WORK/hostgone.script" <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect from="d1.test"[^>]*type="valid"|type="valid"[^>]*from="d1.test"
send <db:result from='fake.test' to='gone.test'>abcd</db:result>
expect from="gone.test"[^>]*type="valid"|type="valid"[^>]*from="gone.test"
send <message from='u@fake.test' to='x@gone.test' id='m1'><body>1</body></message>
expect-not host-unknown 1
sleep 3
send <message from='u@fake.test' to='x@gone.test' id='m2'><body>2</body></message>
expect host-unknown
S
	reload_during_script hostgone_reload_stanzas_host_unknown "$WORK/hostgone.script" 20 2 \
	    '/^\[domain gone.test\]$/d'
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
fi

# valgrind memcheck over one federation with Prosody (master and workers).
if want valgrind && command -v valgrind >/dev/null && [ "${DIALBACKD_SANITIZED:-0}" != 1 ]; then
	DBD_WRAPPER="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --log-file=$WORK/vg.%p.log" \
	    dbd_start d1 d1.test 127.0.0.10 optional 2 || fail valgrind_setup "d1 did not start under valgrind"
	prosody_start p1 p1.test 127.0.0.20 false true || fail valgrind_setup "prosody did not start"
	out="$(in_ns $XMPP c2s-ping --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw --to d1.test --timeout 30 2>&1)"
	stop_pid "$PROSODY_PID_p1"
	stop_pid "$DBD_PID_d1"
	sleep 1
	# with --quiet, valgrind writes only errors: any non-empty log is one
	errs="$(find "$WORK" -maxdepth 1 -name 'vg.*.log' -size +0 2>/dev/null)"
	nlogs="$(ls "$WORK"/vg.*.log 2>/dev/null | wc -l)"
	if grep -q "^RESULT" <<<"$out" && [ -z "$errs" ] && [ "$nlogs" -ge 3 ]; then
		pass valgrind_memcheck_clean_federation
	else
		fail valgrind_memcheck_clean_federation "$out; logs $nlogs; errors in: $errs $(cat $errs 2>/dev/null | head -30)"
	fi
fi

# Hostile peers (tests/integration/hostile.sh).
if want hostile; then
	. "$HERE/hostile.sh"
	hostile_suite
fi

# systemd's notify protocol: READY=1 only once every worker accepts,
# RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, STATUS= lines.
if want notify; then
	rm -f "$WORK/notify.sock"
	ip netns exec "$NS" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + 40
while time.time() < end:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        continue
    print("%.3f %s" % (time.time(), m.replace("\n", " | ")), flush=True)
    if "STOPPING=1" in m:
        break
' "$WORK/notify.sock" >"$WORK/notify.log" 2>&1 &
	NOTIFY_PID=$!; PIDS+=("$NOTIFY_PID")
	sleep 0.3
	NOTIFY_SOCKET="$WORK/notify.sock" dbd_start d1 d1.test 127.0.0.10 off 3 || fail notify_setup "d1 did not start"
	sleep 0.5
	in_ns /usr/bin/python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.10", 5269))
s.sendall(b"<?xml version=\x271.0\x27?><stream:stream xmlns=\x27jabber:server\x27 xmlns:stream=\x27http://etherx.jabber.org/streams\x27 to=\x27d1.test\x27 version=\x271.0\x27>")
time.sleep(7)
' &
	HOLD=$!
	sleep 6
	kill -HUP "$DBD_PID_d1"
	sleep 1
	wait "$HOLD"
	stop_pid "$DBD_PID_d1"
	for _ in $(seq 1 30); do kill -0 "$NOTIFY_PID" 2>/dev/null || break; sleep 0.1; done
	first_ready="$(grep -m1 "READY=1" "$WORK/notify.log")"
	if grep -q "STATUS=3 of 3 workers ready" <<<"$first_ready" &&
	    ! grep -m1 -B100 "READY=1" "$WORK/notify.log" | grep -v "READY=1" | grep -q "3 of 3"; then
		pass notify_ready_after_all_workers
	else
		fail notify_ready_after_all_workers "$(cat "$WORK/notify.log")"
	fi
	if awk '/RELOADING=1/ { r = 1; next } r && /READY=1/ { ok = 1 } END { exit !ok }' "$WORK/notify.log"; then
		pass notify_reloading_then_ready_on_hup
	else
		fail notify_reloading_then_ready_on_hup "$(cat "$WORK/notify.log")"
	fi
	grep -q "STOPPING=1" "$WORK/notify.log" && pass notify_stopping_on_term || fail notify_stopping_on_term "$(cat "$WORK/notify.log")"
	grep -q "STATUS=3 of 3 workers ready, 1 streams" "$WORK/notify.log" && pass notify_status_counts_streams \
	    || fail notify_status_counts_streams "$(cat "$WORK/notify.log")"
fi

# Process control: kill -9 of a worker, SIGHUP with a broken config,
# SIGTERM closing streams.
if want signals; then
	dbd_start d1 d1.test 127.0.0.10 optional 2 || fail signals_setup "dialbackd did not start"
	prosody_start p1 p1.test 127.0.0.20 false true || fail signals_setup "prosody did not start"
	in_ns $XMPP c2s-ping --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw --to d1.test --timeout 20 >/dev/null 2>&1
	victim="$(worker_pids "$DBD_PID_d1" | head -1)"
	kill -9 "$victim"
	for _ in $(seq 1 40); do
		n="$(worker_pids "$DBD_PID_d1" | grep -vc "^$victim\$")"
		[ "$n" -ge 2 ] && break
		sleep 0.1
	done
	if [ "$n" -ge 2 ] && grep -q "killed by signal 9" "$WORK/d1/log"; then
		pass worker_kill9_respawned
	else
		fail worker_kill9_respawned "workers now: $(worker_pids "$DBD_PID_d1" | tr '\n' ' ')"
	fi
	stale="$("$DBTOOL" -s "$WORK/d1/store" --json pairs 2>/dev/null | grep -c "\"pid\": $victim\b" || true)"
	out="$(in_ns $XMPP c2s-ping --host 127.0.0.20 --port 5222 --jid alice@p1.test --password alicepw --to d1.test --timeout 20 2>&1)"
	if grep -q "^RESULT" <<<"$out" && [ "$stale" = 0 ]; then
		pass worker_kill9_federation_continues
	else
		fail worker_kill9_federation_continues "stale=$stale $out"
	fi

	cp "$WORK/d1/dialbackd.conf" "$WORK/d1/good.conf"
	echo "[bogus section" >>"$WORK/d1/dialbackd.conf"
	kill -HUP "$DBD_PID_d1"
	sleep 1
	if kill -0 "$DBD_PID_d1" && grep -q "reload failed" "$WORK/d1/log" && listening 127.0.0.10 5269; then
		pass sighup_broken_config_keeps_running
	else
		fail sighup_broken_config_keeps_running
	fi
	cp "$WORK/d1/good.conf" "$WORK/d1/dialbackd.conf"

	kill -TERM "$DBD_PID_d1"
	for _ in $(seq 1 100); do kill -0 "$DBD_PID_d1" 2>/dev/null || break; sleep 0.1; done
	if ! kill -0 "$DBD_PID_d1" 2>/dev/null && grep -q "system-shutdown\|stopped" "$WORK/d1/log"; then
		pass sigterm_stops_cleanly
	else
		fail sigterm_stops_cleanly
	fi
	stop_pid "$PROSODY_PID_p1"
fi

# Faults: bad secret file, corrupt store, a full store, kill -9 of the
# master, and (last, since it takes DNS away) the DNS server gone.
if want faults; then
	# the secret file must be 0600: refused at start with a clear message
	dbd_start d1 d1.test 127.0.0.10 off 1 && stop_pid "$DBD_PID_d1"
	chmod 644 "$WORK/d1/secret"
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/badsecret.log" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -q "secret file must not be accessible by group or others" "$WORK/d1/badsecret.log"; then
		pass fault_secret_file_mode_refused
	else
		fail fault_secret_file_mode_refused "rc=$rc $(cat "$WORK/d1/badsecret.log")"
	fi
	chmod 600 "$WORK/d1/secret"

	# a corrupt store: a clear error at start, exit 1, no crash
	cp "$WORK/d1/store/data.mdb" "$WORK/d1/data.mdb.good"
	head -c 65536 /dev/urandom >"$WORK/d1/store/data.mdb"
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/corrupt.log" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -qi "store" "$WORK/d1/corrupt.log"; then
		pass fault_corrupt_store_clear_error
	else
		fail fault_corrupt_store_clear_error "rc=$rc $(tail -3 "$WORK/d1/corrupt.log")"
	fi
	rm -rf "$WORK/d1/store"

	# a full store: new work is refused with resource-constraint, the daemon
	# keeps running, and every stanza it did accept is delivered
	dbd_start d1 d1.test 127.0.0.10 off 1 "component_secret = s1" "dialback_timeout = 60s" \
	    "queue_max = 100000" "queue_max_age = 120s" || fail fault_setup "d1 did not start"
	sed -i 's/^store_size = 16M/store_size = 1M/' "$WORK/d1/dialbackd.conf"
	stop_pid "$DBD_PID_d1"
	rm -rf "$WORK/d1/store"
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/log" 2>&1 &
	DBD_PID_d1=$!; PIDS+=("$DBD_PID_d1")
	wait_listening 127.0.0.10 5347
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --hold-file "$WORK/release3" --timeout 90 \
	    >"$WORK/auth-full.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	sleep 0.5
	body="$(head -c 3000 /dev/zero | tr '\0' 'x')"
	raws=()
	for i in $(seq 1 400); do raws+=(--raw "<message from='svc@d1.test' to='u@fake4.test' id='f$i'><body>$i $body</body></message>"); done
	comp 127.0.0.10 d1.test s1 "${raws[@]}" --timeout 6 >"$WORK/full-send.log"
	bounced="$(grep -c "resource-constraint" "$WORK/full-send.log")"
	touch "$WORK/release3"
	for _ in $(seq 1 100); do
		[ "$(grep -c "RECV <ns0:message" "$WORK/auth-full.log")" -ge $((400 - bounced)) ] && break
		sleep 0.2
	done
	delivered="$(grep -c "RECV <ns0:message" "$WORK/auth-full.log")"
	if [ "$bounced" -gt 0 ] && [ "$delivered" = $((400 - bounced)) ] && grep -q "map full" "$WORK/d1/log" &&
	    kill -0 "$DBD_PID_d1"; then
		pass fault_store_full_refuses_new_work_loses_nothing
		log "$bounced of 400 refused with resource-constraint, $delivered delivered"
	else
		fail fault_store_full_refuses_new_work_loses_nothing "bounced $bounced delivered $delivered"
	fi
	stop_pid "$AUTH_PID"
	stop_pid "$DBD_PID_d1"
	sed -i 's/^store_size = 1M/store_size = 16M/' "$WORK/d1/dialbackd.conf"

	# kill -9 of the master: the workers exit; a restart finds the store intact
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --hold-file "$WORK/release4" --timeout 60 \
	    >"$WORK/auth-master.log" 2>&1 &
	AUTH_PID=$!; PIDS+=("$AUTH_PID")
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/log" 2>&1 &
	DBD_PID_d1=$!; PIDS+=("$DBD_PID_d1")
	wait_listening 127.0.0.10 5347
	raws=()
	for i in $(seq 1 10); do raws+=(--raw "<message from='svc@d1.test' to='u@fake5.test' id='m$i'><body>$i</body></message>"); done
	comp 127.0.0.10 d1.test s1 "${raws[@]}" --timeout 2 >/dev/null
	workers="$(worker_pids "$DBD_PID_d1")"
	kill -9 "$DBD_PID_d1"
	gone=0
	for _ in $(seq 1 50); do
		gone=1
		for p in $workers; do kill -0 "$p" 2>/dev/null && gone=0; done
		[ "$gone" = 1 ] && break
		sleep 0.1
	done
	depth="$(queue_depth "$WORK/d1/store" fake5.test)"
	touch "$WORK/release4"
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/log2" 2>&1 &
	DBD_PID_d1=$!; PIDS+=("$DBD_PID_d1")
	for _ in $(seq 1 100); do
		[ "$(grep -c "RECV <ns0:message" "$WORK/auth-master.log")" -ge 10 ] && break
		sleep 0.1
	done
	if [ "$gone" = 1 ] && [ "$depth" = 10 ] && [ "$(grep -c "RECV <ns0:message" "$WORK/auth-master.log")" = 10 ]; then
		pass fault_master_kill9_workers_exit_store_intact
	else
		fail fault_master_kill9_workers_exit_store_intact "workers gone=$gone depth=$depth delivered=$(grep -c "RECV <ns0:message" "$WORK/auth-master.log")"
	fi
	stop_pid "$DBD_PID_d1"
	stop_pid "$AUTH_PID"

	# the DNS server gone: a dialback error, not a hang
	ip netns exec "$NS" "$DIALBACKD" -f -c "$WORK/d1/dialbackd.conf" >"$WORK/d1/log" 2>&1 &
	DBD_PID_d1=$!; PIDS+=("$DBD_PID_d1")
	wait_listening 127.0.0.10 5269
	kill "$(cat "$WORK/dnsmasq.pid")"
	sleep 0.5
	start=$(date +%s)
	out="$(raw_script nodns <<'S'
header fake6.test d1.test
expect features
send <db:result from='fake6.test' to='d1.test'>abcd</db:result>
expect type="error"
S
)"
	rc=$?
	took=$(( $(date +%s) - start ))
	if [ "$rc" = 0 ]; then
		pass fault_dns_down_dialback_error
		log "answered in ${took}s"
	else
		fail fault_dns_down_dialback_error "$out"
	fi
	stop_pid "$DBD_PID_d1"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
