#!/usr/bin/env bash
# Issue 18: the shipped Grafana dashboard and Prometheus alert rules against the
# real daemon. promtool checks the rules and runs their unit tests; every PromQL
# expression of the dashboard parses; every series they name is one hafront
# exports; and the rules, fed the real /metrics of a pair, stay quiet while the
# pair is healthy and raise HafrontTwoMasters and HafrontSplitBrain once VRRP is
# cut both ways.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
repo=$(cd "$here/../.." && pwd)
dash=$repo/docs/grafana/hafront.json rules=$repo/docs/prometheus/hafront.rules.yml
command -v promtool >/dev/null || fail "promtool missing (Debian's prometheus package; scripts/test installs it)"
(cd "$repo/docs/prometheus" && promtool test rules hafront.rules.test.yml) >"$dir/unit.txt" 2>&1 ||
    { cat "$dir/unit.txt"; fail "promtool test rules hafront.rules.test.yml"; }
/usr/bin/python3 "$here/../lib/monitoring_check.py" static "$dash" "$rules" "$dir" || fail "dashboard/rules static check"

scrape() { # node phase: the body of GET /metrics (api.py prints the status first)
    "$PY" "$here/../lib/api.py" "unix:$dir/run-$1/api.sock" GET /metrics >"$dir/$2-$1.raw" || fail "GET /metrics on $1"
    [ "$(head -1 "$dir/$2-$1.raw")" = 200 ] || fail "GET /metrics on $1: $(head -1 "$dir/$2-$1.raw")"
    tail -n +2 "$dir/$2-$1.raw" >"$dir/$2-$1.prom"
}
hf_pair
sleep 1
scrape a healthy
scrape b healthy
/usr/bin/python3 "$here/../lib/monitoring_check.py" names "$dash" "$rules" "$dir/healthy-a.prom" "$dir/healthy-b.prom" ||
    fail "the dashboard or the rules use a series hafront does not export"

sb() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['instances']['web']['split_brain']['active'])"; }
lab_block_vrrp a
lab_block_vrrp b
hf_wait_state b web master 3 || fail "b did not become master with VRRP blocked"
for _ in $(seq 160); do
    [ "$(sb a)" = True ] && [ "$(sb b)" = True ] && break
    sleep 0.05
done
[ "$(sb a)" = True ] && [ "$(sb b)" = True ] || fail "no split brain on both nodes within 8 s"
scrape a cut
scrape b cut
/usr/bin/python3 "$here/../lib/monitoring_check.py" promtool-test "$rules" "$dir/live.test.yml" \
    "$dir/healthy-a.prom" "$dir/healthy-b.prom" "$dir/cut-a.prom" "$dir/cut-b.prom" || fail "building the live rule test"
promtool test rules "$dir/live.test.yml" >"$dir/live.txt" 2>&1 || { cat "$dir/live.txt"; fail "the rules on the pair's real metrics"; }
pass "rules unit-tested; the dashboard's panels parse and use exported series; on real scrapes: quiet while healthy, HafrontTwoMasters + HafrontSplitBrain on a two-way cut"
