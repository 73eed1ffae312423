# tests/interop/registry-lib.sh — sourced after bench/lib.sh's pier_start.
#
# A docker-registry that Docker (host netns, through 127.0.0.1: plain http without
# daemon config) and a Pier daemon (in its own netns $BNS, through a veth to the host:
# plain http because it is started with --insecure-registry) both reach:
#   veth_up                      -> VETH_HOST (host side address of the veth)
#   registry_start MODE -> REG_PORT, REG_DOCKER=127.0.0.1:PORT, REG_PIER=VETH:PORT
#       MODE: none | basic (htpasswd, user pier / password interop-pw) | bearer (token
#       server) | tls (HTTPS with a CA of its own in $REG_DIR/ca.crt; REG_PIER is then
#       $VETH_TLS:PORT, which the daemon does not treat as insecure)
#   registry_stop
# The registry listens on 0.0.0.0:PORT (one listener cannot serve both addresses), on a
# free port, with its storage under $BROOT; the token server listens on the veth address.

REG_USER=pier
REG_PASSWORD=interop-pw
REG_PIDS=()
INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # host port
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.05
  done
  say "nothing listens on $1:$2"; return 1
}

# veth_pick (before pier_start: the daemon's flags name the address) and veth_up (after).
# A /29: the host side has VETH_HOST (insecure for the daemon) and VETH_TLS (secure).
veth_pick() {
  local n
  for _ in $(seq 20); do
    n=$((RANDOM % 200 + 20))
    ip -4 addr | grep -q "inet 10\.251\.$n\." || break
  done
  VETH_NET=10.251.$n
  VETH_HOST=$VETH_NET.1
  VETH_TLS=$VETH_NET.3
}

veth_up() {
  local vh=pih-$BID vn=pin-$BID
  ip link add "$vh" type veth peer name "$vn" netns "$BNS"
  ip addr add "$VETH_HOST/29" dev "$vh"
  ip addr add "$VETH_TLS/29" dev "$vh"
  ip link set "$vh" up
  ip -n "$BNS" addr add "$VETH_NET.2/29" dev "$vn"
  ip -n "$BNS" link set "$vn" up
  # The veth goes away with the netns (pier_stop); nothing else to undo.
}

# tls_certs DIR: a CA and a server certificate for 127.0.0.1 and $VETH_TLS.
tls_certs() {
  local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  openssl req -x509 -nodes -days 2 "${ec[@]}" -subj "/CN=pier interop CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null &&
  openssl req -nodes "${ec[@]}" -subj "/CN=$VETH_TLS" -keyout "$d/server.key" \
    -out "$d/server.csr" 2>/dev/null &&
  printf 'subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$VETH_TLS" >"$d/ext.cnf" &&
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
}

registry_start() {
  local mode=$1 dir
  dir=$BROOT/registry-$mode-$RANDOM
  mkdir -p "$dir/data"
  REG_PORT=$(free_port)
  REG_DOCKER=127.0.0.1:$REG_PORT
  REG_PIER=$VETH_HOST:$REG_PORT
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 0.0.0.0:$REG_PORT
EOF
  case $mode in
    none) ;;
    tls)
      tls_certs "$dir" || { say "making certificates failed"; return 1; }
      REG_PIER=$VETH_TLS:$REG_PORT
      cat >>"$dir/config.yml" <<EOF
  tls:
    certificate: $dir/server.crt
    key: $dir/server.key
EOF
      ;;
    basic)
      python3 -W ignore -c 'import crypt,sys; print(sys.argv[1]+":"+crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
        "$REG_USER" "$REG_PASSWORD" >"$dir/htpasswd"
      cat >>"$dir/config.yml" <<EOF
auth:
  htpasswd:
    realm: pier-interop
    path: $dir/htpasswd
EOF
      ;;
    bearer)
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pier-interop-token \
        -keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
      local tport; tport=$(free_port)
      python3 "$INTEROP_DIR/token-server.py" "$VETH_HOST" "$tport" "$dir/token.key" "$dir/token.crt" \
        pier-interop-issuer pier-interop "$REG_USER" "$REG_PASSWORD" 2>"$dir/token.log" &
      REG_PIDS+=($!)
      wait_port "$VETH_HOST" "$tport"
      cat >>"$dir/config.yml" <<EOF
auth:
  token:
    realm: http://$VETH_HOST:$tport/token
    service: pier-interop
    issuer: pier-interop-issuer
    rootcertbundle: $dir/token.crt
EOF
      ;;
    *) say "registry_start: unknown mode $mode"; return 1 ;;
  esac
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REG_PIDS+=($!)
  REG_DIR=$dir
  wait_port 127.0.0.1 "$REG_PORT"
}

registry_stop() {
  local p
  for p in ${REG_PIDS[@]+"${REG_PIDS[@]}"}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  REG_PIDS=()
  if [ -n "${REG_DIR:-}" ]; then rm -rf "$REG_DIR"; fi
  REG_DIR=
}
