#!/bin/sh
# Guest benchmark: hafront ipvs-sync vs ipvsadm-restore programming the same IPVS table
# (SERVICES virtual services x REALS real servers) into an empty kernel table, and
# hafront's no-change pass over it. Run through scripts/bench-ipvs, or:
#   cargo build --release -p hafront
#   vm-tests/run --file target/release/hafront:/usr/local/bin/hafront \
#       --file "$(command -v date)":/usr/local/bin/date \
#       vm-tests/bench-ipvs.sh [REPS [SERVICES [REALS]]]      # defaults 5 100 100
#
# Services are tcp 198.51.100.S:80 (wrr), real servers 192.0.2.R:80 .. (NAT, weights
# 1..5), so every service has REALS destinations. Each repetition:
#   1. empty table; time `ipvsadm -R < rules` (ipvsadm-restore is `exec ipvsadm -R`);
#      keep `ipvsadm -Sn | sort`; ipvsadm -C;
#   2. time `hafront ipvs-sync -c bench.toml` on the empty table; the sorted
#      `ipvsadm -Sn` must equal ipvsadm-restore's;
#   3. time a second `hafront ipvs-sync` (must report 0 operations), and for
#      reference `ipvsadm -Sn` (a full dump by ipvsadm);
#   4. ipvsadm -C.
# Times are wall clock of the whole process (coreutils' date +%s%N), in ms; hafront's own
# "dump/plan/apply/total" figures are reported beside them. Medians are printed at the
# end, with a line "RESULT name median_ms" per measure for scripts.
set -eu
PATH=/usr/local/bin:$PATH
reps=${1:-5}
nsvc=${2:-100}
nreal=${3:-100}
dir=/tmp/bench-ipvs
mkdir -p "$dir"
fail() { echo "FAIL: $*"; exit 1; }

# busybox's date has no %N: pass coreutils' date (--file "$(command -v date)":/usr/local/bin/date,
# as scripts/bench-ipvs does); without it, /proc/uptime gives 10 ms steps.
case $(date +%s%N) in
*N | *%*)
    echo "bench-ipvs: no date +%N here, timing with /proc/uptime (10 ms resolution)"
    now_ns() { awk '{ printf "%.0f\n", $1 * 1e9 }' /proc/uptime; }
    ;;
*) now_ns() { date +%s%N; } ;;
esac
ms_since() { # start_ns -> elapsed ms with one decimal
    echo "$1 $(now_ns)" | awk '{ printf "%.1f", ($2 - $1) / 1e6 }'
}
median() { # file of numbers -> median
    sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
field() { # NAME FILE: the number before "NAME ... ms" in hafront's last line
    tail -n 1 "$2" | sed -n "s/.*$1 \([0-9.]*\) ms.*/\1/p"
}

# noop_kernel: of the no-change pass, the time inside the kernel's sendmsg/recvmsg (it
# fills the dump there); noop_own: the rest of that pass, hafront's own work.
measures="restore hafront hafront_apply hafront_total noop noop_total noop_dump noop_kernel noop_own save"
# A second build at /usr/local/bin/hafront-baseline (scripts/bench-ipvs with
# HAFRONT_BASELINE=path) also makes a no-change pass in every repetition, right after
# this build's: baseline_noop_total, and the ratio of the two.
baseline=
if command -v hafront-baseline >/dev/null 2>&1; then
    baseline=hafront-baseline
    measures="$measures baseline_noop_total"
fi

# ---- inputs (one awk: shell loops are slow under TCG) ---------------------------------
# Real server R: 192.0.2.R for R <= 254, then 203.0.113.(R-254); port 80.
[ "$nsvc" -le 254 ] || fail "at most 254 services"
[ "$nreal" -le 508 ] || fail "at most 508 real servers"
awk -v nsvc="$nsvc" -v nreal="$nreal" -v rules="$dir/rules" -v toml="$dir/bench.toml" 'BEGIN {
    print "runtime_dir = \"/run/hafront\"\n[log]\nlevel = \"warn\"" > toml
    for (s = 1; s <= nsvc; s++) {
        vip = "198.51.100." s ":80"
        print "-A -t " vip " -s wrr" > rules
        print "[ipvs.services.s" s "]\naddress = \"" vip "\"\nscheduler = \"wrr\"\nforwarding = \"nat\"\nreal_servers = [" > toml
        for (r = 1; r <= nreal; r++) {
            ip = r <= 254 ? "192.0.2." r : "203.0.113." (r - 254)
            w = r % 5 + 1
            print "-a -t " vip " -r " ip ":80 -m -w " w > rules
            print "  { address = \"" ip ":80\", weight = " w " }," > toml
        }
        print "]" > toml
    }
}'
ndest=$((nsvc * nreal))
echo "bench-ipvs: kernel $(uname -r), $(ipvsadm --version | cut -d' ' -f1-2), $(nproc) CPUs;" \
    "$nsvc services x $nreal real servers = $ndest destinations, $reps repetitions"
hafront ipvs-sync -c "$dir/bench.toml" --no-env --dry-run >"$dir/dry" || fail "hafront ipvs-sync --dry-run: $(tail -n 3 "$dir/dry")"
grep -q "^$((nsvc + ndest)) operations" "$dir/dry" || fail "dry run: $(tail -n 1 "$dir/dry")"

for f in $measures; do : >"$dir/$f.ms"; done
ipvsadm -C
i=1
while [ $i -le "$reps" ]; do
    [ -z "$(ipvsadm -Sn)" ] || fail "table not empty"
    t=$(now_ns)
    ipvsadm -R <"$dir/rules" || fail "ipvsadm -R"
    restore=$(ms_since "$t")
    ipvsadm -Sn | sort >"$dir/want"
    [ "$(wc -l <"$dir/want")" -eq $((nsvc + ndest)) ] || fail "ipvsadm -R: $(wc -l <"$dir/want") entries"
    ipvsadm -C

    t=$(now_ns)
    hafront ipvs-sync -c "$dir/bench.toml" --no-env >"$dir/out1" 2>&1 || fail "hafront ipvs-sync: $(tail -n 3 "$dir/out1")"
    hafront=$(ms_since "$t")
    grep -q "^$((nsvc + ndest)) operations (0 failed)" "$dir/out1" || fail "first pass: $(tail -n 1 "$dir/out1")"
    ipvsadm -Sn | sort >"$dir/have"
    cmp -s "$dir/want" "$dir/have" || { diff "$dir/want" "$dir/have" | head -n 10; fail "tables differ"; }

    t=$(now_ns)
    hafront ipvs-sync -c "$dir/bench.toml" --no-env >"$dir/out2" 2>&1 || fail "hafront ipvs-sync (2): $(tail -n 3 "$dir/out2")"
    noop=$(ms_since "$t")
    grep -q "^0 operations (0 failed)" "$dir/out2" || fail "second pass wrote: $(tail -n 1 "$dir/out2")"

    base=
    if [ -n "$baseline" ]; then
        $baseline ipvs-sync -c "$dir/bench.toml" --no-env >"$dir/out3" 2>&1 || fail "baseline ipvs-sync: $(tail -n 3 "$dir/out3")"
        grep -q "^0 operations (0 failed)" "$dir/out3" || fail "baseline pass wrote: $(tail -n 1 "$dir/out3")"
        field total "$dir/out3" >>"$dir/baseline_noop_total.ms"
        base=" | baseline no-change ($(tail -n 1 "$dir/out3"))"
    fi

    t=$(now_ns)
    ipvsadm -Sn >/dev/null
    save=$(ms_since "$t")

    echo "$restore" >>"$dir/restore.ms"
    echo "$hafront" >>"$dir/hafront.ms"
    field apply "$dir/out1" >>"$dir/hafront_apply.ms"
    field total "$dir/out1" >>"$dir/hafront_total.ms"
    echo "$noop" >>"$dir/noop.ms"
    field total "$dir/out2" >>"$dir/noop_total.ms"
    field dump "$dir/out2" >>"$dir/noop_dump.ms"
    kernel=$(field kernel "$dir/out2")
    echo "$kernel" >>"$dir/noop_kernel.ms"
    echo "$(field total "$dir/out2") $kernel" | awk '{ printf "%.1f\n", $1 - $2 }' >>"$dir/noop_own.ms"
    echo "$save" >>"$dir/save.ms"
    echo "rep $i: ipvsadm -R ${restore} ms | hafront ${hafront} ms ($(tail -n 1 "$dir/out1"))" \
        "| no-change ${noop} ms ($(tail -n 1 "$dir/out2"))$base | ipvsadm -Sn ${save} ms"
    ipvsadm -C
    i=$((i + 1))
done

echo "medians over $reps repetitions (ms):"
for f in $measures; do
    echo "RESULT $f $(median "$dir/$f.ms")"
done
awk -v h="$(median "$dir/hafront.ms")" -v r="$(median "$dir/restore.ms")" \
    'BEGIN { printf "RESULT ratio_hafront_over_restore %.2f\n", h / r }'
if [ -n "$baseline" ]; then
    awk -v h="$(median "$dir/noop_total.ms")" -v b="$(median "$dir/baseline_noop_total.ms")" \
        'BEGIN { printf "RESULT ratio_noop_total_over_baseline %.2f\n", h / b }'
fi
echo "bench-ipvs: ok"
