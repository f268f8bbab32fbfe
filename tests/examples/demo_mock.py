#!/usr/bin/env python3
"""A stand-in for weft-demo's HTTP API (python3 stdlib only), serving the dashboard's assets.

Used to develop examples/demo/assets/ without the C++ binary, by demo_browser_test.py's
default run, and as a reference for the API the dashboard expects:

  GET  /                    index.html (and /app.js, /style.css, /favicon.svg from --assets)
  GET  /events/{topic}      Server-Sent Events; ids "<8 hex instance>-<seq>"; Last-Event-ID
                            resumes from a ring of the last --ring events of the topic; a
                            `weft.gap` event ({"reason":...,"missed":N}) first when some are lost
  POST /publish/{topic}     body = event data, 202
  GET  /metrics             Prometheus text
  POST /jobs                {"duration_ms":N} -> 202 {"id":"7"}, Location: /jobs/7
  GET  /jobs/{id}[?wait=N]  {"id","status":"running"|"done","progress":0..100}; wait long-polls
  GET  /jobs/{id}/events    SSE, events named `progress` with the same JSON, closed when done
  GET  /plaintext, POST /echo
  POST /mock/drop?hold_ms=N closes the topic streams and refuses new ones for N ms (tests only)

Topic `metrics` gets an event named `metrics` every second (numbers partly synthetic).

Usage: demo_mock.py [--port 8080] [--assets DIR] [--backend io_uring|epoll]
                    [--backend-reason TEXT] [--ring 64]
Binds 127.0.0.1 only. Prints "serving on 127.0.0.1:PORT" once listening.
"""

import argparse
import collections
import json
import math
import os
import queue
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEARTBEAT_S = 15
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


class Topic:
    """One topic: a ring of recent events and the subscribers' queues."""

    def __init__(self, name, ring):
        self.name = name
        self.seq = 0
        self.ring = collections.deque(maxlen=ring)  # (seq, event name or None, data)
        self.subscribers = set()


class Broker:
    def __init__(self, ring):
        self.instance = "%08x" % random.getrandbits(32)
        self.ring = ring
        self.lock = threading.Lock()
        self.topics = {}
        self.dropped = 0

    def _topic(self, name):
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = Topic(name, self.ring)
        return t

    def publish(self, topic, data, event=None):
        with self.lock:
            t = self._topic(topic)
            t.seq += 1
            item = (t.seq, event, data)
            t.ring.append(item)
            for q in list(t.subscribers):
                try:
                    q.put_nowait(item)
                except queue.Full:
                    self.dropped += 1
            return t.seq

    def subscribe(self, topic, last_event_id):
        """Returns (queue, backlog, gap): gap is None or the weft.gap payload."""
        q = queue.Queue(maxsize=1024)
        with self.lock:
            t = self._topic(topic)
            t.subscribers.add(q)
            backlog, gap = [], None
            if last_event_id:
                m = re.fullmatch(r"([0-9a-f]{8})-(\d+)", last_event_id)
                if not m or m.group(1) != self.instance or int(m.group(2)) > t.seq:
                    gap = {"reason": "unknown_id"}
                else:
                    last = int(m.group(2))
                    oldest = t.ring[0][0] if t.ring else t.seq + 1
                    if last + 1 < oldest:
                        gap = {"reason": "ring_overflow", "missed": oldest - last - 1}
                    backlog = [item for item in t.ring if item[0] > last]
            return q, backlog, gap

    def unsubscribe(self, topic, q):
        with self.lock:
            self._topic(topic).subscribers.discard(q)

    def subscriber_count(self):
        with self.lock:
            return sum(len(t.subscribers) for t in self.topics.values())


class Blips:
    """POST /mock/drop?hold_ms=N: a network blip for tests. Closes every topic stream and, for
    hold_ms, closes new ones before answering (EventSource retries with Last-Event-ID)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hold_until = 0.0
        self.sockets = set()

    def drop(self, hold_ms):
        with self.lock:
            self.hold_until = time.monotonic() + hold_ms / 1000.0
            sockets = list(self.sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(sockets)

    def holding(self):
        with self.lock:
            return time.monotonic() < self.hold_until


class Jobs:
    def __init__(self):
        self.lock = threading.Lock()
        self.next_id = 1
        self.jobs = {}  # id -> (start monotonic, duration s)

    def create(self, duration_ms):
        with self.lock:
            job_id = str(self.next_id)
            self.next_id += 1
            self.jobs[job_id] = (time.monotonic(), max(0, duration_ms) / 1000.0)
            return job_id

    def state(self, job_id):
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            return None
        start, duration = job
        elapsed = time.monotonic() - start
        done = elapsed >= duration
        progress = 100 if done else int(100 * elapsed / duration)
        return {"id": job_id, "status": "done" if done else "running", "progress": progress}

    def running(self):
        with self.lock:
            ids = list(self.jobs)
        return sum(1 for i in ids if self.state(i)["status"] == "running")


class Stats:
    """Real counters for the mock's own requests plus a synthetic load, so charts move."""

    def __init__(self, workers):
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.requests = [0] * workers
        self.synthetic = [0.0] * workers
        self.connections = 0
        self.rpc_calls = 0

    def count(self):
        with self.lock:
            self.requests[random.randrange(len(self.requests))] += 1


def metrics_loop(broker, jobs, stats, args):
    workers = len(stats.requests)
    prev = [0.0] * workers
    phase = random.random() * 6
    while True:
        time.sleep(1.0 - (time.time() % 1.0))
        uptime = time.monotonic() - stats.start
        with stats.lock:
            load = []
            for i in range(workers):
                rate = max(0.0, 90 + 60 * math.sin(uptime / 7 + phase + i) + random.uniform(-15, 15))
                stats.synthetic[i] += rate
                load.append(stats.synthetic[i] + stats.requests[i])
            stats.rpc_calls += random.random() < 0.3
            rpc_calls = stats.rpc_calls
            connections = max(1, stats.connections)
        per_worker = []
        for i in range(workers):
            per_worker.append({"index": i, "cpu": i, "requests": int(load[i]),
                               "requests_per_s": round(load[i] - prev[i], 1),
                               "connections": max(0, connections // workers + (i < connections % workers))})
        prev = load
        total = sum(int(x) for x in load)
        rps = round(sum(w["requests_per_s"] for w in per_worker), 1)
        doc = {
            "t": int(time.time() * 1000), "uptime_s": int(uptime),
            "backend": args.backend, "backend_reason": args.backend_reason,
            "workers": per_worker, "requests_total": total, "requests_per_s": rps,
            "connections": connections, "sse_subscribers": broker.subscriber_count(),
            "dropped_events": broker.dropped, "allocations_since_start": 5234,
            "allocations_after_warmup": 0, "rpc_calls": rpc_calls, "jobs_running": jobs.running(),
        }
        broker.publish("metrics", json.dumps(doc, separators=(",", ":")), event="metrics")


def make_handler(broker, jobs, stats, blips, args):
    assets = os.path.abspath(args.assets)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "weft-demo-mock"

        def log_message(self, fmt, *a):
            if args.verbose:
                sys.stderr.write("mock: " + (fmt % a) + "\n")

        def setup(self):
            super().setup()
            with stats.lock:
                stats.connections += 1

        def finish(self):
            try:
                super().finish()
            finally:
                with stats.lock:
                    stats.connections -= 1

        def send(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=()):
            if isinstance(body, str):
                body = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def send_json(self, status, doc, headers=()):
            self.send(status, json.dumps(doc, separators=(",", ":")), "application/json", headers)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            stats.count()
            url = urllib.parse.urlsplit(self.path)
            path, query = url.path, urllib.parse.parse_qs(url.query)
            if path.startswith("/events/") and len(path) > 8:
                return self.sse_topic(urllib.parse.unquote(path[8:]))
            m = re.fullmatch(r"/jobs/([^/]+)(/events)?", path)
            if m:
                return self.job_events(m.group(1)) if m.group(2) else self.job_get(m.group(1), query)
            if path == "/plaintext":
                return self.send(200, "Hello, World!")
            if path == "/metrics":
                return self.prometheus()
            name = "index.html" if path == "/" else path.lstrip("/")
            file = os.path.abspath(os.path.join(assets, name))
            if file.startswith(assets + os.sep) and os.path.isfile(file):
                with open(file, "rb") as f:
                    ctype = CONTENT_TYPES.get(os.path.splitext(file)[1], "application/octet-stream")
                    return self.send(200, f.read(), ctype)
            self.send(404, "not found\n")

        def do_POST(self):
            stats.count()
            path = urllib.parse.urlsplit(self.path).path
            body = self.body()
            if path.startswith("/publish/") and len(path) > 9:
                broker.publish(urllib.parse.unquote(path[9:]), body.decode("utf-8", "replace"))
                return self.send(202, "")
            if path == "/jobs":
                try:
                    duration = int(json.loads(body or b"{}").get("duration_ms", 1000))
                except (ValueError, AttributeError):
                    return self.send(400, "bad job\n")
                job_id = jobs.create(duration)
                return self.send_json(202, {"id": job_id}, [("Location", "/jobs/" + job_id)])
            if path == "/mock/drop":
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                dropped = blips.drop(int((query.get("hold_ms") or ["0"])[0]))
                return self.send_json(200, {"dropped": dropped})
            if path == "/echo":
                return self.send(200, body, self.headers.get("Content-Type", "application/octet-stream"))
            self.send(404, "not found\n")

        def prometheus(self):
            lines = ["# TYPE weft_requests_total counter",
                     "weft_requests_total %d" % sum(stats.requests),
                     "# TYPE weft_sse_subscribers gauge",
                     "weft_sse_subscribers %d" % broker.subscriber_count()]
            self.send(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")

        def job_get(self, job_id, query):
            state = jobs.state(job_id)
            if state is None:
                return self.send_json(404, {"error": "no such job"})
            wait = min(60.0, float((query.get("wait") or ["0"])[0] or 0))
            deadline = time.monotonic() + wait
            while state["status"] != "done" and time.monotonic() < deadline:
                time.sleep(0.02)
                state = jobs.state(job_id)
            self.send_json(200, state)

        def sse_start(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()

        def sse_write(self, data, event=None, event_id=None):
            out = []
            if event_id:
                out.append("id: " + event_id)
            if event:
                out.append("event: " + event)
            out += ["data: " + line for line in str(data).split("\n")]
            self.wfile.write(("\n".join(out) + "\n\n").encode())
            self.wfile.flush()

        def sse_topic(self, topic):
            if blips.holding():
                self.close_connection = True  # no answer at all: a network error to the client
                return
            q, backlog, gap = broker.subscribe(topic, self.headers.get("Last-Event-ID"))
            with blips.lock:
                blips.sockets.add(self.connection)
            try:
                self.sse_start()
                if gap:
                    self.sse_write(json.dumps(gap, separators=(",", ":")), event="weft.gap")
                for seq, event, data in backlog:
                    self.sse_write(data, event, "%s-%d" % (broker.instance, seq))
                while True:
                    try:
                        seq, event, data = q.get(timeout=HEARTBEAT_S)
                    except queue.Empty:
                        self.wfile.write(b":\n\n")
                        self.wfile.flush()
                        continue
                    self.sse_write(data, event, "%s-%d" % (broker.instance, seq))
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            finally:
                broker.unsubscribe(topic, q)
                with blips.lock:
                    blips.sockets.discard(self.connection)

        def job_events(self, job_id):
            state = jobs.state(job_id)
            if state is None:
                return self.send_json(404, {"error": "no such job"})
            try:
                self.sse_start()
                seq, last = 0, None
                while True:
                    state = jobs.state(job_id)
                    if state != last:
                        seq += 1
                        self.sse_write(json.dumps(state, separators=(",", ":")), "progress",
                                       "%s-%d" % (broker.instance, seq))
                        last = state
                    if state["status"] == "done":
                        return
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass

    return Handler


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--assets", default=os.path.join(here, "..", "..", "examples", "demo", "assets"))
    p.add_argument("--backend", default="io_uring", choices=["io_uring", "epoll"])
    p.add_argument("--backend-reason", default="")
    p.add_argument("--ring", type=int, default=64)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    broker, jobs, stats = Broker(args.ring), Jobs(), Stats(args.workers)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(broker, jobs, stats, Blips(), args))
    threading.Thread(target=metrics_loop, args=(broker, jobs, stats, args), daemon=True).start()
    print("serving on 127.0.0.1:%d (instance %s)" % (server.server_address[1], broker.instance), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
