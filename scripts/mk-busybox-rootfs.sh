#!/usr/bin/env bash
# mk-busybox-rootfs.sh OUT.tar — a minimal root filesystem from Debian's busybox-static.
#
# The tarball is deterministic (sorted names, mtime 0, owner root, fixed modes), so its
# digest only changes when the busybox binary does; tests and benches rely on that to
# cache the image.
#   BUSYBOX=/bin/busybox   which static busybox to use
set -euo pipefail

out=${1:?usage: mk-busybox-rootfs.sh OUT.tar}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || BUSYBOX=/usr/bin/busybox
if [ ! -x "$BUSYBOX" ]; then
  echo "mk-busybox-rootfs: no static busybox found (apt-get install busybox-static)" >&2
  exit 1
fi
# A dynamically linked busybox would not run inside a root without libc.
if file -L "$BUSYBOX" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "mk-busybox-rootfs: $BUSYBOX is dynamically linked; need busybox-static" >&2
  exit 1
fi

umask 022
work=$(mktemp -d /tmp/pier-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r"/{bin,etc,root,home/app,var/tmp,var/log,proc,sys,dev,tmp,usr/bin,usr/sbin,sbin}
install -m 0755 "$BUSYBOX" "$r/bin/busybox"
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
done

cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
P
cat > "$r/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
app:x:1000:
G
cat > "$r/etc/shadow" <<'S'
root:*:0:0:99999:7:::
nobody:*:0:0:99999:7:::
app:*:0:0:99999:7:::
S
chmod 0640 "$r/etc/shadow"
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"
chmod 0755 "$r/home/app"

# Owner is forced to root except /home/app, which belongs to the app user; tar
# --owner applies to everything, so set it on disk and use --numeric-owner instead.
chown -R 0:0 "$r"
chown 1000:1000 "$r/home/app"
find "$r" -exec touch -h -d @0 {} +

mkdir -p "$(dirname "$out")"
tar --sort=name --numeric-owner --format=gnu --mtime=@0 \
    -C "$r" -cf "$out.tmp.$$" .
mv -f "$out.tmp.$$" "$out"
