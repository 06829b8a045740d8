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
          # hafront:latest, created at the date of the flake's last commit.
          oci-image = pkgs.callPackage ./containers/image.nix {
            inherit hafront;
            created =
              let
                d = self.lastModifiedDate or "19700101000001";
                at = builtins.substring;
              in
              "${at 0 4 d}-${at 4 2 d}-${at 6 2 d}T${at 8 2 d}:${at 10 2 d}:${at 12 2 d}Z";
          };
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

      # NixOS VM tests: vm-test (VRRP: master, backup, real server, client) and
      # vm-test-anycast (a BIRD router with ECMP and BFD, three anycast front ends,
      # a client); `nix flake check` runs them, which needs KVM (`--option
      # system-features kvm`; without it the checks cannot run).
      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.hafront;
          vm-test = pkgs.testers.runNixOSTest (import ./vm-tests/nixos/failover.nix { inherit self; });
          vm-test-anycast = pkgs.testers.runNixOSTest (import ./vm-tests/nixos/anycast.nix { inherit self; });
        }
      );

      # `nix run .#vm-test` / `.#vm-test-anycast`: a VM test's driver (add
      # --interactive for a shell).
      apps = forAllSystems (
        system: _pkgs: {
          vm-test = {
            type = "app";
            program = "${self.checks.${system}.vm-test.driver}/bin/nixos-test-driver";
            meta.description = "hafront's NixOS VM test (master, backup, client): its driver, --interactive for a shell";
          };
          vm-test-anycast = {
            type = "app";
            program = "${self.checks.${system}.vm-test-anycast.driver}/bin/nixos-test-driver";
            meta.description = "hafront's anycast NixOS VM test (BIRD router, three front ends, client): its driver, --interactive for a shell";
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
              bird2 # scripts/lab/test_anycast.sh
            ];
          };
        }
      );

      # nixfmt is the RFC 166 style (nixfmt-rfc-style is its deprecated alias).
      formatter = forAllSystems (_system: pkgs: pkgs.nixfmt);
    };
}
