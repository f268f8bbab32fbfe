#!/usr/bin/env bash
# weft-demo driven by real clients: curl (keep-alive, chunked upload, --no-buffer SSE,
# Last-Event-ID resume), weft-cli over the binary protocol (a PUBLISH reaches an SSE client),
# a raw socket for malformed input; jobs with short and long polling and SSE progress;
# /metrics; SIGTERM drains and exits 0.
# Usage: demo_http.sh DEMO_DIR CLI_DIR (the directories of weft-demo and weft-cli)
set -euo pipefail
demo=$1/weft-demo
clidir=$2
tmp=$(mktemp -d)
srv=""
cleanup() {
  [[ -n $srv ]] && kill "$srv" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $tmp/log ]] && sed 's/^/    server: /' "$tmp/log" >&2; exit 1; }

"$demo" --port 0 --rpc-port 0 --rpc-unix "$tmp/rpc.sock" --backend "${WEFT_TEST_BACKEND:-auto}" >"$tmp/log" 2>&1 &
srv=$!
for _ in $(seq 200); do grep -q "Ctrl-C" "$tmp/log" && break; sleep 0.05; done
port=$(sed -n 's|.*dashboard   http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/log")
rpc=$(sed -n 's|.*rpc         127.0.0.1:\([0-9]*\) .*|\1|p' "$tmp/log")
[[ -n $port && -n $rpc ]] || fail "weft-demo did not start"
base=http://127.0.0.1:$port
c() { curl -sS --max-time 10 "$@"; }
# Waits (10 s at most) until the server has opened N event streams since it started: a
# publish made after that reaches the newest subscriber (no sleeping on a busy machine).
wait_streams() {
  for _ in $(seq 200); do
    n=$(c "$base/metrics" | sed -n 's/^weft_sse_streams_total \([0-9]*\)$/\1/p')
    [[ -n $n && $n -ge $1 ]] && return 0
    sleep 0.05
  done
  fail "event stream $1 was not opened"
}

# Plaintext, and keep-alive: curl reuses the connection for the second URL.
[[ "$(c "$base/plaintext")" == "Hello, World!" ]] || fail plaintext
c -v "$base/plaintext" "$base/plaintext" -o /dev/null -o /dev/null 2>"$tmp/v" || fail keep-alive
grep -qi "re-using existing connection" "$tmp/v" || { cat "$tmp/v"; fail "connection not reused"; }

# Echo: a 200 KiB chunked upload comes back byte for byte; 300 KiB is refused with 413.
head -c 204800 /dev/urandom >"$tmp/body"
c -H "Transfer-Encoding: chunked" --data-binary @"$tmp/body" "$base/echo" -o "$tmp/echoed"
cmp -s "$tmp/body" "$tmp/echoed" || fail "chunked echo differs"
head -c 307200 /dev/urandom >"$tmp/big"
code=$(c -o /dev/null -w '%{http_code}' --data-binary @"$tmp/big" "$base/echo" || true)
[[ $code == 413 ]] || fail "300 KiB echo: $code, want 413"
code=$(head -c 20000 /dev/zero | tr '\0' x | c -o /dev/null -w '%{http_code}' --data-binary @- \
  "$base/publish/demo" || true)
[[ $code == 413 ]] || fail "20 KB publish: $code, want 413"

# SSE with --no-buffer: a two-line publish arrives as two data: lines of one event.
c -N --max-time 4 "$base/events/news" >"$tmp/sse" 2>/dev/null &
sse=$!
wait_streams 1
code=$(printf 'line one\nline two' | c -o /dev/null -w '%{http_code}' --data-binary @- \
  "$base/publish/news")
[[ $code == 202 ]] || fail "publish: $code"
wait "$sse" || true
grep -q $'^data: line one$' "$tmp/sse" && grep -q $'^data: line two$' "$tmp/sse" ||
  { cat "$tmp/sse"; fail "SSE event"; }

# Last-Event-ID: after three events, resuming from the first gets exactly the other two.
ids=()
for n in 1 2 3; do
  ids+=("$(c --data-binary "event $n" "$base/publish/resume" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')")
done
c -N --max-time 1 -H "Last-Event-ID: ${ids[0]}" "$base/events/resume" >"$tmp/resume" 2>/dev/null || true
[[ "$(grep -c '^data: ' "$tmp/resume")" == 2 ]] || { cat "$tmp/resume"; fail "resume count"; }
grep -q "^id: ${ids[1]}$" "$tmp/resume" && grep -q "^id: ${ids[2]}$" "$tmp/resume" ||
  { cat "$tmp/resume"; fail "resume ids"; }

# weft-cli PUBLISH over the binary protocol reaches an SSE client.
c -N --max-time 4 "$base/events/demo" >"$tmp/bridge" 2>/dev/null &
sse=$!
wait_streams 3
"$clidir/weft-cli" --addr "127.0.0.1:$rpc" publish demo "from the cli" >/dev/null ||
  fail "weft-cli publish"
wait "$sse" || true
grep -q '^data: from the cli$' "$tmp/bridge" || { cat "$tmp/bridge"; fail "bridge"; }

# The binary protocol on the Unix socket too (AF_UNIX everywhere an address is taken).
"$clidir/weft-cli" --unix "$tmp/rpc.sock" put unix.key via-unix >/dev/null || fail "cli over unix"
[[ "$("$clidir/weft-cli" --addr "127.0.0.1:$rpc" get unix.key)" == "unix.key = via-unix"* ]] ||
  fail "a put over the Unix socket is seen over TCP"

# Jobs: 202 + Location, long poll returns when done, short poll says done, SSE progress.
hdr=$(c -D - -o "$tmp/job" --data-binary '{"duration_ms": 600}' "$base/jobs")
grep -q '^HTTP/1.1 202' <<<"$hdr" || fail "job create"
loc=$(sed -n 's/^Location: \([^\r]*\)\r*$/\1/p' <<<"$hdr")
[[ $loc == /jobs/* ]] || fail "Location: $loc"
c -N --max-time 5 "$base$loc/events" >"$tmp/progress" 2>/dev/null &
sse=$!
wait_streams 4
start=$(date +%s%N)
[[ "$(c "$base$loc?wait=10")" == *'"status":"done","progress":100'* ]] || fail "long poll"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
(( ms < 3000 )) || fail "long poll took $ms ms"
[[ "$(c "$base$loc")" == *'"status":"done"'* ]] || fail "short poll"
wait "$sse" || true
grep -q '"progress":100' "$tmp/progress" || { cat "$tmp/progress"; fail "SSE progress"; }
code=$(c -o /dev/null -w '%{http_code}' "$base/jobs/999999" || true)
[[ $code == 404 ]] || fail "unknown job: $code"
code=$(c -o /dev/null -w '%{http_code}' --data-binary '{"duration_ms": "x"}' "$base/jobs" || true)
[[ $code == 400 ]] || fail "bad job body: $code"

# Malformed input on a raw socket: 400 and close; the server still serves.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /plaintext HTTP/1.1\r\n\r\n' >&3
reply=$(timeout 5 cat <&3 || true)
exec 3<&-
[[ $reply == "HTTP/1.1 400 "* ]] || fail "no Host: ${reply%%$'\r'*}"
[[ "$(c "$base/plaintext")" == "Hello, World!" ]] || fail "served after a bad request"

# weft-cli top: the demo's metrics over the binary protocol, one line a second off a tty.
"$clidir/weft-cli" --addr "127.0.0.1:$rpc" --timeout 10000 top --count 2 >"$tmp/top" ||
  fail "weft-cli top exited $?"
[[ "$(grep -c 'req/s .* backend \(io_uring\|epoll\)' "$tmp/top")" == 2 ]] || { cat "$tmp/top"; fail top; }

# Metrics.
c "$base/metrics" >"$tmp/metrics"
grep -q '^weft_http_requests_total [1-9]' "$tmp/metrics" || fail metrics
grep -q '^weft_http_responses_status_total{code="413"} 2$' "$tmp/metrics" || fail "413 count"

# HTTP on a Unix socket (--listen unix:PATH), served to curl --unix-socket.
"$demo" --listen "unix:$tmp/http.sock" --rpc-port 0 >"$tmp/log2" 2>&1 &
srv2=$!
for _ in $(seq 200); do [[ -S $tmp/http.sock ]] && break; sleep 0.05; done
[[ "$(curl -sS --max-time 5 --unix-socket "$tmp/http.sock" http://localhost/plaintext)" == "Hello, World!" ]] ||
  { kill "$srv2"; fail "HTTP over a Unix socket"; }
kill -TERM "$srv2"; wait "$srv2" || fail "the Unix-socket demo did not exit 0"
[[ ! -e $tmp/http.sock ]] || fail "the socket file was left behind"

# SIGTERM: drain and exit 0.
kill -TERM "$srv"
rc=0
wait "$srv" || rc=$?
srv=""
[[ $rc == 0 ]] || fail "exit status $rc after SIGTERM"
echo "demo_http: ok"
