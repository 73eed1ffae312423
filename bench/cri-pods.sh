#!/usr/bin/env bash
# cri-pods.sh — the pod lifecycle through the CRI, as the kubelet drives it: N x
# (runp, create, start, stop, rm, stopp, rmp), each step a new crictl process as an
# operator types it. Prints the median and p90 of a whole lifecycle and of runp alone,
# and the supervisor memory per running pod: the RSS (and PSS) of its pier-shim
# processes (the pod's namespace holder and the container's shim).
# containerd 1.6 on this machine (../shared/conformance/cri/README.md): median 468 ms,
# p90 519 ms, runp 112 ms, 13.5 MB shim RSS per pod.
#   N=30  CRICTL=path (default: unpacked from ../shared/conformance/cri/crictl.gz)
#   CNI_CONF_DIR=dir: the pods' networks; default the bridge + portmap conflist
#   containerd's baseline used (../shared/conformance/cri/images/containerd-reference/
#   net.d), "" for loopback-only pods.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${N:-30}
if [ -z "${CNI_CONF_DIR+set}" ]; then
  CNI_CONF_DIR=""
  for d in "$REPO/../shared" "$REPO/../../shared"; do
    [ -d "$d/conformance/cri/images/containerd-reference/net.d" ] && {
      CNI_CONF_DIR=$(cd "$d/conformance/cri/images/containerd-reference/net.d" && pwd); break; }
  done
fi
PIER_DAEMON_ARGS=(--cni-conf-dir "$CNI_CONF_DIR")

pier_start
WORK=$(mktemp -d /tmp/cri-pods-XXXXXX)
trap 'rm -rf "$WORK"; pier_stop' EXIT
CRICTL=${CRICTL:-}
if [ -z "$CRICTL" ]; then
  for gz in "$REPO/../shared/conformance/cri/crictl.gz" "$REPO/../../shared/conformance/cri/crictl.gz"; do
    [ -f "$gz" ] && { gzip -dc "$gz" > "$WORK/crictl"; chmod +x "$WORK/crictl"; CRICTL=$WORK/crictl; break; }
  done
fi
[ -n "$CRICTL" ] || { say "no crictl: set CRICTL"; exit 1; }
EP=unix://$BXROOT/cri.sock
cri() { "$CRICTL" --config /dev/null -r "$EP" -i "$EP" "$@" 2>>"$WORK/crictl.err" || { say "crictl $*: $(tail -1 "$WORK/crictl.err")"; return 1; }; }

cat > "$WORK/pod.json" <<JSON
{"metadata":{"name":"bench","namespace":"default","uid":"bench-uid","attempt":0},
 "log_directory":"$WORK/logs","linux":{}}
JSON
cat > "$WORK/ctr.json" <<'JSON'
{"metadata":{"name":"sleeper"},"image":{"image":"busybox:latest"},
 "command":["sleep","3600"],"log_path":"sleeper.log","linux":{}}
JSON

now_ns() { date +%s%N; }
# rss_kb PID...: "RSS PSS" summed, in kB, from smaps_rollup.
rss_kb() {
  local rss=0 pss=0 p r s
  for p in "$@"; do
    r=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup"); s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
    rss=$((rss + r)); pss=$((pss + s))
  done
  echo "$rss $pss"
}

LIFE=(); MEM=()
STEPS=(runp create start stop rm stopp rmp)
declare -A T
for st in "${STEPS[@]}"; do T[$st]=""; done
# step NAME CMD...: runs one crictl step; its output in OUT, its wall time (us) in
# LAST and added to T[NAME].
step() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns); OUT=$(cri "$@"); t1=$(now_ns)
  LAST=$(( (t1 - t0) / 1000 ))
  T[$name]+="$LAST "
}
for i in $(seq "$N"); do
  sum=0
  step runp runp "$WORK/pod.json"; pod=$OUT; sum=$((sum + LAST))
  step create create "$pod" "$WORK/ctr.json" "$WORK/pod.json"; ctr=$OUT; sum=$((sum + LAST))
  step start start "$ctr"; sum=$((sum + LAST))
  # Memory of this pod's supervisors, measured outside the timed steps.
  holder=$(cri inspectp "$pod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["pid"])')
  shim=$(pgrep -f -- "pier-shim --id $ctr" | head -1)
  MEM+=("$(rss_kb "$holder" "$shim")")
  step stop stop -t 0 "$ctr"; sum=$((sum + LAST))
  step rm rm "$ctr"; sum=$((sum + LAST))
  step stopp stopp "$pod"; sum=$((sum + LAST))
  step rmp rmp "$pod"; sum=$((sum + LAST))
  LIFE+=("$sum")
done

stats() { # microseconds on stdin -> "median p90" in ms
  sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9+0.999)]; printf "%.1f %.1f", m/1000, p/1000}'
}
read -r lm lp <<<"$(printf '%s\n' "${LIFE[@]}" | stats)"
mem=$(printf '%s\n' "${MEM[@]}" | awk '{r+=$1; p+=$2} END {printf "%.2f %.2f", r/NR/1024, p/NR/1024}')
read -r mrss mpss <<<"$mem"
echo "pier CRI, $N pod lifecycles through crictl ($PIER_BIN; CNI conf dir: ${CNI_CONF_DIR:-none, loopback only})"
echo "  lifecycle (runp,create,start,stop,rm,stopp,rmp): median ${lm} ms, p90 ${lp} ms   (containerd 1.6: 468 / 519 ms)"
for st in "${STEPS[@]}"; do
  read -r m p <<<"$(printf '%s\n' ${T[$st]} | stats)"
  printf '  %-6s median %6s ms, p90 %6s ms\n' "$st" "$m" "$p"
done
echo "  (containerd 1.6: runp 112 ms)"
echo "  supervisor memory per running pod (holder + container shim): RSS ${mrss} MB, PSS ${mpss} MB   (containerd-shim-runc-v2: 13.5 MB RSS, 3.7 MB PSS)"
