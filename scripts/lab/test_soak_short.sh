#!/usr/bin/env bash
# Issue 14, the soak's short version (the long one: `SOAK_S=3600 scripts/faults soak`):
# 12 partition flaps (a cut off from the switch for 1.5 s every 4 s). Every flap is
# one takeover by b and one return to a, nothing more; neither daemon holds a file
# descriptor more at the end than after the first flap, and RSS stays within 1 MiB
# (allocator arenas settle after the first flaps: compared from the third on).
source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
hf_pair
footprint() { echo "$(awk '/^VmRSS:/ {print $2}' "/proc/${HF_PID[$1]}/status") $(ls "/proc/${HF_PID[$1]}/fd" | wc -l)"; }
masters() { grep -c 'state changed.*state="master"' "$dir/hafront-$1.log" || true; }
a0=$(masters a) b0=$(masters b)
flaps=12
for i in $(seq $flaps); do
    lab_cut a
    sleep 1.5
    lab_heal a
    sleep 2.5
    echo "$i $(footprint a) $(footprint b)" >>"$dir/samples.txt"
done
hf_wait_state a web master 3 || fail "a not master after the last flap"
da=$(( $(masters a) - a0 )) db=$(( $(masters b) - b0 ))
[ "$da" = $flaps ] && [ "$db" = $flaps ] || fail "$flaps flaps: a became master $da times, b $db (want $flaps each)"
read -r _ rss_a3 fd_a3 rss_b3 fd_b3 < <(sed -n 3p "$dir/samples.txt")
read -r _ rss_a fd_a rss_b fd_b < <(tail -1 "$dir/samples.txt")
[ "$fd_a" -le "$fd_a3" ] && [ "$fd_b" -le "$fd_b3" ] || fail "open fds grew: a $fd_a3 -> $fd_a, b $fd_b3 -> $fd_b ($(cat "$dir/samples.txt"))"
[ $((rss_a - rss_a3)) -le 1024 ] && [ $((rss_b - rss_b3)) -le 1024 ] ||
    fail "RSS grew by more than 1 MiB: a $rss_a3 -> $rss_a KiB, b $rss_b3 -> $rss_b KiB"
pass "$flaps flaps, one takeover and one return each; fds a $fd_a3 -> $fd_a, b $fd_b3 -> $fd_b; RSS a $rss_a3 -> $rss_a KiB, b $rss_b3 -> $rss_b KiB"
