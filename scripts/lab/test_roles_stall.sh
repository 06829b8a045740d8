#!/usr/bin/env bash
# The roles never wait for the status file (issue 16): a new master's supervised
# service (and its IPVS services, which its VIPs wait for) follow the roles, and the
# roles used to be published by the status thread, which blocks in the status
# file's write. b's status writes stall 8 s each (every rename(2) of the process,
# injected by strace); right after one of them ends (the next starts at once: the
# counters moved), a hands over, and b's `run_on = "master"` service must start
# within a second of b's transition. Before the fix it started ~8 s late (the
# write in progress); on a loaded IPVS director the same wait made the VIPs' 3 s
# wait for the services run out, and the synced connections were reset.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
command -v strace >/dev/null || fail "strace is needed (apt-get install strace)"
STALL_US=8000000
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" \
    '[services.marker]' 'kind = "command"' \
    "command = [\"/bin/sh\", \"-c\", \"date +%s.%N >$dir/marker-started; exec sleep 600\"]" \
    'run_on = "master"' 'instance = "web"' >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 10 || fail "a not master"
# --seccomp-bpf: only the renames stop the tracee; every other syscall runs untraced.
HF_WRAP=(strace -f -qq --seccomp-bpf -o /dev/null -e trace=rename,renameat,renameat2
    -e inject=rename,renameat,renameat2:delay_enter=$STALL_US)
hf_start b "$dir/b.toml"
HF_WRAP=()
# b's first status write (at start, before its engine runs) stalls too.
hf_wait_state b web backup 30 || fail "b not backup"
[ -e "$dir/marker-started" ] && fail "b's service started while b is backup"
# Wait for a status write of b's to end: the file's inode changes (a rename).
"$PY" - "$dir/run-b/status.json" <<'PYEOF' || fail "b's status file not replaced within 20 s"
import os, sys, time
path = sys.argv[1]
first = os.stat(path).st_ino
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        if os.stat(path).st_ino != first:
            sys.exit(0)
    except FileNotFoundError:
        pass
    time.sleep(0.02)
sys.exit(1)
PYEOF
hf_stop a
for _ in $(seq 200); do [ -s "$dir/marker-started" ] && break; sleep 0.05; done
[ -s "$dir/marker-started" ] || fail "b's run_on = master service not started within 10 s of a's stop"
# b's transition, from its log (UTC, RFC 3339), and the service's start, as epoch seconds.
became=$(grep -a 'state changed' "$dir/hafront-b.log" | grep -a -i 'master' | tail -n 1)
[ -n "$became" ] || fail "no transition to master in b's log"
"$PY" - "$became" "$(cat "$dir/marker-started")" <<'PYEOF' || fail "b's service started too late after its transition (above)"
import re, sys
from datetime import datetime, timezone
m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)Z", sys.argv[1])
if not m:
    sys.exit(f"no timestamp in: {sys.argv[1]}")
stamp = m.group(1)
if "." in stamp:
    head, frac = stamp.split(".")
    stamp = f"{head}.{frac[:6]}"
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
else:
    fmt = "%Y-%m-%dT%H:%M:%S"
became = datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp()
delay = float(sys.argv[2]) - became
print(f"b master -> its run_on = master service started: {delay * 1000:.0f} ms")
sys.exit(0 if delay < 1.0 else 1)
PYEOF
pass "b's status writes stalled 8 s each: its service followed its takeover within a second"
