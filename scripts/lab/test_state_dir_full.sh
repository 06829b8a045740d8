#!/usr/bin/env bash
# Issue 14, the fault suite's disk_full row in CI's time: a master's state_dir is a
# 64 KiB tmpfs (in a mount namespace of its own, gone with the process), filled to
# the last block; then maintenance is asked for over the API. Wanted: the request
# refused (500) and not applied (a stays master, the VIP on a, b backup), no
# half-written or temporary file left in state_dir, the daemon alive; once space
# is back, the same request is stored and applied.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
command -v unshare >/dev/null && command -v nsenter >/dev/null || fail "unshare/nsenter (util-linux) needed"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
state="$dir/state-a"
mkdir -p "$state"
HF_WRAP=(unshare -m --propagation private -- sh -c 'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$0" && exec "$@"' "$state")
hf_start a "$dir/a.toml"
HF_WRAP=()
hf_wait_state a web master 10 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
in_a() { nsenter -t "${HF_PID[a]}" -m -- "$@"; }
in_a sh -c "mount | grep -q ' $state type tmpfs'" || fail "a's state_dir is not its own tmpfs"
before=$(in_a ls -A "$state" | sort | tr '\n' ' ')
in_a dd if=/dev/zero of="$state/fill" bs=4k 2>/dev/null || true
api() { "$PY" "$here/../lib/api.py" "unix:$dir/run-a/api.sock" "$@"; }
# api.py under a reader that stops early (`| head -n 1` below): CI once failed here
# on its BrokenPipeError, not on hafront.
api GET /v1/status | true || fail "api.py failed when its reader closed the pipe early"
code=$(api POST /v1/instances/web/maintenance '{"enabled": true}' | head -n 1)
[[ $code == *500* ]] || fail "maintenance with state_dir full answered: $code (want 500)"
sleep 0.5
kill -0 "${HF_PID[a]}" || fail "a died"
[ "$(hf_field a "s['instances']['web']['state']")" = master ] || fail "a left mastership: the refused request was applied"
[ "$(hf_field a "s['instances']['web'].get('maintenance')")" = False ] || fail "maintenance shows on after a refused request"
[ "$(lab_vip_holder $VIP)" = a ] || fail "VIP held by $(lab_vip_holder $VIP), want a"
in_a rm -f "$state/fill"
after=$(in_a ls -A "$state" | sort | tr '\n' ' ')
[ "$after" = "$before" ] || fail "state_dir changed by the refused request: '$before' -> '$after'"
pass "state_dir full: maintenance refused with $code, not applied (a master, VIP on a), state_dir as before ('$before')"
code=$(api POST /v1/instances/web/maintenance '{"enabled": true}' | head -n 1)
[[ $code == *200* ]] || fail "maintenance with space again answered: $code"
hf_wait_state b web master 3 || fail "b not master after a's maintenance"
in_a test -s "$state/overrides.json" || fail "overrides.json not stored"
pass "space back: maintenance stored ($(in_a ls -A "$state" | tr '\n' ' ')) and applied (b master)"
