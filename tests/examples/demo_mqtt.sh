#!/usr/bin/env bash
# weft-demo's fleet bridge (--mqtt) end to end with a real mosquitto on a free loopback port:
# a POST /publish/demo reaches `mosquitto_sub -t 'fleet/<id>/#'` as fleet/<id>/demo, a
# `weft-cli publish local/temp` reaches it as fleet/<id>/local/temp, and a
# `mosquitto_pub -t fleet/<id>/cmd/demo` reaches an SSE client (curl --no-buffer) of the
# local topic cmd/demo (/events/cmd%2Fdemo); a --mqtt-rules file replaces the rules. Every
# wait is bounded. Usage: demo_mqtt.sh DEMO_DIR CLI_DIR
set -euo pipefail
demo=$1/weft-demo
cli=$2/weft-cli
tmp=$(mktemp -d)
chmod 777 "$tmp"
srv=""
broker=""
cleanup() {
  [[ -n $srv ]] && kill "$srv" 2>/dev/null || true
  [[ -n $broker ]] && kill "$broker" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f $tmp/log ]] && sed 's/^/    server: /' "$tmp/log" >&2
  [[ -f $tmp/broker.log ]] && sed 's/^/    broker: /' "$tmp/broker.log" >&2
  exit 1
}
for exe in mosquitto mosquitto_sub mosquitto_pub curl; do
  command -v "$exe" >/dev/null || [[ -x /usr/sbin/$exe ]] ||
    fail "$exe not installed: run scripts/deps.sh"
done
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  echo "listener $mport 127.0.0.1"
  echo "allow_anonymous true"
  [[ $(id -u) == 0 ]] && echo "user root"
} >"$tmp/mosquitto.conf"
"$mosq" -c "$tmp/mosquitto.conf" >"$tmp/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do mosquitto_pub -p "$mport" -t ping -m x 2>/dev/null && break; sleep 0.05; done

start_demo() {  # extra args...
  : >"$tmp/log"  # now: the background job's own truncation may come after the first grep
  "$demo" --port 0 --rpc-port 0 --backend "${WEFT_TEST_BACKEND:-auto}" --mqtt "127.0.0.1:$mport" \
    "$@" >"$tmp/log" 2>&1 &
  srv=$!
  for _ in $(seq 200); do grep -q "Ctrl-C" "$tmp/log" && break; sleep 0.05; done
  port=$(sed -n 's|.*dashboard   http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/log")
  rpc=$(sed -n 's|.*rpc         127.0.0.1:\([0-9]*\) .*|\1|p' "$tmp/log")
  [[ -n $port && -n $rpc ]] || fail "weft-demo did not start"
  for _ in $(seq 200); do grep -q "mqtt connected" "$tmp/log" && return 0; sleep 0.05; done
  fail "the bridge did not connect to the broker"
}
c() { curl -sS --max-time 10 "$@"; }

# Publishes (every 0.2 s, 10 s at most) until mosquitto_sub printed the expected line.
expect_out() {  # sub_topic expected_line publish_command...
  local topic=$1 want=$2
  shift 2
  mosquitto_sub -p "$mport" -t "$topic" -v -W 12 >"$tmp/sub" 2>/dev/null &
  local sub=$!
  for _ in $(seq 50); do
    "$@" >/dev/null
    sleep 0.2
    grep -qxF "$want" "$tmp/sub" && { kill $sub 2>/dev/null || true; return 0; }
  done
  kill $sub 2>/dev/null || true
  cat "$tmp/sub" >&2
  fail "mosquitto_sub -t '$topic' did not see: $want"
}

# Publishes on the broker (every 0.2 s, 10 s at most) until the SSE client got the data.
expect_in() {  # sse_path broker_topic payload
  c -N --max-time 12 "http://127.0.0.1:$port$1" >"$tmp/sse" 2>/dev/null &
  local sse=$!
  for _ in $(seq 50); do
    mosquitto_pub -p "$mport" -q 1 -t "$2" -m "$3"
    sleep 0.2
    grep -qxF "data: $3" "$tmp/sse" && { kill $sse 2>/dev/null || true; return 0; }
  done
  kill $sse 2>/dev/null || true
  cat "$tmp/sse" >&2
  fail "SSE $1 did not get $3 from $2"
}

# The default rules, device id d42.
start_demo --device-id d42
grep -q "mqtt        127.0.0.1:$mport as device d42" "$tmp/log" || fail "mqtt line missing"
expect_out 'fleet/d42/#' "fleet/d42/demo hello-board" \
  c -o /dev/null --data-binary hello-board "http://127.0.0.1:$port/publish/demo"
expect_out 'fleet/d42/#' "fleet/d42/local/temp 21.5" \
  "$cli" --addr "127.0.0.1:$rpc" publish local/temp 21.5
expect_in "/events/cmd%2Fdemo" fleet/d42/cmd/demo reboot-now
# Another device's command does not reach this board.
c -N --max-time 2 "http://127.0.0.1:$port/events/cmd%2Fdemo" >"$tmp/sse2" 2>/dev/null || true &
sleep 0.3
mosquitto_pub -p "$mport" -q 1 -t fleet/other/cmd/demo -m not-mine
wait %% 2>/dev/null || true
! grep -q "not-mine" "$tmp/sse2" || fail "a command for another device was delivered"
# /metrics counts the bridge's traffic (refreshed every second).
for _ in $(seq 50); do
  c "http://127.0.0.1:$port/metrics" >"$tmp/metrics"
  grep -q '^weft_mqtt_bridge_in_total [1-9]' "$tmp/metrics" && break
  sleep 0.1
done
grep -q '^weft_mqtt_connected 1$' "$tmp/metrics" || fail "metrics: not connected"
grep -q '^weft_mqtt_bridge_out_total [1-9]' "$tmp/metrics" || fail "metrics: nothing out"
grep -q '^weft_mqtt_bridge_in_total [1-9]' "$tmp/metrics" || fail "metrics: nothing in"
kill "$srv"
wait "$srv" || fail "weft-demo exited with $?"
srv=""

# A rules file: its own device id and topics.
cat >"$tmp/rules" <<'RULES'
# board b7: sensors out, settings in
device b7
queue drop_oldest_qos0
out sensors/# site/{device}/sensors/# qos1
in site/{device}/set/# settings/# qos1
RULES
start_demo --mqtt-rules "$tmp/rules"
expect_out 'site/b7/#' "site/b7/sensors/t 19" \
  c -o /dev/null --data-binary 19 "http://127.0.0.1:$port/publish/sensors%2Ft"
expect_in "/events/settings%2Fled" site/b7/set/led on
kill "$srv"
wait "$srv" || fail "weft-demo exited with $?"
srv=""

# Two workers: publishes served by worker 1 reach the bridge on worker 0 through a Post.
start_demo --workers 2 --device-id w2
mosquitto_sub -p "$mport" -t 'fleet/w2/#' -v -W 15 >"$tmp/sub" 2>/dev/null &
sub=$!
for _ in $(seq 50); do  # until mosquitto_sub has subscribed (10 s at most)
  mosquitto_pub -p "$mport" -t fleet/w2/probe -m p
  grep -q '^fleet/w2/probe' "$tmp/sub" && break
  sleep 0.2
done
for i in $(seq 12); do
  c -o /dev/null --data-binary "m$i" "http://127.0.0.1:$port/publish/demo"
done
for _ in $(seq 100); do
  [[ $(grep -c '^fleet/w2/demo m' "$tmp/sub" || true) -ge 12 ]] && break
  sleep 0.1
done
kill $sub 2>/dev/null || true
n=$(grep -c '^fleet/w2/demo m' "$tmp/sub" || true)
[[ $n -ge 12 ]] || { cat "$tmp/sub" >&2; fail "2 workers: $n of 12 publishes reached the broker"; }
echo "demo_mqtt: OK"
