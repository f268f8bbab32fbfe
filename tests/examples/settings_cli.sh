#!/usr/bin/env bash
# weft-settings driven by weft-cli, as a user would: put/get/list, a watcher that sees a
# change, an ERROR's exit status, the JSON output, an unreachable server's exit status.
# Usage: settings_cli.sh DIR (the directory holding weft-settings and weft-cli)
set -euo pipefail
dir=$1
log=$(mktemp); out=$(mktemp)
trap 'kill "$srv" 2>/dev/null || true; wait 2>/dev/null || true; rm -f "$log" "$out"' EXIT
"$dir/weft-settings" --port 0 --backend "${WEFT_TEST_BACKEND:-auto}" >"$log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "serving on" "$log" && break; sleep 0.05; done
port=$(sed -n 's/.*serving on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
[[ -n "$port" ]] || { echo "server did not start:"; cat "$log"; exit 1; }
cli() { "$dir/weft-cli" --addr "127.0.0.1:$port" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

[[ "$(cli put wifi.ssid lab)" == "wifi.ssid set (version 1)" ]] || fail put
[[ "$(cli get wifi.ssid)" == "wifi.ssid = lab  (version 1)" ]] || fail get
[[ "$(cli --json get absent)" == '{"ok":true,"key":"absent","found":false,"value":null,"version":0}' ]] || fail json get
cli put wifi.pass "s3cret" >/dev/null
[[ "$(cli list wifi.)" == $'wifi.pass\nwifi.ssid' ]] || fail list

cli --json --timeout 10000 watch wifi.ssid --count 1 >"$out" &
watcher=$!
sleep 0.5  # the watcher subscribes (it pings after SUBSCRIBE before it waits)
cli put wifi.ssid lab2 >/dev/null
wait "$watcher" || fail "watch exited $?"
grep -q '"key":"wifi.ssid","value":"lab2","version":3' "$out" || { cat "$out"; fail watch; }

set +e
cli call weft.examples.Settings/Missing x 2>/dev/null; rc=$?
[[ $rc -eq 1 ]] || fail "an ERROR answer exits 1, got $rc"
cli put "" v 2>/dev/null; rc=$?
[[ $rc -eq 1 ]] || fail "a refused put exits 1, got $rc"
cli frobnicate 2>/dev/null; rc=$?
[[ $rc -eq 2 ]] || fail "usage exits 2, got $rc"
"$dir/weft-cli" --addr 127.0.0.1:1 --timeout 1000 ping 2>/dev/null; rc=$?
[[ $rc -eq 3 ]] || fail "no server exits 3, got $rc"
set -e
echo "settings_cli: ok"
