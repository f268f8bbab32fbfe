#!/usr/bin/env bash
# User-space instructions per echoed message (issue #13) and per unary call (issue #14): each
# server runs under callgrind twice, for a short and a long load of the same shape, and
#
#   instructions/message = (Ir(long) - Ir(short)) / (msgs(long) - msgs(short))
#
# so that start-up, connection set-up, drain and teardown (the same in both runs) cancel.
# Ir counts user-space instructions only: callgrind does not see the kernel.
#
# Usage: bench/instructions_per_msg.sh [options]
#   --build DIR       build tree with weft-echo, weft-load, weft-baseline-echo and, for the
#                     msg servers, weft-msg-bench-server (default: build/release)
#   --servers LIST    comma list of weft-uring,weft-epoll,baseline,msg-uring,msg-epoll
#                     (default: weft-uring,weft-epoll,baseline). msg-*: weft-msg-bench-server
#                     (one worker; bench/msg_server.cc) loaded by weft-load --proto msg, where
#                     a message is one call (REQUEST + RESPONSE of the same 64-byte payload)
#   --conns N --inflight K --size BYTES   load shape (default 64, 16, 64)
#   --short N         messages echoed in the short run (default 100000)
#   --long N          messages echoed in the long run (default 1000000)
#   --max-seconds S   bound on each load run, whatever the count (default 120)
#   --top N           functions listed per weft server (default 15)
#   --out DIR         results directory (default: <build>/instructions-per-msg/<stamp>)
#   --port-base P     servers listen on P+1..P+5 (default 29500)
#
# Each run: `valgrind --tool=callgrind` starts the server on 127.0.0.1 (one worker for
# weft-echo), weft-load (not under valgrind) opens the connections and echoes --short or
# --long messages (--max-msgs, no warm-up), closes, and the server is stopped with SIGTERM,
# on which callgrind writes its totals. msgs = frames weft-load sent (every one reaches the
# server; the at most conns x inflight frames still in flight at the end are the same in
# both runs and cancel). Under callgrind the server is the slow side, so every receive
# holds many frames: the figure is for a saturated server.
# io_uring under valgrind 3.19: it works, but an idle io_uring worker keeps valgrind's
# thread lock, so after SIGTERM a small load ("poke", counted in pokes.txt) lets weft-echo's
# main thread take the signal (see stop_server).
#
# Output, in --out: results.tsv and results.json (per server: msgs, Ir of both runs,
# instructions per message, ratio to the baseline and, for msg-X, to weft-X: per call against
# the echo's per message), top-<server>.txt (the --top functions by
# self instructions per message, from the same difference), and the callgrind files and logs.
# The table is printed as well. Exit status: 0 ok; 1 a run failed (the reason is printed:
# for example io_uring unusable under this valgrind); 2 bad arguments or missing tools.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
SERVERS=weft-uring,weft-epoll,baseline
CONNS=64
INFLIGHT=16
SIZE=64
SHORT=100000
LONG=1000000
MAX_SECONDS=120
TOP=15
OUT=""
PORT_BASE=29500

die() { echo "instructions_per_msg: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --inflight) INFLIGHT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --short) SHORT=$2; shift 2 ;;
    --long) LONG=$2; shift 2 ;;
    --max-seconds) MAX_SECONDS=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --port-base) PORT_BASE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in CONNS INFLIGHT SIZE SHORT LONG MAX_SECONDS TOP PORT_BASE; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "${v,,} must be a number"
done
((SHORT >= 1000 && LONG >= 2 * SHORT)) || die "need --short >= 1000 and --long >= 2 x --short"
((MAX_SECONDS >= 10 && MAX_SECONDS <= 600)) || die "--max-seconds: 10..600"
((PORT_BASE >= 1024 && PORT_BASE <= 65000)) || die "--port-base: 1024..65000"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
command -v callgrind_annotate >/dev/null || die "callgrind_annotate is missing (valgrind package)"
command -v python3 >/dev/null || die "python3 is needed for the summary"

ECHO_BIN=$BUILD/examples/echo/weft-echo
LOAD_BIN=$BUILD/bench/weft-load
BASE_BIN=$BUILD/bench/weft-baseline-echo
MSG_BIN=$BUILD/bench/weft-msg-bench-server
for b in "$ECHO_BIN" "$LOAD_BIN" "$BASE_BIN"; do
  [[ -x $b ]] || die "missing $b: cmake --build $BUILD --target weft-echo weft-load weft-baseline-echo"
done
[[ ,$SERVERS, != *,msg-* || -x $MSG_BIN ]] ||
  die "missing $MSG_BIN: cmake --build $BUILD --target weft-msg-bench-server"
OUT=${OUT:-$BUILD/instructions-per-msg/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"

server_cmd() {  # name port -> the command line (without valgrind)
  case $1 in
    weft-uring) echo "$ECHO_BIN --port $2 --workers 1 --backend uring" ;;
    weft-epoll) echo "$ECHO_BIN --port $2 --workers 1 --backend epoll" ;;
    baseline) echo "$BASE_BIN --port $2" ;;
    msg-uring) echo "$MSG_BIN --port $2 --workers 1 --backend uring" ;;
    msg-epoll) echo "$MSG_BIN --port $2 --workers 1 --backend epoll" ;;
    *) die "unknown server $1 (weft-uring, weft-epoll, baseline, msg-uring, msg-epoll)" ;;
  esac
}
server_port() {
  case $1 in weft-uring) echo $((PORT_BASE + 1)) ;; weft-epoll) echo $((PORT_BASE + 2)) ;;
    baseline) echo $((PORT_BASE + 3)) ;; msg-uring) echo $((PORT_BASE + 4)) ;;
    msg-epoll) echo $((PORT_BASE + 5)) ;; esac
}
proto_of() {  # name -> the weft-load protocol it speaks
  case $1 in msg-*) echo msg ;; *) echo echo ;; esac
}
for s in "${SERVER_LIST[@]}"; do server_cmd "$s" 0 >/dev/null; done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
SERVER_PID=""
# SIGTERM: weft-echo drains and exits, the baseline leaves its loop; either way callgrind
# then writes its output file. Valgrind 3.19 runs one thread at a time and does not treat
# io_uring_enter as a blocking call: an idle io_uring worker waits in the kernel holding
# valgrind's thread lock, so weft-echo's main thread never gets to take the signal. A small
# load ("poke") after the signal makes the worker run out its time slice and hand the lock
# over; the main thread then stops the runtime. The poke costs at most about one time slice
# (100,000 superblocks) in either run, small next to the difference measured. KILL after 60 s.
POKES=0
POKE_PROTO=echo
stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  local pid=$SERVER_PID port=${1:-} i
  SERVER_PID=""
  POKES=0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    if [[ -n $port ]] && ((i % 10 == 9 && POKES < 20)); then
      POKES=$((POKES + 1))
      timeout 10 "$LOAD_BIN" --proto "$POKE_PROTO" --port "$port" --conns 1 --inflight 1 --warmup 0 --duration 1 \
        --max-msgs 2000 >/dev/null 2>&1 || true
    fi
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

FAILED=0
fail() { echo "instructions_per_msg: $*" >&2; FAILED=1; }

# One run: server under callgrind, weft-load for N messages, SIGTERM. Prints "msgs Ir".
run_one() {  # name length-label msgs
  local name=$1 label=$2 msgs=$3 port cmd i line rc=0
  port=$(server_port "$name")
  read -r -a cmd <<<"$(server_cmd "$name" "$port")"
  local cg=$OUT/callgrind.out.$name.$label log=$OUT/server-$name-$label.log
  port_open "$port" && { fail "port $port already in use on 127.0.0.1 (use --port-base)"; return 1; }
  rm -f "$cg"
  # setsid: its own process group, so stop_server signals exactly it. valgrind runs the
  # server in its own process: the group's leader is the server.
  setsid valgrind --tool=callgrind --callgrind-out-file="$cg" --collect-systime=no \
    --separate-threads=no --dump-instr=no --compress-strings=no \
    "${cmd[@]}" >"$log" 2>&1 </dev/null &
  SERVER_PID=$!
  # Ready when the port accepts (one probe connection, the same in both runs). Not the
  # "listening on" line: under valgrind an io_uring worker can hold the thread lock (see
  # stop_server), so the main thread may print it only at the end; it is checked then.
  for ((i = 0; i < 600; i++)); do
    port_open "$port" && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      SERVER_PID=""
      if [[ $name == weft-uring ]]; then
        fail "$name: weft-echo --backend uring did not start under $(valgrind --version);" \
          "io_uring may not work under this valgrind here; log $log:"
      else
        fail "$name: the server exited under valgrind; log $log:"
      fi
      sed 's/^/    /' "$log" | tail -20 >&2
      return 1
    fi
    sleep 0.1
  done
  if ! port_open "$port"; then
    stop_server "$port"
    fail "$name: not listening on $port within 60 s under valgrind; log $log"
    return 1
  fi
  POKE_PROTO=$(proto_of "$name")
  line=$(timeout $((MAX_SECONDS + 60)) "$LOAD_BIN" --proto "$POKE_PROTO" --port "$port" --conns "$CONNS" \
    --inflight "$INFLIGHT" --size "$SIZE" --warmup 0 --duration "$MAX_SECONDS" \
    --max-msgs "$msgs" --json 2>"$OUT/load-$name-$label.err") || rc=$?
  stop_server "$port"
  echo "$name $label: $POKES poke(s) after SIGTERM" >>"$OUT/pokes.txt"
  # weft-echo and weft-msg-bench-server say which backend they ran: no silent fallback from
  # io_uring to epoll.
  local want=${name#*-}
  [[ $want == uring ]] && want=io_uring
  if [[ $name != baseline ]] && ! grep -qF "(1 worker(s), $want)" "$log"; then
    fail "$name $label: the server did not report the $want backend: $(grep listening "$log" || true)"
    return 1
  fi
  echo "$line" >"$OUT/load-$name-$label.json"
  if [[ $rc -ne 0 || -z $line ]]; then
    fail "$name $label: weft-load failed (exit $rc): $(tail -3 "$OUT/load-$name-$label.err")"
    return 1
  fi
  [[ -s $cg ]] || { fail "$name $label: callgrind wrote no $cg; log $OUT/server-$name-$label.log"; return 1; }
  callgrind_annotate --inclusive=no --threshold=100 "$cg" >"$OUT/annotate-$name-$label.txt" 2>/dev/null ||
    { fail "$name $label: callgrind_annotate failed on $cg"; return 1; }
  return 0
}

echo "load: ${CONNS} conns x ${INFLIGHT} in flight, ${SIZE}-byte payload; short ${SHORT}, long ${LONG} messages"
echo "tools: $(valgrind --version) (callgrind, user-space Ir), weft HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
for name in "${SERVER_LIST[@]}"; do
  for label in short long; do
    n=$SHORT
    [[ $label == long ]] && n=$LONG
    echo "  $name $label ($n messages) ..."
    run_one "$name" "$label" "$n" || true
  done
done

rc=0
python3 - "$OUT" "$TOP" "${SERVER_LIST[@]}" <<'EOF' || rc=$?
import json, os, re, sys
out, top, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def totals(path):
    # callgrind output: "events: Ir" then "summary:" / "totals:" lines.
    for line in open(path):
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError("no totals in " + path)

def functions(path):
    # callgrind_annotate --inclusive=no lines: "  1,234,567 ( 3.47%)  file:function [object]".
    # The object path is dropped: functions are named alike on every machine.
    fns = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.+?)(?:\s+\[[^\]]*\])?\s*$", line)
        if m and ":" in m.group(2) and not m.group(2).startswith("PROGRAM TOTALS"):
            fns[m.group(2)] = fns.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return fns

rows = {}
for s in servers:
    r = {"server": s}
    try:
        for label in ("short", "long"):
            load = json.load(open(os.path.join(out, "load-%s-%s.json" % (s, label))))
            r[label] = {"msgs": load["frames_sent"], "echoed": load["frames_received"],
                        "ir": totals(os.path.join(out, "callgrind.out.%s.%s" % (s, label)))}
        dm = r["long"]["msgs"] - r["short"]["msgs"]
        r["ipm"] = (r["long"]["ir"] - r["short"]["ir"]) / dm
        r["ok"] = True
    except (OSError, ValueError, KeyError) as e:
        r["ok"] = False
        r["error"] = str(e)
    rows[s] = r

base = rows.get("baseline", {}).get("ipm") if rows.get("baseline", {}).get("ok") else None
def echo_of(s):  # msg-X -> the weft-X row's figure (per call against the echo's per message)
    e = rows.get("weft-" + s[4:], {}) if s.startswith("msg-") else {}
    return e.get("ipm") if e.get("ok") else None
print("\n%-11s %10s %10s %15s %15s %10s %9s %9s" % ("server", "msgs short", "msgs long", "Ir short",
      "Ir long", "instr/msg", "vs base", "vs echo"))
with open(os.path.join(out, "results.tsv"), "w") as tsv:
    tsv.write("server\tmsgs_short\tmsgs_long\tir_short\tir_long\tinstr_per_msg\tratio_to_baseline"
              "\tratio_to_echo\n")
    for s in servers:
        r = rows[s]
        if not r["ok"]:
            print("%-11s FAILED (%s)" % (s, r["error"]))
            tsv.write("%s\t\t\t\t\t\t\t\n" % s)
            continue
        ratio = r["ipm"] / base if base else None
        r["ratio_to_baseline"] = ratio
        echo = echo_of(s)
        r["ratio_to_echo"] = r["ipm"] / echo if echo else None
        print("%-11s %10d %10d %15d %15d %10.1f %9s %9s" % (s, r["short"]["msgs"], r["long"]["msgs"],
              r["short"]["ir"], r["long"]["ir"], r["ipm"], "%.2fx" % ratio if ratio else "-",
              "%.2fx" % r["ratio_to_echo"] if echo else "-"))
        tsv.write("%s\t%d\t%d\t%d\t%d\t%.2f\t%s\t%s\n" % (s, r["short"]["msgs"], r["long"]["msgs"],
                  r["short"]["ir"], r["long"]["ir"], r["ipm"], "%.3f" % ratio if ratio else "",
                  "%.3f" % r["ratio_to_echo"] if echo else ""))
json.dump([rows[s] for s in servers], open(os.path.join(out, "results.json"), "w"), indent=1)

# Where the instructions go: per function, the same long - short difference per message.
for s in servers:
    r = rows[s]
    if not r["ok"] or s == "baseline":
        continue
    a = functions(os.path.join(out, "annotate-%s-short.txt" % s))
    b = functions(os.path.join(out, "annotate-%s-long.txt" % s))
    dm = r["long"]["msgs"] - r["short"]["msgs"]
    per = sorted(((b.get(f, 0) - a.get(f, 0)) / dm, f) for f in set(a) | set(b))[::-1][:top]
    with open(os.path.join(out, "top-%s.txt" % s), "w") as f:
        f.write("%s: self instructions per message, (long - short) / (msgs long - msgs short); "
                "total %.1f\n" % (s, r["ipm"]))
        for v, fn in per:
            f.write("%8.1f  %s\n" % (v, fn))
    print("\n" + open(os.path.join(out, "top-%s.txt" % s)).read().rstrip())
sys.exit(0 if all(rows[s]["ok"] for s in servers) else 1)
EOF
echo "results: $OUT/results.tsv, $OUT/results.json, $OUT/top-*.txt"
((FAILED == 0 && rc == 0)) || exit 1
