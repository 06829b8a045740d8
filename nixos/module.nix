# services.hafront: the NixOS module.
#
# Style of nixpkgs' corerad/keepalived modules: a freeform TOML `settings` tree
# (pkgs.formats.toml) with typed options for the core keys, checked at build time by
# the daemon itself (`hafront check-config`). Every key of docs/configuration.md can be
# set under `settings`; the daemon rejects unknown keys, so a typo fails the build.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    mkDefault
    types
    literalExpression
    ;

  cfg = config.services.hafront;
  settingsFormat = pkgs.formats.toml { };
  opt = "services.hafront";

  # The file hafront reads. A stable /etc path, so that a changed configuration is a
  # reload (SIGHUP re-reads the same path), not a restart with a new ExecStart.
  configPath = "/etc/hafront/hafront.toml";

  trackType = types.submodule {
    options = {
      name = mkOption {
        type = types.str;
        description = "Name of the tracked item (an interface, or a key under `checks`, `scripts`, `files`).";
      };
      weight = mkOption {
        type = types.ints.between (-253) 253;
        default = 0;
        description = ''
          0: the instance goes to FAULT while the item fails; negative: added to the
          priority while it fails; positive: added while it is healthy.
        '';
      };
    };
  };

  trackOption =
    what:
    mkOption {
      type = types.listOf trackType;
      default = [ ];
      description = "Tracked ${what}; see docs/configuration.md (Tracking).";
    };

  instanceModule =
    { name, ... }:
    {
      freeformType = settingsFormat.type;
      options = {
        interface = mkOption {
          type = types.str;
          example = "eth0";
          description = "Interface the instance runs on (adverts, VIPs).";
        };
        vrid = mkOption {
          type = types.ints.between 1 255;
          example = 51;
          description = "Virtual router ID, the same on every node of the group.";
        };
        priority = mkOption {
          type = types.ints.between 1 255;
          default = 100;
          description = "Priority of this node (255: address owner).";
        };
        version = mkOption {
          type = types.enum [
            2
            3
          ];
          default = 3;
          description = "VRRP version (2: RFC 3768, IPv4 only; 3: RFC 5798).";
        };
        advert_interval = mkOption {
          type = types.str;
          default = "1s";
          example = "100ms";
          description = "Advertisement interval (v2: whole seconds; v3: 10 ms steps).";
        };
        virtual_ips = mkOption {
          type = types.listOf types.str;
          example = [ "192.0.2.100/24" ];
          description = "Virtual IPs as address/prefix; the first one sets the address family.";
        };
        unicast_peers = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Unicast peers; empty means multicast (224.0.0.18 / ff02::12).";
        };
        track_interfaces = trackOption "interfaces";
        track_checks = trackOption "health checks (names under `settings.checks`)";
        track_scripts = trackOption "scripts (names under `settings.scripts`)";
        track_files = trackOption "files (names under `settings.files`)";
      };
      # nginx integration: every selected instance tracks the nginx health check.
      config.track_checks = mkIf (cfg.nginx.enable && builtins.elem name nginxInstances) [
        {
          name = cfg.nginx.checkName;
          inherit (cfg.nginx) weight;
        }
      ];
    };

  ipvsServiceModule = {
    freeformType = settingsFormat.type;
    options = {
      scheduler = mkOption {
        type = types.str;
        default = "wlc";
        description = "IPVS scheduler; its kernel module is loaded at boot (`services.hafront.ipvs.schedulers`).";
      };
      forwarding = mkOption {
        type = types.enum [
          "dr"
          "nat"
          "tun"
        ];
        default = "nat";
        description = "Forwarding method of the real servers.";
      };
    };
  };

  settingsModule = {
    freeformType = settingsFormat.type;
    options = {
      vrrp.instances = mkOption {
        type = types.attrsOf (types.submodule instanceModule);
        default = { };
        description = "VRRP instances (`[vrrp.instances.<name>]`).";
      };
      ipvs.services = mkOption {
        type = types.attrsOf (types.submodule ipvsServiceModule);
        default = { };
        description = "IPVS virtual services (`[ipvs.services.<name>]`).";
      };
      checks = mkOption {
        type = types.attrsOf settingsFormat.type;
        default = { };
        description = "Health checks (`[checks.<name>]`).";
      };
      scripts = mkOption {
        type = types.attrsOf settingsFormat.type;
        default = { };
        description = "Track scripts (`[scripts.<name>]`).";
      };
      files = mkOption {
        type = types.attrsOf settingsFormat.type;
        default = { };
        description = "Tracked files (`[files.<name>]`).";
      };
    };
  };

  instances = cfg.settings.vrrp.instances;
  services = cfg.settings.ipvs.services;
  nginxInstances =
    if cfg.nginx.instances == null then builtins.attrNames instances else cfg.nginx.instances;

  isV6 = vip: lib.hasInfix ":" vip;
  family = inst: if inst.virtual_ips != [ ] && isV6 (builtins.head inst.virtual_ips) then "ipv6" else "ipv4";

  generatedConfig = settingsFormat.generate "hafront.toml" cfg.settings;
  configFile = if cfg.configFile != null then cfg.configFile else generatedConfig;

  # The config file, validated by the daemon at build time.
  checkedConfig =
    if cfg.checkConfig then
      pkgs.runCommand "hafront-checked.toml"
        {
          nativeBuildInputs = [ cfg.package ];
          preferLocalBuild = true;
        }
        ''
          # --no-env: the build's environment is not the service's; keys that come
          # from environmentFile at run time are not checked here.
          hafront check-config --no-env -c ${configFile} >/dev/null
          cp ${configFile} $out
        ''
    else
      configFile;

  schedulersInSettings = lib.unique (lib.mapAttrsToList (_: s: s.scheduler) services);

  trackAssertions = lib.concatLists (
    lib.mapAttrsToList (
      iname: inst:
      let
        ref = kind: table: lib.map (t: {
          assertion = cfg.settings.${table} ? ${t.name};
          message = "${opt}.settings.vrrp.instances.${iname}.${kind}: \"${t.name}\" is not defined in ${opt}.settings.${table}";
        }) inst.${kind};
      in
      ref "track_checks" "checks" ++ ref "track_scripts" "scripts" ++ ref "track_files" "files"
    ) instances
  );

  instanceAssertions = lib.concatLists (
    lib.mapAttrsToList (iname: inst: [
      {
        assertion = inst.virtual_ips != [ ];
        message = "${opt}.settings.vrrp.instances.${iname}.virtual_ips must not be empty";
      }
      {
        assertion = inst.version == 3 || !(lib.any isV6 inst.virtual_ips);
        message = "${opt}.settings.vrrp.instances.${iname}.version = 2 carries IPv4 only; use version = 3 for IPv6 virtual_ips";
      }
    ]) instances
  );

  # (interface, vrid, family) is one virtual router on the wire.
  routerKeys = lib.mapAttrsToList (iname: inst: {
    inherit iname;
    key = "${inst.interface}/${toString inst.vrid}/${family inst}";
  }) instances;
  duplicateRouters = lib.filter (
    k: lib.length (lib.filter (o: o.key == k.key) routerKeys) > 1
  ) routerKeys;

  vrrpFirewall = {
    iptables = {
      extraCommands = ''
        ip46tables -A nixos-fw -p 112 -m comment --comment "services.hafront.openFirewall" -j nixos-fw-accept
      '';
      extraStopCommands = ''
        ip46tables -D nixos-fw -p 112 -m comment --comment "services.hafront.openFirewall" -j nixos-fw-accept 2>/dev/null || true
      '';
    };
    nftables.extraInputRules = ''
      meta l4proto 112 accept comment "services.hafront.openFirewall: VRRP"
    '';
  };
in
{
  options.services.hafront = {
    enable = mkEnableOption "hafront, the high-availability daemon (VRRP, IPVS, health checks)";

    package = mkOption {
      type = types.package;
      default = pkgs.hafront or (pkgs.callPackage ./package.nix { });
      defaultText = literalExpression "pkgs.hafront or (pkgs.callPackage ./package.nix { })";
      description = "The hafront package.";
    };

    settings = mkOption {
      type = types.submodule settingsModule;
      default = { };
      example = literalExpression ''
        {
          vrrp.instances.web = {
            interface = "eth1";
            vrid = 51;
            priority = 150;
            virtual_ips = [ "192.0.2.100/24" ];
            unicast_peers = [ "192.0.2.2" ];
          };
        }
      '';
      description = ''
        hafront configuration as TOML (docs/configuration.md lists every key). Keys
        not declared here are passed through as they are; the daemon rejects unknown
        keys at build time (`checkConfig`).
      '';
    };

    configFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        A configuration file to use instead of the one generated from `settings`
        (the typed options still drive the firewall, IPVS modules and assertions).
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Validate the configuration at build time with `hafront check-config --no-env`.
        Turn off when required keys come only from `environmentFile`.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/hafront.env";
      description = ''
        Environment file of the unit, for secrets kept out of the Nix store, e.g.
        `HAFRONT_VRRP__INSTANCES__WEB__AUTH_PASS=...` (a `HAFRONT_*` variable
        overrides the key it names).
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Accept VRRP (IP protocol 112) in the NixOS firewall.";
    };

    ipvs = {
      enable = mkOption {
        type = types.bool;
        default = services != { };
        defaultText = literalExpression "config.services.hafront.settings.ipvs.services != { }";
        description = "Load the IPVS kernel modules at boot (hafront runs without CAP_SYS_MODULE).";
      };
      schedulers = mkOption {
        type = types.listOf types.str;
        default = schedulersInSettings;
        defaultText = literalExpression "the schedulers named in settings.ipvs.services";
        description = "IPVS schedulers whose modules (`ip_vs_<name>`) are loaded at boot.";
      };
    };

    nginx = {
      enable = mkEnableOption ''
        nginx on this node (`services.nginx`), with a loopback health endpoint that
        hafront checks over HTTP and every selected instance tracks. (Supervision of
        nginx by hafront itself, `[services.nginx]`, needs the daemon to run as root;
        this module keeps it unprivileged)'';
      healthPort = mkOption {
        type = types.port;
        default = 8099;
        description = "Loopback port of the health endpoint (`http://127.0.0.1:<port>/healthz`).";
      };
      checkName = mkOption {
        type = types.str;
        default = "nginx";
        description = "Name of the generated check under `settings.checks`.";
      };
      weight = mkOption {
        type = types.ints.between (-253) 253;
        default = 0;
        description = "Tracking weight: 0 faults the instance while nginx fails; negative lowers its priority.";
      };
      instances = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        description = "Instances that track nginx; null means all of them.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = instances != { } || cfg.configFile != null;
          message = "${opt}.settings.vrrp.instances must declare at least one instance (or set ${opt}.configFile)";
        }
        {
          assertion = duplicateRouters == [ ];
          message = "${opt}.settings.vrrp.instances: ${
            lib.concatMapStringsSep ", " (d: d.iname) duplicateRouters
          } share interface, vrid and address family (one virtual router on the wire)";
        }
      ]
      ++ instanceAssertions
      ++ trackAssertions
      ++ lib.mapAttrsToList (sname: s: {
        assertion = !(s ? master_of) || instances ? ${s.master_of};
        message = "${opt}.settings.ipvs.services.${sname}.master_of: no instance \"${s.master_of or ""}\" in ${opt}.settings.vrrp.instances";
      }) services
      ++ lib.optional cfg.nginx.enable {
        assertion = lib.all (i: instances ? ${i}) nginxInstances;
        message = "${opt}.nginx.instances: ${
          lib.concatStringsSep ", " (lib.filter (i: !(instances ? ${i})) nginxInstances)
        } not in ${opt}.settings.vrrp.instances";
      };

      environment.etc."hafront/hafront.toml".source = checkedConfig;
      environment.systemPackages = [ cfg.package ];

      systemd.services.hafront = {
        description = "hafront high-availability daemon (VRRP, IPVS, health checks)";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        # accept = false drives nftables through `nft`.
        path = [ pkgs.nftables ];
        # A new configuration is a reload (SIGHUP: unchanged instances keep their
        # state, no VIP moves); a new package or unit is a restart, which hands the
        # VIPs over with priority-0 adverts. stopIfChanged = false keeps that restart
        # one step (no stop before the new system is activated).
        reloadTriggers = [ checkedConfig ];
        stopIfChanged = false;
        serviceConfig = {
          Type = "notify";
          NotifyAccess = "main";
          WatchdogSec = mkDefault "5s";
          ExecStart = "${cfg.package}/bin/hafront run -c ${configPath}";
          ExecReload = [
            # Refuse the reload (and keep the running config) when the file is invalid.
            "${cfg.package}/bin/hafront check-config -c ${configPath}"
            "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
          ];
          EnvironmentFile = mkIf (cfg.environmentFile != null) cfg.environmentFile;
          KillMode = "mixed";
          TimeoutStopSec = "10s";
          Restart = "on-failure";
          RestartSec = "1s";
          # 2: invalid configuration; a restart does not fix it.
          RestartPreventExitStatus = 2;
          RuntimeDirectory = "hafront";
          RuntimeDirectoryMode = "0755";
          # state_dir (/var/lib/hafront): API overrides (maintenance...) survive restarts.
          StateDirectory = "hafront";

          DynamicUser = true;
          # CAP_IPC_LOCK, CAP_SYS_NICE and RestrictRealtime = false only allow what
          # vrrp.lock_memory and vrrp.rt_priority ask for (both off by default).
          AmbientCapabilities = [
            "CAP_NET_ADMIN"
            "CAP_NET_RAW"
            "CAP_IPC_LOCK"
            "CAP_SYS_NICE"
          ];
          CapabilityBoundingSet = [
            "CAP_NET_ADMIN"
            "CAP_NET_RAW"
            "CAP_IPC_LOCK"
            "CAP_SYS_NICE"
          ];
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
            "AF_NETLINK"
            "AF_PACKET"
          ];
          RestrictNamespaces = true;
          RestrictRealtime = false;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" ];
          SystemCallErrorNumber = "EPERM";
          UMask = "0022";
        };
      };
    }

    (mkIf cfg.openFirewall {
      networking.firewall =
        if config.networking.nftables.enable then vrrpFirewall.nftables else vrrpFirewall.iptables;
    })

    (mkIf cfg.ipvs.enable {
      boot.kernelModules = [ "ip_vs" ] ++ map (s: "ip_vs_${s}") cfg.ipvs.schedulers;
      # A NAT director routes the real servers' replies back to the clients.
      boot.kernel.sysctl."net.ipv4.ip_forward" = mkIf (lib.any (s: s.forwarding == "nat") (
        builtins.attrValues services
      )) (mkDefault 1);
    })

    (mkIf cfg.nginx.enable {
      services.nginx = {
        enable = true;
        virtualHosts."hafront-health" = {
          listen = [
            {
              addr = "127.0.0.1";
              port = cfg.nginx.healthPort;
            }
          ];
          locations."= /healthz".return = "200 ok";
        };
      };
      services.hafront.settings.checks.${cfg.nginx.checkName} = {
        kind = mkDefault "http";
        url = mkDefault "http://127.0.0.1:${toString cfg.nginx.healthPort}/healthz";
        expect_status = mkDefault [ 200 ];
        interval = mkDefault "500ms";
        timeout = mkDefault "400ms";
        rise = mkDefault 2;
        fall = mkDefault 2;
      };
      systemd.services.hafront = {
        wants = [ "nginx.service" ];
        after = [ "nginx.service" ];
      };
    })
  ]);
}
