#!/usr/bin/env bash
# Seed 001 with real Debian apache2 and real receivers: httpd bound to the master
# (run_on = "master": started on the node that becomes master, stopped on the one
# that stops being master), notify scripts run one at a time in event order with
# keepalived's arguments and NOTIFY_* variables, a hanging script is killed at
# notify.timeout and the next notifier still runs, webhooks POST JSON to a local
# HTTP server, and the e-mail with the state and the VIP reaches a local SMTP
# server (aiosmtpd) over STARTTLS verified against the test's own certificate.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
APACHE=/usr/sbin/apache2
[ -x $APACHE ] || fail "apache2 is not installed (scripts/test installs it)"

# --- receivers in the client namespace ----------------------------------------
mkdir -p "$dir/sinks"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=192.0.2.10 \
    -addext subjectAltName=IP:192.0.2.10 -keyout "$dir/smtp.key" -out "$dir/smtp.crt" 2>/dev/null
ip netns exec "$LAB-c" "$PY" "$here/../lib/notify_sinks.py" 192.0.2.10 "$dir/sinks" "$dir/smtp.crt" "$dir/smtp.key" \
    >"$dir/sinks.log" 2>&1 &
lab_track_pid $!
for _ in $(seq 100); do grep -q ready "$dir/sinks.log" && break; sleep 0.05; done
grep -q ready "$dir/sinks.log" || fail "notification receivers did not start: $(cat "$dir/sinks.log")"

# --- notify script: logs start and end with its arguments and environment -------
cat >"$dir/notify.sh" <<'SH'
#!/bin/sh
log="$(dirname "$0")/notify-$NOTIFY_NODE.log"
echo "$(date +%s%N) start $* state=$NOTIFY_STATE from=$NOTIFY_FROM prio=$NOTIFY_PRIORITY vips=$NOTIFY_VIPS" >>"$log"
case $1 in
    backup) sleep 0.3 ;;      # slow enough that out-of-order runs would show
    master-slow) sleep 30 ;;  # hangs: killed at notify.timeout
esac
echo "$(date +%s%N) end $1" >>"$log"
SH
chmod 755 "$dir/notify.sh"

apache_conf() { # node
    mkdir -p "$dir/apache-$1-run"
    cat <<APACHE
ServerRoot /etc/apache2
ServerName node-$1
Listen 80
PidFile $dir/apache-$1.pid
DefaultRuntimeDir $dir/apache-$1-run
ErrorLog $dir/apache-$1-error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
DocumentRoot $dir
# The answer names the node (no file to serve: the lab directory is root's).
ErrorDocument 403 "node-$1"
<Directory />
    Require all denied
</Directory>
APACHE
}
for n in a b; do
    apache_conf $n >"$dir/apache-$n.conf"
    master_script=master
    [ $n = b ] && master_script=master-slow
    hf_conf $n web 51 "$([ $n = a ] && echo 150 || echo 100)" 3 100ms "\"$VIP/24\"" \
        "notify_master = [\"$dir/notify.sh\", \"$master_script\"]" \
        "notify_backup = [\"$dir/notify.sh\", \"backup\"]" \
        "notify_fault = [\"$dir/notify.sh\", \"fault\"]" \
        "notify_stop = [\"$dir/notify.sh\", \"stop\"]" \
        "notify = [\"$dir/notify.sh\", \"generic\"]" \
        '[services.httpd]' 'kind = "httpd"' "config = \"$dir/apache-$n.conf\"" \
        'run_on = "master"' 'instance = "web"' \
        '[notify]' 'timeout = "2s"' \
        '[notify.smtp]' 'server = "192.0.2.10:2525"' 'from = "hafront@example.org"' \
        'to = ["admin@example.org", "oncall@example.org"]' 'tls = "starttls"' "ca_file = \"$dir/smtp.crt\"" \
        '[[notify.webhooks]]' 'url = "http://192.0.2.10:8080/hook"' 'headers = { Authorization = "Bearer lab-token" }' \
        >"$dir/$n.toml"
    "$HF_BIN" check-config -c "$dir/$n.toml" >/dev/null || fail "config of $n: $("$HF_BIN" check-config -c "$dir/$n.toml" 2>&1)"
done
status_json() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json; }
svc_state() { status_json "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['services']['httpd']['state'])"; }
wait_svc() { # node state timeout_s
    local i
    for i in $(seq $(( $3 * 20 ))); do [ "$(svc_state "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done
    echo "httpd on $1 is $(svc_state "$1" 2>/dev/null), not $2" >&2
    return 1
}
apache_running() { pgrep -f "apache2 -f $dir/apache-$1.conf" >/dev/null; }
http_get() { lab_exec c curl -s --max-time 1 "http://$VIP/"; }
wait_http() { # text timeout_s
    local i
    for i in $(seq $(( $2 * 20 ))); do [ "$(http_get)" = "$1" ] && return 0; sleep 0.05; done
    return 1
}
mails_with() { grep -l "$1" "$dir"/sinks/mail-*.eml 2>/dev/null | head -1; }
wait_mail() { # pattern timeout_s
    local i
    for i in $(seq $(( $2 * 20 ))); do [ -n "$(mails_with "$1")" ] && return 0; sleep 0.05; done
    return 1
}

# --- start: a master with httpd, b backup without --------------------------------
hf_start a "$dir/a.toml"
hf_start b "$dir/b.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_wait_state b web backup 5 || fail "b not backup"
wait_svc a running 5 || fail "httpd not started on the master"
wait_http node-a 5 || fail "the VIP is not answered by a's apache2"
[ "$(svc_state b)" = stopped ] || fail "httpd state on the backup: $(svc_state b)"
apache_running b && fail "apache2 runs on the backup"
pass "run_on = master: apache2 runs on master a and answers the VIP; not on backup b"

# Scripts in order, one at a time: a's backup (slow) script ends before the generic
# one starts, and the master ones come after.
for _ in $(seq 100); do [ "$(grep -c ' end generic' "$dir/notify-node-a.log" 2>/dev/null)" -ge 2 ] && break; sleep 0.05; done
"$PY" - "$dir/notify-node-a.log" <<'PYEOF' || fail "a's notify scripts (see above)"
import sys
lines = [l.split(" ", 1)[1].strip() for l in open(sys.argv[1])]
expected = [
    "start backup state=BACKUP from=STOP prio=150 vips=192.0.2.100/24",
    "end backup",
    "start generic INSTANCE web BACKUP 150 state=BACKUP from=STOP prio=150 vips=192.0.2.100/24",
    "end generic",
    "start master state=MASTER from=BACKUP prio=150 vips=192.0.2.100/24",
    "end master",
    "start generic INSTANCE web MASTER 150 state=MASTER from=BACKUP prio=150 vips=192.0.2.100/24",
    "end generic",
]
assert lines == expected, "\n".join(["got:"] + lines)
PYEOF
pass "notify scripts on a in order, one at a time: backup (0.3 s), generic BACKUP, master, generic MASTER; NOTIFY_* set"

wait_mail 'is now MASTER' 5 || fail "no e-mail about the new master"
m=$(mails_with 'is now MASTER')
grep -q '^Subject: \[hafront\] node-a: web is now MASTER' "$m" || fail "mail subject: $(grep Subject "$m")"
grep -q '^VIPs: 192.0.2.100/24' "$m" || fail "mail without the VIP"
grep -q '^X-TLS: True' "$m" || fail "mail not sent over STARTTLS"
grep -q '^X-Envelope-To: admin@example.org,oncall@example.org' "$m" || fail "mail recipients"
pass "e-mail via STARTTLS to both recipients: '$(grep '^Subject' "$m")' with the VIP"

for _ in $(seq 100); do [ "$(grep -c '"node": "node-a"' "$dir/sinks/webhooks.jsonl" 2>/dev/null)" -ge 2 ] && break; sleep 0.05; done
"$PY" - "$dir/sinks/webhooks.jsonl" <<'PYEOF' || fail "webhooks (see above)"
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
a = [d for d in docs if d["node"] == "node-a"]
assert [d["state"] for d in a] == ["backup", "master"], a
m = a[1]
assert m["event"] == "state_change" and m["instance"] == "web" and m["vrid"] == 51, m
assert m["from"] == "backup" and m["priority"] == 150 and m["vips"] == ["192.0.2.100/24"], m
assert m["_content_type"] == "application/json" and m["_authorization"] == "Bearer lab-token", m
PYEOF
pass "webhooks: JSON POSTs from a (backup, then master) with the configured header"

# --- failover: a stops -> b master, httpd moves -----------------------------------
t0=$(date +%s%N)
hf_stop a
wait_http node-b 10 || fail "the VIP is not answered by b's apache2 after a stopped"
echo "   a stopped -> VIP answered by apache2 started on b: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
apache_running a && fail "apache2 still runs on a after hafront stopped"
grep -q 'start stop state=STOP from=MASTER' "$dir/notify-node-a.log" || fail "no notify_stop on a"
grep -q 'start generic INSTANCE web STOP 150' "$dir/notify-node-a.log" || fail "no generic STOP on a"
pass "a stopped: STOP notified, its apache2 stopped; b master with apache2 answering the VIP"

# b's master script hangs: killed at the 2 s timeout, then the generic one runs.
for _ in $(seq 100); do grep -q 'start generic INSTANCE web MASTER 100' "$dir/notify-node-b.log" 2>/dev/null && break; sleep 0.05; done
"$PY" - "$dir/notify-node-b.log" <<'PYEOF' || fail "b's notify scripts (see above)"
import sys
rows = [l.strip().split(" ", 2) for l in open(sys.argv[1])]
text = [r[1] + " " + r[2] for r in rows]
i = text.index("start master-slow state=MASTER from=BACKUP prio=100 vips=192.0.2.100/24")
j = text.index("start generic INSTANCE web MASTER 100 state=MASTER from=BACKUP prio=100 vips=192.0.2.100/24")
assert "end master-slow" not in text, text
gap = (int(rows[j][0]) - int(rows[i][0])) / 1e9
assert 1.9 < gap < 4, gap
print(f"   hanging notify_master killed after {gap:.2f} s; the generic script ran next")
PYEOF
grep -q 'notifier timed out' "$dir/hafront-b.log" || fail "timeout not logged on b"
pgrep -f "notify.sh master-slow" >/dev/null && fail "the hanging script still runs"
wait_mail 'node-b: web is now MASTER' 8 || fail "no e-mail from b"
pass "a hanging notify script is killed at notify.timeout; the next notifiers (generic, e-mail) still run"

# --- a comes back and preempts: httpd moves back -------------------------------
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a did not preempt"
wait_http node-a 10 || fail "VIP not answered by a's apache2 again"
wait_svc b stopped 5 || fail "httpd not stopped on b when it became backup"
apache_running b && fail "apache2 still runs on b"
wait_mail 'node-b: web is now BACKUP' 8 || fail "no e-mail about b becoming backup"
pass "a back: apache2 stopped on b (now backup), started on a; e-mail from b"
