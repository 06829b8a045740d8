//! `hafront`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hafront::config::{Config, LogFormat};
use hafront::preflight::{self, LoadOptions};

#[derive(Parser)]
#[command(
    name = "hafront",
    version,
    about = "High-availability daemon for Linux front-end nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Configuration file (TOML); repeatable, later files override earlier ones.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Ignore HAFRONT_* environment variables.
    #[arg(long)]
    no_env: bool,
    /// A keepalived.conf, imported in memory under the -c files (see
    /// `import-keepalived`).
    #[arg(long = "keepalived-config", value_name = "FILE")]
    keepalived: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Check only what the files say, nothing of this machine: no token_file,
    /// ca_file or certificate read, no script_user lookup, no script ownership.
    /// For a build sandbox or another machine (the NixOS module's build-time check).
    #[arg(long)]
    offline: bool,
}

impl ConfigArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            files: self.files.clone(),
            env: !self.no_env,
            keepalived: self.keepalived.clone(),
            offline: false,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    #[command(
        after_help = "Examples:\n  hafront run -c /etc/hafront/hafront.toml\n  hafront run -c base.toml -c site.toml   # later files override earlier ones\n  HAFRONT_VRRP__INSTANCES__WEB__PRIORITY=90 hafront run -c hafront.toml\n  hafront run --keepalived-config /etc/keepalived/keepalived.conf"
    )]
    Run(ConfigArgs),
    /// Validate the layered configuration and print it (secrets redacted).
    /// Exit 0 when valid, 2 when not.
    #[command(
        after_help = "Examples:\n  hafront check-config -c /etc/hafront/hafront.toml\n  hafront check-config --offline -c hafront.toml   # in a build sandbox"
    )]
    CheckConfig(CheckArgs),
    /// Show the state of the running daemon (asks its API socket).
    #[command(
        after_help = "Examples:\n  hafront status\n  hafront status --json | jq '.instances'\n  hafront status --runtime-dir /run/hafront-test\n  hafront status --watch           # redraw on every event until Ctrl-C"
    )]
    Status {
        #[command(flatten)]
        socket: SocketArgs,
        /// Print the JSON document of `GET /v1/status`.
        #[arg(long)]
        json: bool,
        /// Redraw on every event of the daemon's event stream (every second if the
        /// stream is unavailable) until Ctrl-C. On a terminal the screen is cleared
        /// first; otherwise each redraw starts with a `--- ` line.
        #[arg(long)]
        watch: bool,
    },
    /// Follow the daemon's event stream (`GET /v1/events`): state changes,
    /// tracking, check verdicts, real servers, supervised services, split brain,
    /// reloads; one line each, until Ctrl-C. Reconnects when the daemon restarts
    /// or drops a client that fell behind (and says so on standard error).
    #[command(
        after_help = "Examples:\n  hafront events\n  hafront events --json | jq -c 'select(.type == \"state\")'\n  hafront events --runtime-dir /run/hafront-test\n\nEach --json line is one event: id (consecutive), type, time (RFC 3339 UTC),\nunix_ms, reason and the fields of its type (docs/operations.md)."
    )]
    Events {
        #[command(flatten)]
        socket: SocketArgs,
        /// Print each event as the daemon's JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Change the running daemon without a reload (through its API socket).
    #[command(
        after_help = "Examples:\n  hafront ctl maintenance web on      # leave mastership gracefully, stay backup\n  hafront ctl anycast-maintenance web on  # withdraw anycast group web, keep it withdrawn\n  hafront ctl priority web 90\n  hafront ctl priority web clear\n  hafront ctl real-server web 192.0.2.11:80 disable\n  hafront ctl real-server web 192.0.2.11:80 weight 5\n  hafront ctl reload"
    )]
    Ctl {
        #[command(flatten)]
        socket: SocketArgs,
        #[command(subcommand)]
        action: CtlAction,
    },
    /// Run a recorded input file (`log.record_dir`) through the VRRP state
    /// machine and print its outputs as JSON lines (for bug reports).
    Replay {
        /// A directory with params.json and input.jsonl.
        dir: PathBuf,
    },
    /// One IPVS reconcile pass from the configuration, then exit: services that
    /// follow a VRRP instance are installed as if this node were its master. Adds
    /// and edits only (never deletes). Prints the operations and timings.
    IpvsSync {
        #[command(flatten)]
        config: ConfigArgs,
        /// Plan only: print what would be written.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the configured VIPs from this node (and the instances' addresses
    /// elsewhere, virtual routes and rules), as a start as backup does. For a
    /// unit's ExecStopPost: a hafront that crashed or was killed leaves its VIPs,
    /// which answer ARP and ND beside the new master until the next start.
    /// Refuses while a hafront answers on the API socket. Exit 0 when done, 1
    /// when a removal failed, 2 for an invalid configuration.
    #[command(
        after_help = "Examples:\n  hafront remove-vips -c /etc/hafront/hafront.toml\n  ExecStopPost=-/usr/local/bin/hafront remove-vips -c /etc/hafront/hafront.toml   # systemd\n\nThe configuration is read as check-config --offline reads it (no token or TLS\nfile is needed). Absent addresses are not an error."
    )]
    RemoveVips {
        #[command(flatten)]
        config: ConfigArgs,
        /// Remove them even though a hafront answers on the API socket (it would
        /// add a master's VIPs back at its next VIP check).
        #[arg(long)]
        force: bool,
    },
    /// Write the man pages (hafront(8), one per subcommand, hafront.toml(5)) or
    /// print a shell completion script. For packagers.
    #[command(
        after_help = "Examples:\n  hafront generate man /usr/share/man/man8 --toml-dir /usr/share/man/man5\n  hafront generate completions bash > /usr/share/bash-completion/completions/hafront"
    )]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
    /// Convert a keepalived configuration to hafront TOML; warns (stderr) about
    /// every keyword not carried over. Exit 2 when it cannot be imported.
    #[command(
        after_help = "Examples:\n  hafront import-keepalived /etc/keepalived/keepalived.conf -o /etc/hafront/hafront.toml\n  hafront import-keepalived --strict keepalived.conf > /dev/null   # fail on anything not carried over"
    )]
    ImportKeepalived {
        /// keepalived.conf (its `include`s are followed).
        file: PathBuf,
        /// Write the TOML here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT.toml")]
        output: Option<PathBuf>,
        /// Keywords that are not carried over are errors.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand)]
enum Generate {
    /// Man pages: hafront.8 and hafront-SUBCOMMAND.8 in DIR, hafront.toml.5 in
    /// --toml-dir (default: DIR).
    Man {
        dir: PathBuf,
        #[arg(long, value_name = "DIR")]
        toml_dir: Option<PathBuf>,
    },
    /// A completion script on standard output.
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args, Clone)]
struct SocketArgs {
    /// The daemon's runtime directory (its socket is api.sock there).
    #[arg(long, default_value = "/run/hafront")]
    runtime_dir: PathBuf,
    /// The API socket, when not in the runtime directory.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl SocketArgs {
    fn path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.runtime_dir.join("api.sock"))
    }
}

#[derive(Subcommand)]
enum CtlAction {
    /// Hold an instance backup (leaving mastership gracefully), or release it.
    Maintenance { instance: String, state: OnOff },
    /// Withdraw an anycast group's prefixes and hold them withdrawn (flows in
    /// progress finish on the addresses that stay), or release it.
    AnycastMaintenance { anycast: String, state: OnOff },
    /// Override an instance's base priority (1..254), or `clear` the override.
    Priority { instance: String, priority: String },
    /// Enable, disable or re-weight an IPVS real server (`weight N`, `weight clear`).
    RealServer {
        service: String,
        address: String,
        action: String,
        value: Option<String>,
    },
    /// Reload the configuration (as SIGHUP).
    Reload,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

fn generate(what: Generate) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    match what {
        Generate::Completions { shell } => {
            clap_complete::generate(shell, &mut cmd, "hafront", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Generate::Man { dir, toml_dir } => {
            let write = |path: PathBuf, text: &[u8]| {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                }
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
            };
            let mut result = Ok(());
            // Section 8: a daemon and its administration.
            cmd = cmd.version(env!("CARGO_PKG_VERSION"));
            let man8 = |c: clap::Command| clap_mangen::Man::new(c).section("8");
            let mut pages = vec![("hafront.8".to_string(), man8(cmd.clone()))];
            for sub in cmd.get_subcommands() {
                let name = format!("hafront-{}", sub.get_name());
                pages.push((format!("{name}.8"), man8(sub.clone().name(name))));
            }
            for (file, page) in pages {
                let mut buf = Vec::new();
                if let Err(e) = page.render(&mut buf) {
                    result = Err(format!("{file}: {e}"));
                    break;
                }
                result = result.and(write(dir.join(file), &buf));
            }
            let toml = hafront::manpage::configuration_page(env!("CARGO_PKG_VERSION"));
            result = result.and(write(
                toml_dir.unwrap_or(dir).join("hafront.toml.5"),
                toml.as_bytes(),
            ));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hafront: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match preflight::load_with_warnings(&LoadOptions {
            offline: args.offline,
            ..args.config.options()
        }) {
            Ok((cfg, warnings)) => {
                print_import_warnings(&warnings);
                print_advice(&cfg);
                print!("{}", cfg.to_redacted_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hafront: invalid configuration:\n{e}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => {
            let opts = args.options();
            let cfg = match preflight::load_with_warnings(&opts) {
                Ok((cfg, warnings)) => {
                    print_import_warnings(&warnings);
                    print_advice(&cfg);
                    cfg
                }
                Err(e) => {
                    eprintln!("hafront: invalid configuration:\n{e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&cfg);
            match hafront::daemon::run(opts, cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "hafront stopped");
                    eprintln!("hafront: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Generate { what } => generate(what),
        Command::RemoveVips { config, force } => remove_vips(&config, force),
        Command::Status {
            socket,
            json,
            watch: false,
        } => status(&socket.path(), json),
        Command::Status { socket, json, .. } => status_watch(&socket.path(), json),
        Command::Events { socket, json } => events(&socket.path(), json),
        Command::Ctl { socket, action } => ctl(&socket.path(), action),
        Command::Replay { dir } => replay(&dir),
        Command::ImportKeepalived { file, output, strict } => ExitCode::from(
            hafront::preflight::import_command(&file, output.as_deref(), strict),
        ),
        Command::IpvsSync {
            config: args,
            dry_run,
        } => {
            let cfg = match preflight::load(&args.options()) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("hafront: invalid configuration:\n{e}");
                    return ExitCode::from(2);
                }
            };
            // Failed operations are logged (warn), the dump's breakdown at debug.
            init_logging(&cfg);
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(hafront::ipvs::reconcile::sync_once(&cfg, dry_run)) {
                Ok(report) => {
                    for op in &report.ops {
                        println!("{op}");
                    }
                    println!(
                        "{} operations ({} failed); dump {:.1} ms (kernel {:.1} ms), plan {:.1} ms, apply {:.1} ms, total {:.1} ms",
                        report.ops.len(),
                        report.failed,
                        report.dump.as_secs_f64() * 1e3,
                        report.dump_kernel.as_secs_f64() * 1e3,
                        report.plan.as_secs_f64() * 1e3,
                        report.apply.as_secs_f64() * 1e3,
                        report.total.as_secs_f64() * 1e3
                    );
                    if report.failed == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("hafront: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_import_warnings(warnings: &[hafront::keepalived::Warning]) {
    for w in warnings {
        eprintln!("hafront: warning: {w}");
    }
}

/// What a valid configuration may still get wrong (`config::anycast::advice`).
fn print_advice(cfg: &Config) {
    for a in hafront::config::anycast::advice(cfg) {
        eprintln!("hafront: warning: {}: {}", a.key.join("."), a.message);
    }
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    // RUST_LOG wins over the configuration (which HAFRONT_LOG__LEVEL can set).
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // Under systemd (stderr connected to the journal) log natively to journald:
    // fields become journal fields (INSTANCE, VRID, STATE, SERVICE...).
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    let journald = matches!(cfg.log.format, LogFormat::Journald)
        || (matches!(cfg.log.format, LogFormat::Auto) && under_systemd);
    if journald {
        match tracing_journald::layer() {
            Ok(layer) => {
                registry
                    .with(layer.with_syslog_identifier("hafront".into()))
                    .init();
                return;
            }
            Err(e) => eprintln!("hafront: journald not reachable ({e}); logging to stderr"),
        }
    }
    match cfg.log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        _ => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

/// `hafront remove-vips`.
fn remove_vips(args: &ConfigArgs, force: bool) -> ExitCode {
    // Offline: after a stop the unit's credentials (the API token) may be gone,
    // and removing addresses needs only the instances.
    let opts = LoadOptions {
        offline: true,
        ..args.options()
    };
    let cfg = match preflight::load_with_warnings(&opts) {
        Ok((cfg, _)) => cfg,
        Err(e) => {
            eprintln!("hafront: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg);
    let socket = cfg.api.socket_path(&cfg.runtime_dir);
    if !force && std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        eprintln!(
            "hafront: a hafront answers on {}: it manages the VIPs (stop it first, or --force)",
            socket.display()
        );
        return ExitCode::FAILURE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(hafront::daemon::remove_vips(&cfg)) {
        Ok(r) => {
            println!(
                "removed {}, failed {}, instances without their interface {}",
                r.removed,
                r.failed,
                r.no_interface.len()
            );
            if r.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("hafront: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hafront: {e}");
            ExitCode::FAILURE
        })
}

/// One API request; prints the error and returns the exit code on failure.
fn api_call(
    socket: &std::path::Path,
    method: hyper::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, ExitCode> {
    let rt = runtime()?;
    let answer = rt
        .block_on(hafront::api::client::request(socket, method, path, body))
        .map_err(|e| {
            eprintln!("hafront: {e}");
            ExitCode::FAILURE
        })?;
    let value: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
    if !answer.status.is_success() {
        let msg = value["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        match value["field"].as_str() {
            Some(f) => eprintln!("hafront: {} ({f}): {msg}", answer.status),
            None => eprintln!("hafront: {}: {msg}", answer.status),
        }
        return Err(ExitCode::from(if answer.status.is_client_error() {
            2
        } else {
            1
        }));
    }
    Ok(value)
}

fn ctl(socket: &std::path::Path, action: CtlAction) -> ExitCode {
    use hyper::Method;
    use serde_json::json;
    let seg = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b':' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let (path, body) = match action {
        CtlAction::Maintenance { instance, state } => (
            format!("/v1/instances/{}/maintenance", seg(&instance)),
            Some(json!({"enabled": matches!(state, OnOff::On)})),
        ),
        CtlAction::AnycastMaintenance { anycast, state } => (
            format!("/v1/anycast/{}/maintenance", seg(&anycast)),
            Some(json!({"enabled": matches!(state, OnOff::On)})),
        ),
        CtlAction::Priority { instance, priority } => {
            let value = if priority == "clear" {
                serde_json::Value::Null
            } else {
                match priority.parse::<u8>() {
                    Ok(p) => json!(p),
                    Err(_) => {
                        eprintln!("hafront: priority: {priority:?} is not 1..254 or `clear`");
                        return ExitCode::from(2);
                    }
                }
            };
            (
                format!("/v1/instances/{}/priority", seg(&instance)),
                Some(json!({"priority": value})),
            )
        }
        CtlAction::RealServer {
            service,
            address,
            action,
            value,
        } => {
            let body = match (action.as_str(), value.as_deref()) {
                ("enable", None) => json!({"enabled": true}),
                ("disable", None) => json!({"enabled": false}),
                ("weight", Some("clear")) => json!({"weight": null}),
                ("weight", Some(w)) => match w.parse::<u32>() {
                    Ok(w) => json!({"weight": w}),
                    Err(_) => {
                        eprintln!("hafront: weight: {w:?} is not a number or `clear`");
                        return ExitCode::from(2);
                    }
                },
                _ => {
                    eprintln!("hafront: real-server actions: enable | disable | weight N | weight clear");
                    return ExitCode::from(2);
                }
            };
            (
                format!(
                    "/v1/ipvs/services/{}/real-servers/{}",
                    seg(&service),
                    seg(&address)
                ),
                Some(body),
            )
        }
        CtlAction::Reload => ("/v1/reload".to_string(), None),
    };
    match api_call(socket, Method::POST, &path, body) {
        Ok(v) => {
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn replay(dir: &std::path::Path) -> ExitCode {
    use hafront::vrrp::instance::{Input, Instance, Params};
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            eprintln!("hafront: {}: {e}", dir.join(name).display());
            ExitCode::FAILURE
        })
    };
    let (params, inputs) = match (read("params.json"), read("input.jsonl")) {
        (Ok(p), Ok(i)) => (p, i),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let params: Params = match serde_json::from_str(&params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hafront: {}: {e}", dir.join("params.json").display());
            return ExitCode::from(2);
        }
    };
    let mut inst = Instance::new(params);
    for (n, line) in inputs.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let input: Input = match serde_json::from_str(line) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("hafront: input.jsonl:{}: {e}", n + 1);
                return ExitCode::from(2);
            }
        };
        let out = inst.handle(input);
        println!("{}", serde_json::json!({"line": n + 1, "out": out}));
    }
    println!(
        "{}",
        serde_json::json!({"final": {"state": inst.state(), "priority": inst.priority(), "master": inst.master(), "counters": inst.counters()}})
    );
    ExitCode::SUCCESS
}

fn status(socket: &std::path::Path, json: bool) -> ExitCode {
    let doc = match api_call(socket, hyper::Method::GET, "/v1/status", None) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    println!(
        "node {}  pid {}  up {}s",
        s(&doc["node"]),
        doc["pid"],
        doc["uptime_seconds"]
    );
    let r = &doc["reload"];
    let reload_at = r["last_unix_ms"]
        .as_u64()
        .map(|ms| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_seconds(t).to_string()
        })
        .unwrap_or_else(|| "-".into());
    match r["successful"].as_bool() {
        Some(true) => println!("config: last load ({}) at {reload_at}: ok", s(&r["by"])),
        Some(false) => println!(
            "config: last reload ({}) at {reload_at} FAILED, the previous configuration runs: {}",
            s(&r["by"]),
            s(&r["error"])
        ),
        None => {}
    }
    println!(
        "{:<16} {:<8} {:>4} {:>9} {:<10} {:<18} VIPS",
        "INSTANCE", "STATE", "VRID", "PRIO", "IFACE", "MASTER"
    );
    if let Some(map) = doc["instances"].as_object() {
        for (name, i) in map {
            let vips: Vec<String> = i["vips"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            let prio = if i["priority"] == i["configured_priority"] {
                s(&i["priority"])
            } else {
                format!("{}/{}", s(&i["priority"]), s(&i["configured_priority"]))
            };
            let mut state = s(&i["state"]);
            if i["maintenance"].as_bool() == Some(true) {
                state.push('*');
            }
            println!(
                "{:<16} {:<8} {:>4} {:>9} {:<10} {:<18} {}",
                name,
                state,
                s(&i["vrid"]),
                prio,
                s(&i["interface"]),
                i["master"].as_str().unwrap_or("-"),
                vips.join(",")
            );
        }
    }
    let maint = doc["instances"]
        .as_object()
        .is_some_and(|m| m.values().any(|i| i["maintenance"].as_bool() == Some(true)));
    if maint {
        println!("(* in maintenance)");
    }
    if let Some(map) = doc["anycast"].as_object().filter(|m| !m.is_empty()) {
        println!();
        println!(
            "{:<16} {:<10} {:<28} BGP / BFD (BIRD)",
            "ANYCAST", "ANNOUNCED", "WHY"
        );
        for (name, a) in map {
            let prefixes: Vec<String> = a["prefixes"]
                .as_array()
                .map(|p| p.iter().map(s).collect())
                .unwrap_or_default();
            let sessions: Vec<String> = a["bird"]["bgp"]
                .as_object()
                .map(|m| m.iter().map(|(p, v)| format!("{p}:{}", s(&v["info"]))).collect())
                .unwrap_or_default();
            let bfd: Vec<String> = a["bird"]["bfd"]
                .as_object()
                .map(|m| m.iter().map(|(n, v)| format!("{n}:{}", s(v))).collect())
                .unwrap_or_default();
            let bird = if a["bird"]["reachable"].as_bool() == Some(true) {
                format!("{} / {}", sessions.join(","), bfd.join(","))
            } else {
                format!("BIRD unreachable: {}", s(&a["bird"]["error"]))
            };
            println!(
                "{:<16} {:<10} {:<28} {}  [{}]",
                name,
                if a["announced"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                s(&a["why"]),
                bird,
                prefixes.join(",")
            );
        }
    }
    for (title, key) in [("CHECK", "checks"), ("SCRIPT", "scripts")] {
        if let Some(map) = doc[key].as_object().filter(|m| !m.is_empty()) {
            println!();
            println!(
                "{:<24} {:<6} {:<6} {:>10}  LAST ERROR",
                title, "KIND", "UP", "LATENCY"
            );
            for (name, c) in map {
                let up = match c["up"].as_bool() {
                    Some(true) => "up",
                    Some(false) => "down",
                    None => "-",
                };
                let latency = c["last_latency_ms"]
                    .as_f64()
                    .map(|l| format!("{l:.1} ms"))
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<6} {:<6} {:>10}  {}",
                    name,
                    s(&c["kind"]),
                    up,
                    latency,
                    c["last_error"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(map) = doc["services"].as_object().filter(|m| !m.is_empty()) {
        println!();
        println!(
            "{:<16} {:<8} {:<10} {:>8} {:>8}  LAST EXIT",
            "SERVICE", "KIND", "STATE", "PID", "RESTARTS"
        );
        for (name, svc) in map {
            println!(
                "{:<16} {:<8} {:<10} {:>8} {:>8}  {}",
                name,
                s(&svc["kind"]),
                s(&svc["state"]),
                svc["pid"]
                    .as_u64()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                s(&svc["restarts"]),
                svc["last_exit"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(map) = doc["ipvs"]["services"].as_object().filter(|m| !m.is_empty()) {
        println!();
        if let Some(e) = doc["ipvs"]["error"].as_str() {
            println!("IPVS: {e}");
        }
        println!(
            "{:<16} {:<28} {:<10} REAL SERVERS (weight; - = out)",
            "SERVICE", "ADDRESS", "INSTALLED"
        );
        for (name, svc) in map {
            let rs: Vec<String> = svc["real_servers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            let w = r["weight"]
                                .as_u64()
                                .map(|w| w.to_string())
                                .unwrap_or_else(|| "-".into());
                            let flag = if r["disabled"].as_bool() == Some(true) {
                                " disabled"
                            } else {
                                ""
                            };
                            format!("{} ({w}{flag})", s(&r["address"]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{:<16} {:<28} {:<10} {}",
                name,
                s(&svc["key"]),
                if svc["installed"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                rs.join(", ")
            );
        }
    }
    ExitCode::SUCCESS
}

/// What the event-stream thread of `status --watch` tells the drawing loop.
enum WatchMsg {
    Connected,
    Event(String),
    Down(String),
}

/// `hafront status --watch`: the table again on every event, every second while the
/// stream is unavailable.
fn status_watch(socket: &std::path::Path, json: bool) -> ExitCode {
    use std::io::IsTerminal;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Duration;
    let (tx, rx) = std::sync::mpsc::channel();
    let path = socket.to_path_buf();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = tx.send(WatchMsg::Down("no runtime".into()));
            return;
        };
        rt.block_on(async move {
            loop {
                match hafront::api::client::events(&path).await {
                    Ok(mut lines) => {
                        if tx.send(WatchMsg::Connected).is_err() {
                            return;
                        }
                        while let Some(Ok(line)) = lines.next_line().await {
                            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                            match v["type"].as_str() {
                                Some("heartbeat") | Some("hello") => {}
                                _ => {
                                    if tx.send(WatchMsg::Event(describe_event(&v))).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        if tx.send(WatchMsg::Down("event stream ended".into())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if tx.send(WatchMsg::Down(e.to_string())).is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    });
    let tty = std::io::stdout().is_terminal();
    let draw = |why: &str| {
        if tty {
            print!("\x1b[H\x1b[2J");
        } else {
            println!(
                "--- {} {why}",
                humantime::format_rfc3339_millis(std::time::SystemTime::now())
            );
        }
        let _ = status(socket, json);
        use std::io::Write;
        let _ = std::io::stdout().flush();
    };
    draw("start");
    let mut streaming = false;
    loop {
        let wait = if streaming {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(1)
        };
        match rx.recv_timeout(wait) {
            Ok(WatchMsg::Connected) => {
                if !streaming {
                    streaming = true;
                    draw("event stream connected");
                }
            }
            Ok(WatchMsg::Event(what)) => {
                // A burst (a sync group failing over) is one redraw.
                std::thread::sleep(Duration::from_millis(50));
                let mut more = 0;
                while let Ok(WatchMsg::Event(_)) = rx.try_recv() {
                    more += 1;
                }
                if more > 0 {
                    draw(&format!("{what} (+{more} more)"));
                } else {
                    draw(&what);
                }
            }
            Ok(WatchMsg::Down(why)) => {
                if streaming {
                    eprintln!("hafront: event stream unavailable ({why}): polling every second");
                }
                streaming = false;
            }
            Err(RecvTimeoutError::Timeout) => {
                if !streaming {
                    draw("poll");
                }
            }
            Err(RecvTimeoutError::Disconnected) => return ExitCode::FAILURE,
        }
    }
}

/// One event as a line for people.
fn describe_event(v: &serde_json::Value) -> String {
    let s = |k: &str| -> String {
        match &v[k] {
            serde_json::Value::String(t) => t.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        }
    };
    let pick = |k: &str, yes: &'static str, no: &'static str| {
        if v[k].as_bool() == Some(true) {
            yes
        } else {
            no
        }
    };
    let updown = |k: &str| pick(k, "up", "down");
    let what = match v["type"].as_str().unwrap_or("") {
        "state" => format!(
            "{} (vrid {}) {} -> {}, priority {}",
            s("instance"),
            s("vrid"),
            s("from").to_uppercase(),
            s("to").to_uppercase(),
            s("priority")
        ),
        "tracking" => format!(
            "{} priority {}{}",
            s("instance"),
            s("priority"),
            pick("fault", " FAULT", "")
        ),
        "tracked" | "check" => {
            let name = if v["type"] == "check" {
                s("check")
            } else {
                s("name")
            };
            format!("{} {} {}", s("kind"), name, updown("up"))
        }
        "real_server" => {
            let mut t = format!("{} {} {}", s("service"), s("address"), s("action"));
            if let Some(w) = v["weight"].as_u64() {
                t.push_str(&format!(" (weight {w})"));
            }
            if v["ok"].as_bool() == Some(false) {
                t.push_str(" FAILED");
            }
            t
        }
        "service" => format!("{} {}", s("service"), pick("failed", "FAULT", updown("up"))),
        "split_brain" => format!(
            "{} split brain {}",
            s("instance"),
            pick("active", "RAISED", "cleared")
        ),
        "reload" => format!(
            "reload by {} {}",
            s("by"),
            pick("successful", "applied", "REJECTED")
        ),
        "lagged" => "this client fell behind: events were lost".to_string(),
        _ => return v.to_string(),
    };
    format!("{} {:<11} {what}: {}", s("time"), s("type"), s("reason"))
}

/// `hafront events`: follows the stream until Ctrl-C, reconnecting after the daemon
/// restarts or drops this client.
fn events(socket: &std::path::Path, json: bool) -> ExitCode {
    use std::io::Write;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut connected_once = false;
        let mut last_id: Option<u64> = None;
        loop {
            let mut lines = match hafront::api::client::events(socket).await {
                Ok(l) => l,
                Err(e) if !connected_once => {
                    eprintln!("hafront: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("hafront: event stream: {e}; retrying in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            if connected_once {
                eprintln!("hafront: event stream reconnected (events in between are lost: re-read `hafront status`)");
            }
            connected_once = true;
            let ended = loop {
                let line = match lines.next_line().await {
                    None => break "the daemon closed the stream".to_string(),
                    Some(Err(e)) => break e.to_string(),
                    Some(Ok(line)) => line,
                };
                let v: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                match v["type"].as_str() {
                    Some("heartbeat") => continue,
                    Some("hello") => {
                        // A restarted daemon numbers from 1 again.
                        last_id = v["last_id"].as_u64();
                        continue;
                    }
                    _ => {}
                }
                if let (Some(id), Some(last)) = (v["id"].as_u64(), last_id) {
                    if id > last + 1 {
                        eprintln!("hafront: {} events missed (ids {}..{})", id - last - 1, last + 1, id - 1);
                    }
                }
                if let Some(id) = v["id"].as_u64() {
                    last_id = Some(id);
                }
                let out = if json { line } else { describe_event(&v) };
                let mut stdout = std::io::stdout().lock();
                if writeln!(stdout, "{out}").and_then(|_| stdout.flush()).is_err() {
                    // Standard output closed (`| head`): done.
                    return ExitCode::SUCCESS;
                }
            };
            eprintln!("hafront: event stream ended ({ended}); reconnecting");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}
