#!/usr/bin/env bash
# HTTPS keep-alive GET /plaintext: weft-tls-terminator-<backend> (weft::tls_proxy on mbedTLS
# and on OpenSSL) in front of weft-http-bench-server, against nginx terminating TLS itself and
# answering `return 200`, same certificate (EC P-256, scripts/make-self-signed.sh), TLS 1.2.
# Cipher: nginx is limited to ECDHE-ECDSA-AES128-GCM-SHA256; weft's backends pick it too (its
# suite list puts AES128-GCM first); the script checks every port with openssl s_client and
# curl (OpenSSL's defaults, as wrk) and stops if any negotiated something else.
# Load: wrk (one thread, -c connections).
# Measured per run: requests/s (wrk) and the server side's CPU per request = the sum of
# utime+stime (/proc/PID/stat) of the server processes (weft: terminator + backend; nginx:
# its one process, master_process off) over the run / the requests. Reps are interleaved
# (weft, nginx, weft, ...); the medians are printed. Bounded: every wrk run is -d seconds,
# every wait is capped. Binds 127.0.0.1 only. Then the same for full handshakes: wrk with
# `Connection: close` (each request a new TCP connection and a full TLS 1.2 handshake; wrk
# does not resume sessions), reported as handshakes/s and server CPU per handshake.
# --handshake-reps 0 skips that part.
#
# Usage: bench/run_https_compare.sh [--build DIR] [--reps N] [--duration S] [--conns N]
#                                   [--backend uring|epoll] [--tls mbedtls|openssl|both]
#                                   [--handshake-reps N]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
REPS=5
DUR=5
CONNS=32
BACKEND=uring
HS_REPS=3
TLS_BACKENDS="mbedtls openssl"
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --handshake-reps) HS_REPS=$2; shift 2 ;;
    --tls) [[ $2 == both ]] && TLS_BACKENDS="mbedtls openssl" || TLS_BACKENDS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SRV=$BUILD/bench/weft-http-bench-server
bins=("$SRV")
for t in $TLS_BACKENDS; do bins+=("$BUILD/bench/weft-tls-terminator-$t"); done
for b in "${bins[@]}"; do
  [[ -x $b ]] || { echo "missing $b: cmake --build $BUILD --target $(basename "$b")" >&2; exit 2; }
done
for t in wrk nginx openssl; do
  command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }
done
NGINX=$(command -v nginx)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$ROOT/scripts/make-self-signed.sh" "$tmp/pair" >/dev/null
CIPHER=ECDHE-ECDSA-AES128-GCM-SHA256
P_HTTP=${PORT_BASE:-29800}
P_NGINX=$((P_HTTP + 1))
declare -A P_WEFT PID_TERM
port=$((P_HTTP + 2))
for t in $TLS_BACKENDS; do P_WEFT[$t]=$port; port=$((port + 1)); done

mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx;
  proxy_temp_path $tmp/nginx;
  fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx;
  scgi_temp_path $tmp/nginx;
  server {
    listen 127.0.0.1:$P_NGINX ssl;
    ssl_certificate $tmp/pair/cert.pem;
    ssl_certificate_key $tmp/pair/key.pem;
    ssl_protocols TLSv1.2;
    ssl_ciphers $CIPHER;
    ssl_session_tickets on;
    location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
  }
}
CONF

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; exit 1
}

"$SRV" --port "$P_HTTP" --workers 1 --backend "$BACKEND" >"$tmp/srv.log" 2>&1 &
pid_srv=$!; pids+=("$pid_srv")
for t in $TLS_BACKENDS; do
  "$BUILD/bench/weft-tls-terminator-$t" --listen "127.0.0.1:${P_WEFT[$t]}" \
    --upstream "127.0.0.1:$P_HTTP" --cert "$tmp/pair/cert.pem" --key "$tmp/pair/key.pem" \
    --workers 1 --backend "$BACKEND" --max-version 1.2 >"$tmp/term-$t.log" 2>&1 &
  PID_TERM[$t]=$!; pids+=("${PID_TERM[$t]}")
done
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
pid_nginx=$!; pids+=("$pid_nginx")
wait_port "$P_HTTP"; wait_port "$P_NGINX"
for t in $TLS_BACKENDS; do wait_port "${P_WEFT[$t]}"; done

for p in "${P_WEFT[@]}" "$P_NGINX"; do
  got=$(timeout 10 openssl s_client -connect "127.0.0.1:$p" -CAfile "$tmp/pair/cert.pem" \
        </dev/null 2>/dev/null | sed -n 's/^ *Cipher *: *//p' | head -1)
  body=$(curl -sS --max-time 5 --cacert "$tmp/pair/cert.pem" "https://127.0.0.1:$p/plaintext")
  wgot=$(timeout 10 curl -sS -v --max-time 5 --cacert "$tmp/pair/cert.pem" \
        "https://127.0.0.1:$p/plaintext" 2>&1 >/dev/null | sed -n 's/.*SSL connection using \(.*\)/\1/p')
  echo "port $p: s_client cipher $got; curl (OpenSSL defaults, as wrk): $wgot; body '$body'"
  [[ $body == "Hello, World!" && $got == "$CIPHER" && $wgot == *"$CIPHER" ]] ||
    { echo "setup check failed" >&2; exit 1; }
done

ticks() {  # utime+stime of the given pids, in clock ticks
  local t=0 p f
  for p in "$@"; do
    f=$(sed 's/^.*) //' "/proc/$p/stat")
    t=$((t + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

WRK_EXTRA=()
run() {  # name port pids...
  local name=$1 port=$2; shift 2
  local t0 t1 f0 f1 out reqs rps
  t0=$(ticks "$@"); f0=$(ticks "$1")
  out=$(timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" "${WRK_EXTRA[@]}" \
        "https://127.0.0.1:$port/plaintext")
  t1=$(ticks "$@"); f1=$(ticks "$1")
  reqs=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  rps=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p')
  if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "$out" | grep "Non-2xx\|Socket errors" >&2; fi
  # microseconds of server CPU per request
  # the first pid's share (the terminator's, for weft)
  awk -v n="$name" -v r="$reqs" -v s="$rps" -v d=$((t1 - t0)) -v f=$((f1 - f0)) -v hz="$HZ" \
    'BEGIN { printf "%s %.0f %.2f %.2f\n", n, s, d * 1e6 / hz / r, f * 1e6 / hz / r }'
}

median() { sort -n | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
# phase FILE REPS UNIT: interleaved reps (each weft terminator, then nginx) into FILE, then
# each server's medians of UNIT/s and server CPU per UNIT.
phase() {
  local file=$1 reps=$2 unit=$3 rep t n
  : >"$file"
  for rep in $(seq "$reps"); do
    for t in $TLS_BACKENDS; do
      run "weft-$t" "${P_WEFT[$t]}" "${PID_TERM[$t]}" "$pid_srv" | tee -a "$file" | sed "s/^/$rep /"
    done
    run nginx "$P_NGINX" "$pid_nginx" | tee -a "$file" | sed "s/^/$rep /"
  done
  for n in $(for t in $TLS_BACKENDS; do echo "weft-$t"; done) nginx; do
    echo "median $n: $(awk -v n="$n" '$1 == n {print $2}' "$file" | median) $unit/s," \
      "$(awk -v n="$n" '$1 == n {print $3}' "$file" | median) us CPU per $unit (server side)"
  done
}

echo "rep name req/s cpu_us_per_req first_process_us_per_req"
phase "$tmp/results" "$REPS" request
g=$(awk '$1 == "nginx" {print $3}' "$tmp/results" | median)
for t in $TLS_BACKENDS; do
  f=$(awk -v n="weft-$t" '$1 == n {print $4}' "$tmp/results" | median)
  w=$(awk -v n="weft-$t" '$1 == n {print $3}' "$tmp/results" | median)
  echo "median weft-$t terminator alone: $f us CPU per request (the rest is weft-http-bench-server)"
  awk -v t="$t" -v w="$w" -v g="$g" 'BEGIN { printf "weft-%s / nginx CPU per request: %.2fx\n", t, w / g }'
done

[[ $HS_REPS -gt 0 ]] || exit 0
echo
echo "full handshakes (Connection: close, wrk -c16): rep name handshakes/s cpu_us_per_handshake first_process_us"
WRK_EXTRA=(-H "Connection: close")
CONNS=16
phase "$tmp/hs" "$HS_REPS" handshake
