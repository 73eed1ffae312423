# bench/lib.sh — shared by the benches (sourced, not run).
# Starts a private Pier daemon (own roots under /tmp/pier-bench-<id>, own netns and
# cgroup parent) and removes it with everything it made on exit.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=${DOCKER:-/usr/bin/docker}
say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

pier_bin() {
  if [ -n "${PIER_BIN:-}" ]; then echo "$PIER_BIN"; return; fi
  local t=${CARGO_TARGET_DIR:-/var/cache/pier/target}/release/pier
  if [ -x "$t" ]; then echo "$t"; return; fi
  command -v pier || { say "no release build of pier: run ./setup.sh or cargo build --release"; exit 1; }
}

# pier_start: sets PIER (argv array for the CLI), PIER_SOCK, PIER_DPID, BROOT, BNS.
# Extra daemon flags come from the array PIER_DAEMON_ARGS (e.g. --insecure-registry).
pier_start() {
  PIER_BIN=$(pier_bin)
  BROOT=$(mktemp -d /tmp/pier-bench-XXXXXX)
  BID=${BROOT##*-}
  BNS=pier-b-$BID
  BCG=pier-bench-$BID
  # Short, because shim sockets below the exec root must fit in sun_path (108 bytes).
  BXROOT=/tmp/pier-bx-$BID
  mkdir -p "$BXROOT"
  # The default exec root, /run/pier, is on tmpfs; so is Docker's /run/docker.
  # On a disk mounted with `discard` every deleted runtime file would cost a
  # synchronous discard that a real setup never pays.
  mount -t tmpfs -o mode=0711 pier-bench "$BXROOT"
  echo $$ > "$BROOT/owner.pid"
  trap pier_stop EXIT
  trap 'exit 130' INT TERM
  ip netns add "$BNS"
  ip -n "$BNS" link set lo up
  PIER_SOCK=$BROOT/pier.sock
  PATH="$(dirname "$PIER_BIN"):$PATH" nsenter --net="/run/netns/$BNS" -- "$PIER_BIN" daemon \
    --data-root "$BROOT/data" --exec-root "$BXROOT" -H "unix://$PIER_SOCK" \
    --cgroup-parent "$BCG" ${PIER_DAEMON_ARGS[@]+"${PIER_DAEMON_ARGS[@]}"} >"$BROOT/daemon.log" 2>&1 </dev/null &
  PIER_DPID=$!
  local i
  for i in $(seq 200); do
    curl -fsS --max-time 1 --unix-socket "$PIER_SOCK" http://pier/_ping >/dev/null 2>&1 && break
    kill -0 "$PIER_DPID" 2>/dev/null || { say "pier daemon died:"; tail -20 "$BROOT/daemon.log" >&2; exit 1; }
    sleep 0.05
  done
  PIER=("$PIER_BIN" -H "unix://$PIER_SOCK")
  say "pier daemon $PIER_BIN (pid $PIER_DPID, root $BROOT)"
  PIER="$PIER_BIN" "$REPO/scripts/mk-busybox-image.sh" -H "unix://$PIER_SOCK" >/dev/null
}

pier_stop() {
  [ -n "${BROOT:-}" ] || return 0
  if [ -n "${PIER_DPID:-}" ] && kill -0 "$PIER_DPID" 2>/dev/null; then
    kill "$PIER_DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$PIER_DPID" 2>/dev/null || break; sleep 0.1; done
  fi
  "$REPO/scripts/cleanup-root.sh" "$BROOT" "$BCG" "$BNS" || say "cleanup of $BROOT incomplete"
  "$REPO/scripts/cleanup-root.sh" "$BXROOT" "$BCG" || say "cleanup of $BXROOT incomplete"
  BROOT=
}

docker_up() { [ -x "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; }

# docker_image: an image with the same busybox root in Docker, or empty. Prefers the
# peers' private tag; otherwise imports our rootfs under a bench tag (removed on exit
# by the caller through DOCKER_IMPORTED).
DOCKER_IMPORTED=
docker_image() {
  local img
  for img in peers/busybox:latest busybox:latest; do
    "$DOCKER" image inspect "$img" >/dev/null 2>&1 && { echo "$img"; return; }
  done
  local tar; tar=$(mktemp /tmp/pier-bench-bb.XXXXXX.tar)
  "$REPO/scripts/mk-busybox-rootfs.sh" "$tar"
  "$DOCKER" import -c 'CMD ["sh"]' "$tar" pier-bench/busybox:latest >/dev/null
  rm -f "$tar"
  DOCKER_IMPORTED=pier-bench/busybox:latest
  echo "$DOCKER_IMPORTED"
}

# hf_table JSON: one line per hyperfine command: median, min and max in ms.
hf_table() {
  jq -r '.results[] | "\(.command)\t\(.median*1000|.*10|round/10) ms\t(min \(.min*1000|.*10|round/10), max \(.max*1000|.*10|round/10))"' \
    "$1" | column -t -s $'\t'
}

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
ppid_of() { awk '{print $4}' "/proc/$1/stat" 2>/dev/null; }
median() { sort -n | awk '{a[NR]=$1} END{ if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
