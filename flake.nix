{
  description = "hafront: high-availability daemon for Linux front-end nodes (VRRP, IPVS, health checks)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: { hafront = final.callPackage ./nixos/package.nix { }; };

      packages = forAllSystems (
        system: pkgs:
        let
          hafront = pkgs.callPackage ./nixos/package.nix { };
        in
        {
          inherit hafront;
          oci-image = pkgs.callPackage ./containers/image.nix { inherit hafront; };
          default = hafront;
        }
      );

      # services.hafront; the package defaults to this flake's build.
      nixosModules.hafront =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          services.hafront.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.hafront;
        };
      nixosModules.default = self.nixosModules.hafront;

      # NixOS VM tests (master, backup, client); `nix flake check` runs them.
      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.hafront;
          vm-test = pkgs.testers.runNixOSTest (import ./vm-tests/nixos/failover.nix { inherit self; });
        }
      );

      # `nix run .#vm-test`: the VM test's driver (add --interactive for a shell).
      apps = forAllSystems (
        system: _pkgs: {
          vm-test = {
            type = "app";
            program = "${self.checks.${system}.vm-test.driver}/bin/nixos-test-driver";
          };
        }
      );

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            inputsFrom = [ self.packages.${system}.hafront ];
            packages = with pkgs; [
              cargo
              rustc
              clippy
              rustfmt
              rust-analyzer
              # the lab and VM tests (scripts/test)
              iproute2
              nftables
              keepalived
              nginx
              tcpdump
              python3
              qemu
              ipvsadm
            ];
          };
        }
      );

      formatter = forAllSystems (_system: pkgs: pkgs.nixfmt-rfc-style);
    };
}
