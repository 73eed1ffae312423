#!/usr/bin/env bash
# setup.sh — from a fresh Debian 12 machine to a running Pier and a demo app.
#   1. Debian packages (build tools, busybox-static, iptables/nftables, registry, CNI
#      plugins, ...), and a default CNI network for pods when /etc/cni/net.d has none
#   2. Rust (through the machine's rustup) if cargo is missing
#   3. build Pier (release) and install pier + pier-shim into /usr/local/bin
#   4. start the daemon if needed, import busybox:latest
#   5. build examples/hello, run it with a published port, and show it answering
# Idempotent: run it again to rebuild and redeploy.
#   CARGO_TARGET_DIR (default /var/cache/pier/target)   HELLO_PORT (default 8080)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
say()  { printf '\n[setup] %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh installs packages and runs the engine: run it as root" >&2
  exit 1
fi

# ------------------------------------------------------------------ 1. packages
PKGS=(build-essential pkg-config libseccomp-dev busybox-static tini iptables nftables
      iproute2 docker-registry mmdebstrap docker.io docker-compose skopeo jq hyperfine curl
      util-linux openssl containernetworking-plugins)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all present"
fi

# Pods (the CRI server) are networked through CNI, as containerd and CRI-O do:
# the first config of /etc/cni/net.d is the pod network. Written only when the
# directory has none, so a network set up for another runtime stays in charge.
# 10.77.0.0/16 is none of Docker's or Pier's default pools, nor podman's
# (10.88/16), CRI-O's (10.85/16) or netavark's (10.89/16).
cni_dir=/etc/cni/net.d
if ! ls "$cni_dir"/*.conflist "$cni_dir"/*.conf "$cni_dir"/*.json >/dev/null 2>&1; then
  mkdir -p "$cni_dir"
  cat > "$cni_dir/10-pier.conflist.tmp" <<'CONF'
{
  "cniVersion": "1.0.0",
  "name": "pier",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-pier0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.77.0.0/16", "gateway": "10.77.0.1" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
CONF
  mv "$cni_dir/10-pier.conflist.tmp" "$cni_dir/10-pier.conflist"
  say "wrote the default pod network $cni_dir/10-pier.conflist (bridge cni-pier0, 10.77.0.0/16)"
else
  say "CNI: $cni_dir already has a network config; left as it is"
fi

# ---------------------------------------------------------------------- 2. Rust
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if ! command -v cargo >/dev/null; then
  if command -v rustup >/dev/null; then
    say "installing the stable Rust toolchain with rustup"
    rustup toolchain install stable --profile minimal
    rustup default stable
  else
    echo "setup.sh: no cargo and no rustup on this machine; install Rust first" >&2
    exit 1
  fi
fi

# --------------------------------------------------------------- 3. build Pier
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/pier/target}
say "cargo build --release (target $CARGO_TARGET_DIR)"
cargo build --release -p pier -p pier-shim
for b in pier pier-shim; do
  install -m 0755 "$CARGO_TARGET_DIR/release/$b" "/usr/local/bin/$b.new"
  mv -f "/usr/local/bin/$b.new" "/usr/local/bin/$b"
done
say "installed $(command -v pier) and $(command -v pier-shim)"
# Where the docker CLI is, `docker compose` runs Pier's compose: a CLI plugin is an
# executable named docker-<name> that answers `docker-cli-plugin-metadata`.
if command -v docker >/dev/null; then
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf /usr/local/bin/pier "$HOME/.docker/cli-plugins/docker-compose"
  say "docker compose runs pier compose ($HOME/.docker/cli-plugins/docker-compose)"
fi

# ------------------------------------------------------ 4. daemon and busybox
# The CLI starts the daemon on demand. A daemon still running a replaced binary
# (its /proc/PID/exe reads "(deleted)") is stopped so the new one takes over; its
# containers live on under their shims.
sock=/run/pier/pier.sock
pinged() { curl -fsS --max-time 2 --unix-socket "$sock" http://pier/_ping >/dev/null 2>&1; }
for pid in $(pgrep -x pier || true); do
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
  case "$cmd" in *" daemon"*) ;; *) continue ;; esac
  case "$cmd" in *"/tmp/pier-"*) continue ;; esac   # test and bench daemons
  if readlink "/proc/$pid/exe" | grep -q '(deleted)'; then
    say "restarting the pier daemon (pid $pid) on the new binary"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
done
if ! pinged; then
  pier version >/dev/null 2>&1 || true   # autostart
fi
if ! pinged; then
  mkdir -p /run/pier /var/log/pier
  say "starting pier daemon (log /var/log/pier/daemon.log)"
  nohup setsid pier daemon >>/var/log/pier/daemon.log 2>&1 </dev/null &
  for _ in $(seq 100); do pinged && break; sleep 0.1; done
  pinged || { echo "pier daemon did not come up:" >&2; tail -20 /var/log/pier/daemon.log >&2; exit 1; }
fi
say "daemon answers on $sock"
if pier image inspect busybox:latest >/dev/null 2>&1; then
  say "busybox:latest already present"
else
  say "importing busybox:latest from Debian's busybox-static"
  PIER=pier scripts/mk-busybox-image.sh
fi
pier run --rm busybox echo "busybox runs: hello from a container"

# ------------------------------------------------------------- 5. demo app
port=${HELLO_PORT:-8080}
pier rm -f hello >/dev/null 2>&1 || true
pier build -t hello examples/hello
say "built image hello from examples/hello/Dockerfile"
if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
  echo "[setup] port $port is in use on this host; set HELLO_PORT to publish elsewhere" >&2
  exit 1
fi
pier run -d --name hello -p "$port:8080" hello >/dev/null
answered=0
for _ in $(seq 50); do
  if body=$(curl -fs --max-time 2 "http://127.0.0.1:$port/"); then answered=1; break; fi
  sleep 0.1
done
if [ $answered = 1 ]; then
  say "http://127.0.0.1:$port/ answers:"; echo "$body"
else
  echo "[setup] nothing answers on 127.0.0.1:$port; see pier logs hello and /var/log/pier/daemon.log" >&2
  exit 1
fi
cat <<MSG

[setup] done. Try:
  pier ps                     # the hello container
  pier logs hello             # httpd's access log
  pier rm -f hello            # stop and remove it
  ./test.sh                   # the full test suite
MSG
