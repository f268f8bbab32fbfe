#!/usr/bin/env python3
"""weft-gateway end to end with two weft-settings daemons on Unix sockets.

  gateway_test.py --gateway PATH --settings PATH

Asserts: round robin spreads 1,000 idempotent calls within 5 % of even (the gateway's
/metrics per endpoint); a Put through the gateway reaches an SSE client of the bridged
"settings" topic; with one daemon killed (SIGKILL) mid-traffic every idempotent Get still
succeeds, and non-idempotent Puts either succeed or fail with 502/503 and a clear body (never
retried elsewhere: the gateway's attempts on the daemons equal the requests); the killed
daemon is ejected, then readmitted when it is restarted on the same socket and gets calls
again; with both down, 503 + Retry-After. Bounded: every wait has a limit; all processes are killed at the end.
"""
import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def fail(msg):
    print("gateway_test: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def pb_string(field, s):
    b = s.encode()
    return bytes([(field << 3) | 2, len(b)]) + b


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.p = None

    def start(self):
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, sig)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


def wait_for(what, cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--settings", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="weft-gw-")
    log = open(os.path.join(tmp, "log"), "w+")
    socks = [os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")]
    daemons = [Proc([args.settings, "--port", "0", "--unix", s], log) for s in socks]
    port = free_port()
    conf = os.path.join(tmp, "gateway.conf")
    with open(conf, "w") as f:
        f.write("# two settings daemons behind one HTTP face\n"
                "listen 127.0.0.1:%d\n"
                "upstream settings round_robin unix:%s unix:%s\n"
                "rpc POST /settings/get settings weft.examples.Settings/Get idempotent "
                "timeout_ms=2000\n"
                "rpc POST /settings/put settings weft.examples.Settings/Put timeout_ms=2000\n"
                "events /events/ settings settings\n" % (port, socks[0], socks[1]))
    gw = Proc([args.gateway, "--config", conf], log)
    procs = daemons + [gw]
    try:
        for d in daemons:
            d.start()
        for s in socks:
            wait_for("daemon socket " + s, lambda s=s: os.path.exists(s))
        gw.start()

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for("the gateway", up)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def post(path, body, headers=None):
            conn.request("POST", path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), r

        def metrics():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
            ok = [int(v) for v in re.findall(r'result="ok"\} (\d+)', text)]
            failed = [int(v) for v in re.findall(r'result="failed"\} (\d+)', text)]
            admitted = [int(v) for v in re.findall(r'weft_gateway_upstream_admitted\{[^}]*\} (\d)',
                                                   text)]
            return ok, failed, admitted

        # 1. Round robin: 1,000 Gets, counts per endpoint within 5 % of even.
        for i in range(1000):
            st, body, _ = post("/settings/get", pb_string(1, "k%d" % i))
            if st != 200:
                fail("get %d: %d %r" % (i, st, body))
        ok, _, admitted = metrics()
        if len(ok) != 2 or sum(ok) != 1000 or any(abs(n - 500) > 25 for n in ok):
            fail("round robin spread: %r (want 500 +- 25 each)" % ok)
        print("gateway_test: 1,000 gets spread %r" % ok)

        # 2. A Put is published by the daemon on "settings", bridged to SSE.
        sse = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        sse.request("GET", "/events/settings")
        sr = sse.getresponse()
        if sr.status != 200 or "text/event-stream" not in sr.getheader("Content-Type", ""):
            fail("events: %d %s" % (sr.status, sr.getheader("Content-Type")))
        got = []
        reader = threading.Thread(target=lambda: got.append(sr.fp.read1(4096)), daemon=True)
        reader.start()
        time.sleep(0.3)  # the stream is subscribed on the gateway (worker 0 bridges)
        # The event comes from the daemon that served the Put, but the gateway subscribes
        # on the first endpoint only: Put until that one serves it (round robin: 2 tries).
        for n in range(2):
            st, body, _ = post("/settings/put", pb_string(1, "wifi.ssid") + pb_string(2, "lab%d" % n))
            if st != 200:
                fail("put: %d %r" % (st, body))
        reader.join(5)
        if not got or b"wifi.ssid" not in got[0]:
            fail("no SSE event for the Put: %r" % got)
        sse.close()
        print("gateway_test: a Put reached the SSE client")

        # 3. Kill daemon A mid-traffic.
        ok0, failed0, _ = metrics()
        gets_ok = puts_ok = puts_failed = 0
        bad = []
        requests = 0
        for i in range(400):
            if i == 100:
                daemons[0].kill()
            st, body, _ = post("/settings/get", pb_string(1, "k%d" % i))
            requests += 1
            if st == 200:
                gets_ok += 1
            else:
                bad.append(("get", i, st, body))
            st, body, _ = post("/settings/put", pb_string(1, "p%d" % (i % 50)) + pb_string(2, "v%d" % i))
            requests += 1
            if st == 200:
                puts_ok += 1
            elif st in (502, 503) and b"upstream settings" in body:
                puts_failed += 1
                if puts_failed <= 3:
                    print("gateway_test: put %d after the kill: %d %s" % (i, st, body.decode().strip()))
            else:
                bad.append(("put", i, st, body))
        if bad:
            fail("after the kill: %r" % bad[:5])
        if gets_ok != 400:
            fail("idempotent gets: %d of 400 succeeded" % gets_ok)
        if puts_failed > 5:
            fail("%d puts failed: only those in flight when the daemon died may" % puts_failed)
        ok1, failed1, admitted = metrics()
        attempts = sum(ok1) + sum(failed1) - sum(ok0) - sum(failed0)
        # Gets may be retried (idempotent); Puts never: attempts <= requests + retried gets,
        # and the retried gets are the failures on the dead endpoint for gets.
        if attempts > requests + (sum(failed1) - sum(failed0)):
            fail("attempts %d for %d requests: something was retried that should not be"
                 % (attempts, requests))
        if admitted[0] != 0:
            fail("the killed endpoint is still admitted: %r" % admitted)
        print("gateway_test: kill: 400/400 gets ok, puts ok %d, failed %d (502/503), A ejected"
              % (puts_ok, puts_failed))

        # 4. Restart A: readmitted, and it gets calls again.
        daemons[0].start()
        wait_for("A readmitted", lambda: metrics()[2][0] == 1, 15)
        before = metrics()[0][0]
        # Readmitted, A serves once its pool has a ready connection again (the pool's own
        # reconnect backoff, up to 2 s): gets meanwhile go to B. Bounded: 10 s.
        end = time.time() + 10
        i = 0
        while metrics()[0][0] <= before:
            if time.time() > end:
                fail("the readmitted endpoint got no calls within 10 s")
            st, body, _ = post("/settings/get", pb_string(1, "r%d" % i))
            i += 1
            if st != 200:
                fail("get after readmission: %d %r" % (st, body))
            time.sleep(0.02)
        print("gateway_test: A readmitted and serving")

        # 5. Both down: 503 with Retry-After and a clear body.
        for d in daemons:
            d.kill()
        deadline = time.time() + 15
        while True:
            st, body, r = post("/settings/get", pb_string(1, "x"))
            if st == 503 or time.time() > deadline:
                break
        if st != 503 or r.getheader("Retry-After") is None or b"no endpoint" not in body:
            fail("all down: %d %r" % (st, body))
        print("gateway_test: all down -> 503 %r" % body.decode().strip())
        conn.close()
    finally:
        for p in procs:
            p.kill()
    # SIGTERM for the gateway would be the graceful path; it was killed above.
    print("gateway_test: ok")


if __name__ == "__main__":
    main()
