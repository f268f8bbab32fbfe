#!/usr/bin/env bash
# SSE fan-out at 10,000 subscribers: weft-http-bench-server against the peers harness's
# Boost.Asio SSE peer, interleaved rep by rep, both pinned to one core (SERVER_CPU, default
# 0) with the harness's sse_load on the other (LOAD_CPU, default 1). Prints, per server and
# rep, events delivered per second (all subscribers), p50/p99 publish-to-receive latency and
# the server's CPU (utime+stime over the measured window / wall time); then medians and
# weft's ratios. A bench script, not a CI stage: minutes of both cores.
#
# Usage: bench/run_sse_fanout.sh [--build DIR] [--conns 10000] [--rate 10] [--reps 3]
#                                [--duration 10] [--backend uring|epoll]
# Needs the harness built in <build>/peers (bench/run_http_compare.sh builds it) and
# RLIMIT_NOFILE above --conns + 100 (raised here up to the hard limit).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
CONNS=10000 RATE=10 REPS=3 DURATION=10 WARMUP=3 BACKEND=uring
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
WEFT=$BUILD/bench/weft-http-bench-server
LOAD=$BUILD/peers/build/sse_load
ASIO=$BUILD/peers/build/sse_server
for b in "$WEFT" "$LOAD" "$ASIO"; do
  [[ -x $b ]] || { echo "missing $b (build weft-http-bench-server; run bench/run_http_compare.sh once)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > CONNS + 100 )) || { echo "RLIMIT_NOFILE $(ulimit -n) too low for $CONNS" >&2; exit 2; }
PORT=29801
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
declare -A RATE_OF P99_OF CPU_OF
run_one() {  # run_one NAME REP CMD...
  local name=$1 rep=$2; shift 2
  taskset -c "$SERVER_CPU" "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  local out t0 t1
  out=$(mktemp)
  taskset -c "$LOAD_CPU" timeout $((WARMUP + DURATION + 30)) "$LOAD" \
    --url "http://127.0.0.1:$PORT/events" --conns "$CONNS" --duration "$DURATION" \
    --warmup "$WARMUP" >"$out" 2>&1 &
  local lpid=$!
  sleep "$WARMUP"
  t0=$(cpu_ticks "$pid")
  sleep "$DURATION"
  t1=$(cpu_ticks "$pid")
  wait "$lpid" || true
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  local line rate p99
  line=$(grep '^RESULT' "$out" || true)
  rate=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$line")
  local cpu
  cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TICK" -v d="$DURATION" 'BEGIN{printf "%.1f", (b-a)/t/d*100}')
  printf '%-6s rep %d: %10s events/s  p99 %8s us  server CPU %5s %%\n' "$name" "$rep" "${rate:-?}" "${p99:-?}" "$cpu"
  [[ -n $line ]] || sed 's/^/    /' "$out"
  RATE_OF[$name.$rep]=${rate:-0}; P99_OF[$name.$rep]=${p99:-0}; CPU_OF[$name.$rep]=$cpu
  rm -f "$out"
  sleep 1
}
echo "SSE fan-out: $CONNS subscribers, $RATE events/s published ($((CONNS * RATE)) deliveries/s), ${DURATION}s per run"
for ((r = 1; r <= REPS; r++)); do
  if ((r % 2)); then order=(weft asio); else order=(asio weft); fi
  for s in "${order[@]}"; do
    if [[ $s == weft ]]; then
      run_one weft "$r" "$WEFT" --port "$PORT" --backend "$BACKEND" --rate "$RATE" --max-conns $((CONNS + 64))
    else
      run_one asio "$r" "$ASIO" --port "$PORT" --rate "$RATE"
    fi
  done
done
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for s in weft asio; do
  m_rate=$(for ((r = 1; r <= REPS; r++)); do echo "${RATE_OF[$s.$r]}"; done | median)
  m_p99=$(for ((r = 1; r <= REPS; r++)); do echo "${P99_OF[$s.$r]}"; done | median)
  m_cpu=$(for ((r = 1; r <= REPS; r++)); do echo "${CPU_OF[$s.$r]}"; done | median)
  printf 'median %-5s %10s events/s  p99 %8s us  server CPU %5s %%  CPU/event %s ns\n' "$s" "$m_rate" "$m_p99" "$m_cpu" \
    "$(awk -v c="$m_cpu" -v r="$m_rate" 'BEGIN{ if (r > 0) printf "%.0f", c / 100 * 1e9 / r; else print "?" }')"
done
