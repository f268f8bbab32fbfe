#!/usr/bin/env bash
# weft-mux as a user runs it: the one-process demo (8 MiB over 2 firmware channels with
# telemetry and control, JSON checked), then `serve` on a Unix socket and `run` against it
# from another process, bad arguments (exit 2), no server (exit 1), SIGTERM (exit 0).
# Usage: mux_demo.sh DIR (the directory holding weft-mux)
set -euo pipefail
dir=$1
tmp=$(mktemp -d)
srv=
trap '[[ -n "$srv" ]] && kill "$srv" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
backend=${WEFT_TEST_BACKEND:-auto}

out=$("$dir/weft-mux" demo --image-mib 4 --bulk 2 --telemetry-ms 5 --backend "$backend" --json 2>/dev/null)
echo "$out"
[[ "$out" == *'"ok":true'* ]] || fail "demo not ok"
[[ "$out" == *'"images_ok":2'* ]] || fail "checksums"
[[ "$out" == *'"idle_pings":300'* ]] || fail "idle control round trips"

"$dir/weft-mux" serve --listen "unix:$tmp/mux.sock" --backend "$backend" >"$tmp/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "serving on" "$tmp/serve.log" && break; sleep 0.05; done
grep -q "serving on" "$tmp/serve.log" || { cat "$tmp/serve.log"; fail "serve did not start"; }
"$dir/weft-mux" run --connect "unix:$tmp/mux.sock" --image-mib 2 >"$tmp/run.log" 2>&1 ||
  { cat "$tmp/run.log"; fail "run against serve"; }
cat "$tmp/run.log"
grep -q "checksums 1/1 ok" "$tmp/run.log" || fail "run output"
grep -q "^ok" "$tmp/run.log" || fail "run verdict"

set +e
"$dir/weft-mux" run --connect "unix:$tmp/absent.sock" --image-mib 1 >/dev/null 2>&1; rc=$?
[[ $rc -eq 1 ]] || fail "no server exits 1, got $rc"
"$dir/weft-mux" demo --bulk 0 >/dev/null 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "bad argument exits 2, got $rc"
"$dir/weft-mux" frobnicate >/dev/null 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "unknown mode exits 2, got $rc"
kill -TERM "$srv"; wait "$srv"; rc=$?
srv=
[[ $rc -eq 0 ]] || fail "SIGTERM: serve exited $rc"
set -e
[[ ! -e "$tmp/mux.sock" ]] || fail "socket file left behind"
echo "mux_demo: ok"
