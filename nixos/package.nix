# hafront from this repository's sources and Cargo.lock (no vendored crates: the
# fetcher reads the lock file). Used by flake.nix and as the module's default package:
#   pkgs.callPackage ./nixos/package.nix { }
{
  lib,
  rustPlatform,
}:

let
  cargoToml = lib.importTOML ../daemon/Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "hafront";
  inherit (cargoToml.package) version;

  # Only what the build reads, so editing docs or scripts does not rebuild.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../daemon
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "--package" "hafront" ];
  cargoTestFlags = [ "--package" "hafront" ];

  # Unit, codec, replay and configuration tests run in the sandbox (no network
  # namespaces, no root); the lab tests (scripts/lab) and VM tests are separate.
  doCheck = true;

  # No wrapper: accept mode (accept = false) runs `nft` from PATH, which the NixOS
  # module (systemd `path`) and the OCI image provide; hafront stays a plain ELF.

  meta = {
    description = "High-availability daemon for Linux front-end nodes: VRRP, IPVS, health checks";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "hafront";
    platforms = lib.platforms.linux;
  };
}
