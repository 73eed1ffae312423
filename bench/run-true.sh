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
hf_table "$OUT/run-true.json"
jq -r '
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | [["default network", "pier run --rm", "docker run --rm"],
     ["--network none", "pier run --rm --network none", "docker run --rm --network none"]][]
  | select($m[.[1]] and $m[.[2]])
  | "ratio pier/docker (\(.[0])): \($m[.[1]] / $m[.[2]] * 100 | round / 100)"' "$OUT/run-true.json"
# Without a live Docker, compare against the recorded peer baseline (last run in the
# newest shared/peers/results-*.txt), labelled as such.
if ! docker_up; then
  base=$(ls -1 "$REPO"/../shared/peers/results-*.txt 2>/dev/null | sort | tail -1)
  if [ -n "$base" ]; then
    ms() { # ms "case prefix" -> median in ms from the last table in $base
      awk -v c="$1" 'index($0, "a.run") == 1 && index($0, c) { m = $0 } END { print m }' "$base" \
        | awk -F'  +' '{ v = $3; if (v ~ / ms$/) { sub(/ ms$/, "", v); print v } else if (v ~ / s$/) { sub(/ s$/, "", v); print v * 1000 } }'
    }
    for pair in "pier run --rm|docker run --rm busybox true|default network" \
                "pier run --rm --network none|docker run --rm --network none|--network none"; do
      IFS='|' read -r pc dc label <<< "$pair"
      p=$(jq -r --arg c "$pc" '.results[] | select(.command == $c) | .median * 1000' "$OUT/run-true.json")
      d=$(ms "$dc")
      [ -n "$p" ] && [ -n "$d" ] && awk -v p="$p" -v d="$d" -v l="$label" -v f="$(basename "$base")" \
        'BEGIN { printf "ratio pier/docker (%s): %.2f  (pier %.1f ms now vs docker %.1f ms recorded in %s)\n", l, p / d, p, d, f }'
    done
  fi
fi
echo "results: $OUT"
