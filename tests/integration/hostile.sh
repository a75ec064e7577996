# hostile.sh - hostile peers against a live dialbackd (sourced by run.sh).
# Each case sends one kind of bad input and checks the exact answer; after
# each, a control session must still work (the daemon and its other streams
# keep going), and at the end the workers' memory must be back near its
# baseline.

HOST=127.0.0.10

rss_kb() { # total anonymous RSS (heap, not the mapped store) of a master's workers
	local t=0 p
	for p in $(worker_pids "$1"); do
		t=$((t + $(awk '/^RssAnon/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

control_ok() {
	cat >"$WORK/control.script" <<'S'
header fake.test d1.test
expect features
send <db:verify from='fake.test' to='d1.test' id='control'>00</db:verify>
expect type="invalid"
S
	in_ns $XMPP s2s-raw --host $HOST --port 5269 --script "$WORK/control.script" --timeout 10 >/dev/null 2>&1
}

# hcase NAME: script on stdin; passes when the script's expectations hold
# and a control session works afterwards.
hcase() {
	local name="$1" out
	cat >"$WORK/h-$name.script"
	out="$(in_ns $XMPP s2s-raw --host $HOST --port 5269 --script "$WORK/h-$name.script" --timeout 20 2>&1)"
	if [ $? != 0 ]; then
		fail "hostile_$name" "$out"
	elif ! control_ok; then
		fail "hostile_$name" "the daemon no longer answers a normal session"
	else
		pass "hostile_$name"
	fi
}

hostile_suite() {
	local base after n big
	dbd_start d1 d1.test $HOST off 2 "component_secret = s1" "dialback_timeout = 4s" \
	    "max_stanza_size = 20000" "max_element_depth = 16" ||
	    { fail hostile_setup "d1 did not start"; return; }
	ip netns exec "$NS" $XMPP authority --host 127.0.0.32 --port 5269 --timeout 300 \
	    >"$WORK/h-authority.log" 2>&1 &
	local auth=$!
	PIDS+=("$auth")
	sleep 0.5
	control_ok || fail hostile_control "control session fails before any attack"
	base="$(rss_kb "$DBD_PID_d1")"

	hcase malformed_xml <<'S'
header fake.test d1.test
expect features
send <a><b></a>
expect not-well-formed
expect CLOSED
S
	hcase truncated_then_close <<'S'
header fake.test d1.test
expect features
send <message from='a@fake.test' to='d1.test'><bo
close
S
	hcase dtd <<'S'
send <?xml version='1.0'?><!DOCTYPE stream [<!ELEMENT stream ANY>]><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='d1.test' version='1.0'>
expect restricted-xml
expect CLOSED
S
	hcase billion_laughs <<'S'
send <?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>
expect restricted-xml
expect CLOSED
S
	hcase comment <<'S'
header fake.test d1.test
expect features
send <!-- hello -->
expect restricted-xml
expect CLOSED
S
	hcase processing_instruction <<'S'
header fake.test d1.test
expect features
send <?evil stuff?>
expect restricted-xml
expect CLOSED
S
	hcase oversized_stanza <<'S'
header fake.test d1.test
expect features
send <message from='a@fake.test' to='d1.test'><body>
sendrepeat 30000 a
expect policy-violation
expect CLOSED
S
	hcase oversized_attribute <<'S'
header fake.test d1.test
expect features
send <message from='a@fake.test' to='d1.test' x='
sendrepeat 30000 a
expect policy-violation
expect CLOSED
S
	big="$(printf '<a>%.0s' $(seq 1 10000))"
	printf 'header fake.test d1.test\nexpect features\nsend %s\nexpect policy-violation\nexpect CLOSED\n' "$big" |
	    hcase deep_nesting
	# [s2s] max_element_depth = 16: a stanza 16 deep is parsed (and refused
	# as unauthenticated), one level more is a policy violation
	printf 'header fake.test d1.test\nexpect features\nsend <message>%s%s</message>\nexpect not-authorized\nexpect CLOSED\n' \
	    "$(printf '<a>%.0s' $(seq 1 15))" "$(printf '</a>%.0s' $(seq 1 15))" | hcase depth_configured_within
	printf 'header fake.test d1.test\nexpect features\nsend <message>%s\nexpect policy-violation\nexpect CLOSED\n' \
	    "$(printf '<a>%.0s' $(seq 1 16))" | hcase depth_configured_over
	hcase invalid_utf8 <<'S'
header fake.test d1.test
expect features
sendhex 3c6d657373616765206672 6f6d3d27c3283d27 2f3e
expect not-well-formed
expect CLOSED
S
	hcase client_namespace <<'S'
send <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='d1.test' version='1.0'>
expect invalid-namespace
expect CLOSED
S
	hcase wrong_stream_namespace <<'S'
send <?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='urn:not:streams' to='d1.test' version='1.0'>
expect invalid-namespace
expect CLOSED
S
	hcase unbound_prefix <<'S'
header fake.test d1.test
expect features
send <foo:bar/>
expect bad-namespace-prefix
expect CLOSED
S
	hcase bad_version <<'S'
send <?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='d1.test' version='x.y'>
expect unsupported-version
expect CLOSED
S
	hcase unsupported_encoding <<'S'
send <?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='d1.test' version='1.0'>
expect unsupported-encoding
expect CLOSED
S
	hcase text_at_stream_level <<'S'
header fake.test d1.test
expect features
send hello there
expect invalid-xml
expect CLOSED
S
	hcase result_without_from <<'S'
header fake.test d1.test
expect features
send <db:result to='d1.test'>abcd</db:result>
expect improper-addressing
expect CLOSED
S
	hcase result_without_to <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test'>abcd</db:result>
expect improper-addressing
expect CLOSED
S
	hcase result_bad_domain_syntax <<'S'
header fake.test d1.test
expect features
send <db:result from='a@b/c' to='d1.test'>abcd</db:result>
expect improper-addressing
S
	hcase result_to_unhosted_is_dialback_error <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='other.test'>abcd</db:result>
expect type="error".*item-not-found
send <db:verify from='fake.test' to='d1.test' id='still-open'>00</db:verify>
expect type="invalid"
S
	hcase result_with_type_ignored <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test' type='valid'/>
expect-not db:result 1
send <message from='a@fake.test' to='d1.test'><body>x</body></message>
expect not-authorized
S
	hcase result_empty_key <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>  </db:result>
expect type="error".*not-acceptable
S
	n="$(printf 'a%.0s' $(seq 1 2000))"
	printf 'header fake.test d1.test\nexpect features\nsend <db:result from=\x27fake.test\x27 to=\x27d1.test\x27>%s</db:result>\nexpect type="error".*not-acceptable\n' "$n" |
	    hcase result_huge_key
	hcase verify_without_id <<'S'
header fake.test d1.test
expect features
send <db:verify from='fake.test' to='d1.test'>abcd</db:verify>
expect improper-addressing
S
	hcase verify_to_unhosted <<'S'
header fake.test d1.test
expect features
send <db:verify from='fake.test' to='other.test' id='x'>abcd</db:verify>
expect type="error".*item-not-found
S
	hcase verify_wrong_key_invalid <<'S'
header fake.test d1.test
expect features
send <db:verify from='fake.test' to='d1.test' id='auth1'>0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</db:verify>
expect type="invalid"
S
	hcase verify_flood <<'S'
header fake.test d1.test
expect features
sendrepeat 500 <db:verify from='fake.test' to='d1.test' id='flood'>00</db:verify>
send <db:verify from='fake.test' to='d1.test' id='last'>00</db:verify>
expect id="last"
S
	# 17 db:result for domains whose authority (silent.test's address)
	# never answers: the 17th gets resource-constraint.
	ip netns exec "$NS" /usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.31", 5269)); s.listen(64)
conns = []
t = time.time()
while time.time() - t < 30:
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except socket.timeout: pass
' &
	local silent=$!
	PIDS+=("$silent")
	sleep 0.3
	hcase too_many_pending_results <<'S'
header silent.test d1.test
expect features
send <db:result from='silent.test' to='d1.test'>k</db:result>
send <db:result from='silent1.test' to='d1.test'>k</db:result><db:result from='silent2.test' to='d1.test'>k</db:result><db:result from='silent3.test' to='d1.test'>k</db:result><db:result from='silent4.test' to='d1.test'>k</db:result><db:result from='silent5.test' to='d1.test'>k</db:result><db:result from='silent6.test' to='d1.test'>k</db:result><db:result from='silent7.test' to='d1.test'>k</db:result><db:result from='silent8.test' to='d1.test'>k</db:result><db:result from='silent9.test' to='d1.test'>k</db:result><db:result from='silent10.test' to='d1.test'>k</db:result><db:result from='silent11.test' to='d1.test'>k</db:result><db:result from='silent12.test' to='d1.test'>k</db:result><db:result from='silent13.test' to='d1.test'>k</db:result><db:result from='silent14.test' to='d1.test'>k</db:result><db:result from='silent15.test' to='d1.test'>k</db:result><db:result from='silent16.test' to='d1.test'>k</db:result>
expect type="error".*resource-constraint
S
	stop_pid "$silent"
	hcase stanza_before_validation <<'S'
header fake.test d1.test
expect features
send <iq type='get' id='1' from='a@fake.test' to='d1.test'><ping xmlns='urn:xmpp:ping'/></iq>
expect not-authorized
expect CLOSED
S
	hcase features_from_peer_before_auth <<'S'
header fake.test d1.test
expect features
send <stream:features/>
expect not-authorized
S
	hcase validated_then_missing_to <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <message from='a@fake.test'><body>x</body></message>
expect improper-addressing
S
	hcase validated_then_malformed_jid <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <message from='a@fake.test' to='a@/x'><body>x</body></message>
expect improper-addressing
S
	hcase validated_then_unknown_element <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <bogus xmlns='urn:bogus'/>
expect unsupported-stanza-type
S
	hcase validated_then_spoofed_from <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <presence from='a@p1.test' to='d1.test'/>
expect invalid-from
S
	hcase validated_then_unhosted_to <<'S'
header fake.test d1.test
expect features
send <db:result from='fake.test' to='d1.test'>abcd</db:result>
expect type="valid"
send <message from='a@fake.test' to='b@nowhere.test'><body>relay</body></message>
expect host-unknown
S
	hcase plaintext_after_starttls <<'S'
header fake.test d1.test
expect features
send <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>
expect CLOSED
S
	hcase tls_garbage_after_proceed <<'S'
header fake.test d1.test
expect features
send <stream:stream/>
expect CLOSED
S
	hcase slowloris_header <<'S'
sendslow 0.3 <?xml version='1.0'?><stream:stream xmlns='jabber:server'
expect connection-timeout|CLOSED
S
	hcase end_right_after_header <<'S'
header fake.test d1.test
expect features
send </stream:stream>
expect CLOSED
S

	# thousands of idle connections: all accepted up to the limits, and the
	# daemon keeps answering; they are closed at dialback_timeout.
	in_ns /usr/bin/python3 - <<'PY' >"$WORK/h-idle.log" 2>&1
import resource, socket, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks = []
for i in range(2000):
    try:
        s = socket.create_connection(("127.0.0.10", 5269), timeout=2)
        socks.append(s)
    except OSError as e:
        print("connect failed after", len(socks), e)
        break
print("opened", len(socks))
time.sleep(1)
PY
	if grep -q "opened 2000" "$WORK/h-idle.log" && control_ok; then
		pass hostile_two_thousand_idle_connections
	else
		fail hostile_two_thousand_idle_connections "$(cat "$WORK/h-idle.log")"
	fi

	# a peer that never reads: replies pile up until the output limit
	# disconnects it; memory must not follow the flood.
	in_ns /usr/bin/python3 - <<'PY' >"$WORK/h-noread.log" 2>&1
import socket, time
s = socket.create_connection(("127.0.0.10", 5269), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='fake.test' to='d1.test' version='1.0'>")
req = b"<db:verify from='fake.test' to='d1.test' id='" + b"x" * 200 + b"'>00</db:verify>"
sent = 0
t0 = time.time()
try:
    while time.time() - t0 < 20 and sent < 200000:
        s.sendall(req * 100)
        sent += 100
except OSError as e:
    print("disconnected after", sent, "requests:", e)
else:
    print("still connected after", sent)
PY
	if grep -q "disconnected after" "$WORK/h-noread.log" && grep -q "peer is not reading" "$WORK/d1/log" && control_ok; then
		pass hostile_peer_that_never_reads
	else
		fail hostile_peer_that_never_reads "$(cat "$WORK/h-noread.log")"
	fi

	sleep 10	# idle ones time out (dialback_timeout = 4s), then the heap is trimmed
	after="$(rss_kb "$DBD_PID_d1")"
	log "worker RSS: ${base} KiB before the attacks, ${after} KiB after"
	if [ "${DIALBACKD_SANITIZED:-0}" = 1 ]; then
		log "memory check skipped: ASan keeps freed memory in quarantine"
	elif [ "$after" -le $((base + 12288)) ]; then
		pass hostile_memory_back_to_baseline
	else
		fail hostile_memory_back_to_baseline "RSS ${base} -> ${after} KiB"
	fi
	# every refusal was counted (workers flush their counters each second)
	sleep 1.5
	if "$DBTOOL" -s "$WORK/d1/store" --json stats | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["total"]
sys.exit(0 if t.get("limits_hit", 0) > 0 and t.get("stream_errors", 0) >= 20 else 1)'; then
		pass hostile_violations_counted
	else
		fail hostile_violations_counted "$("$DBTOOL" -s "$WORK/d1/store" stats)"
	fi
	stop_pid "$DBD_PID_d1"

	# Per-address limits, refused at accept before any TLS or XML work:
	# 10 streams at once, 5 new connections per second (one worker).
	DBD_LIMITS="max_streams_per_ip = 10
max_new_per_ip = 5" dbd_start d1 d1.test $HOST off 1 || { fail hostile_limits_setup "d1 did not start"; return; }
	in_ns /usr/bin/python3 - <<'PY' >"$WORK/h-limits.log" 2>&1
import socket, time
def opened(n):
    socks, ok = [], 0
    for i in range(n):
        s = socket.create_connection(("127.0.0.10", 5269), timeout=2)
        s.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='d1.test' version='1.0'>")
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.settimeout(0.5)
        try:
            if s.recv(4096): ok += 1
        except OSError:
            pass
    return socks, ok
a, ok1 = opened(8)          # a burst of 8 at 5/s: 5 answered, 3 refused
time.sleep(3)               # bucket refills
b, ok2 = opened(8)          # 5 + 8 streams would exceed 10: some refused
print("burst answered", ok1, "then", ok2)
PY
	if grep -q "burst answered 5 then [1-5]$" "$WORK/h-limits.log" &&
	    grep -q "refused: too many new connections per second" "$WORK/d1/log" &&
	    grep -q "refused: too many streams from this address" "$WORK/d1/log"; then
		pass hostile_per_address_limits
	else
		fail hostile_per_address_limits "$(cat "$WORK/h-limits.log")"
	fi
	stop_pid "$auth"
	stop_pid "$DBD_PID_d1"
}
