#!/usr/bin/env bash
# Unary calls against the framed echo (issue #14): weft-msg-bench-server (one method that
# answers a REQUEST with its own payload) and weft-echo, both with one worker, under the same
# closed-loop load from weft-load (--proto msg / framed echo: 64 connections x 16 in flight,
# 64-byte payload by default) and the same pinning, interleaved over --reps. Reports, per
# server, the medians of server CPU per message (per call for msg-*), msgs/s, p50 and p99,
# and the ratios msg-uring / weft-uring and msg-epoll / weft-epoll (median of per-rep ratios).
# Target: server CPU per call <= 1.2x the echo's CPU per message.
#
# Usage: bench/run_unary_compare.sh [options of bench/run_echo_compare.sh]
# Defaults here: --build build/release --servers weft-uring,msg-uring,weft-epoll,msg-epoll
#   --pairs msg-uring/weft-uring,msg-epoll/weft-epoll --name unary-compare; any option given
#   overrides them. Environment: SERVER_CPU, LOAD_CPU (as run_echo_compare.sh: 0 and 1).
# Build: cmake --build build/release --target weft-echo weft-msg-bench-server weft-load
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPARE_HELP=$0 exec "$ROOT/bench/run_echo_compare.sh" --build "$ROOT/build/release" \
  --servers weft-uring,msg-uring,weft-epoll,msg-epoll \
  --pairs msg-uring/weft-uring,msg-epoll/weft-epoll --name unary-compare "$@"
