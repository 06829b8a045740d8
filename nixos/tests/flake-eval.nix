# Evaluates flake.nix's outputs against a stub nixpkgs (nixpkgs' lib, and records in
# place of derivations), so the wiring is checked where Nix cannot build: the package
# from Cargo.toml/Cargo.lock, the OCI image's entrypoint, nixosModules using the
# flake's package, checks and apps.vm-test. nixos/tests/eval.sh runs it.
{ lib }:
let
  stubs = import ./stubs.nix { inherit lib; };
  inherit (stubs) drv;
  pkgs = stubs.pkgs // {
    rustPlatform.buildRustPackage =
      args:
      drv "${args.pname}-${args.version}" {
        inherit args;
        inherit (args) version meta;
        # Coercing the filtered source runs its filter over the tree (read-only mode:
        # hashed, not copied).
        srcPath = "${args.src}";
      };
    callPackage =
      f: over:
      let
        fn = if builtins.isFunction f then f else import f;
      in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // over);
    dockerTools = {
      buildLayeredImage = args: drv "hafront-image" { inherit args; };
      binSh = drv "bin-sh" { };
      usrBinEnv = drv "usr-bin-env" { };
      fakeNss = drv "fake-nss" { };
    };
    installShellFiles = drv "install-shell-files" { };
    tini = drv "tini" { meta.mainProgram = "tini"; };
    nginx = drv "nginx" { meta.mainProgram = "nginx"; };
    iproute2 = drv "iproute2" { };
    bashInteractive = drv "bash" { };
    testers.runNixOSTest =
      t:
      drv "vm-test" {
        test = t;
        driver = drv "nixos-test-driver" { };
      };
    mkShell = args: drv "shell" { inherit args; };
    nixfmt = drv "nixfmt" { };
    bird2 = drv "bird2" { };
    jq = drv "jq" { };
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: pkgs);
  };
  # As Nix gives it to a flake: the date of its last commit.
  self = flake // {
    lastModifiedDate = "20261204101530";
  };
  flake = (import ../../flake.nix).outputs {
    inherit self nixpkgs;
  };
  sys = "x86_64-linux";
  hafront = flake.packages.${sys}.hafront;
  image = flake.packages.${sys}.oci-image.args;
  test = flake.checks.${sys}.vm-test.test;
  # A VM test node through the flake's module and the NixOS stubs; options of NixOS
  # the stubs do not declare (virtualisation.vlans, networking.interfaces, ...) are
  # ignored (_module.check = false).
  evalNode =
    extra:
    (lib.evalModules {
      specialArgs = { inherit pkgs; };
      modules = [
        stubs.nixosStubs
        {
          config._module.check = false;
          options.specialisation = lib.mkOption {
            type = lib.types.attrsOf (
              lib.types.submodule { options.configuration = lib.mkOption { type = lib.types.deferredModule; }; }
            );
            default = { };
          };
        }
      ]
      ++ extra;
    }).config;
  nodeResult =
    c:
    {
      inherit (c.services.hafront) settings;
      failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
      kernelModules = c.boot.kernelModules;
      firewall = c.networking.firewall.extraCommands;
    };
  node = name: evalNode [ test.nodes.${name} ];
  anycastTest = flake.checks.${sys}.vm-test-anycast.test;
  anycastNode = name: evalNode [ anycastTest.nodes.${name} ];
  anycastResult =
    name:
    let
      c = anycastNode name;
    in
    {
      failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
      bird = c.services.bird.config;
      birdUnit = c.systemd.services.bird.serviceConfig;
      # anycast.bird.bfd.separate: the BFD-only BIRD's configuration.
      bfdBird = c.environment.etc."hafront/bird-bfd.conf".text or null;
    }
    // lib.optionalAttrs (c.services.hafront.enable or false) {
      inherit (c.services.hafront) settings;
      hafrontUnit = {
        inherit (c.systemd.services.hafront) after wants;
        SupplementaryGroups = c.systemd.services.hafront.serviceConfig.SupplementaryGroups or null;
      };
      allowedTCPPorts = c.networking.firewall.allowedTCPPorts;
      allowedUDPPorts = c.networking.firewall.allowedUDPPorts;
    };
  reweighted =
    name: evalNode [
      test.nodes.${name}
      (node name).specialisation.reweighted.configuration
    ];
in
{
  outputs = {
    packages = builtins.attrNames flake.packages.${sys};
    nixosModules = builtins.attrNames flake.nixosModules;
    checks = builtins.attrNames flake.checks.${sys};
    apps = flake.apps.${sys};
    devShells = builtins.attrNames flake.devShells.${sys};
    systems = builtins.attrNames flake.packages;
  };
  package = {
    inherit (hafront.args) pname version cargoBuildFlags;
    lockFile = toString hafront.args.cargoLock.lockFile;
    srcIsStorePath = lib.hasPrefix "/nix/store/" hafront.srcPath;
    # The filter keeps what the build reads: docs/configuration.md is compiled in
    # (hafront.toml(5)); other docs are not.
    srcHasConfigurationMd = hafront.args.src.filter (toString ../../docs/configuration.md) "regular";
    srcHasOperationsMd = hafront.args.src.filter (toString ../../docs/operations.md) "regular";
    postInstall = hafront.args.postInstall;
    nativeBuildInputs = map (d: d.name) hafront.args.nativeBuildInputs;
    mainProgram = hafront.args.meta.mainProgram;
  };
  image = {
    inherit (image)
      name
      tag
      created
      extraCommands
      ;
    inherit (image.config) Entrypoint Cmd StopSignal;
    contents = map (c: c.name) image.contents;
  };
  formatter = flake.formatter.${sys}.name;
  modulePackage = (evalNode [ flake.nixosModules.default ]).services.hafront.package.name;
  vmNodes = {
    master = nodeResult (node "master");
    backup = nodeResult (node "backup");
    master-reweighted = nodeResult (reweighted "master");
  };
  anycastTest = {
    inherit (anycastTest) name testScript;
    nodes = builtins.attrNames anycastTest.nodes;
    subtests = lib.filter (l: lib.hasPrefix "with subtest(" l) (
      map (lib.removePrefix "    ") (lib.splitString "\n" anycastTest.testScript)
    );
    results = lib.genAttrs [
      "router"
      "fe1"
      "fe2"
      "fe3"
    ] anycastResult;
  };
  vmTest = {
    inherit (test) name;
    nodes = builtins.attrNames test.nodes;
    inherit (test) testScript;
    subtests = lib.filter (l: lib.hasPrefix "with subtest(" l) (
      map (lib.removePrefix "    ") (lib.splitString "\n" test.testScript)
    );
  };
}
