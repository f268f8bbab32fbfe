#!/usr/bin/env bash
# Interleaved comparison of servers under the same closed-loop load and the same pinning.
# Framed echo: weft-echo (io_uring), weft-echo (epoll), the plain epoll baseline
# (weft-baseline-echo) and, when Boost is installed, a Boost.Asio echo (the peers harness's
# echo_asio.cpp, built here); load: weft-load, one thread. Unary calls (the wrappers
# bench/run_unary_compare.sh and bench/run_grpc_compare.sh select these): msg-uring and
# msg-epoll, weft-msg-bench-server loaded by weft-load --proto msg; grpc, the gRPC C++ async
# server (bench/grpc/) loaded by weft-grpc-load. For msg and grpc, a "message" is one call.
#
# Usage: bench/run_echo_compare.sh [options]
#   --build DIR       weft build tree with the binaries of the servers chosen
#                     (default: build/perf; configure it with -DCMAKE_BUILD_TYPE=Release)
#   --reps N          interleaved repetitions, server order rotated each rep (default 5, min 5)
#   --duration S      measured seconds per run (default 5)
#   --warmup S        warm-up seconds per run (default 1)
#   --conns N --inflight K --size BYTES   load shape (default 64, 16, 64)
#   --servers LIST    comma list of weft-uring,weft-epoll,baseline,asio,msg-uring,msg-epoll,grpc
#                     (default: the four echo servers, those available)
#   --pairs LIST      comma list of A/B ratios to report (default: weft-uring/baseline,
#                     weft-uring/asio, weft-epoll/baseline, weft-uring/weft-epoll, asio/baseline,
#                     msg-uring/weft-uring, msg-epoll/weft-epoll, msg-uring/grpc, msg-epoll/grpc;
#                     pairs whose servers did not run are left out)
#   --out DIR         results directory (default: <build>/<name>)
#   --name NAME       results subdirectory of the build tree when --out is not given
#                     (default echo-compare)
#   --port-base P     servers listen on P+1..P+7 (default 29400)
# Environment: SERVER_CPU (0), LOAD_CPU (1), PEERS_SRC (the peers harness's src/, for
# echo_asio.cpp; default ../shared/peers/src from the repository root).
#
# Each run: the server starts pinned to SERVER_CPU in its own process group (weft servers with
# one worker), the load generator pinned to LOAD_CPU warms up, then measures msgs/s, RTT
# percentiles, its own CPU, the server's utime+stime over exactly the measured window
# (/proc/PID/stat, all threads: server CPU per message) and the busy share of SERVER_CPU
# (/proc/stat, softirq included); then the server is stopped through its process group (TERM,
# KILL after 5 s). Everything binds 127.0.0.1, every run stops by itself (the load
# generator's deadline, plus `timeout`).
# Output: one JSON line per run in <out>/<stamp>.jsonl, the summary in <out>/<stamp>.txt: the
# exact server and load commands, medians per server and, for each pair, the median of
# per-rep ratios and the ratios.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/perf
REPS=5
DURATION=5
WARMUP=1
CONNS=64
INFLIGHT=16
SIZE=64
SERVERS=""
PAIRS=weft-uring/baseline,weft-uring/asio,weft-epoll/baseline,weft-uring/weft-epoll,asio/baseline
PAIRS+=,msg-uring/weft-uring,msg-epoll/weft-epoll,msg-uring/grpc,msg-epoll/grpc
OUT=""
NAME=echo-compare
PORT_BASE=29400
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/peers/src}  # the peers harness, next to the repository

die() { echo "run_echo_compare: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --inflight) INFLIGHT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    # COMPARE_HELP: the wrapper (run_unary_compare.sh, run_grpc_compare.sh) whose help to show.
    -h|--help) sed -n '2,/^set -euo/p' "${COMPARE_HELP:-$0}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $REPS =~ ^[0-9]+$ ]] && ((REPS >= 5)) || die "--reps must be 5 or more"
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 60)) || die "--duration: 1..60"
[[ $WARMUP =~ ^[0-9]+$ ]] && ((WARMUP <= 30)) || die "--warmup: 0..30"
OUT=${OUT:-$BUILD/$NAME}
mkdir -p "$OUT"

ECHO_BIN=$BUILD/examples/echo/weft-echo
LOAD_BIN=$BUILD/bench/weft-load
BASE_BIN=$BUILD/bench/weft-baseline-echo
MSG_BIN=$BUILD/bench/weft-msg-bench-server
GRPC_BIN=$BUILD/bench/weft-grpc-bench-server
GRPC_LOAD_BIN=$BUILD/bench/weft-grpc-load
need() {  # binary target...
  [[ -x $1 ]] || die "missing $1: cmake --build $BUILD --target ${*:2}"
}

# Boost.Asio peer: the peers harness's single-threaded echo_asio, built into OUT.
ASIO_BIN=""
if [[ (-z $SERVERS || ,$SERVERS, == *,asio,*) && -r /usr/include/boost/asio.hpp &&
      -r $PEERS_SRC/echo_asio.cpp ]]; then
  ASIO_BIN=$OUT/echo_asio
  if [[ ! -x $ASIO_BIN || $PEERS_SRC/echo_asio.cpp -nt $ASIO_BIN ]]; then
    echo "building $ASIO_BIN"
    g++ -std=c++20 -O2 -o "$ASIO_BIN" "$PEERS_SRC/echo_asio.cpp" -pthread || ASIO_BIN=""
  fi
fi
if [[ -z $SERVERS ]]; then
  SERVERS=weft-uring,weft-epoll,baseline
  [[ -n $ASIO_BIN ]] && SERVERS+=,asio
fi
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"

server_cmd() {  # name port -> the command line
  case $1 in
    weft-uring) echo "$ECHO_BIN --port $2 --workers 1 --backend uring" ;;
    weft-epoll) echo "$ECHO_BIN --port $2 --workers 1 --backend epoll" ;;
    baseline) echo "$BASE_BIN --port $2" ;;
    asio) [[ -n $ASIO_BIN ]] || die "asio: Boost headers or $PEERS_SRC/echo_asio.cpp missing"
          echo "$ASIO_BIN --port $2" ;;
    msg-uring) echo "$MSG_BIN --port $2 --workers 1 --backend uring" ;;
    msg-epoll) echo "$MSG_BIN --port $2 --workers 1 --backend epoll" ;;
    grpc) echo "$GRPC_BIN --port $2" ;;
    *) die "unknown server $1" ;;
  esac
}
load_cmd() {  # name port -> the load generator's command line (without the per-run pid)
  local shape="--conns $CONNS --inflight $INFLIGHT --size $SIZE --duration $DURATION --warmup $WARMUP"
  case $1 in
    msg-*) echo "$LOAD_BIN --proto msg --port $2 $shape --cpu $LOAD_CPU" ;;
    grpc) echo "$GRPC_LOAD_BIN --port $2 $shape --cpu $LOAD_CPU" ;;
    *) echo "$LOAD_BIN --port $2 $shape --cpu $LOAD_CPU" ;;
  esac
}
server_port() {
  case $1 in weft-uring) echo $((PORT_BASE + 1)) ;; weft-epoll) echo $((PORT_BASE + 2)) ;;
    baseline) echo $((PORT_BASE + 3)) ;; asio) echo $((PORT_BASE + 4)) ;;
    msg-uring) echo $((PORT_BASE + 5)) ;; msg-epoll) echo $((PORT_BASE + 6)) ;;
    grpc) echo $((PORT_BASE + 7)) ;; esac
}
for s in "${SERVER_LIST[@]}"; do
  case $s in
    weft-*) need "$ECHO_BIN" weft-echo; need "$LOAD_BIN" weft-load ;;
    baseline) need "$BASE_BIN" weft-baseline-echo; need "$LOAD_BIN" weft-load ;;
    asio) need "$LOAD_BIN" weft-load ;;
    msg-*) need "$MSG_BIN" weft-msg-bench-server; need "$LOAD_BIN" weft-load ;;
    grpc) need "$GRPC_BIN" "weft-grpc-bench-server weft-grpc-load (needs gRPC: scripts/deps.sh bench)"
          need "$GRPC_LOAD_BIN" weft-grpc-load ;;
  esac
  server_cmd "$s" 0 >/dev/null
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
SERVER_PID=""
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local pid=$SERVER_PID i
  SERVER_PID=""
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

start_server() {  # log port cmd...
  local log=$1 port=$2 i; shift 2
  port_open "$port" && die "port $port already in use on 127.0.0.1 (use --port-base)"
  # setsid: its own process group, so stop_server can signal exactly it.
  setsid taskset -c "$SERVER_CPU" "$@" >"$log" 2>&1 </dev/null &
  SERVER_PID=$!
  for ((i = 0; i < 200; i++)); do
    port_open "$port" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; cat "$log" >&2; die "server exited: $*"; }
    sleep 0.05
  done
  stop_server
  die "server did not listen on $port within 10 s: $*"
}

STAMP=$(date +%Y%m%d-%H%M%S)
JSONL=$OUT/$STAMP.jsonl
TXT=$OUT/$STAMP.txt
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"
: >"$JSONL"
{
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
  echo "weft:    HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- platform examples stack bench 2>/dev/null || echo ' + uncommitted changes in platform/ examples/ stack/ bench/')"
  echo "setup:   server on cpu $SERVER_CPU, load on cpu $LOAD_CPU; ${CONNS} conns x ${INFLIGHT} in flight, ${SIZE}-byte payload; ${WARMUP}s warm-up + ${DURATION}s measured; $REPS reps, order rotated"
  echo "servers: ${SERVER_LIST[*]}"
  echo "commands (the load generator also gets --server-pid PID --server-core $SERVER_CPU --json):"
  for s in "${SERVER_LIST[@]}"; do
    read -r -a c <<<"$(server_cmd "$s" "$(server_port "$s")")"
    echo "  $s: setsid taskset -c $SERVER_CPU $(server_cmd "$s" "$(server_port "$s")")  (built $(date -u -r "${c[0]}" '+%Y-%m-%d %H:%M UTC'))"
    echo "  $s load: taskset -c $LOAD_CPU $(load_cmd "$s" "$(server_port "$s")")"
  done
} | tee "$TXT"

for ((rep = 1; rep <= REPS; rep++)); do
  n=${#SERVER_LIST[@]}
  for ((j = 0; j < n; j++)); do
    name=${SERVER_LIST[$(((j + rep - 1) % n))]}
    port=$(server_port "$name")
    read -r -a cmd <<<"$(server_cmd "$name" "$port")"
    start_server "$LOGS/server-$name-r$rep.log" "$port" "${cmd[@]}"
    rc=0
    read -r -a lcmd <<<"$(load_cmd "$name" "$port")"
    line=$(timeout $((WARMUP + DURATION + 40)) taskset -c "$LOAD_CPU" "${lcmd[@]}" \
      --server-pid "$SERVER_PID" --server-core "$SERVER_CPU" --json \
      2>"$LOGS/load-$name-r$rep.err") || rc=$?
    stop_server
    [[ -n $line ]] || line='{"ok":false,"error":"weft-load printed nothing"}'
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(server=sys.argv[2], rep=int(sys.argv[3]), rc=int(sys.argv[4])); print(json.dumps(d))' \
      "$line" "$name" "$rep" "$rc" >>"$JSONL"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1])
print("  rep %s %-10s %10.0f msg/s  p99 %8.1f us  srv %5.1f%% %6.0f ns/msg  core %4.0f%%  lg %4.0f%%  rc %s%s" % (
  sys.argv[2], sys.argv[3], d.get("msgs_per_s", 0), d.get("rtt_us", {}).get("p99", 0), 100 * d.get("server_cpu", 0),
  d.get("server_cpu_ns_per_msg", 0), 100 * d.get("server_core_busy", 0), 100 * d.get("load_cpu", 0), sys.argv[4],
  "" if d.get("ok") else "  FAILED: " + d.get("error", "")))' "$line" "$rep" "$name" "$rc"
  done
done

python3 - "$JSONL" "$PAIRS" <<'EOF' | tee -a "$TXT"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = []
for r in runs:
    if r["server"] not in servers:
        servers.append(r["server"])
ok = [r for r in runs if r.get("ok")]
def med(xs):
    return statistics.median(xs) if xs else float("nan")
print("\nmedians over reps (ok runs only; for msg-* and grpc a message is one call):")
print("%-11s %11s %8s %9s %9s %13s %8s %7s %3s %5s" % ("server", "msgs/s", "MB/s", "p50 us", "p99 us",
      "srv ns/msg", "srvCPU", "srvcore", "lg", "ok/n"))
for s in servers:
    rs = [r for r in ok if r["server"] == s]
    n = len([r for r in runs if r["server"] == s])
    if not rs:
        print("%-11s %s" % (s, "no successful run")); continue
    print("%-11s %11.0f %8.1f %9.1f %9.1f %13.0f %7.0f%% %6.0f%% %3.0f%% %2d/%d" % (s,
        med([r["msgs_per_s"] for r in rs]), med([r["mb_per_s"] for r in rs]),
        med([r["rtt_us"]["p50"] for r in rs]), med([r["rtt_us"]["p99"] for r in rs]),
        med([r["server_cpu_ns_per_msg"] for r in rs]), 100 * med([r["server_cpu"] for r in rs]),
        100 * med([r["server_core_busy"] for r in rs]), 100 * med([r["load_cpu"] for r in rs]), len(rs), n))
pairs = [tuple(p.split("/", 1)) for p in sys.argv[2].split(",") if "/" in p]
def by_rep(s, key):
    return {r["rep"]: key(r) for r in ok if r["server"] == s}
metrics = [("msgs/s", lambda r: r["msgs_per_s"], "higher is better"),
           ("server CPU ns/msg", lambda r: r["server_cpu_ns_per_msg"], "lower is better"),
           ("p99 RTT", lambda r: r["rtt_us"]["p99"], "lower is better")]
for title, key, sense in metrics:
    lines = []
    for a, b in pairs:
        if a not in servers or b not in servers:
            continue
        A, B = by_rep(a, key), by_rep(b, key)
        ratios = [A[k] / B[k] for k in sorted(A) if k in B and B[k] > 0]
        if ratios:
            lines.append("  %-10s / %-10s %6.3fx  (%s)" % (a, b, med(ratios), " ".join("%.3f" % x for x in ratios)))
    if lines:
        print("\n%s ratio, median of per-rep ratios (per-rep ratios, rep order; %s):" % (title, sense))
        print("\n".join(lines))
bad = [r for r in runs if not r.get("ok")]
if bad:
    print("\nfailed runs: " + ", ".join("%s r%s (%s)" % (r["server"], r["rep"], r.get("error", "")) for r in bad))
EOF
echo "raw runs: $JSONL; logs: $LOGS"
