#!/usr/bin/env bash
# run-true.sh — time of `pier run --rm busybox true` against `docker run --rm busybox
# true` (hyperfine, median), default network and --network none, and the ratio.
# Docker is measured only if its daemon already runs (shared/peers/setup.sh starts
# one; this script never does).   RUNS=20 WARMUP=3 OUT=/tmp/pier-bench-results
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}; WARMUP=${WARMUP:-3}
OUT=${OUT:-/tmp/pier-bench-results/run-true-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { say "hyperfine missing (apt-get install hyperfine)"; exit 1; }

pier_start
cleanup_docker() { [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1; true; }
trap 'cleanup_docker; pier_stop' EXIT

q() { printf '%q ' "$@"; }
cmds=(-n "pier run --rm" "$(q "${PIER[@]}") run --rm busybox true"
      -n "pier run --rm --network none" "$(q "${PIER[@]}") run --rm --network none busybox true")
if docker_up; then
  img=$(docker_image)
  cmds+=(-n "docker run --rm" "$DOCKER run --rm $img true"
         -n "docker run --rm --network none" "$DOCKER run --rm --network none $img true")
else
  say "no Docker daemon answers: measuring pier only (start one with shared/peers/setup.sh)"
fi
# Both engines must work before timing them.
"${PIER[@]}" run --rm busybox true
hyperfine -N --style basic -w "$WARMUP" -r "$RUNS" --export-json "$OUT/run-true.json" "${cmds[@]}" \
  | tee "$OUT/hyperfine.txt" >&2

echo
jq -r '.results[] | "\(.command)\t\(.median*1000|.*10|round/10) ms\t(min \(.min*1000|.*10|round/10), max \(.max*1000|.*10|round/10))"' \
  "$OUT/run-true.json" | column -t -s $'\t'
jq -r '
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | [["default network", "pier run --rm", "docker run --rm"],
     ["--network none", "pier run --rm --network none", "docker run --rm --network none"]][]
  | select($m[.[1]] and $m[.[2]])
  | "ratio pier/docker (\(.[0])): \($m[.[1]] / $m[.[2]] * 100 | round / 100)"' "$OUT/run-true.json"
echo "results: $OUT"
