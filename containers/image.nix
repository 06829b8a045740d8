# The OCI image built by Nix: `nix build .#oci-image && docker load < result`.
# Same contract as containers/Containerfile: tini as PID 1 forwarding signals to
# hafront, iproute2 and nftables on PATH, the default configuration in /etc/hafront.
#   docker run -d --privileged --net=host -v /etc/hafront:/etc/hafront:ro \
#       --env-file node-a.env hafront:<version>
{
  dockerTools,
  hafront,
  tini,
  iproute2,
  nftables,
  coreutils,
  bashInteractive,
}:

dockerTools.buildLayeredImage {
  name = "hafront";
  tag = hafront.version;

  contents = [
    hafront
    tini
    iproute2
    nftables
    # A shell and coreutils for exec checks and track scripts, and for debugging.
    coreutils
    bashInteractive
    dockerTools.binSh
  ];

  extraCommands = ''
    mkdir -p etc/hafront run/hafront tmp
    chmod 1777 tmp
    cp ${./hafront.toml} etc/hafront/hafront.toml
  '';

  config = {
    # See containers/Containerfile for why tini is PID 1.
    Entrypoint = [
      "${tini}/bin/tini"
      "--"
      "${hafront}/bin/hafront"
    ];
    Cmd = [
      "run"
      "-c"
      "/etc/hafront/hafront.toml"
    ];
    Env = [ "PATH=/bin" ];
    StopSignal = "SIGTERM";
    Labels = {
      "org.opencontainers.image.title" = "hafront";
      "org.opencontainers.image.description" = "High-availability daemon: VRRP, IPVS, health checks (run with --privileged --net=host)";
      "org.opencontainers.image.version" = hafront.version;
    };
  };
}
