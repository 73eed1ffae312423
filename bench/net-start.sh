#!/usr/bin/env bash
# net-start.sh — time to create and start a container on a user-defined network
# (`run -d --network benchnet busybox sleep`), and the whole `run --rm --network
# benchnet busybox true`, Pier against Docker (hyperfine, median), and the ratios.
# Goal: Pier at least 5x faster. Containers are removed between runs; the networks at
# the end. Docker only if its daemon already runs.   RUNS=20 WARMUP=3 OUT=...
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}; WARMUP=${WARMUP:-3}
OUT=${OUT:-/tmp/pier-bench-results/net-start-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { say "hyperfine missing (apt-get install hyperfine)"; exit 1; }
NET=pier-benchnet-$$

docker_net=
cleanup() {
  if [ -n "$docker_net" ]; then
    "$DOCKER" rm -f pier-bench-start >/dev/null 2>&1 || true
    "$DOCKER" network rm "$NET" >/dev/null 2>&1 || true
  fi
  [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1
  pier_stop
}
pier_start
trap cleanup EXIT
q() { printf '%q ' "$@"; }

"${PIER[@]}" network create "$NET" >/dev/null
p=$(q "${PIER[@]}")
cmds=(-n "pier run -d (user network)" "$p run -d --name pier-bench-start --network $NET busybox sleep 600"
      -n "pier run --rm (user network)" "$p run --rm --network $NET busybox true")
# hyperfine pairs each --prepare with the command in the same position.
quiet() { echo "sh -c '$* >/dev/null 2>&1; true'"; }
prep=(--prepare "$(quiet "$p rm -f pier-bench-start")" --prepare true)
if docker_up; then
  img=$(docker_image)
  "$DOCKER" network create "$NET" >/dev/null
  docker_net=$NET
  cmds+=(-n "docker run -d (user network)" "$DOCKER run -d --name pier-bench-start --network $NET $img sleep 600"
         -n "docker run --rm (user network)" "$DOCKER run --rm --network $NET $img true")
  prep+=(--prepare "$(quiet "$DOCKER rm -f pier-bench-start")" --prepare true)
else
  say "no Docker daemon answers: measuring pier only"
fi
# Both engines must work before timing them.
"${PIER[@]}" run --rm --network "$NET" busybox true
hyperfine -N --style basic -w "$WARMUP" -r "$RUNS" --export-json "$OUT/net-start.json" \
  "${prep[@]}" "${cmds[@]}" | tee "$OUT/hyperfine.txt" >&2
"${PIER[@]}" rm -f pier-bench-start >/dev/null 2>&1 || true

echo
hf_table "$OUT/net-start.json"
jq -r '
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | [["run -d", "pier run -d (user network)", "docker run -d (user network)"],
     ["run --rm", "pier run --rm (user network)", "docker run --rm (user network)"]][]
  | select($m[.[1]] and $m[.[2]])
  | "ratio docker/pier (\(.[0]), user network): \($m[.[2]] / $m[.[1]] * 100 | round / 100)x faster"' \
  "$OUT/net-start.json"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg) (numbers are noisy while builds run)"
echo "results: $OUT"
