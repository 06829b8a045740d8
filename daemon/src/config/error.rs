//! Configuration errors: each names the key and where its value came from.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error("{}", Issues(.0))]
    Invalid(Vec<Issue>),
    /// A layer the caller could not produce (a keepalived configuration that
    /// cannot be imported): where, and why.
    #[error("{at}: {message}")]
    Import { at: String, message: String },
}

/// One problem with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path (`vrrp.instances.web.priority`); empty for file-level errors.
    pub key: String,
    /// Where the value came from: a file path, an environment variable or the
    /// built-in defaults.
    pub source: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), self.source.is_empty()) {
            (true, _) => write!(f, "{}: {}", self.source, self.message),
            (false, true) => write!(f, "{}: {}", self.key, self.message),
            (false, false) => write!(f, "{}: {} (from {})", self.key, self.message, self.source),
        }
    }
}

struct Issues<'a>(&'a [Issue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, issue) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// The problems, for callers that want to check a specific key.
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            ConfigError::File { path, source } => vec![Issue {
                key: String::new(),
                source: path.display().to_string(),
                message: source.to_string(),
            }],
            ConfigError::Invalid(v) => v.clone(),
            ConfigError::Import { at, message } => vec![Issue {
                key: String::new(),
                source: at.clone(),
                message: message.clone(),
            }],
        }
    }
}
