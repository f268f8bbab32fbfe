#!/usr/bin/env bash
# Gateway overhead per proxied request (#17): wrk POSTs 64-byte bodies through weft-gateway
# to weft-msg-bench-server's unary method over a Unix socket, and, interleaved, straight to
# weft-http-bench-server's POST /echo (the same HTTP work without the hop). Each server is
# pinned to SERVER_CPU (default 0), wrk to LOAD_CPU (1); the daemon behind the gateway to
# LOAD_CPU too, so the gateway's core measures the gateway alone. Prints requests/s and the
# HTTP process's CPU per request for both, and the difference: what the hop costs the
# gateway (RPC encode, upstream pick, the Unix-socket round trip's user and kernel work).
# A bench script, not a CI stage.
#
# Usage: bench/run_gateway_overhead.sh [--build DIR] [--reps 3] [--duration 5] [--conns 32]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
REPS=3 DURATION=5 CONNS=32
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
GW=$BUILD/examples/gateway/weft-gateway
RPC=$BUILD/bench/weft-msg-bench-server
HTTP=$BUILD/bench/weft-http-bench-server
for b in "$GW" "$RPC" "$HTTP"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done
command -v wrk >/dev/null || { echo "wrk not installed" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
PORT=29821
cat >"$TMP/gw.conf" <<CONF
listen 127.0.0.1:$PORT
upstream bench unix:$TMP/rpc.sock
rpc POST /echo bench weft.bench.Bench/Unary timeout_ms=5000
CONF
cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 64)
LUA
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return; sleep 0.05; done; }
declare -A RPS NS
run() {  # run gateway|direct REP
  local kind=$1 rep=$2 pid rpc_pid="" t0 t1 out rps
  if [[ $kind == gateway ]]; then
    taskset -c "$LOAD_CPU" "$RPC" --unix "$TMP/rpc.sock" >/dev/null 2>&1 & rpc_pid=$!
    for _ in $(seq 100); do [[ -S $TMP/rpc.sock ]] && break; sleep 0.05; done
    taskset -c "$SERVER_CPU" "$GW" --config "$TMP/gw.conf" >/dev/null 2>&1 & pid=$!
  else
    taskset -c "$SERVER_CPU" "$HTTP" --port "$PORT" >/dev/null 2>&1 & pid=$!
  fi
  wait_port
  taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d1s -s "$TMP/post.lua" "http://127.0.0.1:$PORT/echo" >/dev/null 2>&1 || true
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c "$CONNS" -d"${DURATION}s" -s "$TMP/post.lua" "http://127.0.0.1:$PORT/echo" 2>&1 || true)
  t1=$(cpu_ticks "$pid")
  kill -TERM "$pid" $rpc_pid 2>/dev/null; wait "$pid" $rpc_pid 2>/dev/null || true
  rm -f "$TMP/rpc.sock"
  rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
  RPS[$kind.$rep]=${rps:-0}
  NS[$kind.$rep]=$(awk -v a="$t0" -v b="$t1" -v t="$TICK" -v r="${rps:-0}" -v d="$DURATION" \
    'BEGIN{ if (r > 0) printf "%.0f", (b-a)/t*1e9/(r*d); else print 0 }')
  printf '%-7s rep %d: %10s req/s  HTTP process %6s ns CPU/request\n' "$kind" "$rep" "${RPS[$kind.$rep]}" "${NS[$kind.$rep]}"
  sleep 0.5
}
for ((r = 1; r <= REPS; r++)); do
  if ((r % 2)); then run direct "$r"; run gateway "$r"; else run gateway "$r"; run direct "$r"; fi
done
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for k in direct gateway; do
  printf 'median %-7s %10s req/s  %6s ns CPU/request\n' "$k" \
    "$(for ((r = 1; r <= REPS; r++)); do echo "${RPS[$k.$r]}"; done | median)" \
    "$(for ((r = 1; r <= REPS; r++)); do echo "${NS[$k.$r]}"; done | median)"
done
