//! `hafront`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hafront::config::{self, Config, LoadOptions, LogFormat};

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

impl ConfigArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            files: self.files.clone(),
            env: !self.no_env,
            keepalived: self.keepalived.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run(ConfigArgs),
    /// Validate the layered configuration and print it (secrets redacted).
    /// Exit 0 when valid, 2 when not.
    CheckConfig(ConfigArgs),
    /// Show the state of the running daemon.
    Status {
        /// Runtime directory of the daemon (where status.json lives).
        #[arg(long, default_value = "/run/hafront")]
        runtime_dir: PathBuf,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
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
    /// Convert a keepalived configuration to hafront TOML; warns (stderr) about
    /// every keyword not carried over. Exit 2 when it cannot be imported.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(args) => match config::load_with_warnings(&args.options()) {
            Ok((cfg, warnings)) => {
                print_import_warnings(&warnings);
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
            let cfg = match config::load_with_warnings(&opts) {
                Ok((cfg, warnings)) => {
                    print_import_warnings(&warnings);
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
        Command::Status { runtime_dir, json } => status(&runtime_dir, json),
        Command::ImportKeepalived { file, output, strict } => ExitCode::from(
            hafront::keepalived::import_command(&file, output.as_deref(), strict),
        ),
        Command::IpvsSync {
            config: args,
            dry_run,
        } => {
            let cfg = match config::load(&args.options()) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("hafront: invalid configuration:\n{e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("hafront: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(hafront::ipvs::reconcile::sync_once(&cfg, dry_run)) {
                Ok(report) => {
                    for op in &report.ops {
                        println!("{op}");
                    }
                    println!(
                        "{} operations ({} failed); dump {:.1} ms, plan {:.1} ms, apply {:.1} ms, total {:.1} ms",
                        report.ops.len(),
                        report.failed,
                        report.dump.as_secs_f64() * 1e3,
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

fn init_logging(cfg: &Config) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // Under systemd (stderr connected to the journal) log natively to journald.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            registry.with(journald).init();
            return;
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
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn status(dir: &std::path::Path, json: bool) -> ExitCode {
    let path = hafront::daemon::status_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hafront: no running daemon found ({}: {e})", path.display());
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{text}");
        return ExitCode::SUCCESS;
    }
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("hafront: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    println!("node {}  pid {}", doc["node"].as_str().unwrap_or("?"), doc["pid"]);
    println!(
        "{:<16} {:<8} {:>4} {:>4} {:<10} {:<18} VIPS",
        "INSTANCE", "STATE", "VRID", "PRIO", "IFACE", "MASTER"
    );
    if let Some(map) = doc["instances"].as_object() {
        for (name, i) in map {
            let vips: Vec<&str> = i["vips"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            println!(
                "{:<16} {:<8} {:>4} {:>4} {:<10} {:<18} {}",
                name,
                i["state"].as_str().unwrap_or("?"),
                i["vrid"],
                i["priority"],
                i["interface"].as_str().unwrap_or("?"),
                i["master"].as_str().unwrap_or("-"),
                vips.join(",")
            );
        }
    }
    ExitCode::SUCCESS
}
