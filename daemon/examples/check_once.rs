//! Runs health checks from a hafront configuration, outside the daemon.
//!
//!   check_once -c FILE NAME
//!       one check of NAME (with its retries): prints `up <latency_ms>` (and
//!       `weight=<n>` for an exec dynamic weight) and exits 0, or prints
//!       `down: <reason>` and exits 1. Exit 2: bad configuration or usage.
//!   check_once -c FILE --watch DURATION [NAME...]
//!       runs the scheduler on the named checks (all by default) for DURATION,
//!       printing each verdict change as a JSON line, then the status snapshot
//!       as one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hafront::checks::{probe, CheckSpec, Checker};
use hafront::config::Config;

#[derive(Parser)]
#[command(about = "Run hafront health checks once, or watch them")]
struct Args {
    /// Configuration file(s), later ones override earlier ones.
    #[arg(short = 'c', long = "config", required = true)]
    config: Vec<PathBuf>,
    /// Run the scheduler for this long (e.g. "5s") instead of one probe.
    #[arg(long, value_parser = humantime::parse_duration)]
    watch: Option<Duration>,
    /// Check name(s): exactly one without --watch.
    names: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let files: Vec<&std::path::Path> = args.config.iter().map(|p| p.as_path()).collect();
    let cfg = match Config::from_files(&files) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("check_once: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match args.watch {
        None => {
            let [name] = args.names.as_slice() else {
                eprintln!("check_once: give exactly one check name (or --watch)");
                return ExitCode::from(2);
            };
            let Some(c) = cfg.checks.get(name) else {
                eprintln!("check_once: no check named {name:?} (checks.{name})");
                return ExitCode::from(2);
            };
            let spec = match CheckSpec::build(name, c) {
                Ok(s) => s,
                Err(errs) => {
                    for (k, m) in errs {
                        eprintln!("checks.{name}.{k}: {m}");
                    }
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(probe::run(&spec)) {
                Ok(ok) => {
                    let ms = ok.latency.as_secs_f64() * 1e3;
                    match ok.dynamic_weight {
                        Some(w) => println!("up {ms:.3} weight={w}"),
                        None => println!("up {ms:.3}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("down: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(d) => {
            let selected: BTreeMap<_, _> = cfg
                .checks
                .iter()
                .filter(|(n, _)| args.names.is_empty() || args.names.contains(n))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect();
            rt.block_on(async move {
                let (handle, mut events) = match Checker::spawn(&selected) {
                    Ok(x) => x,
                    Err(errs) => {
                        for e in errs {
                            eprintln!("{e}");
                        }
                        return ExitCode::from(2);
                    }
                };
                let start = tokio::time::Instant::now();
                let end = tokio::time::sleep(d);
                tokio::pin!(end);
                loop {
                    tokio::select! {
                        _ = &mut end => break,
                        Some(ev) = events.recv() => {
                            let mut v = serde_json::to_value(&ev).expect("serializable");
                            v["t_ms"] = serde_json::json!(start.elapsed().as_millis() as u64);
                            println!("{v}");
                        }
                    }
                }
                println!(
                    "{}",
                    serde_json::to_string(&handle.status()).expect("serializable")
                );
                ExitCode::SUCCESS
            })
        }
    }
}
