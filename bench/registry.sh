#!/usr/bin/env bash
# bench/registry.sh — push and pull of one ~100 MB image (busybox + 4 x 25 MB random
# layers, bench/mk-big-image.py, loaded into both engines from the same archive)
# through a docker-registry on this machine: Pier against `docker push/pull` and
# `skopeo copy`, side by side (runs interleaved), median of RUNS, MB/s of compressed
# blobs and ratios.
#
#   RUNS=3        runs per row
#   LAYERS=4 MB=25  image shape; DATA=random (default) or binaries (compresses ~2.5:1)
#   ONLY=push|pull  just those rows (default both)
#
# Push rows: "cold" = the engine holds the layers uncompressed (as after a load or a
# build) and gzips them on the way; Pier "warm" = gzipped blobs kept from an earlier
# push (like skopeo from an OCI layout of gzip blobs). Pull rows: docker and Pier
# download and unpack; skopeo to an OCI layout does not unpack.
# Pier reaches the registry through a veth from its netns (see tests/interop), the
# peers through 127.0.0.1. Needs root, dockerd, docker-registry, skopeo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=../tests/interop/registry-lib.sh
source "$here/../tests/interop/registry-lib.sh"
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-4}
MB=${MB:-25}
DATA=${DATA:-random}
ONLY=${ONLY:-}
docker_up || { say "dockerd is not running: nothing to compare with"; exit 1; }

WORK=$(mktemp -d /tmp/pier-bench-reg-XXXXXX)
IMG=pier-bench/big:$$
DOCKER_TAGS=("$IMG")
cleanup() {
  local t
  for t in "${DOCKER_TAGS[@]}"; do "$DOCKER" rmi -f "$t" >/dev/null 2>&1 || true; done
  [ -z "${CS_REF:-}" ] || podman rmi -f "$CS_REF" >/dev/null 2>&1 || true
  registry_stop
  rm -rf "$WORK"
  pier_stop
}
veth_pick
PIER_DAEMON_ARGS=(--insecure-registry "$VETH_HOST")
pier_start
trap cleanup EXIT
veth_up

say "making the image ($LAYERS x $MB MiB $DATA layers on busybox)"
"$REPO/scripts/mk-busybox-rootfs.sh" "$WORK/rootfs.tar"
IMG_ID=$(python3 "$here/mk-big-image.py" "$WORK/rootfs.tar" "$WORK/big.tar" "$IMG" "$LAYERS" "$MB" "$DATA")
"$DOCKER" load -q -i "$WORK/big.tar" >/dev/null
"${PIER[@]}" load -q -i "$WORK/big.tar" >/dev/null

now_ms() { date +%s%3N; }
# timed OUTVAR CMD...: runs CMD (quiet), stores the elapsed ms.
timed() {
  local var=$1 t0 t1; shift
  t0=$(now_ms)
  "$@" >/dev/null 2>"$WORK/err" || { say "failed: $*"; cat "$WORK/err" >&2; exit 1; }
  t1=$(now_ms)
  printf -v "$var" '%s' $((t1 - t0))
}
blob_mb() { du -sb "$REG_DIR/data/docker/registry/v2/blobs" | awk '{printf "%.1f", $1/1048576}'; }
fresh_registry() { registry_stop; registry_start none >/dev/null; }

declare -A MED MBS ALL
# rows KEY PREPARE-FN CMD [KEY PREPARE-FN CMD]... ; CMD may use $REG_DOCKER /
# $REG_PIER (evaluated per run). RUNS rounds, each running every row once in
# turn, so that a burst of load from elsewhere hits all of them alike.
rows() {
  local i j ms key
  local -a spec=("$@")
  for i in $(seq "$RUNS"); do
    for ((j = 0; j < ${#spec[@]}; j += 3)); do
      key=${spec[j]}
      ${spec[j + 1]}
      export REG_DOCKER REG_PIER
      timed ms bash -c "${spec[j + 2]}"
      ALL[$key]+="$ms "
      [ -n "${MBS[$key]:-}" ] || MBS[$key]=$(blob_mb)
    done
  done
  for ((j = 0; j < ${#spec[@]}; j += 3)); do
    key=${spec[j]}
    # shellcheck disable=SC2086 # the runs, one word each
    MED[$key]=$(printf '%s\n' ${ALL[$key]} | median)
    say "$key: ${ALL[$key]}ms"
  done
}

# --- push
pier_cold() {
  fresh_registry
  # By ID: every tag goes, and with the image the gzipped blobs of the last push.
  "${PIER[@]}" rmi -f "$IMG_ID" >/dev/null
  "${PIER[@]}" load -q -i "$WORK/big.tar" >/dev/null
  "${PIER[@]}" tag "$IMG" "$REG_PIER/bench/big:v1"
}
pier_warm() { fresh_registry; "${PIER[@]}" tag "$IMG" "$REG_PIER/bench/big:v1"; }
docker_push_prep() { fresh_registry; "$DOCKER" tag "$IMG" "$REG_DOCKER/bench/big:v1"; DOCKER_TAGS+=("$REG_DOCKER/bench/big:v1"); }
P=$(printf '%q ' "${PIER[@]}")
if [ "$ONLY" != pull ]; then
# skopeo from gzip blobs: an OCI layout made once from the archive.
skopeo copy -q --dest-compress docker-archive:"$WORK/big.tar" oci:"$WORK/big-oci:big" >/dev/null
# Pier's warm push right after its cold one, whose gzipped blobs it reuses.
rows docker_push docker_push_prep "$DOCKER push \$REG_DOCKER/bench/big:v1" \
  skopeo_push fresh_registry "skopeo copy -q --dest-tls-verify=false docker-archive:$WORK/big.tar docker://\$REG_DOCKER/bench/big:v1" \
  pier_push_cold pier_cold "$P push \$REG_PIER/bench/big:v1" \
  skopeo_push_gz fresh_registry "skopeo copy -q --dest-tls-verify=false oci:$WORK/big-oci:big docker://\$REG_DOCKER/bench/big:v1" \
  pier_push_warm pier_warm "$P push \$REG_PIER/bench/big:v1"
fi

# --- pull: Docker's push in the registry; neither engine holds the image any more.
if [ "$ONLY" != push ]; then
fresh_registry
"$DOCKER" tag "$IMG" "$REG_DOCKER/bench/big:v1"
DOCKER_TAGS+=("$REG_DOCKER/bench/big:v1")
"$DOCKER" push "$REG_DOCKER/bench/big:v1" >/dev/null
# By ID, so that every tag the push rows made goes too (layers shared with any tag
# left would make the pulls download nothing).
"$DOCKER" rmi -f "$IMG_ID" >/dev/null
"${PIER[@]}" rmi -f "$IMG_ID" >/dev/null
"$DOCKER" image inspect "$IMG_ID" >/dev/null 2>&1 && { say "docker still holds the image"; exit 1; }
"${PIER[@]}" image inspect "$IMG_ID" >/dev/null 2>&1 && { say "pier still holds the image"; exit 1; }
docker_pull_prep() { "$DOCKER" rmi -f "$REG_DOCKER/bench/big:v1" >/dev/null 2>&1 || true; }
pier_pull_prep() { "${PIER[@]}" rmi -f "$REG_PIER/bench/big:v1" >/dev/null 2>&1 || true; }
skopeo_pull_prep() { rm -rf "$WORK/pull-oci"; }
# Podman's store, under a tag of this run's own (removed on exit).
CS_REF=localhost/pier-bench/big-$$:v1
skopeo_cs_prep() { podman rmi -f "$CS_REF" >/dev/null 2>&1 || true; }
rows docker_pull docker_pull_prep "$DOCKER pull -q \$REG_DOCKER/bench/big:v1" \
  skopeo_pull skopeo_pull_prep "skopeo copy -q --src-tls-verify=false docker://\$REG_DOCKER/bench/big:v1 oci:$WORK/pull-oci:big" \
  skopeo_pull_cs skopeo_cs_prep "skopeo copy -q --src-tls-verify=false docker://\$REG_DOCKER/bench/big:v1 containers-storage:$CS_REF" \
  pier_pull pier_pull_prep "$P pull -q \$REG_PIER/bench/big:v1"
fi

rate() { awk -v m="${MBS[$1]}" -v t="${MED[$1]}" 'BEGIN{printf "%.0f", m/(t/1000)}'; }
ratio() { awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN{printf "%.2f", b/a}'; }
push_rows=(docker_push skopeo_push pier_push_cold skopeo_push_gz pier_push_warm)
pull_rows=(docker_pull skopeo_pull skopeo_pull_cs pier_pull)
case $ONLY in push) pull_rows=() ;; pull) push_rows=() ;; esac
echo
printf 'registry push/pull, %s MB of blobs, median of %s (load %s)\n' "$(blob_mb)" "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-46s %9s %8s %8s\n' what ms MB MB/s
for k in ${push_rows[@]+"${push_rows[@]}"} ${pull_rows[@]+"${pull_rows[@]}"}; do
  printf '%-46s %9s %8s %8s\n' "$k" "${MED[$k]}" "${MBS[$k]}" "$(rate "$k")"
done
echo
echo "ratios (peer time / Pier time; >1 means Pier is faster):"
if [ "$ONLY" != pull ]; then
  printf '  push cold:  vs docker push %s, vs skopeo (uncompressed source) %s\n' \
    "$(ratio pier_push_cold docker_push)" "$(ratio pier_push_cold skopeo_push)"
  printf '  push warm:  vs skopeo (gzip blobs) %s, vs docker push %s\n' \
    "$(ratio pier_push_warm skopeo_push_gz)" "$(ratio pier_push_warm docker_push)"
fi
if [ "$ONLY" != push ]; then
  printf '  pull:       vs docker pull %s, vs skopeo to containers-storage: %s, vs skopeo to oci: (no unpack) %s\n' \
    "$(ratio pier_pull docker_pull)" "$(ratio pier_pull skopeo_pull_cs)" "$(ratio pier_pull skopeo_pull)"
fi
