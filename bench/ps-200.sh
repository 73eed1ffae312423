#!/usr/bin/env bash
# ps-200.sh — N (200) detached `sleep 1000` containers: `pier ps` vs `docker ps` time
# with 0 and N running, per-container shim memory (RSS/PSS of the container init's
# parent), daemon RSS idle and with N containers, and removal time. Everything made
# here is removed at the end. Docker only if its daemon already runs.
#   N=200 RUNS=20 OUT=/tmp/pier-bench-results
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-200}; RUNS=${RUNS:-20}
OUT=${OUT:-/tmp/pier-bench-results/ps-$N-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
TABLE=$OUT/table.tsv; : > "$TABLE"
row() { printf '%s\t%s\t%s\n' "$@" >> "$TABLE"; }

pier_start
docker_ids=()
cleanup() {
  if [ ${#docker_ids[@]} -gt 0 ]; then "$DOCKER" rm -f "${docker_ids[@]}" >/dev/null 2>&1 || true; fi
  [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1
  pier_stop
}
trap cleanup EXIT

hf() { # hf NAME CMD -> median ms
  hyperfine -N --style none -w 3 -r "$RUNS" --export-json "$OUT/$1.json" "$2" >/dev/null 2>&1
  jq -r '.results[0].median*1000|.*10|round/10' "$OUT/$1.json"
}
q() { printf '%q ' "$@"; }
pier_ps="$(q "${PIER[@]}") ps"

sleep 2   # let the daemon settle after the import
d_idle=$(rss_kb "$PIER_DPID")
row "pier daemon RSS, idle" "$((d_idle / 1024)) MB" ""
row "pier ps, 0 running" "$(hf p_ps0 "$pier_ps") ms" ""

say "starting $N pier containers"
: > "$OUT/p_start_ms.txt"
ids=()
for i in $(seq "$N"); do
  t0=$(date +%s%N)
  ids+=("$("${PIER[@]}" run -d --network none busybox sleep 1000)")
  echo $(( ($(date +%s%N) - t0) / 1000000 )) >> "$OUT/p_start_ms.txt"
done
row "pier run -d (each, median)" "$(median < "$OUT/p_start_ms.txt") ms" "$N runs"
row "pier ps, $N running" "$(hf p_psN "$pier_ps") ms" ""

: > "$OUT/p_shim.txt"
for id in "${ids[@]}"; do
  pid=$("${PIER[@]}" inspect "$id" | jq -r '.[0].State.Pid')
  shim=$(ppid_of "$pid")
  [ -n "$shim" ] && echo "$(rss_kb "$shim") $(pss_kb "$shim") $(tr '\0' ' ' < "/proc/$shim/cmdline" | cut -c1-40)" >> "$OUT/p_shim.txt"
done
row "pier-shim per container (RSS, median)" "$(awk '{print $1}' "$OUT/p_shim.txt" | median | awk '{printf "%.1f MB", $1/1024}')" \
    "PSS $(awk '{print $2}' "$OUT/p_shim.txt" | median | awk '{printf "%.2f MB", $1/1024}'); parent: $(head -1 "$OUT/p_shim.txt" | cut -d' ' -f3-)"
d_full=$(rss_kb "$PIER_DPID")
row "pier daemon RSS, $N running" "$((d_full / 1024)) MB" "+$(( (d_full - d_idle) / N )) kB per container"
t0=$(date +%s%N)
"${PIER[@]}" rm -f "${ids[@]}" >/dev/null
t=$(( ($(date +%s%N) - t0) / 1000000 ))
row "pier rm -f ($N at once)" "$t ms" "$(( t / N )) ms per container"
left=$("${PIER[@]}" ps -aq | wc -l)
[ "$left" = 0 ] || say "WARNING: $left pier containers left after rm -f"

if docker_up; then
  img=$(docker_image)
  row "docker ps, $("$DOCKER" ps -q | wc -l) running" "$(hf d_ps0 "$DOCKER ps") ms" ""
  say "starting $N docker containers"
  : > "$OUT/d_start_ms.txt"
  for i in $(seq "$N"); do
    t0=$(date +%s%N)
    docker_ids+=("$("$DOCKER" run -d --network none --label pier.bench=ps "$img" sleep 1000)")
    echo $(( ($(date +%s%N) - t0) / 1000000 )) >> "$OUT/d_start_ms.txt"
  done
  row "docker run -d (each, median)" "$(median < "$OUT/d_start_ms.txt") ms" "$N runs"
  row "docker ps, $("$DOCKER" ps -q | wc -l) running" "$(hf d_psN "$DOCKER ps") ms" ""
  : > "$OUT/d_shim.txt"
  for id in "${docker_ids[@]}"; do
    pid=$("$DOCKER" inspect -f '{{.State.Pid}}' "$id"); shim=$(ppid_of "$pid")
    [ -n "$shim" ] && echo "$(rss_kb "$shim") $(pss_kb "$shim")" >> "$OUT/d_shim.txt"
  done
  row "containerd-shim per container (RSS, median)" "$(awk '{print $1}' "$OUT/d_shim.txt" | median | awk '{printf "%.1f MB", $1/1024}')" \
      "PSS $(awk '{print $2}' "$OUT/d_shim.txt" | median | awk '{printf "%.2f MB", $1/1024}')"
  t0=$(date +%s%N)
  "$DOCKER" rm -f "${docker_ids[@]}" >/dev/null
  t=$(( ($(date +%s%N) - t0) / 1000000 )); docker_ids=()
  row "docker rm -f ($N at once)" "$t ms" "$(( t / N )) ms per container"
else
  say "no Docker daemon answers: pier only (start one with shared/peers/setup.sh)"
  base=$(ls -1 "$REPO"/../shared/peers/results-*.txt 2>/dev/null | sort | tail -1)
  if [ -n "$base" ]; then
    # The first table in the file (its newest run) for comparison, labelled as recorded.
    awk '/^section/ { t++ } t == 1 && /^b\.detach +(docker|containerd)/' "$base" \
      | sed -E 's/^b\.detach +//; s/ {2,}/\t/g' \
      | awk -F'\t' -v f="$(basename "$base")" '{ printf "%s (recorded)\t%s\t%s\n", $1, $2, f }' >> "$TABLE"
  fi
fi

echo
(printf 'case\tvalue\tnote\n'; cat "$TABLE") | column -t -s $'\t' | tee "$OUT/table.txt"
echo "results: $OUT"
