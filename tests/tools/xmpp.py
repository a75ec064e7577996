#!/usr/bin/python3
"""Minimal XMPP test peers for dialbackd's integration tests (stdlib only).

  xmpp.py c2s-ping  --host H --port P --jid u@d --password pw --to DOMAIN [--disco] [--timeout S]
      Log in to a server (Prosody) over c2s with SASL PLAIN and send an
      XEP-0199 ping (or disco#info) to DOMAIN; prints RESULT/ERROR lines,
      exit 0 on an iq result.
  xmpp.py s2s-raw   --host H --port P --script FILE [--timeout S]
      Speak raw s2s XML: each script line is "send <xml>", "sendhex HEX",
      "sendrepeat N TEXT", "sendslow DELAY TEXT", "expect <regex>",
      "expect-not <regex> <seconds>", "header FROM TO", "sleep S", "close".
      Exit 0 when every expectation matched.
  xmpp.py component --host H --port P --domain D --secret S [--to JID --count N | --echo-count N]
      An XEP-0114 component: sends N numbered messages to each --to and
      checks the replies arrive in order, or echoes messages back.
  xmpp.py c2s-message --host H --port P --jid u@d --password pw --to JID
      Log in, send one message, wait for a message back from JID.
  xmpp.py authority --host H --port P [--verify-host H2] [--hold-file F] [--answer valid|invalid]
      A test server for whatever domains DNS routes to it: answers every
      db:verify with type='valid'; checks a db:result by asking H2's
      authoritative server on a new connection (VERIFIED lines); prints
      every element it receives (RECV lines).
"""
import argparse
import base64
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET

NS_STREAMS = "http://etherx.jabber.org/streams"


class Stream:
    """A socket plus a pull parser that yields depth-1 elements."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.raw = b""
        self.reset()

    def reset(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header = None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def events(self, deadline):
        while True:
            for ev, el in self.parser.read_events():
                if ev == "start":
                    self.depth += 1
                    if self.depth == 1:
                        self.header = el
                        yield ("header", el)
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        yield ("element", el)
                    elif self.depth == 0:
                        yield ("end", el)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                yield ("closed", None)
                return
            self.raw += chunk
            self.parser.feed(chunk)

    def next_element(self, timeout):
        deadline = time.monotonic() + timeout
        for kind, el in self.events(deadline):
            if kind in ("element", "closed", "end"):
                return kind, el
        return "closed", None


def c2s_login(a):
    """Log in with SASL PLAIN and bind; returns the stream, or None."""
    s = Stream(a.host, a.port, a.timeout)
    user, domain = a.jid.split("@", 1)
    hdr = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % domain)
    s.send(hdr)
    s.next_element(a.timeout)  # features
    auth = base64.b64encode(b"\0" + user.encode() + b"\0" + a.password.encode()).decode()
    s.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % auth)
    kind, el = s.next_element(a.timeout)
    if el is None or not el.tag.endswith("success"):
        print("FAIL login", file=sys.stderr)
        return None
    s.reset()
    s.send(hdr)
    s.next_element(a.timeout)  # features
    s.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    s.next_element(a.timeout)
    return s


def c2s_ping(a):
    s = c2s_login(a)
    if s is None:
        return 1
    s.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
    s.next_element(a.timeout)
    payload = ("<query xmlns='http://jabber.org/protocol/disco#info'/>" if a.disco
               else "<ping xmlns='urn:xmpp:ping'/>")
    t0 = time.monotonic()
    s.send("<iq type='get' id='p1' to='%s'>%s</iq>" % (a.to, payload))
    deadline = t0 + a.timeout
    while time.monotonic() < deadline:
        kind, el = s.next_element(max(0.1, deadline - time.monotonic()))
        if el is None:
            break
        if el.tag.endswith("iq") and el.get("id") == "p1":
            ms = (time.monotonic() - t0) * 1000
            if el.get("type") == "result":
                feats = [f.get("var") for f in el.iter("{http://jabber.org/protocol/disco#info}feature")]
                print("RESULT from=%s ms=%.0f features=%s" % (el.get("from"), ms, ",".join(feats)))
                s.send("</stream:stream>")
                return 0
            cond = [c.tag.split("}")[1] for e in el for c in e if "}" in c.tag]
            print("ERROR from=%s %s" % (el.get("from"), " ".join(cond)))
            return 1
    print("FAIL no answer")
    return 1


def s2s_raw(a):
    s = Stream(a.host, a.port, a.timeout)
    buf = []
    it = None
    deadline = time.monotonic() + a.timeout

    def pump(until):
        # collect serialized depth-1 elements and the header into buf
        nonlocal it
        if it is None:
            it = s.events(until)
        try:
            kind, el = next(it)
        except StopIteration:
            return False
        if kind == "header":
            buf.append("HEADER " + " ".join("%s=%s" % kv for kv in sorted(el.attrib.items())))
        elif kind == "element":
            buf.append(ET.tostring(el, encoding="unicode"))
        elif kind in ("end", "closed"):
            buf.append("CLOSED")
        return True

    for lineno, line in enumerate(open(a.script), 1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        verb, _, arg = line.partition(" ")
        if verb == "send":
            s.send(arg)
        elif verb == "header":
            frm, to = arg.split()
            s.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                   "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                   "from='%s' to='%s' version='1.0'>" % (frm, to))
        elif verb == "sendhex":
            s.send(bytes.fromhex(arg))
        elif verb == "sendrepeat":
            count, _, text = arg.partition(" ")
            chunk = text.encode() * 4096
            left = int(count)
            try:
                while left > 0:
                    n = min(left, 4096)
                    s.send(chunk[:n * len(text.encode())])
                    left -= n
            except OSError:
                buf.append("CLOSED")
        elif verb == "sendslow":
            delay, _, text = arg.partition(" ")
            try:
                for ch in text.encode():
                    s.send(bytes([ch]))
                    time.sleep(float(delay))
            except OSError:
                buf.append("CLOSED")
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "close":
            s.sock.close()
        elif verb in ("expect", "expect-not"):
            if verb == "expect-not":
                pat, _, secs = arg.rpartition(" ")
                until = time.monotonic() + float(secs)
            else:
                pat, until = arg, deadline
            rx = re.compile(pat)
            found = None
            while found is None:
                for i, item in enumerate(buf):
                    if rx.search(item):
                        found = i
                        break
                if found is not None:
                    break
                try:
                    if not pump(until):
                        break
                except (TimeoutError, socket.timeout):
                    break
                except OSError:
                    buf.append("CLOSED")
            if verb == "expect" and found is None:
                print("FAIL line %d: expected /%s/; got:\n  %s" % (lineno, pat, "\n  ".join(buf)))
                return 1
            if verb == "expect-not" and found is not None:
                print("FAIL line %d: did not expect /%s/; got: %s" % (lineno, pat, buf[found]))
                return 1
            if found is not None:
                print("ok   %s" % buf[found][:160])
                del buf[:found + 1]
            it = None
        else:
            print("bad script line %d: %s" % (lineno, line))
            return 2
    return 0


def verify_with(host, port, sender, target, stream_id, key, timeout):
    """Ask target's authoritative server (host:port) about a key on a fresh
    connection, as a receiving server does. Returns 'valid', 'invalid', or
    an error string."""
    try:
        v = Stream(host, port, timeout)
        v.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
               "from='%s' to='%s' version='1.0'>" % (sender, target))
        v.send("<db:verify from='%s' to='%s' id='%s'>%s</db:verify>" % (sender, target, stream_id, key))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kind, el = v.next_element(deadline - time.monotonic())
            if el is None:
                return "closed"
            if el.tag == "{jabber:server:dialback}verify":
                v.send("</stream:stream>")
                return el.get("type") or "untyped"
        return "timeout"
    except (OSError, TimeoutError, ET.ParseError) as e:
        return "error " + str(e)


def authority(a):
    """A test server for any domain routed to it. As authoritative server it
    answers every db:verify with type='valid' (so a raw peer can validate
    any domain it claims). As receiving server it checks a db:result by
    asking --verify-host with db:verify on a new connection (or, without
    --verify-host, accepts it). Prints every element it receives."""
    import itertools
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.stall_first:
        # a small window, so that the sender's own buffers fill soon
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind((a.host, a.port))
    srv.listen(64)
    srv.settimeout(1)
    end = time.monotonic() + a.timeout
    lock = threading.Lock()
    ids = itertools.count(1)
    stalled = []

    def out(line):
        with lock:
            print(line, flush=True)

    def serve(conn):
        s = Stream.__new__(Stream)
        s.sock = conn
        s.raw = b""
        s.reset()
        sid = ""
        try:
            for kind, el in s.events(end):
                if kind == "header":
                    sid = "auth%d" % next(ids)
                    s.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                           "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                           "id='%s' from='%s' to='%s' version='1.0'><stream:features/>"
                           % (sid, el.get("to", ""), el.get("from", "")))
                elif kind == "element":
                    text = ET.tostring(el, encoding="unicode")
                    out("RECV " + text)
                    tag = el.tag.split("}")[-1]
                    if not el.tag.startswith("{jabber:server:dialback}") or el.get("type") is not None:
                        continue
                    frm, to = el.get("from"), el.get("to")
                    if tag == "verify":
                        s.send("<db:verify from='%s' to='%s' id='%s' type='valid'/>" % (to, frm, el.get("id")))
                    elif a.hold_file and tag == "result":
                        out("HOLD %s -> %s" % (frm, to))
                        while not __import__("os").path.exists(a.hold_file) and time.monotonic() < end:
                            time.sleep(0.1)
                        s.send("<db:result from='%s' to='%s' type='%s'/>" % (to, frm, a.answer))
                    elif a.answer != "valid" and tag == "result":
                        s.send("<db:result from='%s' to='%s' type='%s'/>" % (to, frm, a.answer))
                    elif a.verify_host:
                        verdict = verify_with(a.verify_host, 5269, to, frm, sid, (el.text or "").strip(), 10)
                        out("VERIFIED %s -> %s: %s" % (frm, to, verdict))
                        s.send("<db:result from='%s' to='%s' type='%s'/>"
                               % (to, frm, "valid" if verdict == "valid" else "invalid"))
                    else:
                        s.send("<db:result from='%s' to='%s' type='valid'/>" % (to, frm))
                        with lock:
                            stall = a.stall_first and not stalled
                            stalled.append(1)
                        if stall:
                            # --stall-first: the first validated stream is
                            # never read again (the sender must give up on it)
                            out("STALLED %s -> %s" % (frm, to))
                            while time.monotonic() < end:
                                time.sleep(0.2)
                            break
                elif kind in ("end", "closed"):
                    break
        except (OSError, TimeoutError, ET.ParseError):
            pass
        conn.close()

    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    return 0


def component(a):
    """XEP-0114 component. Modes: echo (reply to each message), or send
    --count N messages to each --to JID and wait for the replies, checking
    their order. Prints EVENT lines; exit 0 when the mode's goal is met."""
    import hashlib
    s = Stream(a.host, a.port, a.timeout)
    s.send("<stream:stream xmlns='jabber:component:accept' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>" % a.domain)
    deadline = time.monotonic() + a.timeout
    sid = None
    for kind, el in s.events(deadline):
        if kind == "header":
            sid = el.get("id")
            break
        if kind in ("closed", "end", "element"):
            print("FAIL no header: %s" % (ET.tostring(el, encoding="unicode") if el is not None else kind))
            return 1
    digest = hashlib.sha1((sid + a.secret).encode()).hexdigest()
    s.send("<handshake>%s</handshake>" % digest)
    kind, el = s.next_element(a.timeout)
    if el is None or not el.tag.endswith("handshake"):
        text = ET.tostring(el, encoding="unicode") if el is not None else kind
        print("REFUSED %s" % text, flush=True)
        return 1
    print("CONNECTED %s" % a.domain, flush=True)
    me = "%s@%s" % (a.user, a.domain)
    targets = a.to or []
    want = {t: [str(i) for i in range(a.count)] for t in targets}
    got = {t: [] for t in targets}
    for raw in a.raw or []:
        s.send(raw)
    for i in range(a.count):
        for t in targets:
            s.send("<message from='%s' to='%s' id='m%d' type='chat'><body>%d</body></message>" % (me, t, i, i))
        if a.interval:
            time.sleep(a.interval)
    echoed = 0
    errors = 0
    end = time.monotonic() + a.timeout
    while time.monotonic() < end:
        if targets and all(len(got[t]) == a.count for t in targets):
            break
        if a.echo_count and echoed >= a.echo_count:
            break
        try:
            kind, el = s.next_element(max(0.1, end - time.monotonic()))
        except (TimeoutError, socket.timeout):
            break
        if el is None:
            print("CLOSED", flush=True)
            break
        text = ET.tostring(el, encoding="unicode")
        tag = el.tag.split("}")[-1]
        if el.get("type") == "error":
            errors += 1
            conds = [c.tag.split("}")[1] for e in el for c in e if "}" in c.tag and e.tag.endswith("error")]
            print("ERROR %s %s %s" % (el.get("from"), el.get("id"), " ".join(conds)), flush=True)
            continue
        if tag == "error":
            print("STREAM-ERROR %s" % text, flush=True)
            break
        if tag != "message":
            print("RECV %s" % text, flush=True)
            continue
        body = el.find("{jabber:component:accept}body")
        body = body.text if body is not None else ""
        frm = el.get("from", "")
        bare = frm.split("/")[0]
        if bare in got:
            got[bare].append(body)
        elif targets == [] and a.sink:
            echoed += 1
            continue
        elif targets == []:
            # echo mode
            s.send("<message from='%s' to='%s' id='%s' type='chat'><body>%s</body></message>"
                   % (el.get("to"), frm, el.get("id", ""), body))
            echoed += 1
        print("MSG %s %s" % (frm, body), flush=True)
    rc = 0
    for t in targets:
        if got[t] != want[t]:
            print("FAIL %s: got %d of %d, in order: %s" % (t, len(got[t]), a.count, got[t] == want[t][:len(got[t])]))
            rc = 1
        else:
            print("OK %s %d in order" % (t, a.count))
    if a.sink:
        print("COUNTED %d" % echoed, flush=True)
    print("ERRORS %d" % errors, flush=True)
    s.send("</stream:stream>")
    return rc


def c2s_message(a):
    """Log in, send one message to --to, wait for a message back from it."""
    s = c2s_login(a)
    if s is None:
        print("FAIL login")
        return 1
    s.send("<presence/>")
    t0 = time.monotonic()
    s.send("<message type='chat' id='c1' to='%s'><body>%s</body></message>" % (a.to, a.body))
    end = t0 + a.timeout
    while time.monotonic() < end:
        kind, el = s.next_element(max(0.1, end - time.monotonic()))
        if el is None:
            break
        if el.tag.endswith("message") and el.get("from", "").split("/")[0] == a.to:
            if el.get("type") == "error":
                print("ERROR %s" % ET.tostring(el, encoding="unicode"))
                return 1
            body = el.find("{jabber:client}body")
            print("REPLY from=%s ms=%.0f body=%s" % (el.get("from"), (time.monotonic() - t0) * 1000,
                                                    body.text if body is not None else ""))
            return 0
    print("FAIL no reply")
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["c2s-ping", "c2s-message", "s2s-raw", "authority", "component"])
    ap.add_argument("--secret")
    ap.add_argument("--user", default="svc")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--echo-count", type=int, default=0)
    ap.add_argument("--sink", action="store_true", help="count messages, do not echo")
    ap.add_argument("--raw", action="append")
    ap.add_argument("--body", default="hello")
    ap.add_argument("--hold-file")
    ap.add_argument("--interval", type=float, default=0)
    ap.add_argument("--answer", default="valid")
    ap.add_argument("--domain")
    ap.add_argument("--verify-host")
    ap.add_argument("--stall-first", action="store_true",
                    help="authority: stop reading the first validated stream")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--jid")
    ap.add_argument("--password")
    ap.add_argument("--to", action="append")
    ap.add_argument("--disco", action="store_true")
    ap.add_argument("--script")
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    try:
        if a.mode == "authority":
            return authority(a)
        if a.mode == "component":
            return component(a)
        if a.mode in ("c2s-ping", "c2s-message"):
            a.to = a.to[0] if a.to else None
            return c2s_ping(a) if a.mode == "c2s-ping" else c2s_message(a)
        return s2s_raw(a)
    except (OSError, TimeoutError, ET.ParseError) as e:
        print("FAIL %s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
