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
  inherit (lib) mkOption types;

  # A derivation-shaped record: enough for types.package and string interpolation.
  drv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    }
    // extra;

  pkgs = {
    hafront = drv "hafront-0.1.0" { meta.mainProgram = "hafront"; };
    nftables = drv "nftables" { };
    coreutils = drv "coreutils" { };
    # Records the build script so the test can assert what the build would run.
    runCommand = name: env: script: drv name { inherit env script; };
    callPackage = _: _: throw "eval stub: pkgs.callPackage is not available (pkgs.hafront is set)";
    formats.toml =
      { }:
      {
        # nixpkgs' TOML value type (pkgs/pkgs-lib/formats.nix).
        type =
          let
            valueType =
              types.oneOf [
                types.bool
                types.int
                types.float
                types.str
                types.path
                (types.attrsOf valueType)
                (types.listOf valueType)
              ]
              // {
                description = "TOML value";
              };
          in
          valueType;
        # nixpkgs runs json2toml on builtins.toJSON value; keep the value to inspect it.
        generate = name: value: drv name { inherit value; };
      };
  };

  # The NixOS options module.nix uses, with NixOS' types (or close enough).
  nixosStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      environment.etc = mkOption {
        type = types.attrsOf (types.submodule { options.source = mkOption { type = types.path; }; });
        default = { };
      };
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              description = mkOption {
                type = types.str;
                default = "";
              };
              wantedBy = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              wants = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              after = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              path = mkOption {
                type = types.listOf types.package;
                default = [ ];
              };
              reloadTriggers = mkOption {
                type = types.listOf types.unspecified;
                default = [ ];
              };
              restartTriggers = mkOption {
                type = types.listOf types.unspecified;
                default = [ ];
              };
              restartIfChanged = mkOption {
                type = types.bool;
                default = true;
              };
              reloadIfChanged = mkOption {
                type = types.bool;
                default = false;
              };
              stopIfChanged = mkOption {
                type = types.bool;
                default = true;
              };
              serviceConfig = mkOption {
                type = types.attrsOf types.anything;
                default = { };
              };
            };
          }
        );
        default = { };
      };
      networking.hostName = mkOption {
        type = types.str;
        default = "nixos";
      };
      networking.nftables.enable = mkOption {
        type = types.bool;
        default = false;
      };
      networking.firewall = {
        extraCommands = mkOption {
          type = types.lines;
          default = "";
        };
        extraStopCommands = mkOption {
          type = types.lines;
          default = "";
        };
        extraInputRules = mkOption {
          type = types.lines;
          default = "";
        };
      };
      boot.kernelModules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      boot.kernel.sysctl = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      services.nginx = {
        enable = mkOption {
          type = types.bool;
          default = false;
        };
        virtualHosts = mkOption {
          type = types.attrsOf types.anything;
          default = { };
        };
      };
    };
  };

  # The configurations under test.
  cases = {
    # Everything on: two instances, IPVS, nginx, firewall, secrets file.
    full = {
      services.hafront = {
        enable = true;
        openFirewall = true;
        environmentFile = "/run/secrets/hafront.env";
        nginx = {
          enable = true;
          weight = -50;
          instances = [ "web" ];
        };
        settings = {
          node.name = "node-a";
          log.level = "debug";
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
    reloadTriggers = map (t: t.outPath) unit.reloadTriggers;
  };
  etcSource = etc.source.outPath;
  etcSourceScript = etc.source.script or null;
  # What the TOML generator gets: the content of the generated file.
  settings = c.services.hafront.settings;
  firewall = c.networking.firewall;
  inherit (c.boot) kernelModules;
  sysctl = c.boot.kernel.sysctl;
  nginx = c.services.nginx;
  systemPackages = map (p: p.name) c.environment.systemPackages;
}
