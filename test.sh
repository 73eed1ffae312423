#!/usr/bin/env bash
# test.sh — check style (rustfmt, clippy with warnings as errors), build the workspace
# and run every test: unit tests beside the code and the end-to-end tests in tests/
# (real daemons in private network namespaces; needs root). A style failure stops
# before the build and the tests.
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

# Style first: both checks run, so one report names every problem.
style_failed=()
banner "cargo fmt --all --check"
if ! cargo fmt --all --check >"$log" 2>&1; then
  cat "$log"
  files=$(grep -E '^Diff in ' "$log" | sed -E 's/^Diff in (.*):[0-9]+:$/\1/; s/^Diff in (.*) at line .*/\1/' | sort -u)
  style_failed+=("rustfmt: $(grep -c '^Diff in ' "$log") hunk(s) to reformat (run \`cargo fmt --all\`) in:")
  while read -r f; do style_failed+=("  $f"); done <<<"$files"
else
  echo "formatted"
fi
banner "cargo clippy --workspace --all-targets -- -D warnings"
if ! cargo clippy --workspace --all-targets -- -D warnings 2>&1 | tee "$log"; then
  n=$(grep -E '^error(\[[A-Z0-9]+\])?: ' "$log" | grep -vcE 'could not compile|aborting due to')
  style_failed+=("clippy: $n finding(s) (warnings count as errors)")
  clippy_where=$(grep -E '^ *--> ' "$log" | sed -E 's/^ *--> /    /' | sort -u | head -20)
fi
if [ ${#style_failed[@]} -gt 0 ]; then
  banner "SUMMARY: STYLE CHECKS FAILED (build and tests not run)"
  printf '  %s\n' "${style_failed[@]}"
  if [ -n "${clippy_where:-}" ]; then
    echo; echo "  clippy findings at:"; echo "$clippy_where"
  fi
  exit 1
fi

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
