#!/usr/bin/env bash
# bench/save-load.sh — `pier save`/`pier load` against `docker save`/`docker load` on
# one ~100 MB image (busybox + 4 x 25 MB random layers, bench/mk-big-image.py, loaded
# into both engines from the same archive). Median of RUNS; MB/s of the archive.
#   RUNS=3  LAYERS=4  MB=25  DATA=random|binaries
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-4}
MB=${MB:-25}
DATA=${DATA:-random}
docker_up || { say "dockerd is not running: nothing to compare with"; exit 1; }

WORK=$(mktemp -d /tmp/pier-bench-save-XXXXXX)
IMG=pier-bench/big:$$
cleanup() {
  "$DOCKER" rmi -f "$IMG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  pier_stop
}
pier_start
trap cleanup EXIT

say "making the image ($LAYERS x $MB MiB $DATA layers on busybox)"
"$REPO/scripts/mk-busybox-rootfs.sh" "$WORK/rootfs.tar"
python3 "$here/mk-big-image.py" "$WORK/rootfs.tar" "$WORK/big.tar" "$IMG" "$LAYERS" "$MB" "$DATA" >/dev/null
"$DOCKER" load -q -i "$WORK/big.tar" >/dev/null
"${PIER[@]}" load -q -i "$WORK/big.tar" >/dev/null

now_ms() { date +%s%3N; }
declare -A MED SIZE
# row KEY PREP-FN CMD... (CMD run quietly; PREP-FN untimed before each run)
row() {
  local key=$1 prep=$2 i t0 t1 all=(); shift 2
  for i in $(seq "$RUNS"); do
    $prep
    t0=$(now_ms)
    "$@" >/dev/null 2>"$WORK/err" || { say "failed: $*"; cat "$WORK/err" >&2; exit 1; }
    t1=$(now_ms)
    all+=($((t1 - t0)))
  done
  MED[$key]=$(printf '%s\n' "${all[@]}" | median)
  say "$key: ${all[*]} ms"
}
rm_out() { rm -f "$WORK/out.tar"; sync; }
row docker_save rm_out "$DOCKER" save -o "$WORK/out.tar" "$IMG"
SIZE[docker]=$(stat -c %s "$WORK/out.tar")
cp "$WORK/out.tar" "$WORK/docker-save.tar"
row pier_save rm_out "${PIER[@]}" save -o "$WORK/out.tar" "$IMG"
SIZE[pier]=$(stat -c %s "$WORK/out.tar")
cp "$WORK/out.tar" "$WORK/pier-save.tar"
# Loads: each engine loads its own save with the image absent.
docker_rmi() { "$DOCKER" rmi -f "$IMG" >/dev/null 2>&1 || true; }
pier_rmi() { "${PIER[@]}" rmi -f "$IMG" >/dev/null 2>&1 || true; }
row docker_load docker_rmi "$DOCKER" load -q -i "$WORK/docker-save.tar"
row pier_load pier_rmi "${PIER[@]}" load -q -i "$WORK/pier-save.tar"
# Cross: each loads the other's archive.
row pier_load_docker_tar pier_rmi "${PIER[@]}" load -q -i "$WORK/docker-save.tar"

mbs() { awk -v s="$1" -v t="$2" 'BEGIN{printf "%.0f", s/1048576/(t/1000)}'; }
echo
printf 'save/load, archive %s MB (docker) / %s MB (pier), median of %s (load %s)\n' \
  "$((SIZE[docker] >> 20))" "$((SIZE[pier] >> 20))" "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s %9s %8s\n' what ms MB/s
for k in docker_save pier_save docker_load pier_load pier_load_docker_tar; do
  case $k in docker_*) s=${SIZE[docker]} ;; pier_load_docker_tar) s=${SIZE[docker]} ;; *) s=${SIZE[pier]} ;; esac
  printf '%-30s %9s %8s\n' "$k" "${MED[$k]}" "$(mbs "$s" "${MED[$k]}")"
done
echo
awk -v ds="${MED[docker_save]}" -v ps="${MED[pier_save]}" -v dl="${MED[docker_load]}" -v pl="${MED[pier_load]}" \
  'BEGIN{printf "ratios (docker time / Pier time; >1 means Pier is faster): save %.2f, load %.2f\n", ds/ps, dl/pl}'
