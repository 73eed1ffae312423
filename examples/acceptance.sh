#!/usr/bin/env bash
# examples/acceptance.sh — builds examples/flask (pip install in RUN) and
# examples/debian-apt (apt-get in RUN) with Pier, runs them, and checks the Flask app
# answers on a published port. A manual check, never run in CI: the RUN steps
# download packages from the machine's configured Debian and Python package sources.
#
# The daemon runs in its own network namespace whose only way out is a veth pair to
# the host with a masquerade rule (removed on exit), so Pier's bridge, NAT and firewall
# rules live in that namespace, not the host's.
#   PIER_BIN (default: release, else debug build)
#   PY_TAR / DEBIAN_TAR: root tarballs (mk-python-base.sh; mmdebstrap minbase bookworm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
T=${CARGO_TARGET_DIR:-/var/cache/pier/target}
PIER_BIN=${PIER_BIN:-$T/release/pier}
[ -x "$PIER_BIN" ] || PIER_BIN=$T/debug/pier
PY_TAR=${PY_TAR:-/var/cache/pier/python-base.tar}
DEBIAN_TAR=${DEBIAN_TAR:-/var/cache/pier/debian-base.tar}
say() { printf '[acceptance %s] %s\n' "$(date +%T)" "$*" >&2; }

id=$$
ns=pier-acc-$id
hveth=pacc$id
cveth=pacc${id}c
net=10.231.$((id % 250)).
root=$(mktemp -d /tmp/pier-acc-XXXXXX)
xroot=/tmp/pier-ax-$id
cg=pier-acc-$id
sock=$root/pier.sock
dpid=
cleanup() {
  set +e
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  iptables -t nat -D POSTROUTING -s "${net}0/30" ! -o "$hveth" -j MASQUERADE 2>/dev/null
  iptables -D FORWARD -i "$hveth" -j ACCEPT 2>/dev/null
  iptables -D FORWARD -o "$hveth" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null
  ip link del "$hveth" 2>/dev/null
  "$repo/scripts/cleanup-root.sh" "$root" "$cg" "$ns" >/dev/null
  "$repo/scripts/cleanup-root.sh" "$xroot" "$cg" >/dev/null
}
trap cleanup EXIT

# The namespace and its uplink.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip link add "$hveth" type veth peer name "$cveth"
ip link set "$cveth" netns "$ns"
ip addr add "${net}1/30" dev "$hveth"
ip link set "$hveth" up
ip -n "$ns" addr add "${net}2/30" dev "$cveth"
ip -n "$ns" link set "$cveth" up
ip -n "$ns" route add default via "${net}1"
iptables -t nat -A POSTROUTING -s "${net}0/30" ! -o "$hveth" -j MASQUERADE
iptables -I FORWARD -i "$hveth" -j ACCEPT
iptables -I FORWARD -o "$hveth" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT

mkdir -p "$xroot"
PATH="$(dirname "$PIER_BIN"):$PATH" nsenter --net="/run/netns/$ns" -- "$PIER_BIN" daemon \
  --data-root "$root/data" --exec-root "$xroot" -H "unix://$sock" --cgroup-parent "$cg" \
  >"$root/daemon.log" 2>&1 </dev/null &
dpid=$!
for _ in $(seq 200); do
  curl -fsS --max-time 1 --unix-socket "$sock" http://pier/_ping >/dev/null 2>&1 && break
  sleep 0.05
done
pier() { "$PIER_BIN" -H "unix://$sock" "$@"; }

say "importing bases"
PIER="$PIER_BIN" PY_TAR="$PY_TAR" "$repo/scripts/mk-python-base.sh" -H "unix://$sock" >/dev/null
pier import "$DEBIAN_TAR" debian:bookworm >/dev/null
# The host's CA bundle goes into the Python base (pip verifies TLS against the
# system bundle; the machine's own trust anchors may include more than Debian's).
ca=$root/ca-ctx
mkdir -p "$ca"
cp /etc/ssl/certs/ca-certificates.crt "$ca/"
printf 'FROM python:3.11-slim\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' >"$ca/Dockerfile"
pier build -q -t python:3.11-slim "$ca" >/dev/null

rc=0
say "building examples/flask"
t0=$(date +%s)
if pier build --progress=plain -t flask-app "$here/flask"; then
  say "flask: built in $(( $(date +%s) - t0 )) s"
  pier run -d --name flask -p 5000:5000 flask-app >/dev/null
  out=
  for _ in $(seq 100); do
    out=$(nsenter --net="/run/netns/$ns" curl -fsS --max-time 2 http://127.0.0.1:5000/ 2>/dev/null) && break
    sleep 0.2
  done
  say "flask answered: ${out:-nothing}"
  [ -n "$out" ] || { rc=1; pier logs flask >&2; }
  pier rm -f flask >/dev/null
else
  say "flask: build FAILED"; rc=1
fi

say "building examples/debian-apt"
t0=$(date +%s)
if pier build --progress=plain -t debian-apt "$here/debian-apt"; then
  say "debian-apt: built in $(( $(date +%s) - t0 )) s"
  pier run --rm debian-apt | head -1 || rc=1
else
  say "debian-apt: build FAILED"; rc=1
fi
pier images
exit $rc
