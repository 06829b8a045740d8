#!/usr/bin/env bash
# Nix checks that run without Nix's package set (no binary cache, no nixpkgs here):
#
# 1. every .nix file of the repository parses (`nix-instantiate --parse`);
# 2. where nixpkgs' lib is present, nixos/module.nix is evaluated through
#    lib.evalModules (nixos/tests/eval.nix: stubs for the NixOS options it sets and
#    for pkgs) and the result is asserted: the unit, reload on config change, the
#    build-time check, capabilities, firewall (VRRP = IP protocol 112), IPVS modules,
#    nginx wiring, anycast's BIRD wiring (services.bird / services.bird2), assertions
#    naming the option path, type errors naming it; the flake's outputs and both VM
#    tests' nodes against a stub nixpkgs;
# 2c. with Debian's bird2, the BIRD configurations generated (the module's, the
#    anycast VM test's front end and router) pass `bird -p`, as nixpkgs' checkConfig
#    would run them at build time;
# 3. with a hafront binary (HF_BIN), the TOML the module generates is fed to
#    `hafront check-config`: the daemon accepts what the module writes.
#
# nixpkgs' lib is looked up in $NIXPKGS_LIB (a nixpkgs checkout or its lib/), then
# in ../shared/nixpkgs-lib beside the repository (every developer machine and CI
# have it there: nixpkgs' lib/, unmodified, its commit in SOURCE.txt), then in
# ${XDG_CACHE_HOME:-/var/cache}/hafront-nixpkgs-lib. It is not vendored and this
# script does not download it. Without it steps 2 and 3 cannot run: the script then
# fails, unless HAFRONT_NIX_EVAL_OPTIONAL=1 lets it pass with a SKIP (a machine
# without ../shared).
#
# Usage: nixos/tests/eval.sh      (root only to apt-get install nix-bin if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/nixos/tests
cd "$root"

if ! command -v nix-instantiate >/dev/null 2>&1; then
    echo "eval: installing nix-bin (Debian's Nix, used to parse and evaluate only)"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    apt-get install -y -q --no-install-recommends nix-bin >"$log" 2>&1 ||
        { apt-get update -q >"$log" 2>&1 && apt-get install -y -q --no-install-recommends nix-bin >"$log" 2>&1; } ||
        { cat "$log" >&2; rm -f "$log"; exit 1; }
    rm -f "$log"
fi
# Debian's nix.conf names a build group that only the daemon setup creates; nothing
# here builds.
export NIX_CONFIG="build-users-group ="
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hafront-nix-eval.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok:   $*"; }

# ---- 1. parse ------------------------------------------------------------------------
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.nix' | sort)
[ ${#files[@]} -gt 0 ] || { echo "eval: no .nix files found" >&2; exit 1; }
for f in "${files[@]}"; do
    if nix-instantiate --parse "$f" >/dev/null 2>"$tmp/parse.err"; then
        ok "parses: $f"
    else
        fail "$f does not parse: $(cat "$tmp/parse.err")"
    fi
done

# ---- 2. evaluate the module ----------------------------------------------------------
lib=
cache=${XDG_CACHE_HOME:-/var/cache}/hafront-nixpkgs-lib
# Beside the repository; for a git worktree, beside its main checkout.
main=$(dirname "$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo "$root/.git")")
for cand in ${NIXPKGS_LIB:+"$NIXPKGS_LIB" "$NIXPKGS_LIB/lib"} "$root/../shared/nixpkgs-lib/lib" \
    "$main/../shared/nixpkgs-lib/lib" "$cache/lib" "$cache"; do
    if [ -f "$cand/default.nix" ] && [ -f "$cand/modules.nix" ]; then lib=$(cd "$cand" && pwd); break; fi
done
if [ -z "$lib" ]; then
    if [ "${HAFRONT_NIX_EVAL_OPTIONAL:-0}" = 1 ]; then
        echo "SKIP: module evaluation: no nixpkgs lib (NIXPKGS_LIB, $root/../shared/nixpkgs-lib or $cache);" \
            "only parsing was checked"
        echo "eval: ${#files[@]} files parsed, ${fails} failures, evaluation skipped"
        [ "$fails" -eq 0 ]
        exit
    fi
    fail "no nixpkgs lib: set NIXPKGS_LIB to a nixpkgs checkout or its lib/, or put nixpkgs' lib/ in" \
        "$root/../shared/nixpkgs-lib (HAFRONT_NIX_EVAL_OPTIONAL=1 to parse only)"
    exit 1
fi
commit=$(grep -o -m1 '[0-9a-f]\{40\}' "$lib/../SOURCE.txt" 2>/dev/null || true)
echo "eval: nixpkgs lib at $lib${commit:+ (nixpkgs $commit)}"

ev() { # case -> JSON on stdout
    nix-instantiate --readonly-mode --eval --strict --json "$here/eval.nix" --arg lib "import $lib" --argstr case "$1"
}
cases=(full nftables firewalld firewalldZone legacy legacyNftables cross configfile configfileNginx outside outsideIpvs dirs bad empty disabled
    anycast anycastBird2 anycastSeparate anycastSeparateBird2 anycastOwnBird anycastNoBird anycastEmpty anycastBad)
for c in "${cases[@]}"; do
    if ev "$c" >"$tmp/$c.json" 2>"$tmp/$c.err"; then :; else
        fail "evaluating case $c: $(tail -n 5 "$tmp/$c.err")"
    fi
done

python3 - "$tmp" <<'PY' || fails=$((fails + 1))
import json, sys, os
tmp = sys.argv[1]
bad = 0
def load(c):
    return json.load(open(os.path.join(tmp, c + ".json")))
def check(cond, what):
    global bad
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        bad += 1

full = load("full")
u = full["unit"]
sc = u["serviceConfig"]
check(full["failedAssertions"] == [], "full: no failed assertion (%s)" % full["failedAssertions"])
check(sc["Type"] == "notify" and sc["NotifyAccess"] == "main", "unit: Type=notify, NotifyAccess=main")
check(sc.get("WatchdogSec") == "5s", "unit: WatchdogSec=5s")
check(sc["ExecStart"].endswith("-hafront-0.1.0/bin/hafront run -c /etc/hafront/hafront.toml") and "build-platform" not in sc["ExecStart"],
      "unit: ExecStart runs the package's hafront on the stable /etc path: " + sc["ExecStart"])
check(any("check-config -c /etc/hafront/hafront.toml" in x for x in sc["ExecReload"])
      and sc["ExecReload"][-1].endswith("/bin/kill -HUP $MAINPID"),
      "unit: ExecReload checks the new file, then SIGHUP")
se = sc.get("ExecStopPost", "")
check(se.startswith("-/nix/store/") and se.endswith("-hafront-0.1.0/bin/hafront remove-vips -c /etc/hafront/hafront.toml"),
      "unit: ExecStopPost removes the VIPs a crashed or killed hafront left (failure ignored): " + str(se))
check(u["reloadTriggers"] == [full["etcSource"]],
      "config change = reload: reloadTriggers is the checked file that /etc/hafront/hafront.toml points to")
check(u["stopIfChanged"] is False, "unit: stopIfChanged = false (a package change restarts in one step)")
script = full["etcSourceScript"] or ""
check("-hafront-0.1.0/bin/hafront check-config --offline --no-env -c /nix/store/" in script and "cp " in script
      and full["etcSourceLocal"],
      "build-time validation: the /etc file is the output of `hafront check-config --offline --no-env` (runCommandLocal)")
cross = load("cross")
check("-hafront-0.1.0-build-platform/bin/hafront check-config --offline" in (cross["etcSourceScript"] or "")
      and "build-platform" not in cross["unit"]["serviceConfig"]["ExecStart"],
      "cross build: the build-time check runs buildPackages' hafront, the unit the target's")
check(sorted(sc["LoadCredential"]) == ["api-token:/run/secrets/hafront-api-token", "ca:/run/secrets/backend-ca.pem"],
      "secrets for the dynamic user: LoadCredential=%s" % sc.get("LoadCredential"))
check(full["settings"]["api"]["token_file"] == "/run/credentials/hafront.service/api-token",
      "apiTokenFile: api.token_file is the credential's path")
check(u["restartTriggers"] == ["/run/secrets/hafront.env"],
      "environment file: another path is a restart (restartTriggers)")
p = full["paths"].get("hafront-environment", {})
er = full["envRestart"] or {}
check(p.get("pathConfig") == {"PathChanged": "/run/secrets/hafront.env"} and "multi-user.target" in p.get("wantedBy", [])
      and er.get("serviceConfig", {}).get("ExecStart", "").endswith("/bin/systemctl try-restart hafront.service"),
      "environment file changed in place: hafront-environment.path restarts hafront")
check(sc["StateDirectory"] == "hafront" and sc["StateDirectoryMode"] == "0700" and sc["DynamicUser"] is True
      and full["settings"].get("state_dir", "/var/lib/hafront") == "/var/lib/hafront",
      "state_dir /var/lib/hafront is the unit's StateDirectory (the dynamic user's, 0700; ipvs-owned.json survives a stop)")
check(sc["RuntimeDirectory"] == "hafront" and sc["LimitNOFILE"] == 65536, "unit: RuntimeDirectory, LimitNOFILE as the appliance unit")
check(sc.get("UMask") == "0077" and sc.get("ProtectProc") == "invisible" and sc.get("PrivateIPC") is True,
      "unit: UMask=0077, ProtectProc=invisible, PrivateIPC as the appliance unit (issue 13)")
# The same hardening keys, with the same values, in both units.
appliance = dict(l.split("=", 1) for l in open("appliance/hafront.service").read().splitlines() if "=" in l and not l.startswith("#"))
for k in ("UMask", "ProtectProc", "PrivateIPC", "LimitNOFILE"):
    v = sc.get(k)
    v = "yes" if v is True else str(v)
    check(appliance.get(k) == v, "unit: %s=%s in both the module and appliance/hafront.service (%s)" % (k, v, appliance.get(k)))
check(load("dirs")["failedAssertions"] == [
      "services.hafront.settings.state_dir must be /var/lib/hafront (the unit's StateDirectory, owned by its dynamic user;"
      " every other path is read-only for it), not /srv/hafront"], "state_dir elsewhere: an assertion names it")
# IPC_LOCK and SYS_NICE: vrrp.lock_memory and vrrp.rt_priority (opt-in keys).
caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_SYS_NICE"}
check(set(sc["AmbientCapabilities"]) == caps
      and set(sc["CapabilityBoundingSet"]) == caps and sc["DynamicUser"] is True,
      "unit: dynamic user with CAP_NET_ADMIN CAP_NET_RAW (+ IPC_LOCK, SYS_NICE for lock_memory, rt_priority) only")
check("AF_PACKET" in sc["RestrictAddressFamilies"] and "AF_NETLINK" in sc["RestrictAddressFamilies"],
      "unit: AF_PACKET (gratuitous ARP) and AF_NETLINK allowed")
check(sc["RestartPreventExitStatus"] == 2, "unit: no restart loop on an invalid config (exit 2)")
check(sc["EnvironmentFile"] == "/run/secrets/hafront.env", "unit: environmentFile -> EnvironmentFile")
check("nftables" in u["path"] and "systemd" in u["path"], "unit: nft (accept mode) and systemctl (adopted unit) on PATH")
check("nginx.service" in u["after"] and "nginx.service" in u["wants"], "nginx: hafront after/wants nginx.service")
check("-p 112" in full["firewall"]["extraCommands"] and "-D nixos-fw -p 112" in full["firewall"]["extraStopCommands"],
      "openFirewall (iptables): protocol 112 accepted, removed on stop")
check(full["kernelModules"] == ["ip_vs", "ip_vs_wrr"], "IPVS: ip_vs and the scheduler in use loaded at boot: %s" % full["kernelModules"])
check(full["sysctl"].get("net.ipv4.ip_forward") == 1, "IPVS NAT: ip_forward on")
s = full["settings"]
web = s["vrrp"]["instances"]["web"]
check({"name": "nginx", "weight": -50} in web["track_checks"] and
      web["track_services"] == [{"name": "nginx", "weight": -50}] and
      {"name": "maintenance_off", "weight": 0} in web["track_scripts"],
      "nginx: the selected instance tracks the adopted service and the check, the user's tracks stay")
check(s["services"]["nginx"] == {"kind": "nginx", "systemd_unit": "nginx.service"},
      "nginx: hafront's own supervision, adopting nginx.service (systemd_unit), not a pidof script")
check(s["vrrp"]["instances"]["web6"]["track_checks"] == [] and s["vrrp"]["instances"]["web6"]["track_services"] == [],
      "nginx.instances: web6 not selected, not tracking")
check(s["checks"]["nginx"]["url"] == "http://127.0.0.1:8099/healthz" and s["checks"]["nginx"]["kind"] == "http",
      "nginx: http check on the loopback health vhost")
check(full["nginx"]["enable"] and full["nginx"]["virtualHosts"]["hafront-health"]["listen"][0] == {"addr": "127.0.0.1", "port": 8099},
      "nginx: services.nginx enabled with the loopback health vhost")
check(web["garp"] == {"master_burst": 3}, "settings: freeform keys pass through")

check(full["firewall"]["backend"] == "iptables" and full["firewall"]["extraInputRules"] == "" and full["firewalldZones"] == {},
      "openFirewall (iptables): nothing for the other backends")
nft = load("nftables")
check(nft["firewall"]["backend"] == "nftables" and "meta l4proto 112 accept" in nft["firewall"]["extraInputRules"]
      and nft["firewall"]["extraCommands"] == "" and nft["firewall"]["extraStopCommands"] == "",
      "openFirewall (nftables backend): protocol 112 in extraInputRules, no extraCommands (nixpkgs asserts that)")
fwd = load("firewalld")
check(fwd["firewall"]["backend"] == "firewalld" and fwd["firewall"]["extraCommands"] == ""
      and fwd["firewall"]["extraInputRules"] == ""
      and fwd["firewalldZones"].get("nixos-fw-default", {}).get("protocols") == ["vrrp"]
      and fwd["failedAssertions"] == [],
      "openFirewall (firewalld backend): protocol vrrp in the default zone nixos-fw-default, not in rules firewalld ignores")
fz = load("firewalldZone")
check(fz["failedAssertions"] == ['services.hafront.openFirewall: firewalld\'s default zone is public, not NixOS\' nixos-fw-default;'
      ' set services.hafront.openFirewall = false and add "vrrp" to services.firewalld.zones.public.protocols']
      and "public" not in fz["firewalldZones"],
      "openFirewall (firewalld, another default zone): an assertion, and no zone of firewalld's replaced")
lg, lgn = load("legacy"), load("legacyNftables")
check("backend" not in lg["firewall"] and lg["firewalldZones"] is None and "-p 112" in lg["firewall"]["extraCommands"]
      and "meta l4proto 112 accept" in lgn["firewall"]["extraInputRules"] and lgn["firewall"]["extraCommands"] == ""
      and lg["failedAssertions"] == [] == lgn["failedAssertions"],
      "openFirewall on a NixOS without firewall.backend and firewalld: iptables or nftables by networking.nftables.enable")
cf = load("configfile")
check(cf["kernelModules"] == ["ip_vs", "ip_vs_sh"] and cf["sysctl"] == {} and cf["warnings"] == []
      and "check-config --offline --no-env -c /nix/store/" in (cf["etcSourceScript"] or ""),
      "configFile (path literal): read at evaluation, its IPVS scheduler loaded (%s), checked at build time" % cf["kernelModules"])
cfn = load("configfileNginx")
check(len(cfn["warnings"]) == 1 and "configFile replaces" in cfn["warnings"][0],
      "configFile with nginx.enable: a warning that the generated nginx entries do not reach the file")
out = load("outside")
check(out["etcSource"] == "/etc/hafront-site/hafront.toml" and out["etcSourceScript"] is None and len(out["warnings"]) == 2
      and "not checked at build time" in out["warnings"][1] and "ipvs.enable" in out["warnings"][0],
      "configFile outside the store: not checked in the sandbox, warnings say so and ask for ipvs.enable")
oi = load("outsideIpvs")
check(oi["kernelModules"] == ["ip_vs", "ip_vs_mh"] and len(oi["warnings"]) == 1,
      "configFile outside the store with ipvs.enable: ip_vs and the named schedulers loaded")
check(nft["kernelModules"] == [], "no IPVS service: no IPVS modules")
check("EnvironmentFile" not in nft["unit"]["serviceConfig"], "no environmentFile: no EnvironmentFile=")

msgs = load("bad")["failedAssertions"]
want = [
    "services.hafront.settings.vrrp.instances.dup.virtual_ips must not be empty",
    "services.hafront.settings.vrrp.instances.web.version = 2 carries IPv4 only",
    'services.hafront.settings.vrrp.instances.web.track_checks: "missing" is not defined in services.hafront.settings.checks',
    'services.hafront.settings.ipvs.services.app.master_of: no instance "ghost"',
    "services.hafront.nginx.instances: nope not in services.hafront.settings.vrrp.instances",
    "services.hafront.settings.vrrp.instances: dup, dup2 share interface, vrid and address family",
]
for w in want:
    check(any(m.startswith(w) for m in msgs), "assertion names the option: " + w)
check(len(msgs) == len(want), "bad: exactly %d failed assertions (got %d)" % (len(want), len(msgs)))
check(load("empty")["failedAssertions"] ==
      ["services.hafront.settings.vrrp.instances must declare at least one instance, or services.hafront.settings.anycast"
       " a group (or set services.hafront.configFile)"],
      "empty: asks for an instance or an anycast group")
check(load("disabled") == {"failedAssertions": [], "hasUnit": False}, "disabled: no unit, nothing else")
check("SupplementaryGroups" not in sc and "bird.service" not in u["after"] and not full["bird"]["enable"]
      and full["firewall"]["allowedTCPPorts"] == [] == full["firewall"]["allowedUDPPorts"],
      "no anycast group: no BIRD, no BIRD wiring, no BGP/BFD ports")

# ---- anycast through BIRD (issue 17) ----
a = load("anycast")
check(a["failedAssertions"] == [], "anycast: no failed assertion (%s)" % a["failedAssertions"])
check(a["bird"]["module"] == "bird" and a["bird"]["enable"], "anycast.bird: services.bird enabled (current nixpkgs)")
conf = a["bird"]["config"]
gen, site = conf.find("# Generated by services.hafront.anycast.bird"), conf.find("# the site's own line")
check(0 <= gen < site, "anycast.bird: the generated configuration first, the site's own services.bird.config lines after it")
check("router id 198.51.100.11;" in conf and "ipv4 table hafront_ipv4;" in conf and "ipv6 table hafront_ipv6;" in conf,
      "anycast.bird: router id, BIRD tables of hafront's own (hafront_ipv4, hafront_ipv6)")
for t in (100, 101):
    for fam in ("ipv4", "ipv6"):
        check(("protocol kernel hafront_k%d_%s {\n  kernel table %d;\n  learn;\n"
               "  %s { table hafront_t%d_%s; import where krt_source = 73; export none; };\n}" % (t, fam, t, fam, t, fam)) in conf
              and ("protocol pipe hafront_p%d_%s { table hafront_t%d_%s; peer table hafront_%s; export all; import none; }"
                   % (t, fam, t, fam, fam)) in conf,
              "anycast.bird: kernel table %d (%s) learned, only hafront's routes (proto 73), nothing written to it,"
              " piped into hafront_%s" % (t, fam, fam))
check("protocol bgp r1 {\n  local 198.51.100.11 as 65001;\n  neighbor 198.51.100.1 as 65000;\n  bfd on;\n"
      "  ipv4 { table hafront_ipv4; import none; export all; };\n}" in conf,
      "anycast.bird: BGP to r1 (IPv4) from localAddress, BFD on, exports hafront_ipv4 only, imports nothing")
check("protocol bgp r1v6 {\n  local 2001:db8:100::11 as 65001;\n  neighbor 2001:db8:100::1 as 65000;\n  bfd off;\n"
      "  ipv6 { table hafront_ipv6; import none; export all; };\n}" in conf,
      "anycast.bird: BGP to r1v6 (IPv6) from its own localAddress (not the IPv4 one), BFD off as asked")
check('protocol bfd hafront_bfd {\n  interface "eth1" { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };\n}' in conf,
      "anycast.bird: BFD on eth1 at 100 ms x 5")
open(os.path.join(tmp, "bird-anycast.conf"), "w").write(conf)
au = a["unit"]
check("bird.service" in au["after"] and "bird.service" in au["wants"]
      and au["serviceConfig"].get("SupplementaryGroups") == [a["bird"]["unit"]["Group"]] == ["bird"],
      "anycast: hafront after/wants bird.service, and in BIRD's group (its socket is 0660)")
groups = a["settings"]["anycast"]
check(a["bird"]["unit"]["RuntimeDirectory"] == "bird" and sorted(groups) == ["api", "web"]
      and all(g["bird_socket"] == "/run/bird/bird.ctl" for g in groups.values()),
      "anycast: every group's bird_socket is /run/bird/bird.ctl, in BIRD's RuntimeDirectory")
check(a["firewall"]["allowedTCPPorts"] == [179] and a["firewall"]["allowedUDPPorts"] == [3784],
      "anycast openFirewall: BGP (TCP 179) and BFD (UDP 3784) accepted")
nginx0 = {"name": "nginx", "weight": 0}
check(groups["web"]["track_checks"] == [nginx0] and groups["web"]["track_services"] == [nginx0]
      and groups["api"]["track_checks"] == [nginx0, {"name": "api", "weight": 0}] and groups["api"]["track_services"] == [nginx0],
      "nginx: every anycast group tracks the adopted nginx and its check, weight 0 (withdrawn while nginx fails)")
check(a["settings"]["vrrp"]["instances"] == {}, "anycast: a front end without VRRP instance is accepted")
b2 = load("anycastBird2")
check(b2["failedAssertions"] == [] and b2["bird"]["module"] == "bird2" and b2["bird"]["enable"]
      and b2["bird"]["config"].startswith("# Generated by services.hafront.anycast.bird")
      and "bird2.service" in b2["unit"]["after"] and "bird2.service" in b2["unit"]["wants"]
      and b2["unit"]["serviceConfig"].get("SupplementaryGroups") == [b2["bird"]["unit"]["Group"]] == ["bird2"],
      "anycast on NixOS 24.11 and older: services.bird2, hafront after bird2.service and in group bird2")
# BFD in a BIRD of its own (bfd.separate): the BGP BIRD restarts without a flap.
for case, module in (("anycastSeparate", "bird"), ("anycastSeparateBird2", "bird2")):
    sep = load(case)
    conf, bfd = sep["bird"]["config"], sep.get("bfdBird", {})
    check(sep["failedAssertions"] == [] and bfd != {}, "%s: no failed assertion, a hafront-bird-bfd unit" % case)
    check("protocol bfd" not in conf
          and "  neighbor 198.51.100.1 as 65000;\n  bfd off;\n  graceful restart on;\n  ipv4 {" in conf
          and "  neighbor 2001:db8:100::1 as 65000;\n  bfd off;\n  graceful restart on;\n  ipv6 {" in conf,
          "%s: the BGP BIRD runs no BFD, its sessions have graceful restart" % case)
    check(bfd["config"].endswith('protocol bfd hafront_bfd {\n  interface "eth1" { min rx interval 100 ms;'
                                 ' min tx interval 100 ms; multiplier 5; };\n  neighbor 198.51.100.1;\n}\n')
          and "router id 198.51.100.11;" in bfd["config"],
          "%s: the BFD BIRD: eth1's timers, a session to r1 only (r1v6 has bfd = false)" % case)
    bu, gu = bfd["unit"]["serviceConfig"], sep["bird"]["unit"]
    check(bu["User"] == bu["Group"] == module and bu["RuntimeDirectory"] == "hafront-bird-bfd"
          and " -f -c /etc/hafront/bird-bfd.conf -s /run/hafront-bird-bfd/bird.ctl " in bu["ExecStart"]
          and "CAP_NET_RAW" in bu["AmbientCapabilities"] and bfd["unit"]["before"] == [module + ".service"],
          "%s: hafront-bird-bfd runs BIRD as %s with its own socket, before %s.service" % (case, module, module))
    check(gu["ExecStop"].endswith("/bin/birdc -s /run/bird/bird.ctl graceful restart")
          and " -R -c /etc/bird/%s.conf" % ("bird" if module == "bird" else "bird2") in gu["ExecStart"],
          "%s: %s.service stops with `birdc graceful restart` (no Cease) and starts with -R" % (case, module))
    check("hafront-bird-bfd.service" in sep["unit"]["after"] and "hafront-bird-bfd.service" in sep["unit"]["wants"]
          and all(g["bfd_socket"] == "/run/hafront-bird-bfd/bird.ctl" for g in sep["settings"]["anycast"].values()),
          "%s: hafront after hafront-bird-bfd, every group's bfd_socket is its socket" % case)
    open(os.path.join(tmp, "bird-%s.conf" % case), "w").write(conf)
    open(os.path.join(tmp, "bird-%s-bfd.conf" % case), "w").write(bfd["config"])
check(load("anycast").get("bfdBird", {}) == {}, "anycast without bfd.separate: no second BIRD")
own = load("anycastOwnBird")
check(own["failedAssertions"] == [] and own["bird"]["config"] == "router id 198.51.100.11;\n"
      and "bird.service" in own["unit"]["after"] and own["unit"]["serviceConfig"].get("SupplementaryGroups") == ["bird"]
      and own["firewall"]["allowedTCPPorts"] == [],
      "anycast with the site's own BIRD configuration: nothing generated, hafront still after BIRD and in its group")
check(load("anycastNoBird")["failedAssertions"] == [
      "services.hafront.settings.anycast.web: hafront announces through BIRD, which is not enabled on this node:"
      " set services.hafront.anycast.bird.enable = true (or services.bird.enable with your own configuration"
      " learning kernel table 100)"], "anycast without BIRD: an assertion names the group and the option to set")
check(load("anycastEmpty")["failedAssertions"] == [
      "services.hafront.settings.vrrp.instances must declare at least one instance, or services.hafront.settings.anycast"
      " a group (or set services.hafront.configFile)",
      "services.hafront.anycast.bird.enable: no group in services.hafront.settings.anycast, so BIRD would announce nothing;"
      " declare services.hafront.settings.anycast.<name>.prefixes",
      "services.hafront.anycast.bird.neighbors: no router to announce to; add"
      " services.hafront.anycast.bird.neighbors.<name> = { address = ...; as = ...; }",
      "services.hafront.anycast.bird.routerId must be set (this node's IPv4 address towards the routers): BIRD would"
      " otherwise pick one itself, possibly the anycast address that every node shares",
      "services.hafront.anycast.bird.localAs must be set (this node's AS number)"],
      "anycast.bird.enable without groups or neighbours: assertions name the options")
msgs = load("anycastBad")["failedAssertions"]
want = [
    'services.hafront.settings.anycast.empty.track_services: "nginx" has weight -10; anycast has no priority',
    "services.hafront.settings.anycast.empty.prefixes must not be empty",
    'services.hafront.settings.anycast.web.track_checks: "missing" is not defined in services.hafront.settings.checks',
    "services.hafront.anycast.bird.routerId must be set",
    "services.hafront.anycast.bird.localAs must be set",
    "services.hafront.anycast.bird.neighbors.bgp: the name becomes a BIRD protocol name",
    "services.hafront.settings.anycast.web.prefixes: 2001:db8:10::10/128 is IPv6, but no neighbour in"
    " services.hafront.anycast.bird.neighbors is",
    "services.hafront.settings.anycast.web.bird_socket: nixpkgs' BIRD listens on /run/bird/bird.ctl, not /run/bird2/bird.ctl",
    "services.hafront.settings.anycast.web.bfd_socket: with services.hafront.anycast.bird.bfd.separate the BFD BIRD"
    " listens on /run/hafront-bird-bfd/bird.ctl, not /run/bird/bird.ctl",
    "services.hafront.nginx.anycast: nope not in services.hafront.settings.anycast",
]
for w in want:
    check(any(m.startswith(w) for m in msgs), "anycast assertion names the option: " + w)
check(len(msgs) == len(want), "anycastBad: exactly %d failed assertions" % len(want)
      + ("" if len(msgs) == len(want) else " (got %d: %s)" % (len(msgs), msgs)))
sys.exit(1 if bad else 0)
PY

# A type error names the option path (the module system's message).
if ev badvrid >/dev/null 2>"$tmp/badvrid.err"; then
    fail "vrid = 300 evaluated"
elif grep -q "services.hafront.settings.vrrp.instances.web.vrid" "$tmp/badvrid.err"; then
    ok "type error names services.hafront.settings.vrrp.instances.web.vrid"
else
    fail "vrid = 300: message does not name the option: $(grep -m1 error "$tmp/badvrid.err")"
fi

# ---- 2b. the flake's outputs against a stub nixpkgs -----------------------------------
# (--readonly-mode: the package's filtered source is hashed, not copied to a store.)
if nix-instantiate --readonly-mode --eval --strict --json "$here/flake-eval.nix" --arg lib "import $lib" \
    >"$tmp/flake.json" 2>"$tmp/flake.err"; then
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' daemon/Cargo.toml | head -n 1)
    python3 - "$tmp" "$version" <<'PY' || fails=$((fails + 1))
import json, sys, os
tmp, version = sys.argv[1], sys.argv[2]
f = json.load(open(os.path.join(tmp, "flake.json")))
bad = 0
def check(cond, what):
    global bad
    print(("ok:   " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
o = f["outputs"]
check(o["packages"] == ["default", "hafront", "oci-image"] and o["systems"] == ["aarch64-linux", "x86_64-linux"],
      "flake: packages hafront, oci-image, default for x86_64/aarch64")
check(o["nixosModules"] == ["default", "hafront"] and o["checks"] == ["package", "vm-test", "vm-test-anycast"]
      and o["devShells"] == ["default"],
      "flake: nixosModules, checks (package, vm-test, vm-test-anycast), devShell")
check(o["apps"]["vm-test-anycast"]["type"] == "app"
      and o["apps"]["vm-test-anycast"]["program"].endswith("-nixos-test-driver/bin/nixos-test-driver")
      and o["apps"]["vm-test-anycast"].get("meta", {}).get("description", "") != "",
      "flake: apps.vm-test-anycast runs the anycast VM test's driver, with meta.description")
check(o["apps"]["vm-test"]["type"] == "app" and o["apps"]["vm-test"]["program"].endswith("-nixos-test-driver/bin/nixos-test-driver"),
      "flake: apps.vm-test runs the VM test's driver")
p = f["package"]
check(p["pname"] == "hafront" and p["version"] == version and p["lockFile"].endswith("/Cargo.lock") and p["srcIsStorePath"],
      "package.nix: version %s from daemon/Cargo.toml, Cargo.lock, filtered source" % version)
check(p["srcHasConfigurationMd"] and not p["srcHasOperationsMd"],
      "package.nix: the source holds docs/configuration.md (compiled into hafront.toml(5)), no other docs")
check("install-shell-files" in p["nativeBuildInputs"] and "hafront generate man" in p["postInstall"]
      and "installManPage" in p["postInstall"] and "--fish <($out/bin/hafront generate completions fish)" in p["postInstall"],
      "package.nix: installs the man pages and bash/zsh/fish completions the binary generates")
check(f["modulePackage"] == "hafront-" + version, "nixosModules.hafront defaults to the flake's package")
i = f["image"]
check(i["Entrypoint"][1:] == ["--", i["Entrypoint"][2]] and i["Entrypoint"][0].endswith("/bin/tini")
      and i["Entrypoint"][2].endswith("-hafront-%s/bin/hafront" % version) and i["Cmd"] == ["run", "-c", "/etc/hafront/hafront.toml"],
      "oci-image: tini -- hafront run -c /etc/hafront/hafront.toml")
check({"tini", "iproute2", "nftables", "nginx", "usr-bin-env", "fake-nss"} <= set(i["contents"]),
      "oci-image: tini, iproute2, nftables, nginx (run by hafront), /usr/bin/env, passwd/group (fakeNss)")
check(i["name"] == "hafront" and i["tag"] == "latest",
      "oci-image: tagged hafront:latest, what `docker load < result && docker run ... hafront` runs")
check(i["created"] == "2026-12-04T10:15:30Z", "oci-image: created = the flake's last commit date (%s)" % i["created"])
sed = [l for l in i["extraCommands"].splitlines() if l.startswith("sed ")]
check(len(sed) == 1 and 'binary = "/nix/store/00000000000000000000000000000000-nginx/bin/nginx"' in sed[0],
      "oci-image: its hafront.toml names nixpkgs' nginx binary")
with open(os.path.join(tmp, "image-sed"), "w") as out:
    out.write(sed[0] if sed else "")
check(f["formatter"] == "nixfmt", "flake: formatter pkgs.nixfmt (nixfmt-rfc-style is deprecated)")
check(o["apps"]["vm-test"].get("meta", {}).get("description", "") != "", "flake: apps.vm-test has meta.description")
v = f["vmTest"]
check(v["nodes"] == ["app", "backup", "client", "master"] and len(v["subtests"]) == 7,
      "vm-test: master, backup, real server app, client; %d subtests" % len(v["subtests"]))
try:
    compile(v["testScript"], "testScript", "exec")
    check(True, "vm-test: the testScript is valid Python")
except SyntaxError as e:
    check(False, "vm-test: the testScript does not compile: %s" % e)
ts = v["testScript"]
check("master.wait_until_fails(has_vip" in ts and "master.wait_until_fails(ipvs_service" in ts,
      "vm-test: the cut master is asserted to drop the VIP and its IPVS service")
check(ts.count("client.wait_until_succeeds(through_ipvs") == 2 and ts.count("assert conns(") == 2,
      "vm-test: traffic through IPVS (client -> VIP:8080 -> app) asserted on the master, then on the backup, by the director's connection counter")
n = f["vmNodes"]
for k in ("master", "backup", "master-reweighted"):
    check(n[k]["failedAssertions"] == [] and n[k]["kernelModules"] == ["ip_vs", "ip_vs_rr"] and "-p 112" in n[k]["firewall"],
          "vm-test node %s: evaluates through the module, no failed assertion, IPVS modules, VRRP allowed" % k)
    json.dump({"settings": n[k]["settings"]}, open(os.path.join(tmp, "vm-%s.json" % k), "w"))
w = lambda k: n[k]["settings"]["ipvs"]["services"]["app"]["real_servers"][0]["weight"]
svc = n["master"]["settings"]["ipvs"]["services"]["app"]
check(svc["forwarding"] == "dr" and svc["real_servers"][0]["address"] == "192.0.2.20:8080",
      "vm-test: IPVS direct routing to the real server app (192.0.2.20:8080)")
check(n["master"]["settings"]["vrrp"]["instances"]["web"]["priority"] == 150 and
      n["backup"]["settings"]["vrrp"]["instances"]["web"]["priority"] == 100 and (w("master"), w("master-reweighted")) == (1, 5),
      "vm-test: priorities 150/100; the specialisation changes only a weight (1 -> 5)")

# ---- the anycast VM test (issue 17) ----
at = f["anycastTest"]
check(at["nodes"] == ["client", "fe1", "fe2", "fe3", "router"] and len(at["subtests"]) == 8,
      "vm-test-anycast: router, three front ends, client; %d subtests" % len(at["subtests"]))
try:
    compile(at["testScript"], "testScript", "exec")
    check(True, "vm-test-anycast: the testScript is valid Python")
except SyntaxError as e:
    check(False, "vm-test-anycast: the testScript does not compile: %s" % e)
ts = at["testScript"]
check("wait_hops(ALL, timeout=120)" in ts and "birdc show bfd sessions" in ts and "assert name in got" in ts,
      "vm-test-anycast: three next hops on the router (ECMP), three BFD sessions up, every front end answers the client")
check('fe1.succeed("systemctl stop nginx.service")' in ts and "wait_hops([FE2, FE3]" in ts,
      "vm-test-anycast: nginx stopped on fe1 withdraws its next hop")
check("fe3.crash()" in ts and "wait_hops([FE1, FE2]" in ts and "assert took < 10" in ts,
      "vm-test-anycast: a crashed node leaves by BFD (seconds, not the 240 s hold time)")
check("anycast-maintenance web on" in ts and 'router.fail(f"grep -q {VIP} /tmp/monitor.txt")' in ts
      and "assert took >= 2" in ts,
      "vm-test-anycast: maintenance drains, hafront's restart leaves the route alone, stop waits for the drain")
r = at["results"]
check(all(r[n]["failedAssertions"] == [] for n in r), "vm-test-anycast: every node evaluates without a failed assertion")
rb = r["router"]["bird"]
check("merge paths on;" in rb and "bfd on;" in rb and "graceful restart on;" in rb
      and rb.count("from frontend { neighbor 198.51.100.1") == 3,
      "vm-test-anycast router: BGP from the three front ends with BFD and graceful restart, ECMP into the kernel (merge paths)")
check('fe2.succeed("systemctl restart bird.service' in ts and 'router.fail(f"grep -q {VIP} /tmp/monitor-gr.txt")' in ts,
      "vm-test-anycast: fe2's BGP BIRD restarts (bfd.separate) without a change of the router's route")
for n, addr in (("fe1", "198.51.100.11"), ("fe2", "198.51.100.12"), ("fe3", "198.51.100.13")):
    x = r[n]
    # fe2 runs BFD in a BIRD of its own (anycast.bird.bfd.separate).
    sep = n == "fe2"
    session = "bfd off;\n  graceful restart on;\n" if sep else "bfd on;\n"
    check((x["bfdBird"] is not None) == sep
          and (not sep or ("neighbor 198.51.100.1;" in x["bfdBird"]
                           and x["settings"]["anycast"]["web"]["bfd_socket"] == "/run/hafront-bird-bfd/bird.ctl")),
          "vm-test-anycast %s: %s" % (n, "BFD in hafront-bird-bfd, read there by hafront" if sep else "no second BIRD"))
    if sep:
        open(os.path.join(tmp, "bird-vm-%s-bfd.conf" % n), "w").write(x["bfdBird"])
    check(("router id %s;" % addr) in x["bird"]
          and ("protocol bgp uplink {\n  local %s as 65001;\n  neighbor 198.51.100.1 as 65000;\n  %s" % (addr, session)) in x["bird"]
          and ("from frontend { neighbor %s as 65001; }" % addr) in rb
          and "bird.service" in x["hafrontUnit"]["after"] and x["hafrontUnit"]["SupplementaryGroups"] == ["bird"]
          and x["settings"]["anycast"]["web"]["bird_socket"] == "/run/bird/bird.ctl"
          and {179, 80} <= set(x["allowedTCPPorts"]) and x["allowedUDPPorts"] == [3784],
          "vm-test-anycast %s: generated BIRD (router id, BGP to the router, BFD) matches the router's neighbour;"
          " hafront after BIRD, in its group, BGP/BFD open" % n)
    json.dump({"settings": x["settings"]}, open(os.path.join(tmp, "vm-anycast-%s.json" % n), "w"))
    open(os.path.join(tmp, "bird-vm-%s.conf" % n), "w").write(x["bird"])
open(os.path.join(tmp, "bird-vm-router.conf"), "w").write(rb)
sys.exit(1 if bad else 0)
PY
else
    fail "evaluating flake.nix against the stub nixpkgs: $(tail -n 5 "$tmp/flake.err")"
fi

# ---- 2c. BIRD accepts the BIRD configurations generated -------------------------------
# nixpkgs' services.bird runs `bird -p` on its configuration at build time; Debian's
# bird2 does it here: the module's (two kernel tables, a site's line appended), and
# a front end's and the router's of the anycast VM test.
if command -v bird >/dev/null 2>&1; then
    for c in anycast anycastSeparate anycastSeparate-bfd vm-fe1 vm-fe2 vm-fe2-bfd vm-fe3 vm-router; do
        f=$tmp/bird-$c.conf
        [ -s "$f" ] || { fail "no generated BIRD configuration for $c"; continue; }
        if bird -p -c "$f" >"$tmp/bird-$c.check" 2>&1; then
            ok "bird -p ($(bird --version 2>&1)) accepts the generated BIRD configuration ($c)"
        else
            fail "bird -p rejects the generated BIRD configuration ($c): $(cat "$tmp/bird-$c.check")"
        fi
    done
else
    echo "SKIP: bird -p of the generated BIRD configurations: bird is not installed (apt-get install bird2)"
fi

# ---- 3. the daemon accepts what the module generates ---------------------------------
if [ -n "${HF_BIN:-}" ] && [ -x "$HF_BIN" ]; then
    for c in full nftables vm-master vm-backup vm-master-reweighted anycast vm-anycast-fe1 vm-anycast-fe2 vm-anycast-fe3; do
        [ -f "$tmp/$c.json" ] || { fail "no generated config for $c"; continue; }
        # The TOML generator's input as TOML (inline tables; json2toml does this in Nix).
        python3 -c '
import json, sys
def v(x):
    if isinstance(x, bool): return "true" if x else "false"
    if isinstance(x, (int, float)): return json.dumps(x)
    if isinstance(x, str): return json.dumps(x)
    if isinstance(x, list): return "[" + ", ".join(v(e) for e in x) + "]"
    return "{ " + ", ".join(json.dumps(k) + " = " + v(e) for k, e in x.items()) + " }"
for k, e in json.load(open(sys.argv[1]))["settings"].items():
    print(json.dumps(k) + " = " + v(e))
' "$tmp/$c.json" >"$tmp/$c.toml"
        # As the build does: --offline (the credential api.token_file names exists on
        # the target only), --no-env.
        if env -i PATH="$PATH" "$HF_BIN" check-config --offline --no-env -c "$tmp/$c.toml" >"$tmp/$c.check" 2>&1; then
            ok "hafront check-config --offline accepts the module's generated config ($c)"
        else
            fail "hafront check-config --offline rejects the module's config ($c): $(cat "$tmp/$c.check")"
        fi
    done
    if env -i PATH="$PATH" "$HF_BIN" check-config --offline --no-env -c nixos/tests/configfile.toml >"$tmp/cf.check" 2>&1; then
        ok "hafront check-config --offline accepts nixos/tests/configfile.toml (the configFile case)"
    else
        fail "nixos/tests/configfile.toml: $(cat "$tmp/cf.check")"
    fi
    # The Nix image's copy of containers/hafront.toml (its sed, a stand-in for
    # nixpkgs' nginx path): the daemon accepts it, and the binary key landed in
    # [services.nginx].
    if [ -s "$tmp/image-sed" ]; then
        mkdir -p "$tmp/img/etc/hafront"
        (cd "$tmp/img" && sed "s|/nix/store/[0-9a-z]*-hafront.toml|$root/containers/hafront.toml|" "$tmp/image-sed" | sh)
        if env -i PATH="$PATH" "$HF_BIN" check-config --offline --no-env -c "$tmp/img/etc/hafront/hafront.toml" >"$tmp/img.check" 2>&1 &&
            awk '/^\[services.nginx\]/ { t = 1; next } /^\[/ { t = 0 } t && /^binary = "\/nix\/store\/.*-nginx\/bin\/nginx"$/ { f = 1 } END { exit !f }' "$tmp/img.check"; then
            ok "the Nix image's hafront.toml (sed in extraCommands) passes check-config, services.nginx.binary is nixpkgs' nginx"
        else
            fail "the Nix image's hafront.toml: $(cat "$tmp/img.check")"
        fi
    fi
    # Why the build uses --offline: the full check reads the token file, which is
    # not in a build sandbox (nor here).
    if env -i PATH="$PATH" "$HF_BIN" check-config --no-env -c "$tmp/full.toml" >"$tmp/full.host" 2>&1; then
        fail "check-config without --offline accepted an api.token_file that does not exist here"
    elif grep -q 'api.token_file.*/run/credentials/hafront.service/api-token' "$tmp/full.host"; then
        ok "without --offline, check-config reads api.token_file (absent in a build sandbox): the build needs --offline"
    else
        fail "check-config without --offline: $(cat "$tmp/full.host")"
    fi
    # The unit the module generates, rendered as NixOS does (a list = the key
    # repeated, bools as true/false), store paths replaced by real programs: systemd
    # must accept every directive without a warning.
    if command -v systemd-analyze >/dev/null 2>&1; then
        mkdir -p "$tmp/unit"
        # render JSON-FILE KEY.PATH: the unit at that key of the case's JSON.
        render() {
            python3 - "$1" "$2" "$HF_BIN" "$(dirname "$(command -v bird || echo /usr/sbin/bird)")" <<'PY'
import json, sys, re
u = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    u = u[k]
def fix(v):
    v = re.sub(r"/nix/store/[0-9a-z]{32}-hafront-[^/]*/bin/hafront", sys.argv[3], v)
    v = re.sub(r"/nix/store/[0-9a-z]{32}-bird-[^/]*/bin", sys.argv[4], v)
    return re.sub(r"/nix/store/[0-9a-z]{32}-coreutils/bin/kill", "/bin/kill", v)
def val(v):
    return ("true" if v else "false") if isinstance(v, bool) else fix(str(v))
print("[Unit]")
for k in ("wants", "after", "before"):
    if u.get(k):
        print("%s=%s" % (k.capitalize(), " ".join(u[k])))
print("[Service]")
for k, v in sorted(u["serviceConfig"].items()):
    for x in (v if isinstance(v, list) else [v]):
        print("%s=%s" % (k, val(x)))
print("[Install]")
print("WantedBy=%s" % " ".join(u["wantedBy"]))
PY
        }
        render "$tmp/full.json" unit >"$tmp/unit/hafront.service"
        render "$tmp/anycastSeparate.json" bfdBird.unit >"$tmp/unit/hafront-bird-bfd.service"
        for u in hafront hafront-bird-bfd; do
            if systemd-analyze verify "$tmp/unit/$u.service" >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
                ok "systemd-analyze verify: the module's $u unit (rendered) has no warning"
            else
                fail "systemd-analyze verify of the module's $u unit: $(cat "$tmp/verify")"
            fi
        done
    else
        echo "SKIP: systemd-analyze verify of the module's unit: systemd is not installed"
    fi
else
    echo "SKIP: check-config of the generated config: no hafront binary (set HF_BIN)"
fi

# The anycast VM test's generated configurations (BIRD: router, fe1..fe3; hafront:
# fe1..fe3 as JSON, and as TOML with HF_BIN) for scripts/lab/test_nixos_anycast.sh,
# which runs them in namespaces.
if [ -n "${HAFRONT_NIX_EVAL_OUT:-}" ]; then
    mkdir -p "$HAFRONT_NIX_EVAL_OUT"
    for f in bird-vm-router.conf bird-vm-fe1.conf bird-vm-fe2.conf bird-vm-fe2-bfd.conf bird-vm-fe3.conf vm-anycast-fe1.json vm-anycast-fe2.json vm-anycast-fe3.json \
        ${HF_BIN:+vm-anycast-fe1.toml vm-anycast-fe2.toml vm-anycast-fe3.toml}; do
        cp "$tmp/$f" "$HAFRONT_NIX_EVAL_OUT/" 2>/dev/null || fail "no $f to copy to HAFRONT_NIX_EVAL_OUT"
    done
fi

echo "eval: ${#files[@]} files parsed, module and flake evaluated, ${fails} failures"
[ "$fails" -eq 0 ]
