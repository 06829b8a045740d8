#!/usr/bin/env bash
# The cargo tests as nixos/package.nix runs them (doCheck) in Nix's build sandbox,
# as far as this machine can imitate it: no network but loopback, an unprivileged
# user with no capabilities, and no program at an absolute path except /bin/sh
# (everything else comes from PATH, here a copy of coreutils, grep, sed, gawk). A
# test that starts /bin/sleep, or needs root, fails here as it would fail
# `nix build .#hafront`.
#
# Usage: nixos/tests/sandbox-tests.sh    (root: a private mount and network namespace;
#        the host's /usr/bin is hidden only inside it). About 2 min after the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "sandbox-tests: needs root (unshare)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hafront-sandbox.XXXXXX")
chmod 0755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# The test executables and the package directory each runs in (cargo's cwd).
cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]), m["executable"])
' >"$tmp/tests"
[ -s "$tmp/tests" ] || { echo "sandbox-tests: no test executables"; exit 1; }

# PATH of the build: coreutils and the few tools stdenv brings.
mkdir "$tmp/bin"
for f in $(dpkg -L coreutils | grep -E '^/(usr/)?s?bin/') grep sed gawk dash setpriv ip mount; do
    p=$(command -v "$f" 2>/dev/null || echo "$f")
    [ -f "$p" ] && cp -L "$p" "$tmp/bin/"
done
ln -sf dash "$tmp/bin/sh"

cat >"$tmp/inner.sh" <<EOF
set -eu
export PATH=$tmp/bin
ip link set lo up
mount --make-rprivate /
# Merged /usr: /bin is /usr/bin. Only sh stays, as in Nix's sandbox.
for d in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do mount -t tmpfs tmpfs "\$d"; done
cp $tmp/bin/dash /usr/bin/sh
fails=0
while read -r dir exe; do
    cd "\$dir"
    if env -i PATH=\$PATH HOME=/homeless-shelter TMPDIR=/tmp \
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
        "\$exe" -q >$tmp/out 2>&1; then
        echo "ok:   \$(grep -m1 '^test result' $tmp/out) (\${exe##*/})"
    else
        echo "FAIL: \${exe##*/}"; grep -E 'panicked|FAILED' $tmp/out | head -20
        fails=\$((fails + 1))
    fi
done <$tmp/tests
[ \$fails -eq 0 ]
EOF
if unshare -m -n bash "$tmp/inner.sh"; then
    echo "sandbox-tests: 0 failures"
else
    echo "sandbox-tests: failures (see above)"
    exit 1
fi
