#!/usr/bin/env bash
# weft-echo as the echo candidate of the peers harness (../shared/peers, next to this
# repository): its echo suite measures the epoll, Boost.Asio and liburing peers and weft-echo
# side by side, and prints weft-echo's per-rep ratios to each.
#
# Usage: bench/peers_candidate.sh [options] [--run [run.sh options...]]
#   --build DIR       build tree with weft-echo (default: build/release)
#   --peers DIR       the peers harness (default: ../shared/peers from the repository root)
#   --backend B       uring or epoll (default: uring); the row is named weft-<B>
#   --port P          the candidate's port (default 29691); the harness's peers use
#                     PORT_BASE + 91..93 (PORT_BASE defaults to 29600 here)
#   --run ...         run the harness's echo suite; the options after --run go to run.sh
#                     (for example --reps 5 --no-install). Takes minutes of both cores.
# Without --run: only checks the candidate command, started the way the harness starts it
# (bash -c "exec CMD" with PORT in the environment): that it listens within 10 s, echoes a
# 64-byte and a 1 MiB frame unchanged (the harness's largest: weft-echo runs with
# --max-frame 1048576) and stops on SIGTERM. Seconds, not minutes.
#
# The harness builds its peers and writes results under its own build/ directory. So that
# the shared checkout stays clean, this script runs a copy of it in <build>/peers (its
# build/ is kept there between runs); results land in <build>/peers/build/results/.
# Exit status: 0 ok; 1 the check or the run failed; 2 bad arguments.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
PEERS=$ROOT/../shared/peers
BACKEND=uring
PORT=29691
RUN=0
RUN_ARGS=()

die() { echo "peers_candidate: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --run) RUN=1; shift; RUN_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $BACKEND == uring || $BACKEND == epoll ]] || die "--backend: uring or epoll"
[[ $PORT =~ ^[0-9]+$ ]] && ((PORT >= 1024 && PORT < 65536)) || die "--port: 1024..65535"
ECHO_BIN=$BUILD/examples/echo/weft-echo
[[ -x $ECHO_BIN ]] || die "missing $ECHO_BIN: cmake --build $BUILD --target weft-echo"

# The harness substitutes nothing: $PORT is expanded by its bash -c.
CMD="$ECHO_BIN --port \$PORT --workers 1 --backend $BACKEND --max-frame 1048576"
NAME=weft-$BACKEND

if ((RUN)); then
  [[ -x $PEERS/run.sh ]] || die "no peers harness at $PEERS (--peers DIR)"
  PEERS=$(cd "$PEERS" && pwd)
  COPY=$BUILD/peers
  mkdir -p "$COPY"
  # Everything but its build/ directory, which stays in the copy between runs.
  (cd "$PEERS" && tar --exclude=./build -cf - .) | (cd "$COPY" && tar -xf -)
  echo "peers harness: $PEERS, run from the copy $COPY"
  echo "candidate $NAME: $CMD (port $PORT)"
  cd "$COPY"
  PORT_BASE=${PORT_BASE:-29600} exec ./run.sh --suites echo --candidate-echo "$CMD" "$PORT" \
    --candidate-name "$NAME" "${RUN_ARGS[@]}"
fi

# ---- check only ----
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open "$PORT" && die "port $PORT already in use on 127.0.0.1 (--port)"
LOG=$(mktemp)
PID=""
cleanup() {
  if [[ -n $PID ]]; then
    kill -KILL -- "-$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -f "$LOG"
}
trap cleanup EXIT
echo "candidate $NAME: $CMD (port $PORT)"
# As the harness does: its own process group, bash -c "exec CMD" with PORT set.
PORT=$PORT setsid bash -c "exec $CMD" >"$LOG" 2>&1 </dev/null &
PID=$!
for ((i = 0; i < 100; i++)); do
  port_open "$PORT" && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if ! port_open "$PORT"; then
  echo "peers_candidate: $NAME did not listen on 127.0.0.1:$PORT within 10 s:" >&2
  sed 's/^/    /' "$LOG" >&2
  exit 1
fi
rc=0
python3 - "$PORT" <<'EOF' || rc=$?
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
for size in (64, 1 << 20):
    payload = bytes((i * 31 + 7) & 0xFF for i in range(size))
    frame = struct.pack(">I", size) + payload
    s.sendall(frame)
    got = bytearray()
    while len(got) < len(frame):
        chunk = s.recv(len(frame) - len(got))
        if not chunk:
            sys.exit("peers_candidate: closed after %d of %d bytes of the %d-byte frame's echo"
                     % (len(got), len(frame), size))
        got += chunk
    if bytes(got) != frame:
        sys.exit("peers_candidate: the %d-byte frame's echo differs" % size)
    print("echoed a %d-byte frame unchanged" % size)
s.close()
EOF
kill -TERM -- "-$PID" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  echo "peers_candidate: $NAME did not stop within 5 s of SIGTERM" >&2
  rc=1
else
  wait "$PID" 2>/dev/null || true
  PID=""
  echo "stopped on SIGTERM: $(grep 'stopped' "$LOG" || echo 'no stop line')"
fi
if ((rc != 0)); then
  sed 's/^/    /' "$LOG" >&2
  exit 1
fi
echo "ok: run the comparison with: bench/peers_candidate.sh --backend $BACKEND --run --reps 5"
