# hafront from this repository's sources and Cargo.lock (no vendored crates: the
# fetcher reads the lock file). Used by flake.nix and as the module's default package:
#   pkgs.callPackage ./nixos/package.nix { }
{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
}:

let
  cargoToml = lib.importTOML ../daemon/Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "hafront";
  inherit (cargoToml.package) version;

  # Only what the build reads, so editing docs or scripts does not rebuild.
  # (cleanSourceWith rather than lib.fileset: it also evaluates with older Nix, as
  # nixos/tests/eval.sh does with Debian's Nix 2.8.)
  src = lib.cleanSourceWith {
    name = "hafront-source";
    src = ../.;
    filter =
      path: _type:
      let
        rel = lib.removePrefix (toString ../. + "/") (toString path);
      in
      rel == "Cargo.toml"
      || rel == "Cargo.lock"
      || rel == "daemon"
      || lib.hasPrefix "daemon/" rel
      || rel == "crates"
      || lib.hasPrefix "crates/" rel
      # hafront.toml(5) is docs/configuration.md, compiled in (daemon/src/manpage.rs).
      || rel == "docs"
      || rel == "docs/configuration.md";
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "--package" "hafront" ];
  # The workspace's crates (crates/vrrp, crates/ipvs) have their own unit tests.
  cargoTestFlags = [ "--workspace" ];

  # Unit, codec, replay and configuration tests run in the sandbox (no network
  # namespaces, no root); the lab tests (scripts/lab) and VM tests are separate.
  doCheck = true;

  # Man pages (hafront(8), one per subcommand, hafront.toml(5)) and bash/zsh/fish
  # completions, written by the binary itself: only where the build machine can run
  # it (a cross build ships without them, as nixpkgs packages do).
  nativeBuildInputs = [ installShellFiles ];
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    $out/bin/hafront generate man "$TMPDIR/man"
    installManPage "$TMPDIR"/man/*
    installShellCompletion --cmd hafront \
      --bash <($out/bin/hafront generate completions bash) \
      --zsh <($out/bin/hafront generate completions zsh) \
      --fish <($out/bin/hafront generate completions fish)
  '';

  # No wrapper: accept mode (accept = false) runs `nft` from PATH, which the NixOS
  # module (systemd `path`) and the OCI image provide; hafront stays a plain ELF.

  meta = {
    description = "High-availability daemon for Linux front-end nodes: VRRP, IPVS, health checks";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "hafront";
    platforms = lib.platforms.linux;
  };
}
