#!/usr/bin/env bash
# MQTT messages per second through mosquitto on loopback (docs/performance.md §13): starts a
# broker on a free port, runs weft-mqtt-bench for QoS 0 and QoS 1, --reps times interleaved,
# and prints each run and the medians. Usage:
#   bench/run_mqtt_bench.sh [--bin build/release/bench] [--reps 3] [--seconds 3] [--payload 64]
set -euo pipefail
bin=build/release/bench
reps=3
secs=3
payload=64
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
tmp=$(mktemp -d)
chmod 777 "$tmp"
broker=""
trap '[[ -n $broker ]] && kill $broker 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "listener $port 127.0.0.1"
  echo "allow_anonymous true"
  echo "max_inflight_messages 64"
  [[ $(id -u) == 0 ]] && echo "user root"
} >"$tmp/mosquitto.conf"
"$mosq" -c "$tmp/mosquitto.conf" >"$tmp/broker.log" 2>&1 &
broker=$!
sleep 0.5
declare -A rates
for r in $(seq "$reps"); do
  for q in 0 1; do
    line=$(timeout $((secs + 20)) "$bin/weft-mqtt-bench" --broker "127.0.0.1:$port" --qos $q \
      --seconds "$secs" --payload "$payload" "${extra[@]}")
    echo "rep $r: $line"
    rates[$q]+="$(echo "$line" | sed -n 's/.*: \([0-9]*\) msgs\/s delivered.*/\1/p') "
  done
done
for q in 0 1; do
  median=$(echo "${rates[$q]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "qos$q median: $median msgs/s delivered"
done
