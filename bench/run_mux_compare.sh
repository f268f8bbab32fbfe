#!/usr/bin/env bash
# weft::mux side by side (issue #16), interleaved reps, medians:
#   bulk      one channel uploading vs raw u32-framed TCP on the same core (target >= 80 %)
#             and vs one HTTP/2 stream of nghttp2 (weft-mux-nghttp2, when built), same windows
#   fair      64-byte ping-pong p99 under 8 bulk channels vs idle (target <= 2x)
#   openclose channels opened, given a byte and closed both ways, 64 in flight: per second
# Usage: bench/run_mux_compare.sh [BUILD_DIR=build/release] [REPS=5] [MIB=1024]
# Env: WINDOW_KIB / CONN_WINDOW_KIB (default 64 / 256, the Limits defaults), BACKEND.
# Everything on 127.0.0.1; every run bounded by --seconds. Build Release first.
set -euo pipefail
build=${1:-build/release}
reps=${2:-5}
mib=${3:-1024}
win=${WINDOW_KIB:-64}
cwin=${CONN_WINDOW_KIB:-256}
backend=${BACKEND:-auto}
bench="$build/bench/weft-mux-bench"
ng="$build/bench/weft-mux-nghttp2"
[[ -x "$bench" ]] || { echo "build $bench first (cmake --build --preset release)"; exit 1; }
common=(--window-kib "$win" --conn-window-kib "$cwin" --json)
val() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
raw=(); mux=(); h2=()
for ((i = 1; i <= reps; i++)); do
  raw+=("$("$bench" raw --mib "$mib" --seconds 30 --backend "$backend" "${common[@]}" 2>/dev/null | val mib_s)")
  mux+=("$("$bench" bulk --mib "$mib" --seconds 30 --backend "$backend" "${common[@]}" 2>/dev/null | val mib_s)")
  if [[ -x "$ng" ]]; then
    h2+=("$("$ng" --mib "$mib" --seconds 30 "${common[@]}" | val mib_s)")
  fi
  echo "rep $i: raw ${raw[-1]} MiB/s, mux ${mux[-1]} MiB/s${h2:+, nghttp2 ${h2[-1]} MiB/s}"
done
r=$(printf '%s\n' "${raw[@]}" | median); m=$(printf '%s\n' "${mux[@]}" | median)
echo "bulk medians (windows ${win}/${cwin} KiB): raw framed TCP $r MiB/s, mux one channel $m MiB/s: $(awk -v a="$m" -v b="$r" 'BEGIN {printf "%.2f", a / b}') x raw"
if ((${#h2[@]})); then
  h=$(printf '%s\n' "${h2[@]}" | median)
  echo "nghttp2 one stream $h MiB/s: mux is $(awk -v a="$m" -v b="$h" 'BEGIN {printf "%.2f", a / b}') x nghttp2"
fi
ratios=()
for ((i = 1; i <= reps; i++)); do
  out=$("$bench" fair --bulk 8 --seconds 6 --backend "$backend" "${common[@]}" 2>/dev/null)
  echo "fair rep $i: $out"
  ratios+=("$(echo "$out" | val p99_ratio)")
done
echo "fairness: median p99 ratio (8 bulk channels / idle) $(printf '%s\n' "${ratios[@]}" | median)"
oc=()
for ((i = 1; i <= reps; i++)); do
  oc+=("$("$bench" openclose --seconds 2 --backend "$backend" "${common[@]}" 2>/dev/null | val us_each)")
done
echo "open + 1 byte + close both ways, 64 in flight: median $(printf '%s\n' "${oc[@]}" | median) us per channel"
