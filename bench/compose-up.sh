#!/usr/bin/env bash
# compose-up.sh — `up -d` then `down -v` of a 6-service project (two networks, two
# volumes, one service_healthy dependency): Pier's compose on Pier against
# docker-compose 1.29 on Docker (hyperfine, median), and the ratio.
# Docker is measured only if its daemon already runs (shared/peers/setup.sh starts
# one; this script never does).   RUNS=10 WARMUP=2 OUT=/tmp/pier-bench-results
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-10}; WARMUP=${WARMUP:-2}
OUT=${OUT:-/tmp/pier-bench-results/compose-up-$(date +%Y%m%d-%H%M%S)}
COMPOSE=${COMPOSE:-$(command -v docker-compose || true)}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { say "hyperfine missing (apt-get install hyperfine)"; exit 1; }

pier_start
cleanup() {
  [ -n "${DDIR:-}" ] && (cd "$DDIR" && "$COMPOSE" down -v >/dev/null 2>&1); true
  [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1; true
  rm -rf "$OUT/pier-proj" "$OUT/docker-proj"
  pier_stop
}
trap cleanup EXIT

# project DIR IMAGE: the same file for both engines, only the image differs.
project() {
  mkdir -p "$1"
  cat > "$1/compose.yaml" <<YAML
services:
  db:
    image: $2
    command: ["sleep", "600"]
    volumes: ["data:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "true"]
      interval: 100ms
      retries: 50
  cache:
    image: $2
    command: ["sleep", "600"]
    networks: [back]
  api:
    image: $2
    command: ["sleep", "600"]
    volumes: ["data:/data", "logs:/logs"]
    networks: [front, back]
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
  worker:
    image: $2
    command: ["sleep", "600"]
    volumes: ["logs:/logs"]
    networks: [back]
    depends_on: [cache]
  web:
    image: $2
    command: ["sleep", "600"]
    networks: [front]
    depends_on: [api]
  proxy:
    image: $2
    command: ["sleep", "600"]
    networks: [front]
    depends_on: [web]
networks:
  front:
  back:
volumes:
  data:
  logs:
YAML
}

q() { printf '%q ' "$@"; }
PDIR=$OUT/pier-proj
project "$PDIR" busybox
pcmd="cd $(q "$PDIR") && $(q "${PIER[@]}") compose --progress quiet up -d && $(q "${PIER[@]}") compose --progress quiet down -v -t 0"
# It must work before it is timed.
bash -c "$pcmd"
cmds=(-n "pier compose up -d + down" "$pcmd")
if docker_up && [ -n "$COMPOSE" ]; then
  DDIR=$OUT/docker-proj
  project "$DDIR" "$(docker_image)"
  dcmd="cd $(q "$DDIR") && $(q "$COMPOSE") up -d >/dev/null 2>&1 && $(q "$COMPOSE") down -v -t 0 >/dev/null 2>&1"
  bash -c "$dcmd"
  cmds+=(-n "docker-compose 1.29 up -d + down" "$dcmd")
else
  say "no Docker daemon or docker-compose: measuring pier only"
fi
hyperfine --style basic -w "$WARMUP" -r "$RUNS" --export-json "$OUT/compose-up.json" "${cmds[@]}" \
  | tee "$OUT/hyperfine.txt" >&2

echo
hf_table "$OUT/compose-up.json"
jq -r '
  (.results | map({key: .command, value: .median}) | from_entries) as $m
  | select($m["pier compose up -d + down"] and $m["docker-compose 1.29 up -d + down"])
  | "ratio docker-compose/pier (how many times faster pier is): \($m["docker-compose 1.29 up -d + down"] / $m["pier compose up -d + down"] * 100 | round / 100)"' \
  "$OUT/compose-up.json"
echo "results: $OUT"
