#!/usr/bin/env bash
# guest-run.sh — runs INSIDE the VM of bench/vm/fresh-kernel.sh (started by the
# pier-vm.service unit baked into the image, after containerd and dockerd). Reads the
# command and settings the host left in /pier-vm-out, writes output.log and rc there.
# Not meant to be run on the host: it creates cgroups at the hierarchy roots.
set -uo pipefail
OUTDIR=/pier-vm-out
exec >"$OUTDIR/output.log" 2>&1
rc=1
trap 'echo "$rc" > "$OUTDIR/rc"; sync' EXIT
# shellcheck disable=SC1091
. "$OUTDIR/env"
export RUNS WARMUP
say() { printf '[guest %s] %s\n' "$(date +%T)" "$*"; }

say "kernel $(uname -r), cmdline: $(cat /proc/cmdline)"
say "cgroup mounts:"; grep cgroup /proc/mounts | awk '{print "  " $3 " " $2 " " $4}'

for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { say "dockerd did not come up"; journalctl -u docker --no-pager | tail -30; exit; }
say "docker $(docker version -f '{{.Server.Version}}'), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
say "pier: $(/var/cache/pier/target/release/pier --version 2>&1 | head -1)"

tar=$(mktemp /tmp/bb.XXXXXX.tar)
/work/main/scripts/mk-busybox-rootfs.sh "$tar" && docker import -c 'CMD ["sh"]' "$tar" peers/busybox:latest >/dev/null \
  || { say "importing busybox into docker failed"; exit; }
rm -f "$tar"
docker run --rm peers/busybox:latest true || { say "docker run fails in the guest"; exit; }

# probe DIR: time moving one shell between two fresh cgroups under DIR, 100 ms of idle
# before each pair, as a container start does after a pause. Prints per-write ms.
probe() {
  local base=$1 a=$1/pier-probe-a b=$1/pier-probe-b
  [ -w "$base/cgroup.procs" ] || return 0
  mkdir -p "$a" "$b"
  (
    ws=()
    for _ in $(seq 20); do
      sleep 0.1
      t0=$EPOCHREALTIME; echo "$BASHPID" > "$a/cgroup.procs"
      t1=$EPOCHREALTIME; echo "$BASHPID" > "$b/cgroup.procs"
      t2=$EPOCHREALTIME
      ws+=("$t0 $t1 $t2")
    done
    echo "$BASHPID" > "$base/cgroup.procs"
    # The first write of a pair follows 100 ms of idle; the second follows at once.
    for k in 1 2; do
      printf '%s\n' "${ws[@]}" | awk -v k=$k '{ printf "%.3f\n", ($(k + 1) - $k) * 1000 }' \
        | sort -n | awk -v d="$base" -v k=$k '{ v[NR] = $1; s += $1 }
            END { printf "  %-24s %s write: n %d  median %.2f ms  min %.2f  max %.2f  mean %.2f\n",
                  d, k == 1 ? "1st (after idle)" : "2nd (right after)", NR,
                  (v[NR/2] + v[NR/2+1]) / 2, v[1], v[NR], s / NR }'
    done
  )
  rmdir "$a" "$b"
}
if [ "${PROBE:-1}" = 1 ]; then
  say "cgroup move probe (echo \$BASHPID > cgroup.procs, 100 ms idle before each pair):"
  if [ "$CGROUP" = v2 ]; then
    probe /sys/fs/cgroup
  else
    probe /sys/fs/cgroup/unified
    probe /sys/fs/cgroup/pids
    probe /sys/fs/cgroup/memory
  fi
fi

mapfile -d '' args < "$OUTDIR/cmd"
if [ ${#args[@]} -eq 0 ]; then rc=0; exit; fi
cd /work/main || exit
export OUT=$OUTDIR/results
say "running: ${args[*]}"
"${args[@]}"
rc=$?
say "exit status $rc"
exit 0
