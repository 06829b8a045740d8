# NixOS VM test (pkgs.testers.runNixOSTest) of the anycast mode (issue 17): a router
# running BIRD (BGP from every front end, BFD, ECMP into its kernel), three front
# ends with nginx, hafront (`[anycast.web]`, nginx tracked) and the BIRD that
# services.hafront.anycast.bird generates, and a client behind the router.
# Documentation addresses only:
#
#   client 192.0.2.10 --(vlan 1)-- 192.0.2.1 router 198.51.100.1 --(vlan 2)-- fe1 .11
#                                  (AS 65000)                                 fe2 .12
#                                                                             fe3 .13 (AS 65001)
#   anycast VIP 203.0.113.10/32 on every front end (hafront's dummy interface)
#
#   nix build .#checks.x86_64-linux.vm-test-anycast     # run it (needs KVM)
#   nix run .#vm-test-anycast -- --interactive          # the driver, by hand
# On the machines of this project it is only evaluated (nixos/tests/eval.sh):
# the nodes through the module, the generated BIRD and hafront configurations
# through Debian's `bird -p` and `hafront check-config`, the script as Python.
# scripts/lab/test_anycast.sh runs the same scenario in namespaces with Debian's
# BIRD.
{ self }:
let
  vip = "203.0.113.10";
  routerAddr = "198.51.100.1";
  frontEnds = {
    fe1 = "198.51.100.11";
    fe2 = "198.51.100.12";
    fe3 = "198.51.100.13";
  };

  # nixpkgs' BIRD module: services.bird today, services.bird2 on NixOS 24.11 and
  # older (the other name is a removed option there).
  birdService =
    lib: options: cfg:
    if options.services ? bird && !(lib.isOption options.services.bird) then
      { bird = cfg; }
    else
      { bird2 = cfg; };

  # BGP from every front end with BFD; `merge paths` gives the kernel one route
  # with a next hop per announcing front end (ECMP). Graceful restart: a front end
  # whose BGP BIRD restarts (fe2, bfd.separate) keeps its routes here meanwhile.
  routerBird = ''
    log syslog all;
    router id ${routerAddr};
    protocol device { }
    protocol kernel {
      merge paths on;
      ipv4 { import none; export all; };
    }
    protocol bfd {
      interface "eth2" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
    }
    template bgp frontend {
      local ${routerAddr} as 65000;
      bfd on;
      graceful restart on;
      ipv4 { import all; export none; };
    }
  ''
  + builtins.concatStringsSep "" (
    builtins.attrValues (
      builtins.mapAttrs (name: addr: ''
        protocol bgp ${name} from frontend { neighbor ${addr} as 65001; }
      '') frontEnds
    )
  );

  frontEnd =
    name: addr:
    { lib, pkgs, ... }:
    {
      imports = [ self.nixosModules.hafront ];

      virtualisation.vlans = [ 2 ];
      networking.useDHCP = false;
      networking.interfaces.eth1 = {
        ipv4.addresses = lib.mkForce [
          {
            address = addr;
            prefixLength = 24;
          }
        ];
        # The client's network is behind the router (no default route).
        ipv4.routes = [
          {
            address = "192.0.2.0";
            prefixLength = 24;
            via = routerAddr;
          }
        ];
      };
      networking.firewall.allowedTCPPorts = [ 80 ];
      environment.systemPackages = [ pkgs.jq ];

      # Each front end's nginx says who answered (on every address, the VIP too).
      services.nginx.virtualHosts.front = {
        default = true;
        locations."/".return = "200 '${name}\\n'";
      };

      services.hafront = {
        enable = true;
        # VRRP is not used here; this opens BGP (TCP 179) and BFD (UDP 3784).
        openFirewall = true;
        # nginx adopted (its death is seen at once) plus an http check every
        # 500 ms; the anycast group tracks both with weight 0: withdrawn while
        # nginx fails.
        nginx.enable = true;
        settings = {
          node.name = name;
          anycast.web = {
            prefixes = [ "${vip}/32" ];
            drain = "2s";
          };
        };
        anycast.bird = {
          enable = true;
          routerId = addr;
          localAs = 65001;
          localAddress = addr;
          neighbors.uplink = {
            address = routerAddr;
            as = 65000;
          };
          bfd.interfaces = [ "eth1" ];
          # fe2 runs BFD in a BIRD of its own: its BGP BIRD restarts without a flap.
          bfd.separate = name == "fe2";
        };
      };
    };
in
{
  name = "hafront-anycast";

  nodes = {
    router =
      { lib, options, ... }:
      {
        virtualisation.vlans = [
          1
          2
        ];
        networking.useDHCP = false;
        # It forwards, speaks BGP and BFD: no host firewall on the router.
        networking.firewall.enable = false;
        networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
          {
            address = "192.0.2.1";
            prefixLength = 24;
          }
        ];
        networking.interfaces.eth2.ipv4.addresses = lib.mkForce [
          {
            address = routerAddr;
            prefixLength = 24;
          }
        ];
        boot.kernel.sysctl = {
          "net.ipv4.ip_forward" = 1;
          # ECMP by ports too: one client address, many flows.
          "net.ipv4.fib_multipath_hash_policy" = 1;
        };
        services = birdService lib options {
          enable = true;
          config = routerBird;
        };
      };
    client =
      { lib, pkgs, ... }:
      {
        virtualisation.vlans = [ 1 ];
        networking.useDHCP = false;
        networking.interfaces.eth1 = {
          ipv4.addresses = lib.mkForce [
            {
              address = "192.0.2.10";
              prefixLength = 24;
            }
          ];
          ipv4.routes = [
            {
              address = "203.0.113.0";
              prefixLength = 24;
              via = "192.0.2.1";
            }
          ];
        };
        environment.systemPackages = [ pkgs.curl ];
      };
  }
  // builtins.mapAttrs frontEnd frontEnds;

  testScript = ''
    import time

    VIP = "${vip}"
    FE1, FE2, FE3 = "${frontEnds.fe1}", "${frontEnds.fe2}", "${frontEnds.fe3}"
    ALL = [FE1, FE2, FE3]
    FRONT_ENDS = [fe1, fe2, fe3]
    # The router's next hops for the VIP, sorted, comma-separated ("" when none).
    HOPS = f"ip -4 route show {VIP}/32 | grep -o 'via 198[.]51[.]100[.][0-9]*' | cut -d' ' -f2 | sort | paste -sd, -"

    def bird_unit(m):
        return "bird.service" if m.execute("systemctl cat bird.service")[0] == 0 else "bird2.service"

    def wait_hops(want, timeout):
        router.wait_until_succeeds(f'test "$({HOPS})" = "{",".join(sorted(want))}"', timeout=timeout)

    def requests(n):
        """n requests from the client, each a new connection (its own source port)."""
        return client.succeed(
            f"for i in $(seq {n}); do curl -s --max-time 2 http://{VIP}/ || echo FAIL; done"
        ).split()

    # hafront's view: announced, and BIRD's session to the router (read on its
    # control socket) established with BFD up.
    ANNOUNCED = (
        "hafront status --json | jq -e '.anycast.web.announced"
        + " and (.anycast.web.bird.bgp.uplink.info | startswith(\"Established\"))"
        + " and .anycast.web.bird.bfd[\"${routerAddr}\"] == \"Up\"'"
    )

    start_all()
    router.wait_for_unit(bird_unit(router))
    for m in FRONT_ENDS:
        m.wait_for_unit("nginx.service")
        m.wait_for_unit(bird_unit(m))
        m.wait_for_unit("hafront.service")  # Type=notify, after BIRD
    client.wait_for_unit("multi-user.target")

    with subtest("every front end announces the VIP: three next hops on the router, BFD up"):
        wait_hops(ALL, timeout=120)
        router.wait_until_succeeds("test $(birdc show bfd sessions | grep -c ' Up ') -eq 3", timeout=60)
        got = requests(60)
        assert "FAIL" not in got, f"requests failed with three front ends: {got}"
        for name in ("fe1", "fe2", "fe3"):
            assert name in got, f"{name} got no request (ECMP): {got}"

    with subtest("hafront reads BIRD's socket: status and metrics show the BGP and BFD sessions"):
        for m in FRONT_ENDS:
            m.wait_until_succeeds(ANNOUNCED, timeout=30)
        fe1.succeed(
            "curl -sf --unix-socket /run/hafront/api.sock http://hafront/metrics"
            " | grep -q '^hafront_anycast_bgp_session_up{anycast=\"web\",protocol=\"uplink\"} 1$'"
        )

    with subtest("nginx stopped on fe1: its next hop leaves the router, requests keep succeeding"):
        t0 = time.time()
        fe1.succeed("systemctl stop nginx.service")
        wait_hops([FE2, FE3], timeout=30)
        print(f"fe1 withdrawn {time.time() - t0:.2f} s after nginx stopped")
        got = requests(30)
        assert "FAIL" not in got and "fe1" not in got, f"after fe1's withdrawal: {got}"
        fe1.succeed("journalctl -u hafront -o cat | grep -q 'anycast withdrawn'")
        fe1.succeed("systemctl start nginx.service")
        wait_hops(ALL, timeout=60)

    with subtest("fe2's BGP BIRD restarted (bfd.separate): its next hop never leaves the router"):
        router.succeed(f"(ip -4 monitor route > /tmp/monitor-gr.txt 2>&1 & echo $! > /tmp/monitor-gr.pid)")
        fe2.succeed("systemctl restart bird.service || systemctl restart bird2.service")
        fe2.wait_until_succeeds(ANNOUNCED, timeout=60)
        time.sleep(2)
        router.succeed("kill $(cat /tmp/monitor-gr.pid)")
        # Graceful restart and BFD up throughout: the route is not even rewritten.
        router.fail(f"grep -q {VIP} /tmp/monitor-gr.txt")
        router.wait_until_succeeds("birdc show protocols fe2 | grep -q Established", timeout=30)
        wait_hops(ALL, timeout=1)
        router.succeed("birdc show bfd sessions | grep -q '${frontEnds.fe2}.* Up '")

    with subtest("maintenance on fe2 withdraws it; it still serves what reaches it; off announces again"):
        fe2.succeed("hafront ctl anycast-maintenance web on")
        wait_hops([FE1, FE3], timeout=30)
        got = requests(30)
        assert "FAIL" not in got and "fe2" not in got, f"fe2 in maintenance still gets new flows: {got}"
        fe2.succeed(f"curl -sf --max-time 2 http://{VIP}/ | grep -qx fe2")
        fe2.succeed("hafront status --json | jq -e '.anycast.web.why == \"maintenance\"'")
        fe2.succeed("hafront ctl anycast-maintenance web off")
        wait_hops(ALL, timeout=60)

    with subtest("hafront killed on fe3 and restarted by systemd: the router's route does not change"):
        router.succeed(f"(ip -4 monitor route > /tmp/monitor.txt 2>&1 & echo $! > /tmp/monitor.pid)")
        pid = fe3.succeed("systemctl show -P MainPID hafront").strip()
        fe3.succeed("systemctl kill --signal=KILL hafront.service")
        fe3.wait_until_succeeds(f"test \"$(systemctl show -P MainPID hafront)\" != {pid} && systemctl is-active hafront", timeout=30)
        time.sleep(5)  # its first checks and two table resyncs
        router.succeed("kill $(cat /tmp/monitor.pid)")
        router.fail(f"grep -q {VIP} /tmp/monitor.txt")
        wait_hops(ALL, timeout=1)

    with subtest("fe3 crashes (BIRD with it, no FIN): BFD removes its next hop, not the BGP hold time"):
        t0 = time.time()
        fe3.crash()
        wait_hops([FE1, FE2], timeout=30)
        took = time.time() - t0
        print(f"fe3 crashed: next hop gone after {took:.2f} s (BFD 100 ms x 3)")
        # The BGP hold time is 240 s (BIRD's default); only BFD is this fast.
        assert took < 10, f"fe3's next hop left after {took:.1f} s: not BFD"
        got = requests(30)
        assert "FAIL" not in got, f"after fe3 crashed: {got}"

    with subtest("systemctl stop hafront on fe1: withdrawn first, then the drain (2 s), then the exit"):
        t0 = time.time()
        fe1.succeed("systemctl stop --no-block hafront.service")
        wait_hops([FE2], timeout=10)
        fe1.wait_until_fails("systemctl is-active hafront.service", timeout=30)
        took = time.time() - t0
        assert took >= 2, f"hafront stopped {took:.2f} s after the stop began, before its 2 s drain"
        got = requests(20)
        assert got == ["fe2"] * 20, f"after fe1 stopped: {got}"
  '';
}
