#!/usr/bin/env bash
# mk-python-base.sh [pier global args]
# Builds a Debian bookworm root with python3 + pip (mmdebstrap, minbase) and imports it
# as python:3.11-slim, the base image of the example apps and build tests. Needs only
# the machine's own Debian package sources (no image registry).
#   PIER=pier                                   the CLI to use
#   PY_TAR=/var/cache/pier/python-base.tar      where the root tarball is kept; reused
#                                               when present (delete it to rebuild)
#   PY_TAG=python:3.11-slim                     the tag to import as
#   PY_SOURCES=/etc/apt/sources.list.d/debian.sources   apt sources for mmdebstrap
set -euo pipefail
PIER=${PIER:-pier}
PY_TAR=${PY_TAR:-/var/cache/pier/python-base.tar}
PY_TAG=${PY_TAG:-python:3.11-slim}
PY_SOURCES=${PY_SOURCES:-}
if [ -z "$PY_SOURCES" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then PY_SOURCES=$f; break; fi
  done
fi

if ! command -v mmdebstrap >/dev/null; then
  echo "mk-python-base: mmdebstrap missing (apt-get install mmdebstrap)" >&2
  exit 1
fi

if [ ! -s "$PY_TAR" ]; then
  mkdir -p "$(dirname "$PY_TAR")"
  tmp="$PY_TAR.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  echo "mk-python-base: building bookworm root into $PY_TAR (takes a minute or two)" >&2
  # Docker's python images let `pip install` write to the system site-packages and
  # have a `python` command; Debian's python3 forbids the former (PEP 668) and lacks
  # the latter, so adjust the root to behave like the image people expect.
  mirror_args=()
  [ -n "$PY_SOURCES" ] && mirror_args=("$PY_SOURCES")
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-pip,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    --customize-hook='ln -sf /usr/bin/python3 "$1"/usr/local/bin/python' \
    --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*' \
    --format=tar bookworm "$tmp" "${mirror_args[@]}"
  mv -f "$tmp" "$PY_TAR"
  trap - EXIT
fi

"$PIER" "$@" import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'CMD ["python3"]' \
  - "$PY_TAG" < "$PY_TAR"
