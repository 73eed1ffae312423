#!/usr/bin/env bash
# tests/parity/run.sh [CASE...] — image parity between `pier build` and `docker build`.
#
# Each directory under cases/ is a build context with a Dockerfile. Both engines get
# the same busybox root (scripts/mk-busybox-rootfs.sh) imported as pierparity/base;
# each case is built by Pier and by Docker (BuildKit), both images are saved, and
# compare.py compares config, history and the flattened file tree.
#   cases/X/Dockerfile.docker  what Docker builds instead, when Docker's built-in
#                              frontend lacks a feature (heredocs, --exclude)
#   cases/X/SKIP               comparisons left out for that case (see compare.py)
#   cases/X/NOTE               why
# Needs dockerd (Docker's BuildKit works offline with a local base image). Uses a
# private Pier daemon (bench/lib.sh); PIER_BIN picks the binary (default: debug build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PIER_BIN=${PIER_BIN:-${CARGO_TARGET_DIR:-/var/cache/pier/target}/debug/pier}
# shellcheck source=../../bench/lib.sh
. "$here/../../bench/lib.sh"
docker_up || { say "dockerd not reachable"; exit 1; }

work=$(mktemp -d /tmp/pier-parity.XXXXXX)
cleanup() {
  "$DOCKER" image ls -q 'pierparity/case' | sort -u | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1 || true
  "$DOCKER" rmi pierparity/base:latest >/dev/null 2>&1 || true
  rm -rf "$work"
  pier_stop
}
pier_start
trap cleanup EXIT

"$REPO/scripts/mk-busybox-rootfs.sh" "$work/base.tar"
"${PIER[@]}" import -c 'CMD ["sh"]' "$work/base.tar" pierparity/base:latest >/dev/null
"$DOCKER" import -c 'CMD ["sh"]' "$work/base.tar" pierparity/base:latest >/dev/null

cases=("$@")
[ ${#cases[@]} -gt 0 ] || mapfile -t cases < <(cd "$here/cases" && ls)
same=0 differ=0 failed=0
for c in "${cases[@]}"; do
  dir=$here/cases/$c
  df=Dockerfile
  [ -f "$dir/Dockerfile.docker" ] && df=Dockerfile.docker
  skip=$(cat "$dir/SKIP" 2>/dev/null || true)
  tag=pierparity/case:$c
  if ! "${PIER[@]}" build -q -t "$tag" "$dir" >"$work/$c.pier.log" 2>&1; then
    echo "FAIL  $c: pier build failed"; sed 's/^/    /' "$work/$c.pier.log" | tail -5
    failed=$((failed + 1)); continue
  fi
  if ! DOCKER_BUILDKIT=1 "$DOCKER" build -q -f "$dir/$df" -t "$tag" "$dir" >"$work/$c.docker.log" 2>&1; then
    echo "FAIL  $c: docker build failed"; sed 's/^/    /' "$work/$c.docker.log" | tail -5
    failed=$((failed + 1)); continue
  fi
  "${PIER[@]}" save -o "$work/$c.pier.tar" "$tag"
  "$DOCKER" save -o "$work/$c.docker.tar" "$tag"
  if out=$(python3 "$here/compare.py" "$work/$c.pier.tar" "$work/$c.docker.tar" --skip "$skip"); then
    echo "SAME  $c${skip:+ (not compared: $skip)}"
    same=$((same + 1))
  else
    echo "DIFF  $c${skip:+ (not compared: $skip)}"; echo "$out"
    differ=$((differ + 1))
  fi
  rm -f "$work/$c.pier.tar" "$work/$c.docker.tar"
done
echo "parity: $same same, $differ different, $failed failed, of ${#cases[@]}"
[ "$differ" -eq 0 ] && [ "$failed" -eq 0 ]
