#!/usr/bin/env bash
# Script security as root: check-config refuses a script that a non-root user could
# change (the file writable by everyone, owned by another user, in a directory such
# a user can write, or reached through a symlink to one), naming the key; scripts
# (tracking scripts, exec checks, notify scripts) run as security.script_user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
[ "$(id -u)" = 0 ] || fail "run as root"
id nobody >/dev/null 2>&1 || fail "no user 'nobody'"
NOBODY=$(id -u nobody)
hf_build
lab_up
dir=$(lab_logdir)
chmod 755 "$dir" # scripts in it must be reachable by the script user
VIP=192.0.2.100

mkdir -p "$dir/bin" "$dir/out" "$dir/userdir"
chmod 755 "$dir/bin"
chmod 1777 "$dir/out" # the scripts (as nobody) write their uid here
cat >"$dir/bin/whoami.sh" <<'SH'
#!/bin/sh
# Written aside and renamed: the test reads these files while the next run of
# the script rewrites them.
out="$(dirname "$0")/../out"
id -u >"$out/.$1.$$" && mv -f "$out/.$1.$$" "$out/$1"
SH
chmod 755 "$dir/bin/whoami.sh"
cp "$dir/bin/whoami.sh" "$dir/bin/ww.sh" && chmod 777 "$dir/bin/ww.sh"
cp "$dir/bin/whoami.sh" "$dir/userdir/s.sh" && chown nobody "$dir/userdir"
cp "$dir/bin/whoami.sh" "$dir/bin/theirs.sh" && chown nobody "$dir/bin/theirs.sh"
ln -s "$dir/userdir/s.sh" "$dir/bin/link.sh"

refused() { # script key-expected message-part
    hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "[scripts.s]" "command = [\"$1\"]" >"$dir/t.toml"
    local out
    if out=$("$HF_BIN" check-config -c "$dir/t.toml" 2>&1); then fail "check-config accepted $1"; fi
    grep -q "scripts.s.command" <<<"$out" || fail "error does not name the key: $out"
    grep -q "$2" <<<"$out" || fail "error for $1 does not say '$2': $out"
    echo "   $(grep -m1 'scripts.s.command' <<<"$out" | sed 's/^ *//')"
}
refused "$dir/bin/ww.sh" "writable by everyone"
refused "$dir/bin/theirs.sh" "owned by uid $NOBODY"
refused "$dir/userdir/s.sh" "directory $dir/userdir is owned by uid $NOBODY"
refused "$dir/bin/link.sh" "owned by uid $NOBODY"
pass "check-config refuses insecure scripts (writable file, foreign owner, foreign directory, symlink into one)"

hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "notify_master = [\"$dir/bin/ww.sh\", \"n\"]" >"$dir/t.toml"
out=$("$HF_BIN" check-config -c "$dir/t.toml" 2>&1) && fail "insecure notify script accepted"
grep -q "vrrp.instances.web.notify_master" <<<"$out" || fail "notify key not named: $out"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "[scripts.s]" "command = [\"$dir/bin/ww.sh\"]" \
    '[security]' 'script_security = false' >"$dir/t.toml"
"$HF_BIN" check-config -c "$dir/t.toml" >/dev/null || fail "script_security = false still refuses"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" '[security]' 'script_user = "no-such-user-here"' >"$dir/t.toml"
out=$("$HF_BIN" check-config -c "$dir/t.toml" 2>&1) && fail "unknown script_user accepted"
grep -q 'security.script_user.*no user named' <<<"$out" || fail "script_user error: $out"
pass "notify scripts are checked too; script_security = false allows; an unknown script_user is refused"

# --- scripts run as the script user ---------------------------------------------
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" \
    'track_scripts = [ { name = "s", weight = 10 } ]' \
    "notify_master = [\"$dir/bin/whoami.sh\", \"notify\"]" \
    '[scripts.s]' "command = [\"$dir/bin/whoami.sh\", \"track\"]" 'interval = "200ms"' \
    '[checks.c]' 'kind = "exec"' "command = [\"$dir/bin/whoami.sh\", \"check\"]" 'interval = "200ms"' \
    '[security]' 'script_user = "nobody"' >"$dir/a.toml"
"$HF_BIN" check-config -c "$dir/a.toml" >/dev/null || fail "config: $("$HF_BIN" check-config -c "$dir/a.toml" 2>&1)"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
for _ in $(seq 60); do [ -s "$dir/out/track" ] && [ -s "$dir/out/check" ] && [ -s "$dir/out/notify" ] && break; sleep 0.1; done
for k in track check notify; do
    [ "$(cat "$dir/out/$k" 2>/dev/null)" = "$NOBODY" ] || fail "$k script ran as uid '$(cat "$dir/out/$k" 2>/dev/null)', not nobody ($NOBODY)"
done
[ "$(hf_field a "s['instances']['web']['priority']")" = 160 ] || fail "tracking script (as nobody) not counted"
pass "tracking script, exec check and notify script ran as nobody (uid $NOBODY)"
