#!/usr/bin/env bash
# net-throughput.sh — HTTP requests per second through a published port to a busybox
# httpd container: Pier (inside its bench namespace: 127.0.0.1 through the userland
# proxy, and the namespace's own non-loopback address through DNAT) against Docker
# (127.0.0.1 of the host, through docker-proxy). wrk when installed (apt-get install
# wrk), else a loop of curl requests. Traffic stays on loopback and our namespaces.
# Docker only if its daemon already runs.
#   DURATION=10 CONNS=32 THREADS=2 OUT=/tmp/pier-bench-results
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10}; CONNS=${CONNS:-32}; THREADS=${THREADS:-2}
OUT=${OUT:-/tmp/pier-bench-results/net-throughput-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
PORT_PIER=18080; PORT_DOCKER=18081
# A non-loopback address of the bench namespace (one end of a veth pair inside it).
NS_ADDR=10.231.0.1

HTTPD='mkdir -p /www && head -c 612 /dev/zero | tr "\0" x > /www/index.html && exec httpd -f -p 80 -h /www'
docker_ctr=
cleanup() {
  [ -n "$docker_ctr" ] && "$DOCKER" rm -f "$docker_ctr" >/dev/null 2>&1
  [ -n "$DOCKER_IMPORTED" ] && "$DOCKER" rmi "$DOCKER_IMPORTED" >/dev/null 2>&1
  pier_stop
}
pier_start
trap cleanup EXIT

# load NETNS URL -> requests/s ("-" for the host's namespace)
load() {
  local ns=$1 url=$2 pre=()
  [ "$ns" = - ] || pre=(nsenter "--net=/run/netns/$ns" --)
  # Wait for the server (the container may still be starting).
  local i; for i in $(seq 100); do "${pre[@]}" curl -fsS -o /dev/null --max-time 1 "$url" && break; sleep 0.05; done
  if command -v wrk >/dev/null; then
    "${pre[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$url" > "$OUT/wrk-$(echo "$url" | tr -c 'a-z0-9' _).txt"
    awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$(echo "$url" | tr -c 'a-z0-9' _).txt"
  else
    local n=0 end=$((SECONDS + DURATION))
    while [ $SECONDS -lt $end ]; do "${pre[@]}" curl -fsS -o /dev/null "$url" && n=$((n + 1)); done
    echo "$n $DURATION" | awk '{printf "%.1f\n", $1 / $2}'
  fi
}

ip -n "$BNS" link add pt0 type veth peer name pt1
ip -n "$BNS" link set pt1 up
ip -n "$BNS" addr add "$NS_ADDR/24" dev pt0
ip -n "$BNS" link set pt0 up
"${PIER[@]}" run -d --name web -p "$PORT_PIER:80" busybox sh -c "$HTTPD" >/dev/null
say "tool: $(command -v wrk || echo 'curl loop') ${THREADS} threads, $CONNS connections, ${DURATION}s each"
pier_lo=$(load "$BNS" "http://127.0.0.1:$PORT_PIER/")
pier_dnat=$(load "$BNS" "http://$NS_ADDR:$PORT_PIER/")
printf 'pier   127.0.0.1 (proxy)   %10s req/s\n' "$pier_lo"
printf 'pier   %s (DNAT)   %10s req/s\n' "$NS_ADDR" "$pier_dnat"
"${PIER[@]}" rm -f web >/dev/null

if docker_up; then
  img=$(docker_image)
  docker_ctr=$("$DOCKER" run -d -p "127.0.0.1:$PORT_DOCKER:80" "$img" sh -c "$HTTPD")
  docker_lo=$(load - "http://127.0.0.1:$PORT_DOCKER/")
  printf 'docker 127.0.0.1 (proxy)   %10s req/s\n' "$docker_lo"
  awk -v p="$pier_lo" -v d="$docker_lo" 'BEGIN { printf "ratio pier/docker (127.0.0.1): %.2f\n", p / d }'
  awk -v p="$pier_dnat" -v d="$docker_lo" 'BEGIN { printf "ratio pier DNAT/docker 127.0.0.1: %.2f\n", p / d }'
else
  say "no Docker daemon answers: measured pier only"
fi
say "load average: $(cut -d' ' -f1-3 /proc/loadavg) (numbers are noisy while builds run)"
echo "results: $OUT"
