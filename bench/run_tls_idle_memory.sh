#!/usr/bin/env bash
# Memory per idle TLS connection through weft-tls-terminator-<backend> (issue #19), from
# outside: the growth of the terminator's resident memory (VmRSS, /proc) while N idle TLS
# connections are open (handshake done, one request answered over each, then idle), divided
# by N; "marginal" is (after - half) / (N / 2), without one-off costs. The upstream is
# weft-http-bench-server (its own memory is not counted: the terminator's cost only).
# TLS 1.2 (both backends), EC P-256 from scripts/make-self-signed.sh. Kernel socket memory is
# not in these figures. Bounded: the Python client has an alarm; 127.0.0.1 only.
#
# Usage: bench/run_tls_idle_memory.sh [--build DIR] [--conns N] [--tls mbedtls|openssl|both]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
CONNS=400
TLS_BACKENDS="mbedtls openssl"
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --tls) [[ $2 == both ]] && TLS_BACKENDS="mbedtls openssl" || TLS_BACKENDS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$ROOT/scripts/make-self-signed.sh" "$tmp/pair" >/dev/null
ulimit -n 65536 2>/dev/null || true
P_HTTP=${PORT_BASE:-29850}
"$BUILD/bench/weft-http-bench-server" --port "$P_HTTP" --workers 1 --max-conns $((CONNS + 64)) \
  >"$tmp/srv.log" 2>&1 &
pids+=("$!")
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
port=$((P_HTTP + 1))
printf '%-14s %8s %12s %14s\n' backend conns "KiB/conn" "marginal KiB"
for t in $TLS_BACKENDS; do
  "$BUILD/bench/weft-tls-terminator-$t" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$P_HTTP" \
    --cert "$tmp/pair/cert.pem" --key "$tmp/pair/key.pem" --max-version 1.2 \
    --max-conns $((CONNS + 64)) >"$tmp/term-$t.log" 2>&1 &
  tp=$!; pids+=("$tp")
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  # warm-up: one connection, one request, closed
  curl -sS --max-time 5 --cacert "$tmp/pair/cert.pem" "https://127.0.0.1:$port/plaintext" >/dev/null
  python3 - "$port" "$tmp/pair/cert.pem" "$CONNS" "$tp" "$tmp/rss-$t" <<'PY'
import signal, socket, ssl, sys, time
port, ca, n, pid, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
signal.alarm(120)
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
ctx = ssl.create_default_context(cafile=ca)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
conns = []
def open_some(k):
    for _ in range(k):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"Hello, World!" not in got:
            got += s.recv(4096)
        conns.append(s)
time.sleep(0.2)
before = rss()
open_some(n // 2)
time.sleep(0.3)
half = rss()
open_some(n - n // 2)
time.sleep(0.3)
after = rss()
for s in conns:  # all still open
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            sys.exit("a connection was closed while idle")
    except (ssl.SSLWantReadError, BlockingIOError):
        pass
open(out, "w").write(f"{before} {half} {after}\n")
PY
  read -r b h a <"$tmp/rss-$t"
  awk -v t="$t" -v n="$CONNS" -v b="$b" -v h="$h" -v a="$a" \
    'BEGIN { printf "%-14s %8d %12.1f %14.1f\n", "weft-" t, n, (a - b) / n, (a - h) / (n / 2) }'
  kill "$tp"; wait "$tp" 2>/dev/null || true
  port=$((port + 1))
done
