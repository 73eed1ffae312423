#!/usr/bin/env bash
# mk-busybox-image.sh [pier global args, e.g. -H unix:///run/pier/pier.sock]
# Imports the busybox root (scripts/mk-busybox-rootfs.sh) as busybox:latest.
#   PIER=pier   the CLI to use
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PIER=${PIER:-pier}
tar=$(mktemp /tmp/pier-busybox.XXXXXX.tar)
trap 'rm -f "$tar"' EXIT
"$here/mk-busybox-rootfs.sh" "$tar"
"$PIER" "$@" import -c 'CMD ["sh"]' - busybox:latest < "$tar"
