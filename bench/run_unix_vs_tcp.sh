#!/usr/bin/env bash
# Unary RPC over a Unix socket against loopback TCP (#17): weft-msg-bench-server pinned to
# SERVER_CPU (default 0), weft-load --proto msg on LOAD_CPU (default 1), the two transports
# interleaved rep by rep. Prints calls/s and the server's CPU per call (weft-load measures
# the server process's CPU over the window), per rep, then medians and the Unix/TCP ratios.
# A bench script, not a CI stage.
#
# Usage: bench/run_unix_vs_tcp.sh [--build DIR] [--reps 5] [--duration 5] [--conns 16]
#                                 [--inflight 16] [--backend uring|epoll]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
REPS=5 DURATION=5 CONNS=16 INFLIGHT=16 BACKEND=uring
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --inflight) INFLIGHT=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SRV=$BUILD/bench/weft-msg-bench-server
LOAD=$BUILD/bench/weft-load
for b in "$SRV" "$LOAD"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done
SOCK=$(mktemp -u /tmp/weft-bench-XXXXXX.sock)
PORT=29811
declare -A RATE NS
run() {  # run tcp|unix REP
  local kind=$1 rep=$2 addr=() pid out line
  if [[ $kind == tcp ]]; then addr=(--port "$PORT"); else addr=(--unix "$SOCK"); fi
  taskset -c "$SERVER_CPU" "$SRV" "${addr[@]}" --backend "$BACKEND" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if [[ $kind == tcp ]]; then (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    else [[ -S $SOCK ]] && break; fi
    sleep 0.05
  done
  out=$(taskset -c "$LOAD_CPU" "$LOAD" --proto msg "${addr[@]}" --conns "$CONNS" \
    --inflight "$INFLIGHT" --duration "$DURATION" --warmup 1 --server-pid "$pid" 2>&1 || true)
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  line=$(grep '^RESULT' <<<"$out" || true)
  RATE[$kind.$rep]=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$line")
  NS[$kind.$rep]=$(sed -n 's/.*srv_ns_per_msg=\([0-9.-]*\).*/\1/p' <<<"$line")
  printf '%-4s rep %d: %10s calls/s  server %7s ns/call\n' "$kind" "$rep" "${RATE[$kind.$rep]:-?}" "${NS[$kind.$rep]:-?}"
  [[ -n $line ]] || echo "$out" | sed 's/^/    /'
}
for ((r = 1; r <= REPS; r++)); do
  if ((r % 2)); then run tcp "$r"; run unix "$r"; else run unix "$r"; run tcp "$r"; fi
done
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for k in tcp unix; do
  mr=$(for ((r = 1; r <= REPS; r++)); do echo "${RATE[$k.$r]}"; done | median)
  mn=$(for ((r = 1; r <= REPS; r++)); do echo "${NS[$k.$r]}"; done | median)
  printf 'median %-4s %10s calls/s  server %7s ns/call\n' "$k" "$mr" "$mn"
  eval "M_RATE_$k=$mr M_NS_$k=$mn"
done
awk -v ur="$M_RATE_unix" -v tr="$M_RATE_tcp" -v un="$M_NS_unix" -v tn="$M_NS_tcp" \
  'BEGIN{printf "unix/tcp: calls/s %.2fx, server CPU per call %.2fx\n", ur/tr, un/tn}'
