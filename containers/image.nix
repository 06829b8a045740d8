# The OCI image built by Nix: `nix build .#oci-image && docker load < result` loads
# hafront:latest. Same contract as containers/Containerfile: tini as PID 1
# forwarding signals to hafront, iproute2 and nftables on PATH, nginx run by hafront
# ([services.nginx] in the default configuration, /etc/hafront/hafront.toml).
#   docker run -d --net=host --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#       --cap-add SETUID --cap-add SETGID --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add NET_BIND_SERVICE --cap-add KILL --cap-add SETPCAP \
#       -v /etc/hafront:/etc/hafront:ro --env-file node-a.env hafront:latest
{
  lib,
  dockerTools,
  hafront,
  nginx,
  tini,
  iproute2,
  nftables,
  coreutils,
  bashInteractive,
  # ISO 8601; the flake passes its last commit's date (reproducible, and not 1970).
  created ? "1970-01-01T00:00:01Z",
}:

dockerTools.buildLayeredImage {
  name = "hafront";
  # What `docker run ... hafront` looks for (hafront:latest); the version is a label.
  tag = "latest";
  inherit created;

  contents = [
    hafront
    tini
    iproute2
    nftables
    nginx
    # A shell and coreutils for exec checks and track scripts, and for debugging.
    coreutils
    bashInteractive
    dockerTools.binSh
    dockerTools.usrBinEnv
    # /etc/passwd and /etc/group with root and nobody: nginx's workers run as nobody.
    dockerTools.fakeNss
  ];

  # nixpkgs' nginx is not at /usr/sbin/nginx (the daemon's default for kind =
  # "nginx"): the image's copy of the default configuration names its binary.
  extraCommands = ''
    chmod u+w etc
    # var/log/nginx: the error log nixpkgs' nginx opens before it reads its configuration.
    mkdir -p etc/hafront etc/nginx run/hafront var/lib/hafront var/log/nginx var/www/html tmp
    chmod 1777 tmp
    sed 's|^kind = "nginx"$|&\nbinary = "${lib.getExe nginx}"|' ${./hafront.toml} >etc/hafront/hafront.toml
    cp ${./nginx-nix.conf} etc/nginx/nginx.conf
    echo ok >var/www/html/index.html
  '';

  config = {
    # See containers/Containerfile for why tini is PID 1.
    Entrypoint = [
      (lib.getExe tini)
      "--"
      (lib.getExe hafront)
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
      "org.opencontainers.image.description" = "High-availability daemon: VRRP, IPVS, health checks (run with --net=host --cap-drop ALL and the capabilities of docs/packaging.md)";
      "org.opencontainers.image.version" = hafront.version;
    };
  };
}
