# services.hafront: the NixOS module.
#
# Style of nixpkgs' corerad/keepalived modules: a freeform TOML `settings` tree
# (pkgs.formats.toml) with typed options for the core keys, checked at build time by
# the daemon itself (`hafront check-config`). Every key of docs/configuration.md can be
# set under `settings`; the daemon rejects unknown keys, so a typo fails the build.
{
  config,
  options,
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
    literalMD
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
        track_services = trackOption "services (names under `settings.services`)";
      };
      # nginx integration: every selected instance tracks the adopted nginx unit and
      # its health check.
      config =
        let
          track = [
            {
              name = cfg.nginx.checkName;
              inherit (cfg.nginx) weight;
            }
          ];
        in
        mkIf (cfg.nginx.enable && builtins.elem name nginxInstances) {
          track_checks = track;
          track_services = track;
        };
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

  # An anycast group (`[anycast.<name>]`): prefixes BIRD announces while the tracked
  # items are healthy. Typed: what the BIRD wiring reads (prefixes, table, socket)
  # and the tracks; the rest (interface, drain) passes through.
  anycastModule =
    { name, ... }:
    {
      freeformType = settingsFormat.type;
      options = {
        prefixes = mkOption {
          type = types.listOf types.str;
          example = [
            "203.0.113.10/32"
            "2001:db8:10::10/128"
          ];
          description = "Prefixes announced while the group is healthy (no host bits; the first address of each is put on the group's interface).";
        };
        table = mkOption {
          type = types.ints.between 1 4294967295;
          default = 100;
          description = "Kernel routing table hafront keeps the group's routes in (proto 73); the generated BIRD configuration learns it.";
        };
        bird_socket = mkOption {
          type = types.str;
          default = birdSocket;
          description = "BIRD's control socket, read for BGP and BFD session state (`/run/bird/bird.ctl` with nixpkgs' bird).";
        };
        track_interfaces = trackOption "interfaces (weight 0: a down item withdraws)";
        track_checks = trackOption "health checks (names under `settings.checks`; weight 0)";
        track_scripts = trackOption "scripts (names under `settings.scripts`; weight 0)";
        track_files = trackOption "files (names under `settings.files`; weight 0)";
        track_services = trackOption "services (names under `settings.services`; weight 0)";
      };
      # nginx integration: the selected groups withdraw while nginx or its check
      # fails (anycast has no priority: always weight 0).
      config =
        let
          track = [
            {
              name = cfg.nginx.checkName;
              weight = 0;
            }
          ];
        in
        mkMerge [
          (mkIf (cfg.nginx.enable && builtins.elem name nginxAnycast) {
            track_checks = track;
            track_services = track;
          })
          (mkIf bfdSeparate { bfd_socket = mkDefault bfdSocket; })
        ];
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
      anycast = mkOption {
        type = types.attrsOf (types.submodule anycastModule);
        default = { };
        description = "Anycast groups announced over BGP through BIRD (`[anycast.<name>]`; `services.hafront.anycast.bird` wires BIRD).";
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
      services = mkOption {
        type = types.attrsOf settingsFormat.type;
        default = { };
        description = "Supervised or adopted services (`[services.<name>]`).";
      };
    };
  };

  instances = cfg.settings.vrrp.instances;
  services = cfg.settings.ipvs.services;
  nginxInstances =
    if cfg.nginx.instances == null then builtins.attrNames instances else cfg.nginx.instances;

  anycastSettings = cfg.settings.anycast;
  nginxAnycast =
    if cfg.nginx.anycast == null then builtins.attrNames anycastSettings else cfg.nginx.anycast;

  isV6 = vip: lib.hasInfix ":" vip;
  family = inst: if inst.virtual_ips != [ ] && isV6 (builtins.head inst.virtual_ips) then "ipv6" else "ipv4";

  generatedConfig = settingsFormat.generate "hafront.toml" cfg.settings;
  configFile = if cfg.configFile != null then cfg.configFile else generatedConfig;

  # A configFile given as a path literal (./hafront.toml) is read at evaluation, so
  # that what it says drives the IPVS modules as `settings` would. A string path
  # (a derivation's output, a file outside the store) is not: no import from
  # derivation, and nothing outside the store is readable at evaluation or build.
  fileSettings =
    if cfg.configFile != null && builtins.isPath cfg.configFile then
      builtins.fromTOML (builtins.readFile cfg.configFile)
    else
      null;
  configInStore =
    cfg.configFile == null
    || builtins.isPath cfg.configFile
    || lib.hasPrefix builtins.storeDir (toString cfg.configFile);

  # The daemon that checks the file at build time runs on the build machine: the
  # target's package when the build machine can execute it, else the build
  # platform's (cross builds), as nixpkgs' man-db module does.
  checkPackage =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      cfg.package
    else
      pkgs.buildPackages.hafront or (pkgs.buildPackages.callPackage ./package.nix { });

  # The config file, validated by the daemon at build time. --offline: only what
  # the file says (api.token_file, TLS files, security.script_user and script
  # ownership exist on the target, not in the build sandbox); --no-env: the
  # build's environment is not the service's.
  checkedConfig =
    if cfg.checkConfig && configInStore then
      pkgs.runCommandLocal "hafront-checked.toml" { } ''
        ${lib.getExe checkPackage} check-config --offline --no-env -c ${configFile} >/dev/null
        cp ${configFile} $out
      ''
    else
      configFile;

  # What the daemon will run with, as far as evaluation can tell.
  effectiveSettings = if cfg.configFile == null then cfg.settings else fileSettings;
  effectiveServices =
    if effectiveSettings == null then { } else effectiveSettings.ipvs.services or { };
  schedulersInSettings = lib.unique (
    lib.mapAttrsToList (_: s: s.scheduler or "wlc") effectiveServices
  );

  # ---- anycast through BIRD -------------------------------------------------------
  bcfg = cfg.anycast.bird;
  # nixpkgs' bird package is built with --runstatedir=/run/bird; its unit has
  # RuntimeDirectory=bird, and BIRD makes the socket 0660, owned by its user/group.
  birdSocket = "/run/bird/bird.ctl";
  # Current nixpkgs: services.bird (bird3 by default, bird2 by `package`), unit and
  # user/group `bird`, services.bird2 a removed option. NixOS 24.11 and older:
  # services.bird2, unit and user/group `bird2`, services.bird a removed option. A
  # removed option is an option (`_type = "option"`), a module's options are not.
  birdModule =
    let
      real = n: options.services ? ${n} && !(lib.isOption options.services.${n});
    in
    if real "bird" then
      "bird"
    else if real "bird2" then
      "bird2"
    else
      null;
  birdUnit = "${birdModule}.service";
  birdEnabled = birdModule != null && config.services.${birdModule}.enable;
  # anycast.bird.bfd.separate: BFD in a BIRD of its own (unit hafront-bird-bfd), so
  # that a restart of the BGP BIRD does not take BFD down (appliance/bird-bfd.service
  # is the same layout on Debian). BIRD's package: services.bird.package today; the
  # bird2 module of NixOS 24.11 and older ran pkgs.bird.
  bfdSeparate = bcfg.enable && bcfg.bfd.separate;
  bfdUnit = "hafront-bird-bfd.service";
  bfdSocket = "/run/hafront-bird-bfd/bird.ctl";
  birdPackage =
    if birdModule == null then
      null
    else
      config.services.${birdModule}.package or pkgs.${if birdModule == "bird2" then "bird" else "bird3"};
  birdCaps = [
    "CAP_NET_ADMIN"
    "CAP_NET_BIND_SERVICE"
    "CAP_NET_RAW"
  ];
  birdConfPath = "/etc/bird/${if birdModule == "bird2" then "bird2" else "bird"}.conf";
  # The groups hafront will run with, where evaluation can see them.
  anycastGroups =
    if effectiveSettings == null then { } else effectiveSettings.anycast or { };
  anycastUnknown = cfg.configFile != null && fileSettings == null;
  anycastTables =
    let
      t = lib.unique (lib.mapAttrsToList (_: g: g.table or 100) anycastGroups);
    in
    lib.sort lib.lessThan (if t == [ ] then [ 100 ] else t);
  familyOf = a: if isV6 a then "ipv6" else "ipv4";
  familyName = a: if isV6 a then "IPv6" else "IPv4";
  families = [
    "ipv4"
    "ipv6"
  ];
  # BIRD symbols: hafront_<family> holds every route hafront announces (and
  # nothing else: only proto 73 is learned); with several kernel tables, each
  # is learned into hafront_t<N>_<family> and piped into it.
  collector = fam: "hafront_${fam}";
  kernelProto = table: fam: "hafront_k${toString table}_${fam}";
  # BGP sessions carry the family of their neighbour's address (one session per
  # family, the usual dual-stack setup: no IPv6 next hop over an IPv4 session).
  birdNeighbors = lib.mapAttrsToList (name: n: n // { inherit name; }) bcfg.neighbors;
  neighborFamilies = lib.unique (map (n: familyOf n.address) birdNeighbors);
  # Names BIRD reads as keywords, so a protocol cannot be called so (quoting does
  # not help in BIRD 2.0): the ones a router's name could be, each found with
  # BIRD 2.0.12's `bird -p`; the build-time check of nixpkgs' module finds the rest.
  birdKeywords = [
    "all"
    "as"
    "babel"
    "bfd"
    "bgp"
    "debug"
    "default"
    "define"
    "description"
    "device"
    "direct"
    "disabled"
    "ebgp"
    "export"
    "filter"
    "function"
    "gateway"
    "graceful"
    "gw"
    "hop"
    "ibgp"
    "import"
    "interface"
    "ipv4"
    "ipv6"
    "keep"
    "kernel"
    "limit"
    "local"
    "log"
    "mrt"
    "multihop"
    "neighbor"
    "next"
    "no"
    "none"
    "off"
    "on"
    "ospf"
    "passive"
    "password"
    "pipe"
    "primary"
    "protocol"
    "radv"
    "remote"
    "restart"
    "rip"
    "route"
    "router"
    "routes"
    "rpki"
    "rr"
    "rs"
    "secondary"
    "source"
    "static"
    "table"
    "template"
    "time"
    "vrf"
    "yes"
  ];
  validBirdName =
    n:
    builtins.match "[A-Za-z_][A-Za-z0-9_]*" n != null
    && !(lib.hasPrefix "hafront_" n)
    && !(builtins.elem (lib.toLower n) birdKeywords);

  # BFD's timers on the interfaces of anycast.bird.bfd.interfaces.
  bfdInterface =
    i:
    "interface \"${i}\" { min rx interval ${toString bcfg.bfd.interval} ms; min tx interval ${toString bcfg.bfd.interval} ms; multiplier ${toString bcfg.bfd.multiplier}; };";
  # The node's BIRD configuration: learn hafront's routes (proto 73) from its
  # kernel tables into BIRD tables of their own (a site's `protocol kernel` on
  # master4/master6 does not collide), export exactly those to the routers over
  # BGP, BFD on the sessions. Routers' side: docs/operations.md and
  # vm-tests/nixos/anycast.nix.
  birdConfig =
    let
      several = lib.length anycastTables > 1;
      # The session's source: the neighbour's own localAddress, else the global
      # one when it is of the neighbour's family, else BIRD's choice.
      localLine =
        n:
        let
          a =
            if n.localAddress != null then
              n.localAddress
            else if bcfg.localAddress != null && familyOf bcfg.localAddress == familyOf n.address then
              bcfg.localAddress
            else
              null;
        in
        if a == null then "local as ${toString bcfg.localAs};" else "local ${a} as ${toString bcfg.localAs};";
      perTable = table: fam: "hafront_t${toString table}_${fam}";
      kernel =
        table: fam:
        let
          into = if several then perTable table fam else collector fam;
        in
        lib.optionalString several ''
          ${fam} table ${into};
        ''
        + ''
          protocol kernel ${kernelProto table fam} {
            kernel table ${toString table};
            learn;
            ${fam} { table ${into}; import where krt_source = 73; export none; };
          }
        ''
        + lib.optionalString several ''
          protocol pipe hafront_p${toString table}_${fam} { table ${into}; peer table ${collector fam}; export all; import none; }
        '';
      # With BFD in its own BIRD, this BIRD's sessions do not ask for BFD (the
      # routers' `bfd on` sessions are answered by the other BIRD), and graceful
      # restart keeps the routes on the routers while this one restarts.
      neighbor =
        n:
        ''
          protocol bgp ${n.name} {
            ${localLine n}
            neighbor ${n.address} as ${toString n.as};
            bfd ${if n.bfd && !bfdSeparate then "on" else "off"};
        ''
        + lib.optionalString bfdSeparate "  graceful restart on;\n"
        + ''
            ${familyOf n.address} { table ${collector (familyOf n.address)}; import none; export all; };
          }
        '';
    in
    ''
      # Generated by services.hafront.anycast.bird (hafront's nixos/module.nix).
      # hafront keeps each healthy anycast group's prefixes as routes (proto 73) in
      # kernel table ${lib.concatMapStringsSep ", " toString anycastTables}; BIRD learns them and announces them to the
      # routers over BGP${if bfdSeparate then " (BFD runs in ${bfdUnit})" else ", with BFD"}.
      log syslog all;
      router id ${toString bcfg.routerId};
      protocol device hafront_device { }
    ''
    + lib.concatMapStrings (fam: "${fam} table ${collector fam};\n") families
    + lib.concatMapStrings (t: lib.concatMapStrings (kernel t) families) anycastTables
    + lib.optionalString (!bfdSeparate && lib.any (n: n.bfd) birdNeighbors) ''
      protocol bfd hafront_bfd {
        ${lib.concatMapStrings (i: "${bfdInterface i}\n") bcfg.bfd.interfaces}}
    ''
    + lib.concatMapStrings neighbor birdNeighbors;
  # The BIRD that runs only BFD (bfd.separate): a session to every neighbour with
  # `bfd = true`, on the same timers.
  bfdConfig =
    ''
      # Generated by services.hafront.anycast.bird (bfd.separate): BFD only, towards
      # the routers, in a BIRD of its own (unit ${bfdUnit}) that a restart of the
      # BGP BIRD does not touch. hafront reads its sessions on ${bfdSocket}.
      log syslog all;
      router id ${toString bcfg.routerId};
      protocol device hafront_device { }
      protocol bfd hafront_bfd {
    ''
    + lib.concatMapStrings (i: "  ${bfdInterface i}\n") bcfg.bfd.interfaces
    + lib.concatMapStrings (n: "  neighbor ${n.address};\n") (lib.filter (n: n.bfd) birdNeighbors)
    + "}\n";

  # Anycast groups: tracked names defined, every weight 0 (the daemon refuses
  # others: there is no priority to lower), prefixes.
  anycastTrackAssertions = lib.concatLists (
    lib.mapAttrsToList (
      gname: g:
      let
        where = "${opt}.settings.anycast.${gname}";
      in
      lib.concatMap (
        kind:
        map (t: {
          assertion = t.weight == 0;
          message = "${where}.${kind}: \"${t.name}\" has weight ${toString t.weight}; anycast has no priority, every tracked item is weight 0 (down withdraws)";
        }) g.${kind}
      ) [
        "track_interfaces"
        "track_checks"
        "track_scripts"
        "track_files"
        "track_services"
      ]
      ++ [
        {
          assertion = g.prefixes != [ ];
          message = "${where}.prefixes must not be empty";
        }
      ]
      ++ trackRefs where g
    ) anycastSettings
  );

  birdAssertions =
    lib.mapAttrsToList (gname: _: {
      assertion = birdEnabled;
      message = "${opt}.settings.anycast.${gname}: hafront announces through BIRD, which is not enabled on this node: set ${opt}.anycast.bird.enable = true (or services.${if birdModule == null then "bird" else birdModule}.enable with your own configuration learning kernel table ${toString (anycastGroups.${gname}.table or 100)})";
    }) anycastGroups
    ++ lib.optionals bcfg.enable (
      [
        {
          assertion = birdModule != null;
          message = "${opt}.anycast.bird.enable: this NixOS has neither services.bird nor services.bird2";
        }
        {
          assertion = anycastGroups != { } || anycastUnknown;
          message = "${opt}.anycast.bird.enable: no group in ${opt}.settings.anycast, so BIRD would announce nothing; declare ${opt}.settings.anycast.<name>.prefixes";
        }
        {
          assertion = bcfg.neighbors != { };
          message = "${opt}.anycast.bird.neighbors: no router to announce to; add ${opt}.anycast.bird.neighbors.<name> = { address = ...; as = ...; }";
        }
        {
          assertion = bcfg.routerId != null;
          message = "${opt}.anycast.bird.routerId must be set (this node's IPv4 address towards the routers): BIRD would otherwise pick one itself, possibly the anycast address that every node shares";
        }
        {
          assertion = bcfg.localAs != null;
          message = "${opt}.anycast.bird.localAs must be set (this node's AS number)";
        }
      ]
      ++ lib.mapAttrsToList (name: _: {
        assertion = validBirdName name;
        message = "${opt}.anycast.bird.neighbors.${name}: the name becomes a BIRD protocol name: letters, digits and _, not starting with a digit or hafront_, not a BIRD keyword";
      }) bcfg.neighbors
      ++ lib.concatLists (
        lib.mapAttrsToList (
          gname: g:
          map (prefix: {
            assertion = bcfg.neighbors == { } || builtins.elem (familyOf prefix) neighborFamilies;
            message = "${opt}.settings.anycast.${gname}.prefixes: ${prefix} is ${familyName prefix}, but no neighbour in ${opt}.anycast.bird.neighbors is (a session carries its own address family)";
          }) (g.prefixes or [ ])
        ) anycastGroups
      )
      ++ lib.mapAttrsToList (gname: g: {
        assertion = (g.bird_socket or birdSocket) == birdSocket;
        message = "${opt}.settings.anycast.${gname}.bird_socket: nixpkgs' BIRD listens on ${birdSocket}, not ${g.bird_socket or ""}";
      }) anycastGroups
      ++ lib.optionals bfdSeparate (
        lib.mapAttrsToList (gname: g: {
          assertion = (g.bfd_socket or bfdSocket) == bfdSocket;
          message = "${opt}.settings.anycast.${gname}.bfd_socket: with ${opt}.anycast.bird.bfd.separate the BFD BIRD listens on ${bfdSocket}, not ${g.bfd_socket or ""}";
        }) anycastGroups
      )
    );

  credentialsDir = "/run/credentials/hafront.service";
  # The daemon's defaults, and the unit's StateDirectory / RuntimeDirectory.
  stateDir = "/var/lib/hafront";
  runtimeDir = "/run/hafront";

  # Each tracked name of an instance or anycast group (at option path `where`) is
  # defined in the table its kind refers to.
  trackRefs =
    where: item:
    let
      ref = kind: table: lib.map (t: {
        assertion = cfg.settings.${table} ? ${t.name};
        message = "${where}.${kind}: \"${t.name}\" is not defined in ${opt}.settings.${table}";
      }) item.${kind};
    in
    ref "track_checks" "checks"
    ++ ref "track_scripts" "scripts"
    ++ ref "track_files" "files"
    ++ ref "track_services" "services";
  trackAssertions = lib.concatLists (
    lib.mapAttrsToList (iname: trackRefs "${opt}.settings.vrrp.instances.${iname}") instances
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

  # networking.firewall.backend and the firewalld module are recent in nixpkgs; an
  # older NixOS has only the iptables and nftables firewalls.
  firewallBackend =
    config.networking.firewall.backend
      or (if config.networking.nftables.enable then "nftables" else "iptables");
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
        Validate the configuration at build time with `hafront check-config
        --offline --no-env`: every key, type, range and cross-reference, nothing of
        the machine (token and certificate files, users, script ownership are
        checked by `systemctl reload` and at start). Turn off when required keys
        come only from `environmentFile`. A `configFile` outside the Nix store is
        not checked at build time (the build cannot read it).
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/hafront.env";
      description = ''
        Environment file of the unit, for secrets kept out of the Nix store, e.g.
        `HAFRONT_VRRP__INSTANCES__WEB__AUTH_PASS=...` (a `HAFRONT_*` variable
        overrides the key it names). systemd reads it as root, so a root-only file
        works. The daemon keeps the environment it started with (a reload does not
        re-read it), so a change of this file restarts hafront: at once when its
        path changes (`restartTriggers`), and through `hafront-environment.path`
        when its content changes in place (`restartOnEnvironmentChange`).
      '';
    };

    restartOnEnvironmentChange = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Restart hafront when the content of `environmentFile` changes (a systemd
        path unit watching it). A restart is a planned handover: the peer takes
        the VIPs within its skew time and this node preempts them back.
      '';
    };

    credentials = mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = literalExpression ''{ api-token = "/run/secrets/hafront-api-token"; }'';
      description = ''
        Files passed to the service with systemd's `LoadCredential=`: systemd
        reads them as root, so root-only secrets work for the dynamic user the
        service runs as. The service sees each as
        `${credentialsDir}/<name>`; name that path in the configuration
        (`api.token_file`, `checks.<name>.ca_file`, ...).
      '';
    };

    apiTokenFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/hafront-api-token";
      description = ''
        A root-only file holding the API's bearer token: passed as the credential
        `api-token` and set as `settings.api.token_file`
        (`${credentialsDir}/api-token`).
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Accept VRRP (IP protocol 112, IPv4 and IPv6) in the NixOS firewall, on every
        `networking.firewall.backend`: an `ip46tables` rule (iptables), a rule in
        `extraInputRules` (nftables), the protocol `vrrp` in NixOS' default zone
        `nixos-fw-default` (firewalld; with another `DefaultZone` an assertion asks
        you to add it there). With `anycast.bird.enable`, also BGP (TCP 179) and
        BFD (UDP 3784) through `networking.firewall.allowedTCPPorts`/`allowedUDPPorts`.
      '';
    };

    ipvs = {
      enable = mkOption {
        type = types.bool;
        default = effectiveServices != { };
        defaultText = literalMD ''
          whether `settings.ipvs.services` (or the `[ipvs.services]` of a
          `configFile` given as a path literal) declares a service
        '';
        description = ''
          Load the IPVS kernel modules at boot (hafront runs without
          CAP_SYS_MODULE). Set it, and `ipvs.schedulers`, when `configFile` is not a
          path literal: such a file is not read at evaluation.
        '';
      };
      schedulers = mkOption {
        type = types.listOf types.str;
        default = schedulersInSettings;
        defaultText = literalMD "the schedulers of those services (`wlc` where none is named)";
        description = "IPVS schedulers whose modules (`ip_vs_<name>`) are loaded at boot.";
      };
    };

    nginx = {
      enable = mkEnableOption ''
        nginx on this node (`services.nginx`), followed by hafront in two ways that
        every selected instance tracks: `[services.nginx]` adopts `nginx.service`
        (`systemd_unit`: its death is seen at once through a pidfd, no `pidof`
        poll), and an http check of a loopback health endpoint catches an nginx
        that runs but does not answer. systemd starts and restarts nginx; hafront
        stays unprivileged'';
      healthPort = mkOption {
        type = types.port;
        default = 8099;
        description = "Loopback port of the health endpoint (`http://127.0.0.1:<port>/healthz`).";
      };
      checkName = mkOption {
        type = types.str;
        default = "nginx";
        description = "Name of the generated check under `settings.checks` and of the adopted service under `settings.services`.";
      };
      weight = mkOption {
        type = types.ints.between (-253) 253;
        default = 0;
        description = "Tracking weight of both the service and the check: 0 faults the instance while nginx fails; negative lowers its priority.";
      };
      instances = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        description = "Instances that track nginx; null means all of them.";
      };
      anycast = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        description = "Anycast groups (`settings.anycast`) that track nginx, with weight 0 (a failing nginx withdraws); null means all of them.";
      };
    };

    anycast.bird = {
      enable = mkEnableOption ''
        BIRD on this node as the BGP and BFD speaker of the anycast groups
        (`settings.anycast`): `services.bird` (`services.bird2` on NixOS 24.11 and
        older) with a generated configuration that learns hafront's routes (proto 73)
        from the groups' kernel tables and exports exactly those to `neighbors`,
        with BFD. hafront is ordered after BIRD, reads its control socket (the unit
        gets BIRD's group) and, with `openFirewall`, BGP (TCP 179) and BFD (UDP
        3784) are accepted. Lines added to `services.bird.config` are appended to
        the generated ones'';
      routerId = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "198.51.100.11";
        description = "BIRD's router id: this node's IPv4 address towards the routers (required).";
      };
      localAs = mkOption {
        type = types.nullOr (types.ints.between 1 4294967295);
        default = null;
        example = 65001;
        description = "This node's AS number (required).";
      };
      localAddress = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "198.51.100.11";
        description = "Source address of the BGP sessions of its family (`local <address> as <localAs>`); null lets BIRD choose.";
      };
      neighbors = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              address = mkOption {
                type = types.str;
                example = "198.51.100.1";
                description = "The router's address; the session carries this address's family (IPv4 or IPv6 prefixes).";
              };
              as = mkOption {
                type = types.ints.between 1 4294967295;
                example = 65000;
                description = "The router's AS number.";
              };
              localAddress = mkOption {
                type = types.nullOr types.str;
                default = null;
                description = "Source address of this session; null: `anycast.bird.localAddress` when it is of this neighbour's family, else BIRD's choice.";
              };
              bfd = mkOption {
                type = types.bool;
                default = true;
                description = "BFD on this session: a dead node's routes leave the router after the BFD detection time, not the BGP hold time.";
              };
            };
          }
        );
        default = { };
        example = literalExpression ''{ router1 = { address = "198.51.100.1"; as = 65000; }; }'';
        description = ''
          The routers (BGP neighbours), by BIRD protocol name: the name is what
          `hafront status` and the metric `hafront_anycast_bgp_session_up{protocol}`
          show. Letters, digits and `_`, not a BIRD keyword (`router`, `bgp`, ...).
        '';
      };
      bfd = {
        interfaces = mkOption {
          type = types.listOf types.str;
          default = [ "*" ];
          example = [ "eth1" ];
          description = "Interface patterns the BFD timers apply to.";
        };
        interval = mkOption {
          type = types.ints.between 1 60000;
          default = 100;
          description = "BFD transmit and receive interval, in ms.";
        };
        multiplier = mkOption {
          type = types.ints.between 1 255;
          default = 3;
          description = "Missed BFD packets before the session is down: detection time = interval x multiplier (300 ms by default).";
        };
        separate = mkOption {
          type = types.bool;
          default = false;
          description = ''
            Run BFD in a BIRD of its own (unit `hafront-bird-bfd`, socket
            `${bfdSocket}`, read by hafront as each group's `bfd_socket`), so that
            a restart of the BGP BIRD does not take BFD down: its BGP sessions get
            `graceful restart on`, its unit stops with `birdc graceful restart` (no
            Cease to the routers) and starts with `-R`, and the routers keep this
            node's routes through the restart while BFD says it is alive. The
            routers need `graceful restart on` and `bfd on` on these sessions
            (docs/operations.md, "Anycast front ends"). Off: BFD runs inside the one
            BIRD, and a restart of it withdraws the node until its sessions are back.
          '';
        };
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = instances != { } || anycastSettings != { } || cfg.configFile != null;
          message = "${opt}.settings.vrrp.instances must declare at least one instance, or ${opt}.settings.anycast a group (or set ${opt}.configFile)";
        }
        {
          assertion = duplicateRouters == [ ];
          message = "${opt}.settings.vrrp.instances: ${
            lib.concatMapStringsSep ", " (d: d.iname) duplicateRouters
          } share interface, vrid and address family (one virtual router on the wire)";
        }
      ]
      ++ lib.optionals (effectiveSettings != null) [
        # The unit's StateDirectory/RuntimeDirectory are the only paths the dynamic
        # user can write (ProtectSystem=strict), and state_dir must survive a stop.
        {
          assertion = (effectiveSettings.state_dir or stateDir) == stateDir;
          message = "${opt}.settings.state_dir must be ${stateDir} (the unit's StateDirectory, owned by its dynamic user; every other path is read-only for it), not ${effectiveSettings.state_dir or ""}";
        }
        {
          assertion = (effectiveSettings.runtime_dir or runtimeDir) == runtimeDir;
          message = "${opt}.settings.runtime_dir must be ${runtimeDir} (the unit's RuntimeDirectory), not ${effectiveSettings.runtime_dir or ""}";
        }
      ]
      ++ instanceAssertions
      ++ trackAssertions
      ++ anycastTrackAssertions
      ++ birdAssertions
      ++ lib.mapAttrsToList (sname: s: {
        assertion = !(s ? master_of) || instances ? ${s.master_of};
        message = "${opt}.settings.ipvs.services.${sname}.master_of: no instance \"${s.master_of or ""}\" in ${opt}.settings.vrrp.instances";
      }) services
      ++ lib.optional cfg.nginx.enable {
        assertion = lib.all (i: instances ? ${i}) nginxInstances;
        message = "${opt}.nginx.instances: ${
          lib.concatStringsSep ", " (lib.filter (i: !(instances ? ${i})) nginxInstances)
        } not in ${opt}.settings.vrrp.instances";
      }
      ++ lib.optional (cfg.nginx.enable && cfg.nginx.anycast != null) {
        assertion = lib.all (g: anycastSettings ? ${g}) nginxAnycast;
        message = "${opt}.nginx.anycast: ${
          lib.concatStringsSep ", " (lib.filter (g: !(anycastSettings ? ${g})) nginxAnycast)
        } not in ${opt}.settings.anycast";
      };

      warnings =
        lib.optional (cfg.configFile != null && fileSettings == null && !cfg.ipvs.enable) ''
          ${opt}.configFile is not a path literal, so it is not read at evaluation: if it
          declares [ipvs.services], set ${opt}.ipvs.enable and ${opt}.ipvs.schedulers
          (hafront has no CAP_SYS_MODULE to load ip_vs itself).''
        ++ lib.optional (cfg.configFile != null && cfg.nginx.enable) ''
          ${opt}.nginx.enable adds [services.${cfg.nginx.checkName}], [checks.${cfg.nginx.checkName}] and the
          instances' tracks to ${opt}.settings, which ${opt}.configFile replaces:
          write them into that file.''
        ++ lib.optional (cfg.checkConfig && !configInStore) ''
          ${opt}.configFile (${toString cfg.configFile}) is outside the Nix store: it is
          not checked at build time, only by `systemctl reload hafront` and at start.'';

      services.hafront.credentials = mkIf (cfg.apiTokenFile != null) { api-token = cfg.apiTokenFile; };
      services.hafront.settings = mkIf (cfg.apiTokenFile != null) {
        api.token_file = mkDefault "${credentialsDir}/api-token";
      };

      environment.etc."hafront/hafront.toml".source = checkedConfig;
      environment.systemPackages = [ cfg.package ];

      systemd.services.hafront = {
        description = "hafront high-availability daemon (VRRP, IPVS, health checks)";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        # accept = false drives nftables through `nft`; an adopted unit
        # (systemd_unit) is followed through `systemctl show`.
        path = [
          pkgs.nftables
          config.systemd.package
        ];
        # A new configuration is a reload (SIGHUP: unchanged instances keep their
        # state, no VIP moves); a new package or unit is a restart, which hands the
        # VIPs over with priority-0 adverts. stopIfChanged = false keeps that restart
        # one step (no stop before the new system is activated).
        reloadTriggers = [ checkedConfig ];
        # The daemon keeps the environment it started with: another environment
        # file is a restart (a file changed in place: hafront-environment.path).
        restartTriggers = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
        stopIfChanged = false;
        serviceConfig = {
          Type = "notify";
          NotifyAccess = "main";
          WatchdogSec = mkDefault "5s";
          ExecStart = "${lib.getExe cfg.package} run -c ${configPath}";
          ExecReload = [
            # Refuse the reload (and keep the running config) when the file is
            # invalid; here, on the target, the machine is checked too (token and
            # certificate files, users, script ownership).
            "${lib.getExe cfg.package} check-config -c ${configPath}"
            "${lib.getExe' pkgs.coreutils "kill"} -HUP $MAINPID"
          ];
          # A hafront that crashed or was killed (SIGKILL, OOM, the watchdog) leaves
          # its VIPs, which answer ARP/ND beside the new master until it starts
          # again: removed as soon as it stops ("-": a failure fails nothing).
          ExecStopPost = "-${lib.getExe cfg.package} remove-vips -c ${configPath}";
          EnvironmentFile = mkIf (cfg.environmentFile != null) cfg.environmentFile;
          # Root-only secrets for the dynamic user: ${credentialsDir}/<name>.
          LoadCredential = mkIf (cfg.credentials != { }) (
            lib.mapAttrsToList (name: path: "${name}:${path}") cfg.credentials
          );
          KillMode = "mixed";
          TimeoutStopSec = "10s";
          Restart = "on-failure";
          RestartSec = "1s";
          # 2: invalid configuration; a restart does not fix it.
          RestartPreventExitStatus = 2;
          # runtime_dir: status file, API socket; emptied at every stop.
          RuntimeDirectory = "hafront";
          RuntimeDirectoryMode = "0755";
          # state_dir (/var/lib/hafront, owned by the dynamic user, 0700): what must
          # survive a restart: API overrides (maintenance...) and the IPVS services
          # hafront created (ipvs-owned.json).
          StateDirectory = "hafront";
          StateDirectoryMode = "0700";
          LimitNOFILE = 65536;

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
          # The two sysctls hafront writes in its own network namespace (read-only
          # above otherwise): vrrp.disable_local_igmp and [ipvs.sysctl].
          ReadWritePaths = [
            "-/proc/sys/net/ipv4/igmp_link_local_mcast_reports"
            "-/proc/sys/net/ipv4/vs"
          ];
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
          # As the appliance unit: owner-only files, other users' processes
          # invisible in /proc (an adopted nginx is watched through a pidfd),
          # no System V IPC shared with the host.
          UMask = "0077";
          ProtectProc = "invisible";
          PrivateIPC = true;
        };
      };
    }

    (mkIf (cfg.environmentFile != null && cfg.restartOnEnvironmentChange) {
      # The environment file changed in place (a secret rotated): restart, since a
      # reload would validate the new file but the daemon would keep the old values.
      systemd.paths.hafront-environment = {
        wantedBy = [ "multi-user.target" ];
        pathConfig.PathChanged = cfg.environmentFile;
      };
      systemd.services.hafront-environment = {
        description = "Restart hafront for its changed environment file";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${lib.getExe' config.systemd.package "systemctl"} try-restart hafront.service";
        };
      };
    })

    # VRRP is IP protocol 112 (RFC 5798 section 5.1.1.3 / 5.1.2.4), for IPv4 and IPv6.
    (mkIf cfg.openFirewall {
      networking.firewall = mkMerge [
        (mkIf (firewallBackend == "iptables") {
          extraCommands = ''
            ip46tables -A nixos-fw -p 112 -m comment --comment "services.hafront.openFirewall" -j nixos-fw-accept
          '';
          extraStopCommands = ''
            ip46tables -D nixos-fw -p 112 -m comment --comment "services.hafront.openFirewall" -j nixos-fw-accept 2>/dev/null || true
          '';
        })
        (mkIf (firewallBackend == "nftables") {
          extraInputRules = ''
            meta l4proto 112 accept comment "services.hafront.openFirewall: VRRP"
          '';
        })
      ];
      assertions = [
        {
          assertion =
            firewallBackend != "firewalld"
            || config.services.firewalld.settings.DefaultZone == "nixos-fw-default";
          message = "${opt}.openFirewall: firewalld's default zone is ${config.services.firewalld.settings.DefaultZone}, not NixOS' nixos-fw-default; set ${opt}.openFirewall = false and add \"vrrp\" to services.firewalld.zones.${config.services.firewalld.settings.DefaultZone}.protocols";
        }
      ];
    })
    # firewalld ignores extraCommands and extraInputRules: the protocol goes into
    # the zone NixOS makes the default (firewall-firewalld.nix). Only that one: a
    # definition of another zone here would replace the zone firewalld ships.
    (lib.optionalAttrs (options.services ? firewalld) {
      services.firewalld.zones = mkIf (cfg.openFirewall && firewallBackend == "firewalld") {
        nixos-fw-default.protocols = [ "vrrp" ];
      };
    })

    # Anycast: BIRD runs the generated configuration (anycast.bird.enable), and
    # whenever BIRD runs next to anycast groups, hafront starts after it (the
    # socket exists) and may read its socket (0660, BIRD's user and group).
    (lib.optionalAttrs (birdModule != null) {
      services.${birdModule} = mkIf bcfg.enable {
        enable = true;
        # First: the site's own lines (filters, passwords, more protocols) follow.
        config = lib.mkBefore birdConfig;
      };
      # A restart without a Cease: the routers keep the routes (graceful restart)
      # while the other BIRD keeps BFD up; -R recovers them after the start.
      systemd.services.${birdModule}.serviceConfig = mkIf bfdSeparate {
        ExecStart = lib.mkForce "${birdPackage}/bin/bird -R -c ${birdConfPath}";
        ExecStop = lib.mkForce "${birdPackage}/bin/birdc -s ${birdSocket} graceful restart";
      };
    })
    (mkIf (bfdSeparate && birdModule != null) {
      environment.etc."hafront/bird-bfd.conf".text = bfdConfig;
      # The same sandbox as nixpkgs' bird unit; BFD needs raw sockets and port 3784.
      systemd.services.hafront-bird-bfd = {
        description = "BIRD running only BFD towards the routers (hafront anycast)";
        wantedBy = [ "multi-user.target" ];
        before = [ birdUnit ];
        restartTriggers = [ bfdConfig ];
        serviceConfig = {
          ExecStartPre = "${birdPackage}/bin/bird -p -c /etc/hafront/bird-bfd.conf";
          ExecStart = "${birdPackage}/bin/bird -f -c /etc/hafront/bird-bfd.conf -s ${bfdSocket} -P /run/hafront-bird-bfd/bird.pid";
          ExecReload = "${birdPackage}/bin/birdc -s ${bfdSocket} configure";
          Restart = "on-failure";
          User = birdModule;
          Group = birdModule;
          RuntimeDirectory = "hafront-bird-bfd";
          RuntimeDirectoryMode = "0750";
          CapabilityBoundingSet = birdCaps;
          AmbientCapabilities = birdCaps;
          ProtectSystem = "full";
          ProtectHome = "yes";
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          PrivateTmp = true;
          PrivateDevices = true;
          SystemCallFilter = "~@cpu-emulation @debug @keyring @module @mount @obsolete @raw-io";
          MemoryDenyWriteExecute = "yes";
        };
      };
      systemd.services.hafront = {
        wants = [ bfdUnit ];
        after = [ bfdUnit ];
      };
    })
    (mkIf (birdEnabled && (anycastGroups != { } || bcfg.enable)) {
      systemd.services.hafront = {
        wants = [ birdUnit ];
        after = [ birdUnit ];
        serviceConfig.SupplementaryGroups = [ birdModule ];
      };
    })
    (mkIf (cfg.openFirewall && bcfg.enable) {
      # BGP, and BFD's single-hop control packets (RFC 5881; BIRD has no echo mode).
      networking.firewall.allowedTCPPorts = [ 179 ];
      networking.firewall.allowedUDPPorts = [ 3784 ];
    })

    (mkIf cfg.ipvs.enable {
      boot.kernelModules = [ "ip_vs" ] ++ map (s: "ip_vs_${s}") cfg.ipvs.schedulers;
      # A NAT director routes the real servers' replies back to the clients.
      boot.kernel.sysctl."net.ipv4.ip_forward" = mkIf (lib.any (s: (s.forwarding or "nat") == "nat") (
        builtins.attrValues effectiveServices
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
      # Adopted, not started: systemd runs nginx (and restarts it); hafront sees
      # its MainPID die at once. (`[services.nginx]` without systemd_unit would
      # have hafront start nginx itself, which needs it to run as root.)
      services.hafront.settings.services.${cfg.nginx.checkName} = {
        kind = mkDefault "nginx";
        systemd_unit = mkDefault "nginx.service";
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
