#!/usr/bin/env bash
# Memory per idle connection (issue #13), measured from outside the server: the growth of
# its resident memory while N idle connections are open, divided by N.
#
# Usage: bench/idle_memory.sh [options]
#   --build DIR       build tree with weft-echo and weft-baseline-echo (default: build/release)
#   --servers LIST    comma list of weft-uring,weft-epoll,baseline (default: all three)
#   --conns N         idle connections (default 8000; the hard RLIMIT_NOFILE bounds it)
#   --size BYTES      payload of the one frame echoed on each connection (default 64)
#   --out DIR         results directory (default: <build>/idle-memory/<stamp>)
#   --port-base P     servers listen on P+1..P+3 (default 29550)
#
# Each server: started on 127.0.0.1 (weft-echo with one worker and --max-conns N + 64), one
# warm-up connection echoes a frame and closes, then "before" is read; bench/idle_clients.py
# opens N/2 connections, each echoing one frame (so per-connection state has been touched
# once, as in a real server) and staying idle ("half"), then N/2 more ("after"). Read from
# /proc/PID/status (VmRSS, RssAnon) and /proc/PID/smaps_rollup (Pss). Reported:
#   per conn      (after - before) / N        what the issue quotes
#   marginal      (after - half) / (N / 2)    the same without one-off costs (first touches)
# Kernel socket memory is not in these figures: it is not the server's.
# The client bounds itself (an alarm). The connections stay idle for seconds only, far
# below weft's 60 s idle timeout; the client checks at the end that none was closed.
# Output: results.tsv and results.json in --out, and the table. Exit status: 0 ok; 1 a run
# failed; 2 bad arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
SERVERS=weft-uring,weft-epoll,baseline
CONNS=8000
SIZE=64
OUT=""
PORT_BASE=29550

die() { echo "idle_memory: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in CONNS SIZE PORT_BASE; do [[ ${!v} =~ ^[0-9]+$ ]] || die "${v,,} must be a number"; done
((CONNS >= 100)) || die "--conns: at least 100"
((SIZE >= 1 && SIZE <= 65536)) || die "--size: 1..65536"
((PORT_BASE >= 1024 && PORT_BASE <= 65000)) || die "--port-base: 1024..65000"
HARD=$(ulimit -Hn)
NOFILE=$((CONNS + 1024))
[[ $HARD == unlimited ]] || ((NOFILE <= HARD)) ||
  die "--conns $CONNS needs $NOFILE descriptors; the hard RLIMIT_NOFILE is $HARD"
ulimit -n "$NOFILE"  # inherited by the server and the client

ECHO_BIN=$BUILD/examples/echo/weft-echo
BASE_BIN=$BUILD/bench/weft-baseline-echo
CLIENT=$ROOT/bench/idle_clients.py
for b in "$ECHO_BIN" "$BASE_BIN"; do
  [[ -x $b ]] || die "missing $b: cmake --build $BUILD --target weft-echo weft-baseline-echo"
done
OUT=${OUT:-$BUILD/idle-memory/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"

server_cmd() {  # name port
  case $1 in
    weft-uring) echo "$ECHO_BIN --port $2 --workers 1 --backend uring --max-conns $((CONNS + 64))" ;;
    weft-epoll) echo "$ECHO_BIN --port $2 --workers 1 --backend epoll --max-conns $((CONNS + 64))" ;;
    baseline) echo "$BASE_BIN --port $2" ;;
    *) die "unknown server $1 (weft-uring, weft-epoll, baseline)" ;;
  esac
}
server_port() {
  case $1 in weft-uring) echo $((PORT_BASE + 1)) ;; weft-epoll) echo $((PORT_BASE + 2)) ;;
    baseline) echo $((PORT_BASE + 3)) ;; esac
}
for s in "${SERVER_LIST[@]}"; do server_cmd "$s" 0 >/dev/null; done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
SERVER_PID=""
CLIENT_PID=""
stop_pid() {  # pid: TERM, KILL after 5 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  [[ -z $CLIENT_PID ]] || stop_pid "$CLIENT_PID"
  [[ -z $SERVER_PID ]] || stop_pid "$SERVER_PID"
  CLIENT_PID="" SERVER_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# "VmRSS RssAnon Pss" of pid, in bytes.
mem() {
  local rss anon pss
  rss=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status")
  anon=$(awk '/^RssAnon:/ {print $2 * 1024}' "/proc/$1/status")
  pss=$(awk '/^Pss:/ {print $2 * 1024}' "/proc/$1/smaps_rollup")
  echo "$rss $anon $pss"
}
wait_line() {  # file pattern seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    [[ -n $CLIENT_PID ]] && ! kill -0 "$CLIENT_PID" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

FAILED=0
TSV=$OUT/results.tsv
echo -e "server\tconns\trss_before\trss_half\trss_after\tanon_before\tanon_half\tanon_after\tpss_before\tpss_half\tpss_after" >"$TSV"
echo "idle connections: $CONNS, one ${SIZE}-byte echo each; weft HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
for name in "${SERVER_LIST[@]}"; do
  port=$(server_port "$name")
  read -r -a cmd <<<"$(server_cmd "$name" "$port")"
  log=$OUT/server-$name.log
  clog=$OUT/client-$name.log
  port_open "$port" && die "port $port already in use on 127.0.0.1 (use --port-base)"
  "${cmd[@]}" >"$log" 2>&1 </dev/null &
  SERVER_PID=$!
  for ((i = 0; i < 100; i++)); do
    port_open "$port" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! port_open "$port"; then
    echo "idle_memory: $name did not listen on $port; log:" >&2
    sed 's/^/    /' "$log" | tail -10 >&2
    cleanup
    FAILED=1
    continue
  fi
  # Warm-up: one connection and one echo, so first-use costs fall before "before".
  python3 "$CLIENT" --port "$port" --conns 1 --stages 1 --size "$SIZE" \
    --max-seconds 30 >"$OUT/warmup-$name.log" 2>&1 &
  CLIENT_PID=$!
  wait_line "$OUT/warmup-$name.log" '^open 1' 30 || true
  kill -USR1 "$CLIENT_PID" 2>/dev/null || true
  wait "$CLIENT_PID" 2>/dev/null || true
  CLIENT_PID=""
  sleep 0.5
  read -r rss0 anon0 pss0 <<<"$(mem "$SERVER_PID")"
  python3 "$CLIENT" --port "$port" --conns "$CONNS" --stages 2 --size "$SIZE" \
    --max-seconds 240 >"$clog" 2>&1 &
  CLIENT_PID=$!
  ok=1
  if wait_line "$clog" "^open $((CONNS / 2))\$" 120; then
    sleep 0.5
    read -r rss1 anon1 pss1 <<<"$(mem "$SERVER_PID")"
    kill -USR1 "$CLIENT_PID"
    if wait_line "$clog" "^open $CONNS\$" 120; then
      sleep 0.5
      read -r rss2 anon2 pss2 <<<"$(mem "$SERVER_PID")"
      kill -USR1 "$CLIENT_PID"
      wait "$CLIENT_PID" 2>/dev/null || ok=0
    else
      ok=0
    fi
  else
    ok=0
  fi
  CLIENT_PID=""
  if ((ok == 0)) || ! grep -q "^alive $CONNS\$" "$clog"; then
    echo "idle_memory: $name: the client failed; $clog:" >&2
    sed 's/^/    /' "$clog" | tail -5 >&2
    cleanup
    FAILED=1
    continue
  fi
  cleanup
  echo -e "$name\t$CONNS\t$rss0\t$rss1\t$rss2\t$anon0\t$anon1\t$anon2\t$pss0\t$pss1\t$pss2" >>"$TSV"
done

python3 - "$TSV" "$OUT/results.json" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
res = []
print("\nbytes per idle connection (per conn = (after - before) / N; marginal = (after - half) / (N/2))")
print("%-11s %6s %14s %14s %14s %14s %14s" % ("server", "conns", "VmRSS/conn", "RssAnon/conn",
      "Pss/conn", "VmRSS marg.", "RssAnon marg."))
for r in rows:
    n = int(r["conns"])
    d = {"server": r["server"], "conns": n}
    for k in ("rss", "anon", "pss"):
        b, h, a = (int(r["%s_%s" % (k, s)]) for s in ("before", "half", "after"))
        d[k + "_per_conn"] = (a - b) / n
        d[k + "_marginal"] = (a - h) / (n - n // 2)
        d[k] = {"before": b, "half": h, "after": a}
    res.append(d)
    print("%-11s %6d %14.0f %14.0f %14.0f %14.0f %14.0f" % (d["server"], n, d["rss_per_conn"],
          d["anon_per_conn"], d["pss_per_conn"], d["rss_marginal"], d["anon_marginal"]))
json.dump(res, open(sys.argv[2], "w"), indent=1)
EOF
echo "results: $TSV, $OUT/results.json"
exit "$FAILED"
