#!/usr/bin/env bash
# The engine never waits for the status file (issue 14, defect 7): the master's
# status writes stall (every rename(2) of the process takes 400 ms, injected by
# strace: a stuck or slow runtime_dir), yet its adverts stay on time and the backup
# sees no transition. Before the fix the engine thread wrote status.json itself on
# every change and every second: each stall held every advert back for 400 ms,
# more than the backup's Master_Down_Interval at 100 ms adverts (~361 ms), and the
# backup took over every second. The same work (snapshot serialization, the file,
# systemd STATUS=), growing with the configuration, is what made a 255-instance,
# 10,000-real-server start flap (docs/reliability.md).
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
command -v strace >/dev/null || fail "strace is needed (apt-get install strace)"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
# --seccomp-bpf: only the renames stop the tracee; every other syscall runs untraced.
HF_WRAP=(strace -f -qq --seccomp-bpf -o /dev/null -e trace=rename,renameat,renameat2
    -e inject=rename,renameat,renameat2:delay_enter=400000)
hf_start a "$dir/a.toml"
HF_WRAP=()
hf_wait_state a web master 10 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
sleep 0.5
before=$(hf_field b "s['instances']['web']['counters']['become_master']")
# Six seconds: six of a's once-a-second status writes, each stalled 400 ms.
sleep 6
after=$(hf_field b "s['instances']['web']['counters']['become_master']")
[ -n "$before" ] && [ -n "$after" ] || fail "no status from b"
[ "$after" = "$before" ] ||
    fail "b became master $((after - before)) times in 6 s while a's status writes stalled (a's engine waited on them)"
[ "$(lab_vip_holder $VIP)" = a ] || fail "VIP on $(lab_vip_holder $VIP), want a"
# The writes did happen (stalled, not skipped): a's status is fresh within ~1 s.
sent1=$(hf_field a "s['instances']['web']['counters']['adverts_sent']")
sleep 2
sent2=$(hf_field a "s['instances']['web']['counters']['adverts_sent']")
[ -n "$sent1" ] && [ -n "$sent2" ] && [ "$sent2" -gt "$sent1" ] ||
    fail "a's status file not updated while its writes stall ($sent1 -> $sent2)"
pass "a's status writes stalled 400 ms each: b made no transition in 6 s, a's status still updated"
