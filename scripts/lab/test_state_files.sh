#!/usr/bin/env bash
# What hafront keeps on disk (issue 13, "State and files"; docs/security.md):
# - overrides.json and status.json are 0600; storing maintenance fsyncs the state
#   directory after the rename (strace on the running daemon);
# - an empty overrides.json (a torn write) or one that cannot be read starts every
#   instance in maintenance, says so in the log and in status.json, keeps the bad
#   file aside and stores the fail-safe state;
# - log.record_dir: dirs 0700, files 0600, a planted symlink is not followed,
#   packets that do not decode are not recorded, input.jsonl stops at
#   log.record_max_bytes with one warning;
# - check-config names a state_dir that is a regular file.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
send() { lab_exec c "$PY" "$here/../lib/vrrp_send.py" --src 192.0.2.10 "$@"; }
ctl() { "$HF_BIN" ctl --runtime-dir "$dir/run-$1" "${@:2}"; }
mode() { stat -c %a "$1"; }
log=$dir/hafront-a.log
state=$dir/state-a
rec=$dir/rec
cap=20000

extra=(
    '[vrrp.instances.web2]' 'interface = "eth0"' 'vrid = 52' 'priority = 150' 'version = 3'
    'advert_interval = "100ms"' 'virtual_ips = ["192.0.2.101/24"]'
)
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" "${extra[@]}" >"$dir/a.toml"
# web2's recording directory is a planted symlink: never followed.
mkdir -p "$rec" "$dir/elsewhere"
ln -s "$dir/elsewhere" "$rec/web2"
start_a() { hf_start a "$dir/a.toml" HAFRONT_LOG__RECORD_DIR="$rec" HAFRONT_LOG__RECORD_MAX_BYTES=$cap; }
start_a
hf_wait_state a web master 5 || fail "a not master"

# --- modes and the durable write ---------------------------------------------------
[ "$(mode "$dir/run-a/status.json")" = 600 ] || fail "status.json is $(mode "$dir/run-a/status.json")"
pass "status.json 0600"
strace -f -y -qq -e trace=fsync,rename,renameat,renameat2 -p "${HF_PID[a]}" -o "$dir/strace" &
tracer=$!
lab_track_pid $tracer
sleep 0.5 # attached
ctl a maintenance web on >/dev/null || fail "ctl maintenance on"
hf_wait_state a web backup 3 || fail "maintenance on did not take a to backup"
sleep 0.2
kill -INT $tracer 2>/dev/null || true
wait $tracer 2>/dev/null || true
lab_untrack_pid $tracer
[ "$(mode "$state/overrides.json")" = 600 ] || fail "overrides.json is $(mode "$state/overrides.json")"
# In order: fsync of the temporary file, rename onto overrides.json, fsync of the dir.
awk -v st="<$state>" '
    /fsync\(.*\.overrides\.json\..*\.tmp>/ { f = 1 }
    f && /rename.*overrides\.json"/ { r = 1 }
    r && index($0, "fsync(") && index($0, st ")") { d = 1 }
    END { exit !d }' "$dir/strace" || fail "overrides.json not fsynced, renamed, dir fsynced: $(grep overrides "$dir/strace")"
pass "overrides.json 0600: temp fsynced, renamed, state_dir fsynced"
ctl a maintenance web off >/dev/null || fail "ctl maintenance off"
hf_wait_state a web master 3 || fail "a not master again"

# --- recordings ----------------------------------------------------------------------
[ "$(mode "$rec/web")" = 700 ] && [ "$(mode "$rec/web/params.json")" = 600 ] &&
    [ "$(mode "$rec/web/input.jsonl")" = 600 ] ||
    fail "recording modes: $(stat -c '%n %a' "$rec/web" "$rec/web"/*)"
[ -z "$(ls -A "$dir/elsewhere")" ] && grep -q 'input recorder not started.*symbolic link' "$log" ||
    fail "web2's symlinked record dir was followed: $(ls "$dir/elsewhere"); $(grep recorder "$log")"
pass "records: dir 0700, files 0600, a symlinked record dir refused"
send --count 200 checksum garbage truncated
sleep 0.3
n=$(grep -c '"src":"192.0.2.10"' "$rec/web/input.jsonl" || true)
[ "$n" -eq 0 ] || fail "$n undecodable packets recorded"
send --count 3000 --prio 1 good
sleep 0.5
size=$(stat -c %s "$rec/web/input.jsonl")
[ "$size" -le "$cap" ] || fail "input.jsonl is $size bytes, cap $cap"
[ "$(grep -c 'recording reached log.record_max_bytes' "$log")" -eq 1 ] || fail "cap reached not logged once"
pass "records: undecodable packets left out; input.jsonl $size <= $cap bytes, logged once"

# --- overrides.json unusable: fail safe -----------------------------------------------
hf_stop a
: >"$state/overrides.json" # what a torn write leaves after a power loss
start_a
sleep 1.5 # long enough to have become master (3 x 100 ms + skew)
for i in web web2; do
    [ "$(hf_field a "s['instances']['$i']['state']")" = backup ] || fail "$i not backup with an empty overrides.json"
done
hf_field a "s['overrides_error']" | grep_q 'cannot parse' || fail "status.json lacks overrides_error"
"$HF_BIN" status --runtime-dir "$dir/run-a" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['overrides_error'])" |
    grep -q 'cannot parse' || fail "GET /v1/status lacks overrides_error"
grep -q 'every instance starts in maintenance' "$log" || fail "the log does not say maintenance"
[ -e "$state/overrides.json.bad" ] || fail "the bad file was not kept aside"
hf_stop a
# The fail-safe state was stored: a second start is as safe.
start_a
sleep 1.5
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "second start after the torn write not in maintenance"
pass "empty overrides.json: every instance in maintenance, logged, in status.json and /v1/status, kept aside, stored"
hf_stop a
rm -f "$state/overrides.json"
mkdir "$state/overrides.json" # cannot be read (EISDIR), even as root
start_a
sleep 1.5
[ "$(hf_field a "s['instances']['web']['state']")" = backup ] || fail "unreadable overrides.json: web not in maintenance"
hf_field a "s['overrides_error']" | grep_q 'cannot read' || fail "status.json lacks the read error"
hf_stop a
pass "unreadable overrides.json: maintenance, said in status.json"

# --- state_dir is a regular file ------------------------------------------------------
: >"$dir/not-a-dir"
sed "s|^state_dir = .*|state_dir = \"$dir/not-a-dir\"|" "$dir/a.toml" >"$dir/bad.toml"
rc=0
"$HF_BIN" check-config -c "$dir/bad.toml" >"$dir/check.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "state_dir.*not a directory (it is a regular file)" "$dir/check.out" ||
    fail "state_dir as a file: rc $rc, $(cat "$dir/check.out")"
pass "state_dir that is a regular file: check-config says so (exit 2)"
