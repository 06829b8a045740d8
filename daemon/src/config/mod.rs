//! Layered configuration (figment): built-in defaults < TOML files given with `-c`
//! (in order, later wins) < `HAFRONT_*` environment variables split on `__`
//! (`HAFRONT_VRRP__INSTANCES__WEB__PRIORITY=90`). Unknown keys are errors, and
//! every error names the key and the source of its value. The key table is in
//! docs/configuration.md.
//!
//! The bottom layer: the schema and its pure validation, no look at the machine.
//! What needs the machine (files, users, PEM certificates, script ownership) is
//! `crate::preflight`, which also imports keepalived configurations: it hands
//! them here as named TOML layers, and its checks come back through
//! [`load_checked`] so that their errors name sources like the others.

pub mod anycast;
pub mod api;
pub mod auth_hmac;
pub mod checks;
mod error;
pub mod ipvs;
pub mod notify;
pub mod routes;
mod schema;
pub mod services;
pub mod track;
pub mod validate;
pub mod vmac;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Metadata, Source};

pub use checks::{CheckConfig, CheckKind, StatusRange};
pub use error::{ConfigError, Issue};
pub use schema::{
    redact_userinfo, Config, ConntrackdConfig, GarpConfig, HooksConfig, InstanceConfig, IpvlanMode,
    LogConfig, LogFormat, NodeConfig, Secret, VrrpConfig, REDACTED, SPLIT_BRAIN_PROBE_DEFAULT,
};
pub use validate::Problem;

pub const ENV_PREFIX: &str = "HAFRONT_";
pub const ENV_SPLIT: &str = "__";

/// A TOML text layered above the defaults and below the files (a keepalived
/// configuration the caller imported); errors give `name` as the source.
#[derive(Clone, Debug)]
pub struct Layer {
    pub name: String,
    pub toml: String,
}

/// What to layer, lowest precedence first: defaults < `layers` < `files` <
/// `HAFRONT_*` environment.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub layers: Vec<Layer>,
    /// TOML files, lowest precedence first.
    pub files: Vec<PathBuf>,
    /// Read `HAFRONT_*` environment variables.
    pub env: bool,
}

/// Loads, layers and validates the configuration (schema and pure rules only).
pub fn load(src: &Sources) -> Result<Config, ConfigError> {
    load_checked(src, |_| Vec::new())
}

/// A configuration from TOML text, for other modules' unit tests (panics on an
/// error: the text is the test's own).
#[cfg(test)]
pub fn from_toml(text: &str) -> Config {
    load(&Sources {
        layers: vec![Layer {
            name: "test".into(),
            toml: text.into(),
        }],
        ..Default::default()
    })
    .unwrap()
}

/// As [`load`], with the caller's own problems (`more`, run on a configuration
/// that passed the pure rules' parsing) reported with the others, each naming
/// the source of its key.
pub fn load_checked(
    src: &Sources,
    more: impl FnOnce(&Config) -> Vec<Problem>,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    for layer in &src.layers {
        figment = figment.merge(Imported {
            name: layer.name.clone(),
            toml: layer.toml.clone(),
        });
    }
    for path in &src.files {
        // figment treats a missing file as empty: a typo in -c must not silently
        // start a node without its instances.
        if let Err(source) = std::fs::File::open(path) {
            return Err(ConfigError::File {
                path: path.clone(),
                source,
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let files_only = figment.clone();
    if src.env {
        let unreadable = env_value_issues();
        if !unreadable.is_empty() {
            return Err(ConfigError::Invalid(unreadable));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split(ENV_SPLIT));
    }
    let cfg: Config = figment.extract().map_err(|e| {
        let err = from_figment(&figment, e);
        if src.env {
            env_only_instances(&files_only, err)
        } else {
            err
        }
    })?;
    let mut problems = validate::validate(&cfg);
    problems.extend(more(&cfg));
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|p| Issue {
                    source: source_of(&figment, &p.key),
                    key: p.key.join("."),
                    message: p.message,
                })
                .collect(),
        ))
    }
}

/// Deepest `[ ]` / `{ }` nesting accepted in a `HAFRONT_*` value; the schema needs 3.
const MAX_ENV_NESTING: usize = 32;

/// `HAFRONT_*` values figment's value parser cannot take without crashing the
/// process (both found by fuzz/config_load), refused before figment sees them:
/// - it parses recursively with no depth limit: a few thousand `[` overflowed the
///   stack;
/// - its unescaping (figment 0.10 `value/escape.rs`) cuts a `"` string at a
///   character count taken as a byte index: a non-ASCII character before the
///   string's first `\` panicked.
fn env_value_issues() -> Vec<Issue> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let (k, v) = (k.to_str()?, v.to_str()?);
            // figment matches the prefix without regard to case.
            let rest = k.get(ENV_PREFIX.len()..).filter(|_| {
                k.get(..ENV_PREFIX.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            })?;
            let message = env_value_problem(v)?;
            Some(Issue {
                key: rest
                    .split(ENV_SPLIT)
                    .collect::<Vec<_>>()
                    .join(".")
                    .to_ascii_lowercase(),
                source: format!("environment variable {k}"),
                message,
            })
        })
        .collect()
}

/// Reads a value as figment's parser will (`"` strings with `\` escapes, brackets
/// outside them; anything else only makes it stricter) and says what it cannot take.
fn env_value_problem(v: &str) -> Option<String> {
    let (mut depth, mut max) = (0usize, 0);
    // In a string: whether it is past the check (an escape came first, or a
    // non-ASCII character with no escape after it).
    let mut string: Option<bool> = None;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (string, c) {
            (Some(_), '\\') => {
                string = Some(true);
                chars.next();
            }
            (Some(_), '"') => string = None,
            (Some(false), c) if !c.is_ascii() => {
                let rest: String = chars.as_str().chars().take_while(|&c| c != '"').collect();
                if rest.contains('\\') {
                    let code = u32::from(c);
                    let escape = if code > 0xffff {
                        format!("\\U{code:08x}")
                    } else {
                        format!("\\u{code:04x}")
                    };
                    return Some(format!(
                        "the string has the non-ASCII character {c:?} before its first \\ escape, \
                         which the environment parser cannot read: write it as {escape}"
                    ));
                }
                // No escape follows in this string: nothing more to look for in it
                // (and no rescan per character).
                string = Some(true);
            }
            (Some(_), _) => {}
            (None, '"') => string = Some(false),
            (None, '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (max > MAX_ENV_NESTING)
        .then(|| format!("value nests {max} levels of [ ] or {{ }}, at most {MAX_ENV_NESTING}"))
}

/// A named layer as a figment provider, so that errors say where a value came
/// from.
struct Imported {
    name: String,
    toml: String,
}

impl figment::Provider for Imported {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        figment::Provider::data(&Toml::string(&self.toml))
    }
}

fn from_figment(figment: &Figment, err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let issues = err
        .into_iter()
        .map(|e| {
            let mut key = e.path.clone();
            let message = match &e.kind {
                // figment's path already ends with the unknown key.
                Kind::UnknownField(_, expected) => {
                    if expected.is_empty() {
                        "unknown key".to_string()
                    } else {
                        format!("unknown key; expected one of: {}", expected.join(", "))
                    }
                }
                Kind::MissingField(field) => {
                    key.push(field.to_string());
                    "is required".to_string()
                }
                Kind::InvalidValue(actual, expected) if expected == "u8" => {
                    format!("{actual} is out of range 1..255")
                }
                kind => kind.to_string(),
            };
            let source = match &e.metadata {
                Some(md) => describe(md, &key),
                None => source_of(figment, &key),
            };
            Issue {
                key: key.join("."),
                source,
                message,
            }
        })
        .collect();
    ConfigError::Invalid(issues)
}

/// An instance that only environment variables mention and that cannot be built is
/// most likely a typo of an instance name (`HAFRONT_VRRP__INSTANCES__WBE__PRIORITY`):
/// its problems ("interface is required", blamed on a variable never set) become
/// one issue naming the instance, the variables that mention it, and the instances
/// the files define.
fn env_only_instances(files_only: &Figment, err: ConfigError) -> ConfigError {
    let ConfigError::Invalid(issues) = err else {
        return err;
    };
    let defined: Vec<String> = match files_only.find_value("vrrp.instances") {
        Ok(figment::value::Value::Dict(_, d)) => d.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let instance_of = |key: &str| -> Option<String> {
        let rest = key.strip_prefix("vrrp.instances.")?;
        let name = rest.split('.').next()?;
        (!defined.iter().any(|d| d == name)).then(|| name.to_string())
    };
    let mut out: Vec<Issue> = Vec::new();
    for issue in issues {
        let Some(name) = instance_of(&issue.key) else {
            out.push(issue);
            continue;
        };
        if out.iter().any(|i| i.key == format!("vrrp.instances.{name}")) {
            continue;
        }
        let prefix = format!(
            "{ENV_PREFIX}VRRP{ENV_SPLIT}INSTANCES{ENV_SPLIT}{}{ENV_SPLIT}",
            name.to_ascii_uppercase()
        );
        let mut vars: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.to_ascii_uppercase().starts_with(&prefix))
            .collect();
        vars.sort();
        if vars.is_empty() {
            out.push(issue);
            continue;
        }
        let known = if defined.is_empty() {
            "no file defines any instance".to_string()
        } else {
            format!("the files define {}", defined.join(", "))
        };
        out.push(Issue {
            key: format!("vrrp.instances.{name}"),
            source: format!("environment variable {}", vars.join(", ")),
            message: format!(
                "instance \"{name}\" is set only by the environment and cannot be built ({}: {}); {known}. \
                 A typo of the instance name? (An instance defined in the environment alone needs \
                 interface, vrid and virtual_ips.)",
                issue.key, issue.message
            ),
        });
    }
    ConfigError::Invalid(out)
}

/// The source of the value at `key`, or of its closest parent that has one.
fn source_of(figment: &Figment, key: &[String]) -> String {
    (1..=key.len())
        .rev()
        .find_map(|n| {
            figment
                .find_metadata(&key[..n].join("."))
                .map(|md| describe(md, key))
        })
        .unwrap_or_default()
}

fn describe(md: &Metadata, key: &[String]) -> String {
    match &md.source {
        Some(Source::File(path)) => path.display().to_string(),
        Some(Source::Code(_)) => "built-in defaults".to_string(),
        _ if md.name.contains("environment") => {
            let upper: Vec<String> = key.iter().map(|k| k.to_ascii_uppercase()).collect();
            format!("environment variable {ENV_PREFIX}{}", upper.join(ENV_SPLIT))
        }
        _ => md.name.to_string(),
    }
}

impl Config {
    /// The effective configuration as TOML, secrets replaced by `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        // Serialization of this schema cannot fail (string keys, no NaN): keep a
        // message rather than a panic anyway.
        let text = match toml::to_string(self) {
            Ok(t) => t,
            Err(e) => return format!("# cannot print the configuration: {e}\n"),
        };
        // Every header value serialized as `<redacted>`; put back the checks'
        // public ones, in place (the document keeps its order).
        let public: Vec<_> = self
            .checks
            .iter()
            .flat_map(|(name, c)| c.public_header_values().map(move |(k, v)| (name, k, v)))
            .collect();
        if public.is_empty() {
            return text;
        }
        let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
            return text;
        };
        for (name, k, v) in public {
            if let Some(h) = doc["checks"][name.as_str()]["headers"].as_table_like_mut() {
                h.insert(k, toml_edit::value(v));
            }
        }
        doc.to_string()
    }

    /// Loads from explicit files only, ignoring the environment, without the
    /// machine checks of `crate::preflight` (tests, tools).
    pub fn from_files(files: &[&Path]) -> Result<Config, ConfigError> {
        load(&Sources {
            files: files.iter().map(|p| p.to_path_buf()).collect(),
            ..Default::default()
        })
    }
}
