#!/usr/bin/env bash
# scripts/dockerpy-tls.sh — docker-py's integration tests against a Pier daemon
# that serves the API over mutual TLS (`--tlsverify`) on a loopback port, with
# the client configured the way docker-py users do it: DOCKER_HOST=tcp://...,
# DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH=<dir of ca.pem, cert.pem, key.pem>.
#
#   scripts/dockerpy-tls.sh [BIN_DIR] [DOCKERPY_GIT_DIR] [test files...]
#     BIN_DIR           where pier and pier-shim are ($CARGO_TARGET_DIR/debug)
#     DOCKERPY_GIT_DIR  a git dir of docker/docker-py
#     test files        default: api_client_test.py context_api_test.py
#
# The daemon runs in a network namespace of its own (its bridge and port
# 2376 touch nothing on the host), with throwaway certificates from openssl.
# The test run itself is /work/shared/conformance/dockerpy.sh (DOCKERPY_SH;
# see its knobs),
# copied with its own helper clients taking the TLS environment too and the
# TLS variables kept instead of unset.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$here/target}/debug}
GITDIR=${2:-/work/.mirror/docker+docker-py/repo}
shift $(( $# < 2 ? $# : 2 ))
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=(api_client_test.py context_api_test.py)
orig=${DOCKERPY_SH:-/work/shared/conformance/dockerpy.sh}
[ -f "$orig" ] || { echo "dockerpy-tls.sh: $orig not found" >&2; exit 1; }
[ -x "$BIN/pier" ] && [ -x "$BIN/pier-shim" ] || { echo "no pier/pier-shim in $BIN" >&2; exit 1; }

D=$(mktemp -d /tmp/dpy-tls.XXXXXX)
NS=dpytls-$$
ADDR=127.0.0.1:2376
DP=
cleanup() {
  [ -n "$DP" ] && kill "$DP" 2>/dev/null && wait "$DP" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

# ---- certificates: a CA, the server (127.0.0.1), a client ------------------
ssl() { openssl "$@" >/dev/null 2>&1; }
cd "$D"
ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=pier-dpy-ca -keyout ca-key.pem -out ca.pem
leaf() {  # name usage extra-ext
  printf '%sextendedKeyUsage=%s\n' "$3" "$2" > "$1.ext"
  ssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" \
      -keyout "$1-key.pem" -out "$1.csr"
  ssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile "$1.ext" -out "$1-cert.pem"
}
leaf server serverAuth $'subjectAltName=IP:127.0.0.1,DNS:localhost\n'
leaf client clientAuth ''
mkdir certs && cp ca.pem certs/ca.pem && cp client-cert.pem certs/cert.pem \
  && cp client-key.pem certs/key.pem
cd - >/dev/null

# ---- the daemon ------------------------------------------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
nsenter --net="/run/netns/$NS" "$BIN/pier" daemon --data-root "$D/root" --exec-root "$D/exec" \
  --cgroup-parent "pier-$NS" -H "unix://$D/pier.sock" -H "tcp://$ADDR" \
  --tlsverify --tlscacert "$D/ca.pem" --tlscert "$D/server-cert.pem" \
  --tlskey "$D/server-key.pem" > "$D/daemon.log" 2>&1 &
DP=$!
# The unix socket only tells when the daemon is up; the tests use TLS.
for _ in $(seq 100); do [ -S "$D/pier.sock" ] && break; sleep 0.2; done
[ -S "$D/pier.sock" ] || { cat "$D/daemon.log"; exit 1; }

# ---- the run ---------------------------------------------------------------
copy=$D/dockerpy.sh
sed -e "s/docker\.APIClient(base_url=__import__('os').environ\['DOCKER_HOST'\], version='auto')/docker.APIClient(version='auto', **docker.utils.kwargs_from_env())/g" \
    -e "s/docker\.APIClient(version='auto')/docker.APIClient(version='auto', **docker.utils.kwargs_from_env())/g" \
    -e 's/^unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONTEXT$/unset DOCKER_CONTEXT/' \
    "$orig" > "$copy"
grep -q '^unset DOCKER_CONTEXT$' "$copy" || { echo "dockerpy.sh changed: cannot keep the TLS env" >&2; exit 1; }
set +e
# requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (set on many CI hosts)
# override the CA docker-py gives it (requests issue 3829): unset here.
env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$D/certs \
  nsenter --net="/run/netns/$NS" bash "$copy" "tcp://$ADDR" "$GITDIR" "${FILES[@]}"
rc=$?
set -e
exit $rc
