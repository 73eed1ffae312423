#!/usr/bin/env bash
# scripts/dockerpy.sh — run ../shared/conformance/dockerpy.sh against any socket.
# That script builds its helper clients with docker.APIClient(version='auto'), which
# ignores DOCKER_HOST and so talks to /var/run/docker.sock (a live dockerd, when the
# peers run). This runs a copy whose helper clients take DOCKER_HOST too; the
# arguments are the original's:
#   scripts/dockerpy.sh unix:///path/pier.sock <docker-py git dir> [test files...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
orig=${DOCKERPY_SH:-$here/../shared/conformance/dockerpy.sh}
[ -f "$orig" ] || { echo "dockerpy.sh: $orig not found" >&2; exit 1; }
copy=$(mktemp /tmp/dockerpy-XXXXXX.sh)
trap 'rm -f "$copy"' EXIT
sed "s/docker\.APIClient(version='auto')/docker.APIClient(base_url=__import__('os').environ['DOCKER_HOST'], version='auto')/g" \
  "$orig" > "$copy"
bash "$copy" "$@"
