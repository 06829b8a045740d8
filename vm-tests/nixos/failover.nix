# NixOS VM test (pkgs.testers.runNixOSTest): a master, a backup, a real server `app`
# and a client on one VLAN (documentation addresses 192.0.2.0/24), services.hafront
# with nginx (adopted, tracked) and an IPVS direct-routing service on the VIP whose
# real server is `app`.
#   nix build .#checks.x86_64-linux.vm-test     # run it (needs KVM)
#   nix run .#vm-test -- --interactive          # the driver, by hand
# On the machines of this project it is only evaluated (nixos/tests/eval.sh: no Nix
# store, no binary cache); the qemu harness vm-tests/two-node is what runs here.
{ self }:
let
  vip = "192.0.2.100";
  appAddr = "192.0.2.20";

  node =
    {
      id,
      name,
      priority,
    }:
    { lib, pkgs, ... }:
    {
      imports = [ self.nixosModules.hafront ];

      virtualisation.vlans = [ 1 ];
      networking.useDHCP = false;
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
        {
          address = "192.0.2.${toString id}";
          prefixLength = 24;
        }
      ];
      networking.firewall.allowedTCPPorts = [
        80
        8080
      ];
      environment.systemPackages = [
        pkgs.ipvsadm
        pkgs.curl
      ];

      # Each node's nginx says who answered.
      services.nginx.virtualHosts.front = {
        default = true;
        locations."/".return = "200 '${name}\\n'";
      };

      services.hafront = {
        enable = true;
        openFirewall = true;
        # nginx on this node, a loopback health endpoint, an http check every 500 ms;
        # weight 0: the instance faults while nginx fails (priority 0, the peer takes over).
        nginx.enable = true;
        settings = {
          node.name = name;
          vrrp.instances.web = {
            interface = "eth1";
            vrid = 51;
            inherit priority;
            advert_interval = "200ms";
            virtual_ips = [ "${vip}/24" ];
          };
          # Installed only while this node is master of `web`. Direct routing: the
          # real server answers the client itself, from the VIP.
          ipvs.services.app = {
            address = "${vip}:8080";
            scheduler = "rr";
            forwarding = "dr";
            master_of = "web";
            real_servers = [
              {
                address = "${appAddr}:8080";
                weight = 1;
              }
            ];
          };
        };
      };

      # The same system with one real-server weight changed: switching to it is a
      # configuration change (reload), not a restart.
      specialisation.reweighted.configuration = {
        services.hafront.settings.ipvs.services.app.real_servers = lib.mkForce [
          {
            address = "${appAddr}:8080";
            weight = 5;
          }
        ];
      };
    };
in
{
  name = "hafront-failover";

  nodes = {
    master = node {
      id = 1;
      name = "master";
      priority = 150;
    };
    backup = node {
      id = 2;
      name = "backup";
      priority = 100;
    };
    # The IPVS real server (LVS direct routing): the VIP on lo, never answered for in
    # ARP, so that only the director holding the VIP draws the client's packets.
    app =
      { lib, ... }:
      {
        virtualisation.vlans = [ 1 ];
        networking.useDHCP = false;
        networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
          {
            address = appAddr;
            prefixLength = 24;
          }
        ];
        networking.interfaces.lo.ipv4.addresses = [
          {
            address = vip;
            prefixLength = 32;
          }
        ];
        boot.kernel.sysctl = {
          "net.ipv4.conf.all.arp_ignore" = 1;
          "net.ipv4.conf.all.arp_announce" = 2;
        };
        networking.firewall.allowedTCPPorts = [ 8080 ];
        services.nginx = {
          enable = true;
          virtualHosts.app = {
            listen = [
              {
                addr = "0.0.0.0";
                port = 8080;
              }
            ];
            locations."/".return = "200 'app\\n'";
          };
        };
      };
    client =
      { lib, pkgs, ... }:
      {
        virtualisation.vlans = [ 1 ];
        networking.useDHCP = false;
        networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
          {
            address = "192.0.2.10";
            prefixLength = 24;
          }
        ];
        environment.systemPackages = [ pkgs.curl ];
      };
  };

  testScript = ''
    VIP = "${vip}"
    has_vip = f"ip -4 -o addr show dev eth1 | grep -q ' {VIP}/24'"
    served_by = lambda who: f"curl -sf --max-time 2 http://{VIP}/ | grep -qx {who}"
    transitions = "journalctl -u hafront -o cat | grep -c 'state changed' || true"
    through_ipvs = f"curl -sf --max-time 2 http://{VIP}:8080/ | grep -qx app"
    ipvs_service = f"ipvsadm -Ln | grep -q 'TCP  {VIP}:8080 rr'"
    # Connections the director sent to the real server (ipvsadm --stats: Conns).
    conns = lambda m: int(m.succeed(
        "ipvsadm -Ln --stats | awk '$2 == \"${appAddr}:8080\" { print $3 }'").strip() or 0)

    start_all()
    for m in (master, backup):
        m.wait_for_unit("nginx.service")
        m.wait_for_unit("hafront.service")  # Type=notify: READY=1 once settled
    app.wait_for_unit("nginx.service")
    app.wait_for_open_port(8080)
    client.wait_for_unit("multi-user.target")

    with subtest("the master holds the VIP and the client reaches its nginx"):
        master.wait_until_succeeds(has_vip, timeout=30)
        backup.fail(has_vip)
        client.wait_until_succeeds(served_by("master"), timeout=30)

    with subtest("the IPVS service is on the master only, and carries the client's traffic"):
        master.wait_until_succeeds(ipvs_service, timeout=30)
        master.succeed("ipvsadm -Ln | grep -q -- '-> ${appAddr}:8080 *Route *1 '")
        backup.fail(f"ipvsadm -Ln | grep -q '{VIP}:8080'")
        before = conns(master)
        client.wait_until_succeeds(through_ipvs, timeout=30)
        assert conns(master) > before, "the client's request did not go through the master's IPVS service"

    with subtest("a configuration change reloads hafront without moving the VIP"):
        pid = master.succeed("systemctl show -P MainPID hafront").strip()
        before = (master.succeed(transitions).strip(), backup.succeed(transitions).strip())
        master.succeed("/run/current-system/specialisation/reweighted/bin/switch-to-configuration test")
        master.wait_until_succeeds("ipvsadm -Ln | grep -q -- '-> ${appAddr}:8080 *Route *5 '", timeout=30)
        master.succeed("journalctl -u hafront -o cat | grep -q 'configuration reloaded'")
        assert master.succeed("systemctl show -P MainPID hafront").strip() == pid, "hafront was restarted"
        master.succeed(has_vip)
        backup.fail(has_vip)
        after = (master.succeed(transitions).strip(), backup.succeed(transitions).strip())
        assert before == after, f"state changes during the reload: {before} -> {after}"

    with subtest("master cut off: it drops the VIP, the backup takes it and carries nginx and IPVS traffic"):
        master.block()
        backup.wait_until_succeeds(has_vip, timeout=30)
        # The cut master sees its link down (FAULT): VIP and IPVS service removed,
        # so it does not answer for the VIP when the link comes back.
        master.wait_until_fails(has_vip, timeout=10)
        master.wait_until_fails(ipvs_service, timeout=10)
        client.wait_until_succeeds(served_by("backup"), timeout=30)
        backup.wait_until_succeeds(ipvs_service, timeout=30)
        before = conns(backup)
        client.wait_until_succeeds(through_ipvs, timeout=30)
        assert conns(backup) > before, "the client's request did not go through the backup's IPVS service"
        master.unblock()
        # preempt: the higher priority takes the VIP back
        backup.wait_until_fails(has_vip, timeout=30)
        master.wait_until_succeeds(has_vip, timeout=30)
        client.wait_until_succeeds(served_by("master"), timeout=30)

    with subtest("nginx killed on the master: the VIP moves, and returns when nginx is back"):
        master.succeed("systemctl kill --signal=KILL nginx.service")
        backup.wait_until_succeeds(has_vip, timeout=30)
        client.wait_until_succeeds(served_by("backup"), timeout=30)
        # systemd restarts nginx (RestartSec=10s); the check rises, the master preempts.
        master.wait_until_succeeds(has_vip, timeout=60)
        backup.wait_until_fails(has_vip, timeout=30)

    with subtest("/metrics answers with the keepalived exporter's series"):
        master.succeed("curl -sf --unix-socket /run/hafront/api.sock http://hafront/metrics | grep -q 'keepalived_vrrp_state{iname=\"web\"'")
        master.succeed("hafront status --json | grep -q '\"state\": \"master\"'")

    with subtest("SIGTERM hands over at once: VIP released, the backup takes over"):
        master.succeed("systemctl stop hafront")
        master.fail(has_vip)
        backup.wait_until_succeeds(has_vip, timeout=10)
        client.wait_until_succeeds(served_by("backup"), timeout=30)
  '';
}
