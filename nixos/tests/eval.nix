# Evaluates nixos/module.nix through nixpkgs' module system (lib.evalModules) without
# nixpkgs' NixOS modules or packages: the few NixOS options the module sets are
# declared here with the same types, and pkgs is a stub whose derivations are plain
# records (nothing is built). nixos/tests/eval.sh runs it; see there.
#
#   nix-instantiate --eval --strict --json nixos/tests/eval.nix \
#     --arg lib 'import /path/to/nixpkgs/lib' --argstr case full
{
  lib,
  case ? "full",
}:

let
  # nixpkgs' BIRD module of the NixOS under test (stubs.nix): services.bird now,
  # services.bird2 on NixOS 24.11 and older.
  birdModule = if case == "anycastBird2" || case == "anycastSeparateBird2" then "bird2" else "bird";
  inherit
    (import ./stubs.nix {
      inherit lib;
      cross = case == "cross";
      legacyFirewall = lib.hasPrefix "legacy" case;
      inherit birdModule;
    })
    pkgs
    nixosStubs
    ;

  # The configurations under test.
  cases = {
    # Everything on: two instances, IPVS, nginx, firewall, secrets file.
    full = {
      services.hafront = {
        enable = true;
        openFirewall = true;
        environmentFile = "/run/secrets/hafront.env";
        apiTokenFile = "/run/secrets/hafront-api-token";
        credentials.ca = "/run/secrets/backend-ca.pem";
        nginx = {
          enable = true;
          weight = -50;
          instances = [ "web" ];
        };
        settings = {
          node.name = "node-a";
          log.level = "debug";
          api.listen = "127.0.0.1:9165";
          scripts.maintenance_off = {
            command = [
              "/run/current-system/sw/bin/test"
              "!"
              "-e"
              "/etc/hafront/maintenance"
            ];
            interval = "2s";
          };
          vrrp.instances.web = {
            interface = "eth1";
            vrid = 51;
            priority = 150;
            advert_interval = "100ms";
            virtual_ips = [ "192.0.2.100/24" ];
            unicast_peers = [ "192.0.2.2" ];
            track_scripts = [ { name = "maintenance_off"; } ];
            garp.master_burst = 3; # freeform: not a typed option
          };
          vrrp.instances.web6 = {
            interface = "eth1";
            vrid = 51;
            virtual_ips = [ "2001:db8::100/64" ];
          };
          ipvs.services.app = {
            address = "192.0.2.100:8080";
            scheduler = "wrr";
            master_of = "web";
            real_servers = [
              {
                address = "198.51.100.11:8080";
                weight = 2;
              }
              { address = "198.51.100.12:8080"; }
            ];
          };
        };
      };
    };

    # The firewall on firewalld: neither extraCommands nor extraInputRules apply.
    firewalld = {
      services.firewalld.enable = true;
      networking.nftables.enable = true;
      services.hafront = {
        enable = true;
        openFirewall = true;
        settings.vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };

    # firewalld with another default zone: an assertion says what to do.
    firewalldZone = {
      services.firewalld = {
        enable = true;
        settings.DefaultZone = "public";
      };
      networking.nftables.enable = true;
      services.hafront = {
        enable = true;
        openFirewall = true;
        settings.vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };

    # A NixOS without networking.firewall.backend and the firewalld module.
    legacy = {
      services.hafront = {
        enable = true;
        openFirewall = true;
        settings.vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };
    legacyNftables = {
      networking.nftables.enable = true;
      services.hafront = {
        enable = true;
        openFirewall = true;
        settings.vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };

    # The build machine cannot run the target's hafront (aarch64 target).
    cross.services.hafront = {
      enable = true;
      settings.vrrp.instances.web = {
        interface = "eth0";
        vrid = 7;
        virtual_ips = [ "192.0.2.7/24" ];
      };
    };

    # configFile as a path literal: read at evaluation, so its IPVS services load
    # the modules; checked at build time like settings.
    configfile.services.hafront = {
      enable = true;
      configFile = ./configfile.toml;
    };
    configfileNginx.services.hafront = {
      enable = true;
      configFile = ./configfile.toml;
      nginx.enable = true;
    };

    # configFile outside the store: no build-time check (the sandbox cannot read
    # it), IPVS modules only when asked for; both said in warnings.
    outside.services.hafront = {
      enable = true;
      configFile = "/etc/hafront-site/hafront.toml";
    };
    outsideIpvs.services.hafront = {
      enable = true;
      configFile = "/etc/hafront-site/hafront.toml";
      ipvs = {
        enable = true;
        schedulers = [ "mh" ];
      };
    };

    # state_dir / runtime_dir elsewhere than the unit's StateDirectory /
    # RuntimeDirectory: not writable for the service (ProtectSystem=strict).
    dirs.services.hafront = {
      enable = true;
      settings = {
        state_dir = "/srv/hafront";
        runtime_dir = "/run/hafront";
        vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };

    # The same firewall on the nftables backend.
    nftables = {
      networking.nftables.enable = true;
      services.hafront = {
        enable = true;
        openFirewall = true;
        settings.vrrp.instances.web = {
          interface = "eth0";
          vrid = 7;
          virtual_ips = [ "192.0.2.7/24" ];
        };
      };
    };

    # Every assertion of the module fails once.
    bad = {
      services.hafront = {
        enable = true;
        nginx = {
          enable = true;
          instances = [ "nope" ];
        };
        settings = {
          vrrp.instances.web = {
            interface = "eth0";
            vrid = 51;
            version = 2;
            virtual_ips = [ "2001:db8::1/64" ];
            track_checks = [ { name = "missing"; } ];
          };
          vrrp.instances.dup = {
            interface = "eth0";
            vrid = 51;
            virtual_ips = [ ];
          };
          vrrp.instances.dup2 = {
            interface = "eth0";
            vrid = 51;
            virtual_ips = [ "192.0.2.1/24" ];
          };
          ipvs.services.app = {
            address = "192.0.2.1:80";
            master_of = "ghost";
          };
        };
      };
    };

    empty.services.hafront.enable = true;

    # Anycast front end (issue 17): no VRRP instance, two groups in two kernel
    # tables, IPv4 and IPv6 prefixes, nginx tracked, BIRD wired to two routers
    # (one per family) with BFD; a line of the site's own appended to BIRD's config.
    anycast = {
      services.bird.config = "# the site's own line\n";
      services.hafront = anycastNode;
    };
    # The same on NixOS 24.11 and older (services.bird2, unit and group bird2).
    anycastBird2.services.hafront = anycastNode;
    # BFD in a BIRD of its own (bfd.separate): the BGP BIRD restarts gracefully.
    anycastSeparate.services.hafront = lib.recursiveUpdate anycastNode {
      anycast.bird.bfd.separate = true;
    };
    anycastSeparateBird2.services.hafront = lib.recursiveUpdate anycastNode {
      anycast.bird.bfd.separate = true;
    };
    # BIRD with the site's own configuration: hafront is still ordered after it and
    # reads its socket; nothing is generated.
    anycastOwnBird = {
      services.bird = {
        enable = true;
        config = "router id 198.51.100.11;\n";
      };
      services.hafront = {
        enable = true;
        settings.anycast.web.prefixes = [ "203.0.113.10/32" ];
      };
    };
    # An anycast group and no BIRD.
    anycastNoBird.services.hafront = {
      enable = true;
      settings.anycast.web.prefixes = [ "203.0.113.10/32" ];
    };
    # BIRD asked for with nothing to announce and no one to announce to.
    anycastEmpty.services.hafront = {
      enable = true;
      anycast.bird.enable = true;
    };
    # Every anycast assertion that can fail together.
    anycastBad.services.hafront = {
      enable = true;
      nginx = {
        enable = true;
        anycast = [ "nope" ];
        instances = [ ];
      };
      anycast.bird = {
        enable = true;
        bfd.separate = true;
        neighbors.bgp = {
          address = "198.51.100.1";
          as = 65000;
        };
      };
      settings = {
        anycast.web = {
          prefixes = [
            "203.0.113.10/32"
            "2001:db8:10::10/128"
          ];
          track_checks = [
            {
              name = "missing";
            }
          ];
          bird_socket = "/run/bird2/bird.ctl";
          bfd_socket = "/run/bird/bird.ctl";
        };
        anycast.empty = {
          prefixes = [ ];
          track_services = [
            {
              name = "nginx";
              weight = -10;
            }
          ];
        };
      };
    };

    # A type error: the message must name the option path.
    badvrid.services.hafront = {
      enable = true;
      settings.vrrp.instances.web = {
        interface = "eth0";
        vrid = 300;
        virtual_ips = [ "192.0.2.1/24" ];
      };
    };

    disabled.services.hafront.settings.vrrp.instances.web = {
      interface = "eth0";
      vrid = 1;
      virtual_ips = [ "192.0.2.1/24" ];
    };
  };

  anycastNode = {
    enable = true;
    openFirewall = true;
    nginx.enable = true;
    anycast.bird = {
      enable = true;
      routerId = "198.51.100.11";
      localAs = 65001;
      localAddress = "198.51.100.11";
      neighbors.r1 = {
        address = "198.51.100.1";
        as = 65000;
      };
      neighbors.r1v6 = {
        address = "2001:db8:100::1";
        localAddress = "2001:db8:100::11";
        as = 65000;
        bfd = false;
      };
      bfd = {
        interfaces = [ "eth1" ];
        multiplier = 5;
      };
    };
    settings = {
      node.name = "fe1";
      checks.api = {
        kind = "tcp";
        target = "127.0.0.1:9000";
        interval = "1s";
      };
      anycast.web = {
        prefixes = [
          "203.0.113.10/32"
          "2001:db8:10::10/128"
        ];
        drain = "2s";
      };
      anycast.api = {
        prefixes = [ "203.0.113.20/32" ];
        table = 101;
        interface = "lo";
        track_checks = [ { name = "api"; } ];
      };
    };
  };

  eval = lib.evalModules {
    specialArgs = { inherit pkgs; };
    modules = [
      ../module.nix
      nixosStubs
      cases.${case}
    ];
  };
  c = eval.config;
  unit = c.systemd.services.hafront or null;
  etc = c.environment.etc."hafront/hafront.toml" or null;
in
{
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  hasUnit = unit != null;
}
// lib.optionalAttrs (unit != null) {
  unit = {
    inherit (unit)
      wantedBy
      wants
      after
      stopIfChanged
      restartIfChanged
      reloadIfChanged
      serviceConfig
      ;
    path = map (p: p.name) unit.path;
    reloadTriggers = map toString unit.reloadTriggers;
    restartTriggers = map toString unit.restartTriggers;
  };
  inherit (c) warnings;
  paths = c.systemd.paths;
  envRestart = c.systemd.services.hafront-environment or null;
  firewalldZones = c.services.firewalld.zones or null;
  etcSource = toString etc.source;
  etcSourceScript = etc.source.script or null;
  etcSourceLocal = etc.source.local or false;
  # What the TOML generator gets: the content of the generated file.
  settings = c.services.hafront.settings;
  firewall = c.networking.firewall;
  inherit (c.boot) kernelModules;
  sysctl = c.boot.kernel.sysctl;
  nginx = c.services.nginx;
  systemPackages = map (p: p.name) c.environment.systemPackages;
  # nixpkgs' BIRD module (stubs.nix) as this configuration sets it.
  bird =
    let
      b = c.services.${birdModule};
    in
    {
      module = birdModule;
      inherit (b) enable;
    }
    // lib.optionalAttrs b.enable {
      inherit (b) config;
      unit = c.systemd.services.${birdModule}.serviceConfig;
    };
  # The BIRD that runs only BFD (anycast.bird.bfd.separate).
  bfdBird = lib.optionalAttrs (c.systemd.services ? hafront-bird-bfd) {
    config = c.environment.etc."hafront/bird-bfd.conf".text;
    unit = c.systemd.services.hafront-bird-bfd;
  };
}
