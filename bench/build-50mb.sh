#!/usr/bin/env bash
# build-50mb.sh — `pier build` against `docker build` on a 10-step Dockerfile with a
# 50 MB context of small files (5000 x 10 KiB): cold build (fresh context directory,
# --no-cache), fully cached rebuild, and rebuild after changing one file of a late
# COPY. Docker is measured with BuildKit and with the classic builder when its daemon
# runs (never started here). Prints medians and pier/docker ratios.
#   RUNS=3 (cold), CRUNS=5 (cached, late change)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}; CRUNS=${CRUNS:-5}

pier_start
# Not /tmp/pier-bench-*: clean-test-leftovers.sh takes those without owner.pid for strays.
WORK=$(mktemp -d /tmp/build50-XXXXXX)
DTAGS=()
cleanup() {
  for t in "${DTAGS[@]}"; do "$DOCKER" rmi -f "$t" >/dev/null 2>&1 || true; done
  [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1
  rm -rf "$WORK"
  pier_stop
}
trap cleanup EXIT

# The context: deterministic content, so every engine and run sees the same bytes.
mkctx() {
  local d=$1 base=$2
  mkdir -p "$d/deps" "$d/src" "$d/late"
  python3 - "$d" <<'PY'
import os, sys, random
d = sys.argv[1]
r = random.Random(42)
for i in range(4000):
    sub = os.path.join(d, "deps", f"pkg{i % 100:03d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.bin"), "wb") as f:
        f.write(r.randbytes(10240))
for i in range(1000):
    sub = os.path.join(d, "src", f"mod{i % 20:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"s{i:05d}.txt"), "wb") as f:
        f.write(r.randbytes(10240))
for i in range(10):
    with open(os.path.join(d, "late", f"conf{i}.txt"), "w") as f:
        f.write(f"setting {i}\n")
PY
  cat > "$d/Dockerfile" <<DF
FROM $base
ENV APP_HOME=/app MODE=bench
WORKDIR /app
COPY deps/ /app/deps/
RUN find /app/deps -type f | wc -l > /app/deps.count
COPY src/ /app/src/
RUN du -s /app/src > /app/src.size
LABEL bench=build-50mb
COPY late/ /app/late/
CMD ["cat", "/app/deps.count"]
DF
}

# now_ms / elapsed: wall clock of one command, output discarded.
now_ms() { date +%s%3N; }
timed() { local t0; t0=$(now_ms); "$@" >/dev/null 2>&1 || { say "failed: $*"; "$@" >&2 || true; exit 1; }; echo $(( $(now_ms) - t0 )); }

declare -A RES
measure() { # name build-cmd-prefix (context dir appended)
  local name=$1; shift
  local c t i cold=() cached=() late=()
  for i in $(seq "$RUNS"); do
    c=$WORK/$name-cold-$i; mkdir -p "$c"; cp -a "$WORK/ctx/." "$c/"
    cold+=("$(timed "$@" --no-cache "$c")")
    rm -rf "$c"
  done
  c=$WORK/$name-ctx; mkdir -p "$c"; cp -a "$WORK/ctx/." "$c/"
  timed "$@" "$c" >/dev/null
  for i in $(seq "$CRUNS"); do cached+=("$(timed "$@" "$c")"); done
  for i in $(seq "$CRUNS"); do
    echo "change $i $RANDOM" > "$c/late/conf3.txt"
    late+=("$(timed "$@" "$c")")
  done
  rm -rf "$c"
  RES[$name.cold]=$(printf '%s\n' "${cold[@]}" | median)
  RES[$name.cached]=$(printf '%s\n' "${cached[@]}" | median)
  RES[$name.late]=$(printf '%s\n' "${late[@]}" | median)
  say "$name: cold ${cold[*]} ms; cached ${cached[*]} ms; late change ${late[*]} ms"
}

engines=(pier)
mkctx "$WORK/ctx" busybox:latest
measure pier "${PIER[@]}" build -q -t bench/build50:pier
if docker_up; then
  img=$(docker_image)
  sed -i "1s|.*|FROM $img|" "$WORK/ctx/Dockerfile"
  DTAGS=(bench/build50:buildkit bench/build50:classic)
  measure buildkit env DOCKER_BUILDKIT=1 "$DOCKER" build -q -t bench/build50:buildkit
  measure classic env DOCKER_BUILDKIT=0 "$DOCKER" build -q -t bench/build50:classic
  engines+=(buildkit classic)
else
  say "no Docker daemon answers: measuring pier only"
fi

echo
printf '%-10s %10s %10s %12s\n' engine "cold ms" "cached ms" "late ms"
for e in "${engines[@]}"; do
  printf '%-10s %10s %10s %12s\n' "$e" "${RES[$e.cold]}" "${RES[$e.cached]}" "${RES[$e.late]}"
done
for e in "${engines[@]:1}"; do
  for k in cold cached late; do
    awk -v p="${RES[pier.$k]}" -v d="${RES[$e.$k]}" -v e="$e" -v k="$k" \
      'BEGIN { printf "speedup vs %s (%s): %.2fx (docker/pier)\n", e, k, d / p }'
  done
done
