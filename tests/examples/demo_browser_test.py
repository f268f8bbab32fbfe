#!/usr/bin/env python3
"""The demo dashboard in headless Chromium, against weft-demo or its mock (python3 stdlib only).

Starts the server on a free 127.0.0.1 port, starts headless Chromium and drives it over the
DevTools protocol through --remote-debugging-pipe (NUL-delimited JSON on fds 3 and 4: no
WebSocket), and checks what a person would look at:

  1. the assets are served with their content types; the page loads without JS errors;
  2. metrics stream in: weftDemo.metricsCount grows, #rps and #uptime change over ~3 s (the test
     sends some load), the backend badge reads io_uring or epoll, #allocs reads 0
     (--allow-allocs relaxes that);
  3. a 2000 ms job started from the jobs form reaches done/100 % in all three views (SSE, short
     polling, long polling), short polling needing several GETs and long polling few;
  4. an event published to topic demo (by --cli-cmd, else HTTP POST /publish/demo) and one
     published from the page's own form appear in #event-log with an id;
  5. (mock only: POST /mock/drop) the streams are cut for 2.5 s; an event published meanwhile is
     replayed through Last-Event-ID when the page reconnects, with no weft.gap;
  6. the server is killed and started again on the same port: the pill goes to reconnecting,
     then back to live with weftDemo.resumes >= 1 (and the demo topic's resume is logged), and an
     event published after the restart shows up.

A screenshot (PNG) is saved to --screenshot, also when a step fails. Every wait is bounded
(--timeout for the whole run); the server and Chromium are killed at the end in any case.
Exit status: 0 passed, 1 failed, 77 no Chromium found (ctest's SKIP_RETURN_CODE).

  demo_browser_test.py                                  # against tests/examples/demo_mock.py
  demo_browser_test.py --server-cmd "build/release/examples/demo/weft-demo --port {port} --msg-port {msg_port}" \\
      --cli-cmd "build/release/examples/rpc/weft-cli --addr 127.0.0.1:{msg_port} publish demo {text}"

{port} is the HTTP port chosen by the test, {msg_port} a second free port (for the binary
protocol's listener, if weft-demo takes a flag for it; the ctest entry passes --port alone), {text} the event data (one argument); further {name} placeholders can be
given values with --var name=value.
"""

import argparse
import base64
import fcntl
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


class Failure(Exception):
    pass


def log(msg):
    print("demo_browser_test: " + msg, flush=True)


# ---- processes ------------------------------------------------------------------------------------
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc, grace=3.0):
    """SIGTERM to the process group the test started, SIGKILL after grace seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


class Server:
    def __init__(self, cmd_template, variables, workdir):
        self.template = cmd_template
        self.vars = variables
        self.proc = None
        self.log_path = os.path.join(workdir, "server.log")
        self.starts = 0

    def argv(self):
        return [tok.format(**self.vars) for tok in shlex.split(self.template)]

    def start(self, timeout=15.0):
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            out = open(self.log_path, "ab")
            out.write(("\n--- start %d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            out.close()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # exited (the port may still be held by the last run): try again
                try:
                    status, _, _ = http_request(self.vars["port"], "GET", "/", timeout=1.0)
                    if status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if time.monotonic() >= deadline:
                exited = self.proc.poll()
                raise Failure("server did not answer GET / with 200 within %.0f s%s" % (
                    timeout, "" if exited is None else " (it exited with status %d)" % exited))
            time.sleep(0.3)

    def stop(self):
        kill_group(self.proc)

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


# ---- DevTools protocol over --remote-debugging-pipe ---------------------------------------------
class Chromium:
    def __init__(self, binary, workdir, width, height):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self.log_path = os.path.join(workdir, "chromium.log")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def child_fds():  # fd 3: commands to Chromium, fd 4: its answers (dup2 clears CLOEXEC)
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.setsid()

        argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps", "--no-first-run",
                "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
                "--password-store=basic", "--use-mock-keychain", "--remote-debugging-pipe",
                "--window-size=%d,%d" % (width, height), "--user-data-dir=" + self.profile,
                "about:blank"]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         close_fds=False, preexec_fn=child_fds)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.answers = {}
        self.closed = False
        self.exceptions = []   # uncaught page exceptions
        self.console = []      # console messages, for failure reports
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = os.read(self.from_child, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    self._dispatch(json.loads(raw))
        except (OSError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _dispatch(self, msg):
        if "id" in msg:
            with self.cond:
                self.answers[msg["id"]] = msg
                self.cond.notify_all()
            return
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            text = (d.get("exception") or {}).get("description") or d.get("text", "?")
            self.exceptions.append("%s (%s:%s)" % (text, d.get("url", ""), d.get("lineNumber", "?")))
        elif method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append("console.%s: %s" % (params.get("type"), args))
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            self.console.append("%s %s: %s %s" % (e.get("source"), e.get("level"), e.get("text"), e.get("url", "")))

    def send(self, method, params=None, session=None, timeout=15.0):
        with self.cond:
            self.next_id += 1
            msg_id = self.next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self.to_child, data):]
        except OSError as e:
            raise Failure("Chromium's pipe is closed (%s):\n%s" % (e, self.tail()))
        deadline = time.monotonic() + timeout
        with self.cond:
            while msg_id not in self.answers:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise Failure("no answer from Chromium to %s%s:\n%s" % (
                        method, " (it exited)" if self.closed else "", self.tail()))
                self.cond.wait(min(left, 0.5))
            answer = self.answers.pop(msg_id)
        if "error" in answer:
            raise Failure("%s failed: %s" % (method, answer["error"]))
        return answer.get("result", {})

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self):
        try:
            if self.proc.poll() is None and not self.closed:
                self.send("Browser.close", timeout=3)
                self.proc.wait(3)
        except (Failure, subprocess.TimeoutExpired):
            pass
        kill_group(self.proc, grace=2)
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser, width, height):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None, timeout=15.0):
        return self.b.send(method, params, session=self.session, timeout=timeout)

    def eval(self, expression, timeout=15.0):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise Failure("JS error in %r: %s" % (expression[:120], (d.get("exception") or {}).get("description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait_for(self, what, expression, timeout, interval=0.2):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(interval)
        raise Failure("timed out after %.0f s waiting for %s (%s -> %r)" % (timeout, what, expression, value))

    def screenshot(self, path):
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        width = int(size.get("width", 1360))
        height = min(int(size.get("height", 1000)) + 1, 4000)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.3)  # a layout and a chart redraw at the new size
        data = self.send("Page.captureScreenshot", {"format": "png"}, timeout=20)["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


# ---- the test -------------------------------------------------------------------------------------
def js_str(s):
    return json.dumps(s)


def publish(args, server, text):
    if args.cli_cmd:
        variables = dict(server.vars, text=text)
        argv = [tok.format(**variables) for tok in shlex.split(args.cli_cmd)]
        r = subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        if r.returncode != 0:
            raise Failure("publish command %s exited %d: %s" % (argv, r.returncode, (r.stdout + r.stderr).decode(errors="replace")))
    else:
        status, _, body = http_request(server.vars["port"], "POST", "/publish/demo", text.encode(),
                                       {"Content-Type": "text/plain; charset=utf-8"})
        if status not in (200, 202, 204):
            raise Failure("POST /publish/demo answered %d: %r" % (status, body[:200]))


def load(port, seconds):
    """Some requests so that requests/s moves on a real, otherwise idle server."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            http_request(port, "GET", "/plaintext", timeout=1.0)
        except OSError:
            pass
        time.sleep(0.01 + 0.03 * ((time.monotonic() * 0.7) % 1.0))


def wait_event(page, text, timeout):
    page.wait_for("event %r in #event-log" % text,
                  "[...document.querySelectorAll('#event-log li[data-kind=event] .data')].some(e => e.textContent === %s)" % js_str(text),
                  timeout)
    ev = page.eval("weftDemo.events.find(e => e.data === %s) || null" % js_str(text))
    if not ev or not re.fullmatch(r"[0-9a-f]{8}-\d+", ev.get("id") or ""):
        raise Failure("event %r arrived without an id of the form <8 hex>-<seq>: %r" % (text, ev))
    return ev


def run(args, workdir):
    port = args.port or free_port()
    variables = {"port": port, "msg_port": free_port()}
    for kv in args.var:
        k, _, v = kv.partition("=")
        variables[k] = v
    server = Server(args.server_cmd, variables, workdir)
    browser = page = None
    step = "starting the server"
    try:
        server.start()
        log("server up on 127.0.0.1:%d: %s" % (port, " ".join(server.argv())))

        step = "checking the assets"
        for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css"),
                            ("/favicon.svg", "image/svg+xml")):
            status, headers, body = http_request(port, "GET", path)
            if status != 200 or not headers.get("content-type", "").startswith(ctype) or not body:
                raise Failure("GET %s: %d %r (%d bytes), expected 200 %s" % (path, status, headers.get("content-type"), len(body), ctype))
            local = os.path.join(args.assets, "index.html" if path == "/" else path[1:])
            if os.path.isfile(local) and open(local, "rb").read() != body:
                raise Failure("GET %s differs from %s (stale build?)" % (path, local))

        step = "starting Chromium"
        browser = Chromium(args.chromium, workdir, args.width, args.height)
        page = Page(browser, args.width, args.height)
        page.send("Page.navigate", {"url": "http://127.0.0.1:%d/" % port})
        page.wait_for("the page to load", "document.readyState === 'complete' && !!window.weftDemo", 15)

        step = "metrics"
        page.wait_for("the first metrics event", "weftDemo.metricsCount >= 1", 10)
        page.wait_for("conn-state live", "document.querySelector('#conn-state').dataset.state === 'live'", 10)
        c0 = page.eval("weftDemo.metricsCount")
        t0 = page.eval("weftDemo.lastMetricsT")
        up0 = page.eval("document.querySelector('#uptime').textContent")
        loader = threading.Thread(target=load, args=(port, 3.5), daemon=True)
        loader.start()
        seen = set()
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            seen.add(page.eval("document.querySelector('#rps').textContent"))
            time.sleep(0.25)
        loader.join()
        c1 = page.eval("weftDemo.metricsCount")
        if c1 < c0 + 2:
            raise Failure("metricsCount went from %d to %d in 3.5 s: expected one event a second" % (c0, c1))
        if not page.eval("weftDemo.lastMetricsT > %s" % json.dumps(t0)):
            raise Failure("lastMetricsT did not advance from %r" % t0)
        if len(seen - {"–"}) < 2:
            raise Failure("#rps did not update over 3.5 s under load: saw %r" % sorted(seen))
        if page.eval("document.querySelector('#uptime').textContent") == up0:
            raise Failure("#uptime did not change")
        backend = page.eval("document.querySelector('#backend').dataset.backend")
        if backend not in ("io_uring", "epoll"):
            raise Failure("#backend[data-backend] is %r, expected io_uring or epoll" % backend)
        # The server counts allocations from the end of its warm-up (a few seconds after start).
        page.wait_for("the allocation count's warm-up",
                      "document.querySelector('#allocs').textContent !== 'warming up'", 15)
        allocs = page.eval("document.querySelector('#allocs').textContent")
        if not args.allow_allocs and allocs != "0":
            raise Failure("#allocs (allocations after warm-up) reads %r, expected 0" % allocs)
        workers = page.eval("document.querySelectorAll('#workers .worker').length")
        if workers < 1:
            raise Failure("no worker bars in #workers")
        log("metrics ok: %d events in 3.5 s, #rps showed %s, backend %s, allocs %s, %d worker(s)"
            % (c1 - c0, sorted(seen), backend, allocs, workers))

        step = "jobs"
        before = page.eval("Object.keys(weftDemo.jobs).length")
        page.eval("document.querySelector('#job-duration').value = '2000';"
                  "document.querySelector('#job-submit').click(); true")
        job_id = page.wait_for("the job to be created", "Object.keys(weftDemo.jobs).length > %d && Object.keys(weftDemo.jobs).pop()" % before, 10)
        started = time.monotonic()
        sel = "#jobs .job[data-id=%s]" % js_str(job_id)
        page.wait_for("job %s done in all three views" % job_id,
                      "(() => { const j = document.querySelector(%s); if (!j || j.dataset.status !== 'done') return false;"
                      " return ['sse','poll','longpoll'].every(v => { const e = j.querySelector(`.view[data-view=${v}]`);"
                      " return e && e.dataset.status === 'done' && e.dataset.progress === '100'; }); })()" % js_str(sel),
                      20)
        took = time.monotonic() - started
        job = page.eval("weftDemo.jobs[%s]" % js_str(job_id))
        if job["poll"]["requests"] < 3:
            raise Failure("short polling of a 2000 ms job took %d GETs, expected >= 3 (one every 500 ms)" % job["poll"]["requests"])
        if job["longpoll"]["requests"] > 3:
            raise Failure("long polling of a 2000 ms job took %d GETs, expected <= 3 (?wait=10)" % job["longpoll"]["requests"])
        if job["sse"]["requests"] < 2:
            raise Failure("the job's SSE stream gave %d progress events, expected >= 2" % job["sse"]["requests"])
        log("job %s ok: done in %.1f s; SSE %d events, short poll %d GETs, long poll %d GETs"
            % (job_id, took, job["sse"]["requests"], job["poll"]["requests"], job["longpoll"]["requests"]))

        step = "publishing"
        tag = "%08x" % (int.from_bytes(os.urandom(4), "big"))
        text = "browser test %s: hello" % tag
        publish(args, server, text)
        ev = wait_event(page, text, 10)
        form_text = "from the form %s" % tag
        page.eval("document.querySelector('#publish-text').value = %s;"
                  "document.querySelector('#publish-submit').click(); true" % js_str(form_text))
        wait_event(page, form_text, 10)
        last_id = page.eval("weftDemo.streams.demo.lastEventId")
        log("events ok: %r arrived with id %s; the page's form published too" % (text, ev["id"]))

        step = "a network blip (mock only)"
        # The mock can cut the topic streams and hold them off: an event published meanwhile must
        # come back through Last-Event-ID, without a gap. weft-demo has no /mock/drop (404): skipped.
        r0, g0 = page.eval("weftDemo.resumes"), page.eval("weftDemo.gaps.length")
        status, _, _ = http_request(port, "POST", "/mock/drop?hold_ms=2500", b"")
        if status == 200:
            page.wait_for("conn-state reconnecting after the blip",
                          "document.querySelector('#conn-state').dataset.state === 'reconnecting'", 5, 0.05)
            missed = "published during the blip %s" % tag
            publish(args, server, missed)
            wait_event(page, missed, 15)
            page.wait_for("a resume after the blip", "weftDemo.resumes > %d" % r0, 5)
            new_gaps = page.eval("weftDemo.gaps.slice(%d)" % g0)
            if new_gaps:
                raise Failure("a short blip within the ring gave gap markers: %r" % new_gaps)
            page.wait_for("conn-state live after the blip", "document.querySelector('#conn-state').dataset.state === 'live'", 10)
            log("blip ok: %r replayed after the reconnect (Last-Event-ID), no gap" % missed)
        else:
            log("blip skipped: POST /mock/drop answered %d (not the mock)" % status)
        last_id = page.eval("weftDemo.streams.demo.lastEventId")

        step = "restarting the server"
        r0 = page.eval("weftDemo.resumes")
        server.stop()
        page.wait_for("conn-state reconnecting after the server stopped",
                      "document.querySelector('#conn-state').dataset.state === 'reconnecting'", 10, 0.1)
        time.sleep(0.5)
        server.start()
        page.wait_for("conn-state live again with a resume",
                      "document.querySelector('#conn-state').dataset.state === 'live' && weftDemo.resumes > %d" % r0, 25)
        page.wait_for("the demo stream to resume",
                      "weftDemo.streams.demo.state === 'open' && weftDemo.resumeLog.some(r => r.topic === 'demo')", 10)
        resume = page.eval("weftDemo.resumeLog.filter(r => r.topic === 'demo').pop()")
        if resume["before"] != last_id:
            raise Failure("the demo stream's resume records lastEventId %r before the error, expected %r" % (resume["before"], last_id))
        pill = page.eval("document.querySelector('#conn-state').textContent")
        if "resumed" not in pill:
            raise Failure("the conn-state pill does not say it resumed: %r" % pill)
        if not page.eval("!!document.querySelector('#event-log li[data-kind=resume]')"):
            raise Failure("no resume note in #event-log")
        text2 = "after the restart %s" % tag
        publish(args, server, text2)
        ev2 = wait_event(page, text2, 10)
        page.wait_for("metrics after the restart", "weftDemo.metricsCount > %d" % page.eval("weftDemo.metricsCount"), 5)
        gaps = page.eval("weftDemo.gaps.map(g => g.topic + ':' + g.reason)")
        log("restart ok: pill %r, resumes %d, demo resumed after %s, gaps %s, %r arrived with id %s"
            % (pill, page.eval("weftDemo.resumes"), resume["before"], gaps, text2, ev2["id"]))

        step = "final checks"
        if browser.exceptions:
            raise Failure("uncaught JS exceptions:\n  " + "\n  ".join(browser.exceptions))
        time.sleep(1.0)  # one more chart point for the picture
        page.screenshot(args.screenshot)
        log("screenshot: %s" % args.screenshot)
    except Failure as e:
        details = [str(e), "step: " + step]
        if browser is not None:
            if browser.exceptions:
                details.append("JS exceptions:\n  " + "\n  ".join(browser.exceptions))
            if browser.console:
                details.append("console:\n  " + "\n  ".join(browser.console[-15:]))
        if page is not None:
            try:
                details.append("page state: " + json.dumps(page.eval(
                    "({conn: document.querySelector('#conn-state').dataset.state, metricsCount: weftDemo.metricsCount,"
                    " resumes: weftDemo.resumes, streams: Object.fromEntries(Object.entries(weftDemo.streams).map(([k, s]) =>"
                    " [k, {state: s.state, lastEventId: s.lastEventId, opens: s.opens, errors: s.errors}])), gaps: weftDemo.gaps,"
                    " errors: weftDemo.errors})", timeout=3)))
                page.screenshot(args.screenshot)
                details.append("screenshot of the failure: " + args.screenshot)
            except Exception as e2:  # the report must not hide the failure
                details.append("(no page state: %s)" % e2)
        details.append("server log:\n" + server.tail())
        raise Failure("\n".join(details))
    finally:
        if browser is not None:
            browser.close()
        server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server-cmd", default="%s %s --port {port}" % (shlex.quote(sys.executable), shlex.quote(os.path.join(HERE, "demo_mock.py"))),
                   help="how to start the server; {port} is replaced (default: the mock)")
    p.add_argument("--cli-cmd", default="", help="a command publishing {text} to topic demo (default: HTTP POST /publish/demo)")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a value for {NAME} in the commands")
    p.add_argument("--port", type=int, default=0, help="HTTP port (default: a free one)")
    p.add_argument("--chromium", default="", help="the browser binary (default: chromium, chromium-browser or google-chrome from PATH)")
    p.add_argument("--assets", default=os.path.join(ROOT, "examples", "demo", "assets"), help="compared byte for byte with what the server serves")
    p.add_argument("--screenshot", default=os.path.join(ROOT, "build", "demo-dashboard.png"))
    p.add_argument("--timeout", type=float, default=90, help="for the whole run, in seconds")
    p.add_argument("--width", type=int, default=1360)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--allow-allocs", action="store_true", help="do not require #allocs to read 0")
    p.add_argument("--keep-temp", action="store_true", help="keep the logs and the browser profile")
    args = p.parse_args()

    if not args.chromium:
        args.chromium = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable") if shutil.which(b)), "")
    if not args.chromium:
        log("SKIP: no chromium in PATH (apt-get install chromium, or pass --chromium)")
        return 77

    def on_signal(signum, _frame):
        raise Failure("interrupted by signal %d" % signum if signum != signal.SIGALRM
                      else "the whole run took longer than --timeout %.0f s" % args.timeout)

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    workdir = tempfile.mkdtemp(prefix="weft-demo-browser-")
    started = time.monotonic()
    try:
        run(args, workdir)
    except Failure as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        print("FAIL: demo_browser_test: %s" % e, file=sys.stderr, flush=True)
        if args.keep_temp:
            print("logs kept in " + workdir, file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not args.keep_temp:
            shutil.rmtree(workdir, ignore_errors=True)
    log("PASS in %.1f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
