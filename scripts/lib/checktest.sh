# shellcheck shell=bash
# The preamble of a lab test of probes (no daemon): strict mode, the lab and
# hafront helpers, the check_once example built, the lab up (lab.sh's EXIT trap
# tears it down, also on failure). `check NAME` probes once from node c with the
# checks of "$conf" (`up <ms>` / `down: <reason>`); expect_up / expect_down judge.
# A test starts with
#   source "$(cd "$(dirname "$0")" && pwd)/../lib/checktest.sh"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
CHECK_ONCE=${CHECK_ONCE:-$HF_ROOT/target/release/examples/check_once}
(cd "$HF_ROOT" && cargo build --release --quiet --example check_once)
lab_up
dir=$(lab_logdir)

check() { lab_exec c "$CHECK_ONCE" -c "$conf" "$1" 2>&1; }
expect_up() { # name [needle]
    local out rc=0
    out=$(check "$1") || rc=$?
    { [ $rc = 0 ] && [[ $out == up* ]]; } || fail "$1: expected up, got (exit $rc): $out"
    [ -z "${2:-}" ] || [[ $out == *"$2"* ]] || fail "$1: expected '$2' in: $out"
    pass "$1: $out"
}
expect_down() { # name needle
    local out rc=0
    out=$(check "$1") || rc=$?
    { [ $rc = 1 ] && [[ $out == "down: "* ]]; } || fail "$1: expected down, got (exit $rc): $out"
    [[ $out == *"$2"* ]] || fail "$1: expected the reason to contain '$2', got: $out"
    pass "$1: $out"
}
