#!/usr/bin/env bash
# weft-demo over HTTPS (the TLS terminator of weft::tls_proxy in front of its HTTP listener),
# driven by curl: a self-signed pair from scripts/make-self-signed.sh; GET and keep-alive;
# a 200 KiB chunked echo; SSE with --no-buffer reaching a publish made over HTTPS; ALPN weft
# reaching the binary protocol (openssl s_client); mutual TLS required: refused without a
# client certificate, accepted with one; SIGTERM drains and exits 0.
# Usage: demo_https.sh DEMO_DIR SCRIPTS_DIR
set -euo pipefail
demo=$1/weft-demo
scripts=$2
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

"$scripts/make-self-signed.sh" "$tmp/pair" >/dev/null
start() {  # extra demo options...
  : >"$tmp/log"
  "$demo" --port 0 --rpc-port 0 --tls-port 0 --tls-cert "$tmp/pair/cert.pem" \
    --tls-key "$tmp/pair/key.pem" --backend "${WEFT_TEST_BACKEND:-auto}" "$@" >"$tmp/log" 2>&1 &
  srv=$!
  for _ in $(seq 200); do grep -q "Ctrl-C" "$tmp/log" && break; sleep 0.05; done
  port=$(sed -n 's|.*https       https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/log")
  [[ -n $port ]] || fail "weft-demo did not start with HTTPS"
  base=https://127.0.0.1:$port
}
stop() {
  kill -TERM "$srv"
  wait "$srv" || fail "weft-demo did not exit 0 on SIGTERM"
  srv=""
}
c() { curl -sS --max-time 10 --cacert "$tmp/pair/cert.pem" "$@"; }

start
grep -q "kTLS not used" "$tmp/log" || fail "the kTLS verdict was not logged"
[[ "$(c "$base/plaintext")" == "Hello, World!" ]] || fail "GET over https"
[[ "$(c "https://localhost:$port/plaintext")" == "Hello, World!" ]] || fail "GET by name"
c -v "$base/plaintext" "$base/plaintext" -o /dev/null -o /dev/null 2>"$tmp/v" || fail keep-alive
grep -qi "re-using existing connection" "$tmp/v" || { cat "$tmp/v"; fail "connection not reused"; }
grep -q "ALPN.*http/1.1" "$tmp/v" || { cat "$tmp/v"; fail "ALPN http/1.1 not negotiated"; }
# Plain curl without the CA refuses the self-signed certificate.
curl -sS --max-time 10 "$base/plaintext" >/dev/null 2>&1 && fail "an untrusted certificate was accepted"

head -c 204800 /dev/urandom >"$tmp/body"
c -H "Transfer-Encoding: chunked" --data-binary @"$tmp/body" "$base/echo" -o "$tmp/echoed"
cmp -s "$tmp/body" "$tmp/echoed" || fail "chunked echo over https differs"

# SSE over https with --no-buffer: a publish (over https too) arrives as one event.
c -N --max-time 4 "$base/events/news" >"$tmp/sse" 2>/dev/null &
sse=$!
for _ in $(seq 200); do
  n=$(c "$base/metrics" | sed -n 's/^weft_sse_streams_total \([0-9]*\)$/\1/p')
  [[ -n $n && $n -ge 1 ]] && break
  sleep 0.05
done
code=$(printf 'line one\nline two' | c -o /dev/null -w '%{http_code}' --data-binary @- \
  "$base/publish/news")
[[ $code == 202 ]] || fail "publish over https: $code"
wait "$sse" || true
grep -q $'^data: line one$' "$tmp/sse" && grep -q $'^data: line two$' "$tmp/sse" ||
  { cat "$tmp/sse"; fail "SSE event over https"; }

# ALPN weft goes to the binary protocol: an HTTP request there gets no HTTP answer.
out=$(printf 'GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n' |
  timeout 10 openssl s_client -quiet -alpn weft -connect "127.0.0.1:$port" \
    -CAfile "$tmp/pair/cert.pem" 2>/dev/null | tr -d '\0' | od -An -c | tr -d ' \n' || true)
[[ -n $out ]] || fail "ALPN weft: no answer from the binary protocol"
[[ $out != *"HTTP/1.1"* ]] || fail "ALPN weft reached the HTTP listener: $out"
out=$(printf 'GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
  timeout 10 openssl s_client -quiet -ign_eof -alpn http/1.1 -connect "127.0.0.1:$port" \
    -CAfile "$tmp/pair/cert.pem" 2>/dev/null || true)
[[ $out == *"Hello, World!"* ]] || fail "ALPN http/1.1 did not reach the HTTP listener: $out"
stop

# Mutual TLS, required: the test CA signs the client certificate.
"$scripts/make-test-certs.sh" "$tmp/certs" >/dev/null 2>&1
start --tls-ca "$tmp/certs/ca.pem" --tls-require-client-cert
c "$base/plaintext" >/dev/null 2>&1 && fail "no client certificate was accepted"
[[ "$(c --cert "$tmp/certs/client.pem" --key "$tmp/certs/client.key" "$base/plaintext")" == \
   "Hello, World!" ]] || fail "mutual TLS with the client certificate"
c --cert "$tmp/certs/rogue.pem" --key "$tmp/certs/rogue.key" "$base/plaintext" >/dev/null 2>&1 &&
  fail "a client certificate from another CA was accepted"
grep -q "client certificate CN=device-1\|client certificate /CN=device-1" "$tmp/log" ||
  fail "the client identity was not logged"
m=$(c --cert "$tmp/certs/client.pem" --key "$tmp/certs/client.key" "$base/metrics/tls")
grep -q '^weft_tls_peers_verified_total [1-9]' <<<"$m" || { echo "$m"; fail "metrics: peers_verified"; }
grep -q '^weft_tls_handshake_failures_total [2-9]' <<<"$m" || { echo "$m"; fail "metrics: failures"; }
stop
echo "demo_https: ok"
