#!/usr/bin/env bash
# test.sh — build the workspace and run every test: unit tests beside the code and the
# end-to-end tests in tests/ (real daemons in private network namespaces; needs root).
#   ./test.sh                  everything
#   ./test.sh -p pier-tests    extra arguments go to `cargo test`
#   CARGO_TARGET_DIR=...       build dir (default /var/cache/pier/target)
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the end-to-end tests need root (namespaces, mounts, cgroups)." >&2
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  exit 1
fi
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/pier/target}
# The harness runs the binaries this build just made, not whatever is installed.
export PIER_BIN_DIR=$CARGO_TARGET_DIR/debug
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
mkdir -p "$CARGO_TARGET_DIR"
log=$(mktemp /tmp/pier-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT

scripts/clean-test-leftovers.sh

banner() { printf '\n==== %s ====\n' "$*"; }
banner "cargo build --workspace (target $CARGO_TARGET_DIR)"
if ! cargo build --workspace --all-targets; then
  banner "SUMMARY: BUILD FAILED"
  exit 1
fi

banner "cargo test --workspace $*"
start=$(date +%s)
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))

scripts/clean-test-leftovers.sh

banner "SUMMARY"
# Per test binary: "Running <file> (...)" followed by its "test result:" line.
awk '
  /^ *Running / {
    src = ($2 == "unittests") ? $3 : $2
    bin = $NF; sub(/^.*\//, "", bin); sub(/-[0-9a-f]+\)$/, "", bin)
    name = bin " (" src ")"; next
  }
  /^ *Doc-tests / { name = "doc-tests " $2; next }
  /^test result:/ {
    p = 0; f = 0; ig = 0
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?/) p = $(i-1)
      if ($(i) ~ /^failed;?/) f = $(i-1)
      if ($(i) ~ /^ignored;?/) ig = $(i-1)
    }
    tp += p; tf += f; ti += ig
    if (f > 0) printf "  FAIL %-55s %4d passed %4d failed\n", name, p, f
    else if (p > 0) printf "  ok   %-55s %4d passed\n", name, p
  }
  END { printf "\ntotal: %d passed, %d failed, %d skipped\n", tp, tf, ti }
' "$log"
failed=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u)
if [ -n "$failed" ]; then
  echo; echo "  failed tests:"; printf '    %s\n' $failed
fi
if grep -qE '^error(\[E[0-9]+\]: |: could not compile)' "$log"; then
  echo; echo "  compile errors:"
  grep -E '^error(\[E[0-9]+\]: |: could not compile)' "$log" | sort -u | head -20 | sed 's/^/    /'
fi
echo
if [ "$rc" = 0 ]; then echo "  RESULT: PASS (${secs}s)"; else echo "  RESULT: FAIL (cargo test exit $rc, ${secs}s)"; fi
exit "$rc"
