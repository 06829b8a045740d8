# Stubs for evaluating NixOS modules without nixpkgs' NixOS modules and packages:
# `pkgs` whose derivations are plain records (nothing is built), and the NixOS options
# that nixos/module.nix sets, declared with NixOS' types (or close enough).
# Used by eval.nix and flake-eval.nix.
{
  lib,
  # The build machine cannot execute the target's binaries (a cross build).
  cross ? false,
  # A NixOS from before networking.firewall.backend and the firewalld module.
  legacyFirewall ? false,
  # nixpkgs' BIRD module: "bird" (current: services.bird, bird3 by default,
  # services.bird2 removed), "bird2" (NixOS 24.11 and older: services.bird2,
  # services.bird removed), or null (neither).
  birdModule ? "bird",
}:
let
  inherit (lib) mkOption types;
in
rec {
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
    inherit lib;
    stdenv = {
      hostPlatform.system = if cross then "aarch64-linux" else "x86_64-linux";
      buildPlatform = {
        system = "x86_64-linux";
        canExecute = _platform: !cross;
      };
    };
    # The build platform's packages (nixpkgs' splicing): a hafront that runs on
    # the build machine.
    buildPackages = {
      hafront = drv "hafront-0.1.0-build-platform" { meta.mainProgram = "hafront"; };
    };
    ipvsadm = drv "ipvsadm" { };
    curl = drv "curl" { };
    hafront = drv "hafront-0.1.0" { meta.mainProgram = "hafront"; };
    nftables = drv "nftables" { };
    # BIRD: bird3 is services.bird's default package; pkgs.bird was BIRD 2 (NixOS
    # 24.11's services.bird2 ran it).
    bird3 = drv "bird-3.0.0" { };
    bird = drv "bird-2.0.12" { };
    coreutils = drv "coreutils" { };
    systemd = drv "systemd" { };
    # Records the build script so the test can assert what the build would run.
    runCommand = name: env: script: drv name { inherit env script; };
    runCommandLocal = name: env: script: drv name {
      inherit env script;
      local = true;
    };
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

  # nixos/modules/services/networking/bird.nix, both generations: the options, and
  # what the unit does that hafront depends on (user/group, RuntimeDirectory: the
  # package's --runstatedir=/run/bird puts the socket there, mode 0660).
  birdStub =
    name: removed:
    { config, ... }:
    let
      pkg = config.services.${name}.package or pkgs.bird;
    in
    {
      imports = [ (lib.mkRemovedOptionModule [ "services" removed ] "Use services.${name} instead") ];
      options.services.${name} = {
        enable = lib.mkEnableOption "BIRD Internet Routing Daemon";
      }
      // lib.optionalAttrs (name == "bird") {
        package = mkOption {
          type = types.package;
          default = pkgs.bird3;
        };
      }
      // {
        config = mkOption { type = types.lines; };
        autoReload = mkOption {
          type = types.bool;
          default = true;
        };
        checkConfig = mkOption {
          type = types.bool;
          default = true;
        };
        preCheckConfig = mkOption {
          type = types.lines;
          default = "";
        };
      };
      config = lib.mkIf config.services.${name}.enable {
        environment.etc."bird/${if name == "bird" then "bird" else "bird2"}.conf".source = drv "bird-conf" {
          text = config.services.${name}.config;
        };
        systemd.services.${name} = {
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            Type = "forking";
            ExecStart = "${pkg}/bin/bird -c /etc/bird/${if name == "bird" then "bird" else "bird2"}.conf";
            ExecStop = "${pkg}/bin/birdc down";
            User = name;
            Group = name;
            RuntimeDirectory = "bird";
          };
        };
      };
    };

  # The NixOS options module.nix uses, with NixOS' types (or close enough).
  nixosStubs =
    { config, ... }:
    {
    imports =
      lib.optional (birdModule == "bird") (birdStub "bird" "bird2")
      ++ lib.optional (birdModule == "bird2") (birdStub "bird2" "bird");
    # Merged deeply: the parts share top-level keys (services).
    options = lib.foldl' lib.recursiveUpdate { } [
    {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      environment.etc = mkOption {
        type = types.attrsOf (
          types.submodule (
            { config, ... }:
            {
              # As NixOS: `text` makes the file in the store that `source` is.
              options.source = mkOption {
                type = types.path;
                default = drv "etc-file" { inherit (config) text; };
              };
              options.text = mkOption {
                type = types.nullOr types.lines;
                default = null;
              };
            }
          )
        );
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
              before = mkOption {
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
              environment = mkOption {
                type = types.attrsOf types.str;
                default = { };
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
      systemd.package = mkOption {
        type = types.package;
        default = pkgs.systemd;
      };
      systemd.paths = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              wantedBy = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              pathConfig = mkOption {
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
        enable = mkOption {
          type = types.bool;
          default = true;
        };
      }
      // lib.optionalAttrs (!legacyFirewall) {
        # nixos/modules/services/networking/firewall.nix
        backend = mkOption {
          type = types.enum [
            "iptables"
            "nftables"
            "firewalld"
          ];
          default =
            if config.services.firewalld.enable then
              "firewalld"
            else if config.networking.nftables.enable then
              "nftables"
            else
              "iptables";
        };
      }
      // {
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
        allowedTCPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
        };
        allowedUDPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
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
    }
    (lib.optionalAttrs (!legacyFirewall) {
      # nixos/modules/services/networking/firewalld/{default,settings,zone}.nix
      services.firewalld = {
        enable = mkOption {
          type = types.bool;
          default = false;
        };
        settings = mkOption {
          type = types.submodule {
            freeformType = types.attrsOf (types.either types.bool types.nonEmptyStr);
            options.DefaultZone = mkOption {
              type = types.nonEmptyStr;
              default = "public";
            };
          };
          default = { };
        };
        zones = mkOption {
          type = types.attrsOf (
            types.submodule {
              options.protocols = mkOption {
                type = types.listOf types.nonEmptyStr;
                default = [ ];
              };
              options.ports = mkOption {
                type = types.listOf types.anything;
                default = [ ];
              };
            }
          );
          default = { };
        };
      };
    })
    {
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
    }
    ];
    # nixos/modules/services/networking/firewall-firewalld.nix: NixOS' own default
    # zone when the firewall runs on firewalld.
    config = lib.optionalAttrs (!legacyFirewall) (
      lib.mkIf (config.networking.firewall.enable && config.networking.firewall.backend == "firewalld") {
        services.firewalld.settings.DefaultZone = lib.mkDefault "nixos-fw-default";
        services.firewalld.zones.nixos-fw-default = { };
      }
    );
  };

}
