#!/usr/bin/env bash
# fresh-kernel.sh [CMD [ARGS...]] — run a command inside a freshly booted Debian 12 VM
# (KVM) that has Docker 20.10 and the host's release Pier, and pass its exit status back.
#
# Why: the build/bench host had its cgroup2 hierarchy remounted with `favordynmods`,
# which cannot be undone on a running kernel; moving a task between cgroups then skips
# an RCU grace period (~12-28 ms on a fresh kernel), so container-start latency
# measured on the host is not representative. The guest boots an unmodified Debian
# kernel where that cost is still paid, by Pier and Docker alike.
#
#   bench/vm/fresh-kernel.sh bench/run-true.sh          (CMD is relative to the repo)
#   CGROUP=v2 RUNS=20 bench/vm/fresh-kernel.sh bench/run-true.sh
#   bench/vm/fresh-kernel.sh                            (just the cgroup-move probe)
#
# Environment:
#   CGROUP=v1|v2   v1 (default, like the host: legacy controllers + a cgroup2 mount at
#                  /sys/fs/cgroup/unified) or the unified v2 hierarchy
#   RUNS, WARMUP   passed to the guest command
#   VM_CPUS=2 VM_MEM=4G VM_TIMEOUT=1800 (seconds)   VM_REBUILD=1 rebuilds the image
#   VM_OUT=/tmp/pier-vm-out/<stamp>   host directory the guest writes its output to
#   VM_KERNEL, VM_INITRD (none = no initrd)   boot another kernel than the image's
#   VM_BOOT_TIMEOUT=240   seconds until guest-run.sh must have started
#
# Hosts whose /dev/kvm is PVM (kvm_pvm module, no vmx/svm CPU flag; e.g. a Firecracker
# VM with nested_pvm=1) run only kernels built as PVM guests (CONFIG_PVM_GUEST,
# CONFIG_X86_PIE): the stock Debian kernel hangs in its decompressor right after
# "Probing EDD". There the script stops unless VM_KERNEL names such a kernel (built
# with 9p, overlayfs, cgroups, netfilter and bridge support, modules built in).
#
# The root filesystem (Debian bookworm, mmdebstrap from this machine's apt sources) is
# built once into /var/cache/pier/vm and booted with snapshot=on, so runs never change
# it. The guest has no NIC. The repo and /var/cache/pier/target/release are shared
# read-only over virtio-9p at the same paths; inside, systemd starts containerd and
# dockerd, then bench/vm/guest-run.sh (from the shared repo) imports
# peers/busybox:latest into Docker, probes the cgroup-move latency and runs CMD.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=/var/cache/pier/vm
RELEASE=${CARGO_TARGET_DIR:-/var/cache/pier/target}/release
CGROUP=${CGROUP:-v1}
VM_CPUS=${VM_CPUS:-2}
VM_MEM=${VM_MEM:-4G}
VM_TIMEOUT=${VM_TIMEOUT:-1800}
VM_OUT=${VM_OUT:-/tmp/pier-vm-out/$(date +%Y%m%d-%H%M%S)-$CGROUP}
say() { printf '[vm %s] %s\n' "$(date +%T)" "$*" >&2; }

# Bump IMAGE_VERSION when the build below changes in a way the package list does not show.
IMAGE_VERSION=2
PACKAGES=(systemd-sysv udev kmod linux-image-amd64 initramfs-tools docker.io containerd
  runc busybox-static iproute2 nftables iptables hyperfine jq curl libseccomp2 procps
  ca-certificates util-linux bsdextrautils file e2fsprogs)

# The guest-side boot hook: mounts the shares, then hands over to the repo's
# guest-run.sh so that changing the guest logic needs no image rebuild.
read -r -d '' GUEST_INIT <<'EOF' || true
#!/bin/sh
set -e
# Built in (no modules dir) with a custom VM_KERNEL.
modprobe -a 9p 9pnet_virtio 2>/dev/null || true
o=trans=virtio,version=9p2000.L,msize=1048576
mkdir -p /work/main /var/cache/pier/target/release /pier-vm-out
mount -t 9p -o "$o,ro,cache=loose" repo /work/main
mount -t 9p -o "$o,ro,cache=loose" release /var/cache/pier/target/release
mount -t 9p -o "$o,rw" out /pier-vm-out
exec /bin/bash /work/main/bench/vm/guest-run.sh
EOF

read -r -d '' GUEST_UNIT <<'EOF' || true
[Unit]
Description=Pier VM: run the host's command, then power off
After=docker.service containerd.service
Wants=docker.service containerd.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/pier-vm-init
StandardOutput=journal+console
StandardError=journal+console
FailureAction=poweroff-force
SuccessAction=poweroff-force
[Install]
WantedBy=multi-user.target
EOF

image_ok() {
  [ -z "${VM_REBUILD:-}" ] && [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$1" ] \
    && [ -f "$CACHE/rootfs.img" ] && [ -f "$CACHE/vmlinuz" ] && [ -f "$CACHE/initrd.img" ]
}

build_image() {
  local stamp
  stamp="$IMAGE_VERSION ${PACKAGES[*]}"
  image_ok "$stamp" && return
  mkdir -p "$CACHE"
  # One build at a time; a second caller waits and then finds the image ready.
  exec 9>"$CACHE/.lock"
  flock 9
  if image_ok "$stamp"; then exec 9>&-; return; fi
  command -v mmdebstrap >/dev/null || apt-get install -y mmdebstrap
  command -v mke2fs >/dev/null || apt-get install -y e2fsprogs
  rm -f "$CACHE/stamp"
  local dir=$CACHE/rootfs.dir
  rm -rf "$dir"
  # This machine's own apt sources, so the script names no mirror.
  local sources=()
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qE '^[[:space:]]*(deb|Types:)' "$f" && sources+=("$f")
  done
  [ ${#sources[@]} -gt 0 ] || { say "no apt sources configured on this machine"; exit 1; }
  say "building the bookworm root in $dir (mmdebstrap, a few minutes)"
  printf '%s\n' "$GUEST_INIT" > "$CACHE/pier-vm-init"
  printf '%s\n' "$GUEST_UNIT" > "$CACHE/pier-vm.service"
  # Masked units: login prompts and periodic jobs would only add noise to timings.
  mmdebstrap --mode=root --variant=required --format=directory \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='echo pier-vm > "$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda / ext4 rw,relatime 0 1\n" > "$1/etc/fstab"' \
    --customize-hook="install -m 0755 $CACHE/pier-vm-init \"\$1/usr/local/sbin/pier-vm-init\"" \
    --customize-hook="install -m 0644 $CACHE/pier-vm.service \"\$1/etc/systemd/system/pier-vm.service\"" \
    --customize-hook='chroot "$1" systemctl enable pier-vm.service docker.service containerd.service' \
    --customize-hook='chroot "$1" systemctl mask serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-timesyncd.service' \
    --customize-hook='chroot "$1" passwd -d root' \
    bookworm "$dir" "${sources[@]}"
  local k i
  k=$(ls -1 "$dir"/boot/vmlinuz-* | sort -V | tail -1)
  i=$dir/boot/initrd.img-${k##*/vmlinuz-}
  [ -f "$i" ] || { say "no initrd for $k in the chroot"; exit 1; }
  cp "$k" "$CACHE/vmlinuz"
  cp "$i" "$CACHE/initrd.img"
  rm -f "$CACHE/rootfs.img.tmp"
  # Sparse; the rest is room for Docker's and Pier's images (writes go to a snapshot).
  truncate -s 8G "$CACHE/rootfs.img.tmp"
  mke2fs -q -t ext4 -L pier-vm -d "$dir" "$CACHE/rootfs.img.tmp"
  mv -f "$CACHE/rootfs.img.tmp" "$CACHE/rootfs.img"
  rm -rf "$dir"
  echo "$stamp" > "$CACHE/stamp"
  exec 9>&-
  say "image ready: $CACHE/rootfs.img (kernel ${k##*/})"
}

build_image
[ "${VM_BUILD_ONLY:-}" ] && exit 0
[ -x "$RELEASE/pier" ] || { say "no release pier in $RELEASE (cargo build --release)"; exit 1; }
[ -r /dev/kvm ] || { say "/dev/kvm missing: refusing to fall back to emulation"; exit 1; }
KERNEL=${VM_KERNEL:-$CACHE/vmlinuz}
INITRD=${VM_INITRD:-$CACHE/initrd.img}
if [ -z "${VM_KERNEL:-}" ] && [ -d /sys/module/kvm_pvm ] && ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
  say "/dev/kvm here is PVM (kvm_pvm, no vmx/svm): the stock Debian kernel cannot boot under it."
  say "Set VM_KERNEL to a PVM guest kernel (CONFIG_PVM_GUEST) with the drivers built in."
  exit 2
fi
initrd_args=()
[ "$INITRD" = none ] || initrd_args=(-initrd "$INITRD")

mkdir -p "$VM_OUT"
rm -f "$VM_OUT/rc" "$VM_OUT/output.log"
# The guest reads what to run from here: argv NUL-separated, plus a few variables.
: > "$VM_OUT/cmd"
for a in "$@"; do printf '%s\0' "$a" >> "$VM_OUT/cmd"; done
{
  printf 'RUNS=%q\n' "${RUNS:-20}"
  printf 'WARMUP=%q\n' "${WARMUP:-3}"
  printf 'CGROUP=%q\n' "$CGROUP"
  printf 'PROBE=%q\n' "${PROBE:-1}"
} > "$VM_OUT/env"

case $CGROUP in
  v1) cg=systemd.unified_cgroup_hierarchy=0 ;;
  v2) cg=systemd.unified_cgroup_hierarchy=1 ;;
  *) say "CGROUP must be v1 or v2"; exit 1 ;;
esac

say "booting (CGROUP=$CGROUP, ${VM_CPUS} cpus, $VM_MEM); output in $VM_OUT"
touch "$VM_OUT/output.log"
# -arch-capabilities: nested under some hypervisors KVM refuses MSR 0x10a and
# qemu aborts at start; the guest does not need it.
timeout --foreground -k 10 "$VM_TIMEOUT" qemu-system-x86_64 -enable-kvm -cpu host,-arch-capabilities \
  -smp "$VM_CPUS" -m "$VM_MEM" -nic none -display none -monitor none -no-reboot \
  -serial "file:$VM_OUT/console.log" \
  -kernel "$KERNEL" "${initrd_args[@]}" \
  -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=0 $cg" \
  -drive "file=$CACHE/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on" \
  -virtfs "local,path=$RELEASE,mount_tag=release,security_model=none,readonly=on" \
  -virtfs "local,path=$VM_OUT,mount_tag=out,security_model=none" &
qpid=$!
tail -n +1 -F --pid=$qpid "$VM_OUT/output.log" 2>/dev/null &
tpid=$!
# A kernel that cannot boot here just spins; give up when guest-run.sh never starts.
(
  for _ in $(seq "${VM_BOOT_TIMEOUT:-240}"); do
    [ -s "$VM_OUT/output.log" ] && exit 0
    kill -0 $qpid 2>/dev/null || exit 0
    sleep 1
  done
  say "guest did not reach guest-run.sh in ${VM_BOOT_TIMEOUT:-240} s: stopping qemu"
  kill $qpid 2>/dev/null
) &
wpid=$!
qrc=0
wait $qpid || qrc=$?
sleep 0.3; kill $tpid $wpid 2>/dev/null || true; wait $tpid $wpid 2>/dev/null || true
if [ ! -f "$VM_OUT/rc" ]; then
  say "guest gave no exit status (qemu rc $qrc); console tail:"
  tail -30 "$VM_OUT/console.log" >&2
  exit 1
fi
rc=$(cat "$VM_OUT/rc")
say "guest command exit status $rc (output: $VM_OUT/output.log)"
exit "$rc"
