#!/usr/bin/env bash
# cleanup-root.sh ROOT CGROUP_NAME [NETNS] — tear down everything a Pier daemon run
# under ROOT left behind: processes (command line or cwd under ROOT, in a cgroup
# named CGROUP_NAME, or in NETNS), mounts below ROOT (deepest first, lazily),
# cgroup dirs named CGROUP_NAME in every hierarchy, the netns, and ROOT itself.
# Used by the benches and by clean-test-leftovers.sh; the Rust harness does the same.
set -uo pipefail
root=${1:?usage: cleanup-root.sh ROOT CGROUP_NAME [NETNS]}
cg=${2:?usage: cleanup-root.sh ROOT CGROUP_NAME [NETNS]}
ns=${3:-}
root=${root%/}
case "$root" in /tmp/pier-*) ;; *) echo "cleanup-root: refusing $root (not /tmp/pier-*)" >&2; exit 2 ;; esac

ns_ino=""
[ -n "$ns" ] && [ -e "/run/netns/$ns" ] && ns_ino=$(stat -Lc %i "/run/netns/$ns")

procs() {  # one pass over /proc with a few greps, not a process per pid
  {
    grep -lsaP -- "\Q$root\E(/|\x00)" /proc/[0-9]*/cmdline
    grep -lsE -- ":/(.*/)?$cg(/|\$)" /proc/[0-9]*/cgroup
    find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$root" -o -lname "$root/*" \) 2>/dev/null
    [ -n "$ns_ino" ] && find /proc/[0-9]*/ns/net -maxdepth 0 -lname "net:\[$ns_ino\]" 2>/dev/null
  } | cut -d/ -f3 | sort -u | grep -vx "$$"
}
cg_dirs() {  # deepest first
  local h
  for h in $(awk '$9 ~ /^cgroup2?$/ {print $5}' /proc/self/mountinfo | sort -u); do
    find "$h" -mindepth 1 -maxdepth 3 -type d -name "$cg" 2>/dev/null
  done | while read -r top; do find "$top" -depth -type d; done
}

for _ in $(seq 20); do
  for d in $(cg_dirs); do
    [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
  done
  p=$(procs)
  [ -z "$p" ] && break
  kill -9 $p 2>/dev/null
  sleep 0.1
done
for _ in 1 2 3 4 5; do
  m=$(awk -v r="$root" '{ if ($5 == r || index($5, r "/") == 1) print $5 }' /proc/self/mountinfo \
      | awk '{ print gsub("/", "/"), $0 }' | sort -rn | cut -d' ' -f2-)
  [ -z "$m" ] && break
  while read -r mp; do umount -l "$(printf '%b' "$mp")" 2>/dev/null; done <<< "$m"
done
for _ in $(seq 20); do
  dirs=$(cg_dirs)
  [ -z "$dirs" ] && break
  for d in $dirs; do
    [ -f "$d/cgroup.procs" ] && xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null
    rmdir "$d" 2>/dev/null
  done
  sleep 0.1
done
[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
if awk -v r="$root" '{ if ($5 == r || index($5, r "/") == 1) f=1 } END { exit !f }' /proc/self/mountinfo; then
  echo "cleanup-root: mounts remain under $root; not deleting it" >&2
  exit 1
fi
rm -rf "$root"
