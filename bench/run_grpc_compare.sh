#!/usr/bin/env bash
# Unary calls, weft against gRPC C++ (issue #14): weft-msg-bench-server (one worker, io_uring
# and epoll) and weft-grpc-bench-server (gRPC's async API, one thread polling one completion
# queue; bench/grpc/), each answering a 64-byte payload with the same bytes, under the same
# closed-loop shape (64 connections x 16 calls in flight by default) and the same pinning,
# interleaved over --reps. weft is loaded by weft-load --proto msg, gRPC by weft-grpc-load
# (async, one channel per connection); both report through bench/load_common.h. Reports
# medians of server CPU per call (/proc/PID/stat over the measured window), calls/s, p50 and
# p99, and the ratios msg-uring / grpc and msg-epoll / grpc, with the exact commands.
# Targets: server CPU per call <= 0.2x gRPC's; p99 no worse.
#
# Usage: bench/run_grpc_compare.sh [options of bench/run_echo_compare.sh]
# Defaults here: --build build/release --servers msg-uring,msg-epoll,grpc
#   --pairs msg-uring/grpc,msg-epoll/grpc --name grpc-compare; any option given overrides
#   them. Environment: SERVER_CPU, LOAD_CPU (as run_echo_compare.sh: 0 and 1).
# Build: scripts/deps.sh bench (gRPC), then
#   cmake --build build/release --target weft-msg-bench-server weft-load \
#     weft-grpc-bench-server weft-grpc-load
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPARE_HELP=$0 exec "$ROOT/bench/run_echo_compare.sh" --build "$ROOT/build/release" \
  --servers msg-uring,msg-epoll,grpc --pairs msg-uring/grpc,msg-epoll/grpc \
  --name grpc-compare "$@"
