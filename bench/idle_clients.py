#!/usr/bin/env python3
"""Idle-connection client for bench/idle_memory.sh.

Opens connections to a framed-echo server on a loopback address in stages, echoes one
frame (4-byte big-endian length + payload) on each, then keeps them all open and idle.

  idle_clients.py --port P --conns N [--stages K] [--size B] [--max-seconds S]

After each stage (N/K connections more) it prints "open <total>" on stdout and waits for
SIGUSR1 before the next stage; after the last stage it prints "open N", waits for SIGUSR1
once more, checks that the server closed none of the connections ("alive N") and exits.
Every echoed byte is compared with what was sent. The whole run is bounded by
--max-seconds (an alarm), each socket operation by 5 s.
Exit status: 0 ok; 1 a connection failed, an echo differed or the server closed one.
"""
import argparse
import select
import signal
import socket
import struct
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=8000)
    ap.add_argument("--stages", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--max-seconds", type=int, default=120)
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("idle_clients: loopback addresses only")
    signal.alarm(a.max_seconds)
    go = [False]
    signal.signal(signal.SIGUSR1, lambda *_: go.__setitem__(0, True))

    def wait_go():
        while not go[0]:
            signal.pause()
        go[0] = False

    socks = []
    for stage in range(a.stages):
        target = a.conns * (stage + 1) // a.stages
        while len(socks) < target:
            i = len(socks)
            payload = bytes((i * 31 + j) & 0xFF for j in range(a.size))
            frame = struct.pack(">I", a.size) + payload
            s = socket.create_connection((a.host, a.port), timeout=5)
            s.sendall(frame)
            got = b""
            while len(got) < len(frame):
                chunk = s.recv(len(frame) - len(got))
                if not chunk:
                    sys.exit("idle_clients: connection %d closed before its echo" % i)
                got += chunk
            if got != frame:
                sys.exit("idle_clients: connection %d: echo differs" % i)
            s.setblocking(False)
            socks.append(s)
        print("open %d" % len(socks), flush=True)
        wait_go()
    # Idle connections have nothing to read: a readable one was closed (or sent junk).
    # (poll, not select: the descriptors run far past FD_SETSIZE.)
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN)
    closed = len(poller.poll(0))
    print("alive %d" % (len(socks) - closed), flush=True)
    sys.exit(1 if closed else 0)


if __name__ == "__main__":
    main()
