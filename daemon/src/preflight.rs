//! Preflight: what a configuration needs from the machine, above `config` (the
//! schema and its pure rules). The checks read files (API token files, the PEM
//! files and other compiled parts of health checks), look users up (the script
//! user) and stat scripts (ownership, when running as root). `load` is the
//! daemon's loader: it imports a keepalived configuration when asked (a named
//! layer for `config::load_checked`), layers and validates, and runs these checks,
//! each error naming its key and where the value came from.

use std::path::{Path, PathBuf};

use crate::checks::spec::CheckSpec;
use crate::checks::tls::{self, TlsOptions};
use crate::config::{self, Config, ConfigError, Layer, Problem, Sources};
use crate::keepalived;
use crate::process::security;

/// What to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// TOML files, lowest precedence first.
    pub files: Vec<PathBuf>,
    /// Read `HAFRONT_*` environment variables.
    pub env: bool,
    /// A keepalived configuration imported in memory, layered between the defaults
    /// and the files (`--keepalived-config`).
    pub keepalived: Option<PathBuf>,
    /// Check only what the configuration says, nothing of this machine
    /// (`check-config --offline`: a build sandbox or another machine, where the
    /// token file, the TLS files and the script user do not exist).
    pub offline: bool,
}

/// Loads, layers, validates and checks the configuration against the machine.
/// Warnings of a keepalived import are logged.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    let (cfg, warnings) = load_with_warnings(opts)?;
    for w in &warnings {
        tracing::warn!(at = %w.loc, keyword = %w.keyword, "keepalived import: {}", w.why);
    }
    Ok(cfg)
}

/// As [`load`], returning the warnings of a keepalived import instead of logging
/// them (the command line prints them before logging is set up).
pub fn load_with_warnings(opts: &LoadOptions) -> Result<(Config, Vec<keepalived::Warning>), ConfigError> {
    let mut sources = Sources {
        layers: Vec::new(),
        files: opts.files.clone(),
        env: opts.env,
    };
    let mut warnings = Vec::new();
    if let Some(path) = &opts.keepalived {
        let import = keepalived::import_file(path, Default::default()).map_err(import_error)?;
        warnings = import.warnings;
        sources.layers.push(keepalived_layer(path, import.toml));
    }
    let cfg = if opts.offline {
        config::load_checked(&sources, check_offline)?
    } else {
        config::load_checked(&sources, check)?
    };
    Ok((cfg, warnings))
}

fn keepalived_layer(path: &Path, toml: String) -> Layer {
    Layer {
        name: format!("{} (imported from keepalived)", path.display()),
        toml,
    }
}

fn import_error(e: keepalived::ImportError) -> ConfigError {
    ConfigError::Import {
        at: e.loc.to_string(),
        message: e.message,
    }
}

/// The machine's side of a configuration that passed the pure rules' parsing.
pub fn check(cfg: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut p = |key: &[&str], message: String| {
        problems.push(Problem {
            key: key.iter().map(|s| s.to_string()).collect(),
            message,
        })
    };
    if cfg.api.token_file.is_some() {
        if let Err(e) = cfg.api.load_token() {
            p(&["api", "token_file"], e);
        }
    }
    // Compiling a check is how it is validated (PEM files, regexes, targets), so
    // a configuration that passes is one the checker can run.
    for (name, c) in &cfg.checks {
        if !c.keys_fit_kind() {
            continue; // reported by config: keys that do not apply to the kind
        }
        if let Err(errs) = CheckSpec::build(name, c) {
            for (field, message) in errs {
                p(&["checks", name, field], message);
            }
        }
    }
    // auth_hmac keys in files: readable, bounded, 32 to 64 bytes.
    for (name, i) in &cfg.vrrp.instances {
        if let Some(h) = &i.auth_hmac {
            if let Err(e) = h.load(interval_cs(i)) {
                p(&["vrrp", "instances", name, "auth_hmac", "keys"], e);
            }
        }
    }
    if let Some(u) = &cfg.security.script_user {
        if security::lookup_user(u).is_none() {
            p(&["security", "script_user"], format!("no user named {u:?}"));
        }
    }
    // A directory that is a file says so here, not later as "File exists".
    for (key, dir) in [("state_dir", &cfg.state_dir), ("runtime_dir", &cfg.runtime_dir)] {
        if let Some(e) = crate::durable::not_a_directory(dir) {
            p(&[key], e.to_string());
        }
    }
    if let Some(e) = cfg
        .log
        .record_dir
        .as_deref()
        .and_then(crate::durable::not_a_directory)
    {
        p(&["log", "record_dir"], e.to_string());
    }
    security::validate(cfg, &mut problems);
    problems
}

/// What `check-config --offline` adds to the pure rules: each check is compiled
/// without its files (regexes, targets), and only the rules about the TLS file
/// keys are checked (not the files).
pub fn check_offline(cfg: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, c) in &cfg.checks {
        if !c.keys_fit_kind() {
            continue; // reported by config
        }
        let mut errs = Vec::new();
        if let Err(e) = tls::tls_file_keys(&TlsOptions::from(c)) {
            errs.push(e);
        }
        let mut without_files = c.clone();
        without_files.ca_file = None;
        without_files.client_cert = None;
        without_files.client_key = None;
        if let Err(e) = CheckSpec::build(name, &without_files) {
            errs.extend(e);
        }
        for (field, message) in errs {
            problems.push(Problem {
                key: vec!["checks".into(), name.clone(), field.to_string()],
                message,
            });
        }
    }
    problems
}

/// `hafront import-keepalived FILE [-o OUT] [--strict]`: prints the warnings on
/// stderr, checks that the result is a valid hafront configuration, writes it.
/// Returns the exit code: 0, or 2 when the file cannot be imported.
pub fn import_command(file: &Path, output: Option<&Path>, strict: bool) -> u8 {
    let import = match keepalived::import_file(file, keepalived::Options { strict }) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("hafront: cannot import {}:\n{e}", file.display());
            return 2;
        }
    };
    for w in &import.warnings {
        eprintln!("hafront: warning: {w}");
    }
    // The result goes through the ordinary loader, as `run --keepalived-config`
    // would load it (without the environment).
    let check = LoadOptions {
        files: Vec::new(),
        env: false,
        keepalived: Some(file.to_path_buf()),
        offline: false,
    };
    if let Err(e) = load_with_warnings(&check) {
        eprintln!("hafront: the imported configuration is not valid for hafront:\n{e}");
        return 2;
    }
    let written = match output {
        // Always 0600: an import usually holds secrets (auth_pass, SMTP or API
        // credentials), and which ones is not worth guessing; the operator can
        // widen it. Durable as every file hafront writes.
        Some(out) => crate::durable::write(out, import.toml.as_bytes()).map_err(|e| e.to_string()),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(import.toml.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => {
            eprintln!(
                "hafront: imported {} ({} warning{})",
                file.display(),
                import.warnings.len(),
                if import.warnings.len() == 1 { "" } else { "s" }
            );
            0
        }
        Err(e) => {
            eprintln!("hafront: cannot write the configuration: {e}");
            1
        }
    }
}

/// An instance's advert interval in centiseconds (as `Params::interval_cs`).
pub fn interval_cs(i: &crate::config::InstanceConfig) -> u16 {
    (i.advert_interval.as_millis() / 10) as u16
}
