#!/usr/bin/env bash
# clean-test-leftovers.sh — remove the roots, mounts, cgroups, netns and processes of
# test daemons (/tmp/pier-test-*) and bench daemons (/tmp/pier-bench-*) whose owning
# process is gone (a test binary killed before its cleanup ran). Live ones are kept.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=0
for root in /tmp/pier-test-* /tmp/pier-bench-*; do
  [ -d "$root" ] || continue
  owner=$(cat "$root/owner.pid" 2>/dev/null || echo "")
  if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
  id=${root##*-}
  case "$root" in
    /tmp/pier-test-*)  "$here/cleanup-root.sh" "$root" "pier-test-$id" "pier-t-$id"
                       # the test's short exec root (see TestDaemon::exec_root)
                       [ -d "/tmp/pier-x-$id" ] && "$here/cleanup-root.sh" "/tmp/pier-x-$id" "pier-test-$id" ;;
    /tmp/pier-bench-*) "$here/cleanup-root.sh" "$root" "pier-bench-$id" "pier-b-$id"
                       [ -d "/tmp/pier-bx-$id" ] && "$here/cleanup-root.sh" "/tmp/pier-bx-$id" "pier-bench-$id" ;;
  esac
  n=$((n + 1))
done
# Exec roots whose test root is already gone.
for x in /tmp/pier-x-*; do
  [ -d "$x" ] || continue
  id=${x##*-}
  [ -d "/tmp/pier-test-$id" ] && continue
  "$here/cleanup-root.sh" "$x" "pier-test-$id" "pier-t-$id"; n=$((n + 1))
done
# Namespaces whose root is already gone.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^pier-[tb]-'); do
  id=${ns#pier-?-}
  [ -d "/tmp/pier-test-$id" ] || [ -d "/tmp/pier-bench-$id" ] || { ip netns del "$ns"; n=$((n + 1)); }
done
# Namespaces of tests/tests/cni.rs (pier-cni-<test pid in hex>-...) whose test
# process has ended: the bridge and rules it made live in them.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^pier-cni-[0-9a-f]+-'); do
  hex=${ns#pier-cni-}; hex=${hex%%-*}
  kill -0 "$((16#$hex))" 2>/dev/null || { ip netns del "$ns"; n=$((n + 1)); }
done
# Busybox tarballs of test processes that have ended (see busybox_rootfs_tar()).
for t in /tmp/pier-test-busybox-*.tar; do
  [ -f "$t" ] || continue
  pid=${t#/tmp/pier-test-busybox-}; pid=${pid%.tar}
  kill -0 "$pid" 2>/dev/null || rm -f "$t"
done
[ "$n" -gt 0 ] && echo "clean-test-leftovers: cleaned $n leftover(s)" >&2
exit 0
