#!/usr/bin/env bash
# tests/interop/registry-docker.sh — Pier and Docker through Debian's docker-registry.
#
# For each of: no auth, htpasswd Basic, Bearer (tests/interop/token-server.py), and
# HTTPS with a CA made here (Pier trusts it from /etc/docker/certs.d/<host:port>/ca.crt;
# Docker reaches the registry through 127.0.0.1, which it does not verify):
#   Pier commits an image and pushes it; Docker pulls it and runs it; same digest.
#   Docker commits an image and pushes it; Pier pulls it and runs it; same digest.
# Then the archive formats: `pier save` -> `docker load` and `skopeo inspect
# docker-archive:`; `pier save --format oci` -> `skopeo inspect oci:` and `umoci`;
# `docker save` -> `pier load`, each run afterwards.
#
# Needs root, a running dockerd (/usr/bin/docker), docker-registry, skopeo, umoci,
# openssl, python3, and a Pier build (PIER_BIN, else the release build). Not part of CI
# (CI has no dockerd); the Docker-free parts are in crates/pier-registry/tests.
# Prints one PASS/FAIL line per check and the digests; exits 1 if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../bench/lib.sh
source "$here/../../bench/lib.sh"
# shellcheck source=registry-lib.sh
source "$here/registry-lib.sh"

DOCKER=/usr/bin/docker
docker_up || { echo "SKIPPED: dockerd is not running ($DOCKER info failed)" >&2; exit 77; }
for t in docker-registry skopeo umoci openssl python3; do
  command -v "$t" >/dev/null || { echo "SKIPPED: $t is missing" >&2; exit 77; }
done

FAILS=0
PASSES=0
pass() { PASSES=$((PASSES + 1)); printf 'PASS %s\n' "$*"; }
fail() { FAILS=$((FAILS + 1)); printf 'FAIL %s\n' "$*"; }
# check NAME CMD...: runs CMD, output kept in $OUT, PASS/FAIL by exit status.
check() {
  local name=$1; shift
  if OUT=$("$@" 2>&1); then pass "$name"; return 0; fi
  fail "$name"; printf '%s\n' "$OUT" | tail -15 | sed 's/^/    | /'; return 1
}
digest_in() { grep -oE 'sha256:[0-9a-f]{64}' <<<"$1" | tail -1; }

DOCKER_TAGS=()
DOCKER_CTRS=()
cleanup() {
  local c t
  for c in ${DOCKER_CTRS[@]+"${DOCKER_CTRS[@]}"}; do "$DOCKER" rm -f "$c" >/dev/null 2>&1; done
  for t in ${DOCKER_TAGS[@]+"${DOCKER_TAGS[@]}"}; do "$DOCKER" rmi -f "$t" >/dev/null 2>&1; done
  registry_stop
  [ -n "${CERTS_D:-}" ] && rm -rf "$CERTS_D"
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
  pier_stop
}

WORK=$(mktemp -d /tmp/pier-interop-XXXXXX)
# Credentials of each side in their own config, not the machine's ~/.docker.
export DOCKER_CONFIG=$WORK/pier-config
mkdir -p "$DOCKER_CONFIG" "$WORK/docker-config"
dk() { DOCKER_CONFIG=$WORK/docker-config "$DOCKER" "$@"; }

# The daemon's netns gets a veth to the host; registries on VETH_HOST are reached over
# plain http because that address is listed as insecure (--insecure-registry), those on
# VETH_TLS over verified https.
veth_pick
PIER_DAEMON_ARGS=(--insecure-registry "$VETH_NET.0/31")  # .1 only, not $VETH_TLS
pier_start
trap cleanup EXIT
veth_up
say "pier: ${PIER[*]}; veth host side $VETH_HOST (insecure), $VETH_TLS (TLS)"
run_id=$$

# Source images, one per side, each with a marker file in a layer of its own.
check "pier: commit an image with a marker layer" \
  "${PIER[@]}" run --name "mk-$run_id" busybox sh -c "echo made-by-pier > /marker" &&
  check "pier: commit" "${PIER[@]}" commit "mk-$run_id" "interop/pier-made:src"
"${PIER[@]}" rm -f "mk-$run_id" >/dev/null 2>&1
DOCKER_BASE=$(docker_image)
[ -n "$DOCKER_IMPORTED" ] && DOCKER_TAGS+=("$DOCKER_IMPORTED")
DOCKER_CTRS+=("interop-mk-$run_id")
check "docker: commit an image with a marker layer" \
  dk run --name "interop-mk-$run_id" "$DOCKER_BASE" sh -c "echo made-by-docker > /marker" &&
  check "docker: commit" dk commit "interop-mk-$run_id" "interop/docker-made:src-$run_id"
DOCKER_TAGS+=("interop/docker-made:src-$run_id")

for mode in none basic bearer tls; do
  say "=== registry: $mode"
  registry_start "$mode" || { fail "$mode: registry start"; continue; }
  p_ref=$REG_PIER/interop/pier-made:$mode
  d_ref=$REG_DOCKER/interop/pier-made:$mode
  if [ "$mode" = tls ]; then
    "${PIER[@]}" tag interop/pier-made:src "$p_ref"
    if OUT=$("${PIER[@]}" push "$p_ref" 2>&1); then
      fail "tls: pier push without the CA is refused"
    else
      grep -qi certificate <<<"$OUT" && pass "tls: pier push without the CA is refused (certificate)" ||
        fail "tls: refused without naming the certificate: $OUT"
    fi
    CERTS_D=/etc/docker/certs.d/$REG_PIER
    mkdir -p "$CERTS_D" && cp "$REG_DIR/ca.crt" "$CERTS_D/ca.crt"
  fi
  if [ "$mode" = basic ] || [ "$mode" = bearer ]; then
    "${PIER[@]}" tag interop/pier-made:src "$p_ref"
    if "${PIER[@]}" push "$p_ref" >/dev/null 2>&1; then
      fail "$mode: pier push without login is refused"
    else
      pass "$mode: pier push without login is refused"
    fi
    check "$mode: pier login" "${PIER[@]}" login -u "$REG_USER" --password-stdin "$REG_PIER" <<<"$REG_PASSWORD"
    check "$mode: docker login" dk login -u "$REG_USER" --password-stdin "$REG_DOCKER" <<<"$REG_PASSWORD"
    check "$mode: pier login with a wrong password fails" \
      bash -c '! "$@"' _ "${PIER[@]}" login -u "$REG_USER" -p wrong "$REG_PIER"
  fi

  # Pier -> Docker
  "${PIER[@]}" tag interop/pier-made:src "$p_ref"
  pier_digest=
  check "$mode: pier push" "${PIER[@]}" push "$p_ref" && pier_digest=$(digest_in "$OUT")
  DOCKER_TAGS+=("$d_ref")
  docker_digest=
  check "$mode: docker pull of pier's push" dk pull "$d_ref" && docker_digest=$(digest_in "$OUT")
  check "$mode: docker run of pier's image" dk run --rm "$d_ref" cat /marker &&
    { [ "$OUT" = made-by-pier ] || fail "$mode: marker is '$OUT'"; }
  if [ -n "$pier_digest" ] && [ "$pier_digest" = "$docker_digest" ]; then
    pass "$mode: pier->docker digest $pier_digest on both sides"
  else
    fail "$mode: pier->docker digest pier=$pier_digest docker=$docker_digest"
  fi

  # Docker -> Pier
  d2=$REG_DOCKER/interop/docker-made:$mode
  p2=$REG_PIER/interop/docker-made:$mode
  dk tag "interop/docker-made:src-$run_id" "$d2"
  DOCKER_TAGS+=("$d2")
  docker_digest=
  check "$mode: docker push" dk push "$d2" && docker_digest=$(digest_in "$OUT")
  pier_digest=
  check "$mode: pier pull of docker's push" "${PIER[@]}" pull "$p2" && pier_digest=$(digest_in "$OUT")
  check "$mode: pier run of docker's image" "${PIER[@]}" run --rm "$p2" cat /marker &&
    { [ "$OUT" = made-by-docker ] || fail "$mode: marker is '$OUT'"; }
  if [ -n "$docker_digest" ] && [ "$docker_digest" = "$pier_digest" ]; then
    pass "$mode: docker->pier digest $docker_digest on both sides"
  else
    fail "$mode: docker->pier digest docker=$docker_digest pier=$pier_digest"
  fi
  # The pulled image re-pushed unchanged keeps its digest (Pier pushes the manifest it pulled).
  p3=$REG_PIER/interop/docker-made-again:$mode
  "${PIER[@]}" tag "$p2" "$p3"
  check "$mode: pier re-push of docker's image" "${PIER[@]}" push "$p3" &&
    { [ "$(digest_in "$OUT")" = "$docker_digest" ] && pass "$mode: re-push keeps digest $docker_digest" ||
      fail "$mode: re-push digest $(digest_in "$OUT") != $docker_digest"; }
  registry_stop
  [ -n "${CERTS_D:-}" ] && rm -rf "$CERTS_D" && CERTS_D=
done

say "=== archive formats"
# pier save -> docker load, skopeo docker-archive:
if check "pier save" "${PIER[@]}" save -o "$WORK/pier-save.tar" interop/pier-made:src; then
  DOCKER_TAGS+=(interop/pier-made:src)
  check "docker load of pier save" dk load -i "$WORK/pier-save.tar"
  check "docker run of the loaded image" dk run --rm interop/pier-made:src cat /marker &&
    { [ "$OUT" = made-by-pier ] || fail "marker is '$OUT'"; }
  pier_id=$("${PIER[@]}" image inspect --format '{{.Id}}' interop/pier-made:src 2>/dev/null)
  docker_id=$(dk image inspect --format '{{.Id}}' interop/pier-made:src 2>/dev/null)
  [ -n "$pier_id" ] && [ "$pier_id" = "$docker_id" ] && pass "image ID $pier_id same after docker load" ||
    fail "image ID pier=$pier_id docker=$docker_id"
  check "skopeo inspect docker-archive: of pier save" skopeo inspect "docker-archive:$WORK/pier-save.tar"
fi
# pier save --format oci -> skopeo oci:, umoci
if check "pier save --format oci" "${PIER[@]}" save --format oci -o "$WORK/pier-oci.tar" interop/pier-made:src; then
  mkdir -p "$WORK/oci" && tar -xf "$WORK/pier-oci.tar" -C "$WORK/oci"
  check "skopeo inspect oci: of pier save --format oci" skopeo inspect "oci:$WORK/oci:src"
  check "umoci ls of pier save --format oci" umoci ls --layout "$WORK/oci"
  check "umoci stat of pier save --format oci" umoci stat --image "$WORK/oci:src"
  check "umoci unpack of pier save --format oci" \
    umoci unpack --image "$WORK/oci:src" "$WORK/oci-bundle" &&
    { [ "$(cat "$WORK/oci-bundle/rootfs/marker" 2>/dev/null)" = made-by-pier ] && pass "umoci unpack has the marker" ||
      fail "umoci unpack: no marker"; }
  check "skopeo copy oci: -> docker-archive:" skopeo copy "oci:$WORK/oci:src" "docker-archive:$WORK/skopeo.tar:interop/skopeo-copy:latest" &&
    check "pier load of skopeo's docker-archive" "${PIER[@]}" load -i "$WORK/skopeo.tar"
fi
# docker save -> pier load
if check "docker save" dk save -o "$WORK/docker-save.tar" "interop/docker-made:src-$run_id"; then
  check "pier load of docker save" "${PIER[@]}" load -i "$WORK/docker-save.tar"
  check "pier run of the loaded image" "${PIER[@]}" run --rm "interop/docker-made:src-$run_id" cat /marker &&
    { [ "$OUT" = made-by-docker ] || fail "marker is '$OUT'"; }
  docker_id=$(dk image inspect --format '{{.Id}}' "interop/docker-made:src-$run_id" 2>/dev/null)
  pier_id=$("${PIER[@]}" image inspect --format '{{.Id}}' "interop/docker-made:src-$run_id" 2>/dev/null)
  [ -n "$pier_id" ] && [ "$pier_id" = "$docker_id" ] && pass "image ID $docker_id same after pier load" ||
    fail "image ID docker=$docker_id pier=$pier_id"
fi

echo "interop: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
