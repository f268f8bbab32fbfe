#!/usr/bin/env bash
# weft-http-bench-server as the http and sse candidate of the peers harness
# (../shared/peers): nginx (1 worker, `return 200`), h2o, Boost.Beast, CivetWeb and
# libmicrohttpd on GET /plaintext (wrk c64, wrk c64 p16, http_load c64 p16), and the
# Boost.Asio SSE peer on GET /events fan-out (c100 r1000, c1000 r100), interleaved rep by rep;
# prints weft's per-rep ratios and their medians. Takes minutes of both cores: a bench script,
# not a CI stage.
#
# Usage: bench/run_http_compare.sh [--build DIR] [--peers DIR] [--backend uring|epoll]
#                                  [run.sh options, e.g. --reps 5 --suites http]
# The harness runs from a copy in <build>/peers (its build/ kept there between runs); results
# land in <build>/peers/build/results/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
PEERS=$ROOT/../shared/peers
BACKEND=uring
ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ $BACKEND == uring || $BACKEND == epoll ]] || { echo "--backend: uring or epoll" >&2; exit 2; }
BIN=$BUILD/bench/weft-http-bench-server
[[ -x $BIN ]] || { echo "missing $BIN: cmake --build $BUILD --target weft-http-bench-server" >&2; exit 2; }
[[ -x $PEERS/run.sh ]] || { echo "no peers harness at $PEERS (--peers DIR)" >&2; exit 2; }
PEERS=$(cd "$PEERS" && pwd)
COPY=$BUILD/peers
mkdir -p "$COPY"
(cd "$PEERS" && tar --exclude=./build -cf - .) | (cd "$COPY" && tar -xf -)
# $PORT and $SSE_RATE are expanded by the harness's bash -c.
CMD="$BIN --port \$PORT --workers 1 --backend $BACKEND --rate \${SSE_RATE:-1000}"
echo "candidate weft-$BACKEND: $CMD"
cd "$COPY"
PORT_BASE=${PORT_BASE:-29700} exec ./run.sh --suites http,sse \
  --candidate-http "$CMD" 29781 --candidate-sse "$CMD" 29782 \
  --candidate-name "weft-$BACKEND" "${ARGS[@]}"
