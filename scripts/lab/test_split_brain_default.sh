#!/usr/bin/env bash
# Issue 14, defect 3: with no split_brain_probe configured, an instance with an IPv4
# VIP probes every 5 s by default, so VRRP lost both ways (two masters, no in-band
# signal) raises the split-brain alert within ~5 s.
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
hf_conf a web 51 150 3 100ms "\"$VIP/24\"" >"$dir/a.toml"
hf_conf b web 51 100 3 100ms "\"$VIP/24\"" >"$dir/b.toml"
hf_start a "$dir/a.toml"
hf_wait_state a web master 5 || fail "a not master"
hf_start b "$dir/b.toml"
hf_wait_state b web backup 5 || fail "b not backup"
sb() { "$HF_BIN" status --runtime-dir "$dir/run-$1" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['instances']['web']['split_brain']['active'])"; }
lab_block_vrrp a
lab_block_vrrp b
hf_wait_state b web master 3 || fail "b did not become master with VRRP blocked"
t0=$(date +%s%N)
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 8000 ]; do
    [ "$(sb a)" = True ] && [ "$(sb b)" = True ] && break
    sleep 0.05
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(sb a)" = True ] && [ "$(sb b)" = True ] || fail "no split-brain alert on both nodes within 8 s with the default probe"
# Every advert b sends meanwhile is refused (nftables drops it on output): logged
# once, then every 10 s with a count — not ten lines a second.
n=$(grep -c 'advert not sent' "$dir/hafront-b.log" || true)
[ "$n" -le 2 ] || fail "b logged 'advert not sent' $n times while VRRP was blocked (want once, then every 10 s)"
pass "two-way VRRP loss: split brain raised on both nodes after $ms ms with the default probe (5 s)"
