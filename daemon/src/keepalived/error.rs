//! Import errors and warnings, each located at a file and line of the keepalived
//! configuration.

use std::fmt;
use std::sync::Arc;

/// Where a token, a block or a keyword was read: the file as the user named it (or
/// as the `include` pattern expanded) and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A configuration that cannot be imported: a syntax error, an unknown block, a
/// value keepalived or hafront would reject, a missing include, or (with
/// `--strict`) a keyword that is not carried over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct ImportError {
    pub loc: Loc,
    pub message: String,
}

impl ImportError {
    pub fn new(loc: &Loc, message: impl Into<String>) -> ImportError {
        ImportError {
            loc: loc.clone(),
            message: message.into(),
        }
    }
}

/// How a reported keyword fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// Not carried over (fatal with `--strict`).
    Dropped,
    /// Carried over, but hafront behaves differently or the value was adjusted.
    Changed,
}

/// `file:line: keyword: why`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub loc: Loc,
    pub keyword: String,
    pub why: String,
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.loc, self.keyword, self.why)
    }
}
