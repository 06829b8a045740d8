#!/usr/bin/env bash
# The status page (GET /status) in a real browser: headless Chromium in the backup's
# namespace opens b's page over its TCP listener (the browser's Basic challenge
# answered with the API token), the master is killed (and its port cut), and the page that stays open
# shows b as MASTER within ~1 s of b's transition, by itself. The node's name holds
# markup: the page must show it as text and run nothing of it. Without JavaScript
# the server-rendered page shows the same. The headers (CSP, nosniff, framing), the
# 401 and its Basic challenge, and Basic credentials refused off the page are checked
# with curl.
# HF_SCREENSHOTS=DIR: also save the screenshots there (status-page.png, -phone.png).
LAB=${LAB:-hpage$$}
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/test installs Debian's chromium)"
$PY -c 'import websockets' 2>/dev/null || fail "python3-websockets is not installed (scripts/test installs it)"

TOKEN=hafront-page-token-0123456789
(umask 077 && echo "$TOKEN" >"$dir/token")
NODE_B='b <script>window.pwned=1</script><img src=x onerror="window.pwned=2">'

# What the checks probe: a web server on the client; port 9 there is closed.
mkdir -p "$dir/www"; echo ok >"$dir/www/index.html"
ip netns exec "$LAB-c" $PY -m http.server 8080 --bind 192.0.2.10 --directory "$dir/www" >"$dir/web.log" 2>&1 &
lab_track_pid $!

extra=(
    'track_checks = [ { name = "app", weight = -10 } ]'
    '[vrrp.instances.web6]' 'interface = "eth0"' 'vrid = 52' 'advert_interval = "100ms"'
    'virtual_ips = ["2001:db8::100/64"]'
    '[checks.web]' 'kind = "http"' 'url = "http://192.0.2.10:8080/"' 'interval = "500ms"' 'timeout = "300ms"' 'rise = 1' 'fall = 1'
    '[checks.app]' 'kind = "tcp"' 'target = "192.0.2.10:9"' 'interval = "500ms"' 'timeout = "300ms"' 'rise = 1' 'fall = 1'
    '[api]' 'listen = "127.0.0.1:9165"'
    '[ipvs.services.www]' "address = \"$VIP:80\"" 'scheduler = "wrr"' 'master_of = "web"'
    'real_servers = [ { address = "192.0.2.10:8080", weight = 2, check = "web" }, { address = "192.0.2.10:9", weight = 1, check = "app" } ]'
)
for n in a b; do
    prio=150; [ $n = b ] && prio=100
    hf_conf $n web 51 $prio 3 100ms "\"$VIP/24\"" "${extra[@]}" | sed "s/^vrid = 52$/vrid = 52\npriority = $prio/" >"$dir/$n.toml"
done
# b's name, in a TOML literal string: markup the page must not run.
sed -i "s|^name = \"node-b\"$|name = '$NODE_B'|" "$dir/b.toml"
grep -qF "$NODE_B" "$dir/b.toml" || fail "b's name not set"
hf_start a "$dir/a.toml" HAFRONT_API__TOKEN_FILE="$dir/token"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml" HAFRONT_API__TOKEN_FILE="$dir/token"
hf_wait_state b web backup 5 || fail "b not backup"

# --- headers and auth, with curl -----------------------------------------------------------
URL=http://127.0.0.1:9165
cb() { lab_exec b curl -sS -m 5 "$@"; }
for _ in $(seq 50); do cb -o /dev/null "$URL/healthz" 2>/dev/null && break; sleep 0.1; done
h=$(cb -D - -o /dev/null "$URL/status")
grep -q '^HTTP/1.1 401' <<<"$h" || fail "/status without credentials: $h"
grep -qi '^www-authenticate: Basic realm=' <<<"$h" || fail "no Basic challenge on the page's 401: $h"
grep -qi '^content-security-policy:.*frame-ancestors' <<<"$h" || fail "no CSP on the page's 401"
h=$(cb -D - -o /dev/null "$URL/v1/status")
grep -qi '^www-authenticate' <<<"$h" && fail "the JSON API asks browsers for credentials: $h"
[ "$(cb -o /dev/null -w '%{http_code}' -u "operator:$TOKEN" "$URL/v1/status")" = 401 ] || fail "Basic credentials accepted off the page (/v1/status)"
[ "$(cb -o /dev/null -w '%{http_code}' -u "operator:wrong-token-0123456789" "$URL/status")" = 401 ] || fail "a wrong Basic password accepted"
h=$(cb -D - -o "$dir/page.html" -u "operator:$TOKEN" "$URL/status")
grep -q '^HTTP/1.1 200' <<<"$h" || fail "/status with the token as the Basic password: $h"
for want in "content-security-policy: default-src 'self'" 'x-content-type-options: nosniff' \
    'x-frame-options: DENY' 'content-type: text/html' 'cache-control: no-store'; do
    grep -qiF "$want" <<<"$h" || fail "page header missing: $want"
done
grep -qiF "script-src" <<<"$h" && fail "the CSP relaxes script-src: $h"
[ "$(cb -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/status/live")" = 200 ] || fail "bearer token refused on the page"
[ "$(cb -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $TOKEN" "$URL/status/page.js")" = "text/javascript; charset=utf-8" ] || fail "page.js type"
grep -qF '<script' <(sed 's|<script src="/status/page.js" defer></script>||' "$dir/page.html") && fail "markup from the data in the page: $(grep -o '.\{40\}<script.\{40\}' "$dir/page.html" | head -3)"
grep -qF '&lt;script&gt;window.pwned=1&lt;/script&gt;' "$dir/page.html" || fail "the node name is not shown escaped"
pass "page headers (CSP, nosniff, no framing, no-store); 401 with a Basic challenge; Basic only on the page; the data escaped"

# --- the browser ---------------------------------------------------------------------------
shots=()
[ -n "${HF_SCREENSHOTS:-}" ] && shots=(--screenshot "$HF_SCREENSHOTS/status-page.png" --phone-screenshot "$HF_SCREENSHOTS/status-page-phone.png")
ip netns exec "$LAB-b" $PY "$here/../lib/status_page.py" --url "$URL/status" --token "$TOKEN" --dir "$dir" \
    --instance web --node-name "$NODE_B" "${shots[@]}" >"$dir/browser.out" 2>&1 &
browser=$!
lab_track_pid $browser
for _ in $(seq 600); do
    [ -e "$dir/page-ready" ] && break
    kill -0 $browser 2>/dev/null || break
    sleep 0.05
done
[ -e "$dir/page-ready" ] || { cat "$dir/browser.out"; fail "the browser did not get the page ready"; }
# a's node goes away: the daemon killed and its switch port cut (a killed daemon leaves
# its VIPs on its interface, which would rightly raise split brain on b).
hf_kill a
lab_cut a
touch "$dir/page-go"
rc=0; wait $browser || rc=$?
lab_untrack_pid $browser
cat "$dir/browser.out"
[ $rc = 0 ] || fail "the browser's checks failed"
seen=$(tail -1 "$dir/browser.out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["seen_master_unix_ms"])')
became=$(hf_field b "[t['unix_ms'] for t in s['instances']['web']['recent_transitions'] if t['to'] == 'master'][-1]")
delay=$((seen - became))
echo "b became master at $became, the open page showed it at $seen: ${delay} ms later"
[ "$delay" -ge 0 ] && [ "$delay" -le 1500 ] || fail "the page showed MASTER ${delay} ms after the transition (want <= 1500 ms: 1 s poll)"
pass "Chromium: the open page showed b MASTER ${delay} ms after its transition, no reload; names shown as text; works without JavaScript; fits a phone"
