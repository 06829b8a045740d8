//! `[api]`: where the HTTP API listens and who may use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::schema::Secret;
use super::validate::Problem;

/// Shortest bearer token accepted, inline or from `token_file`.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Unix socket (mode 0660); `<runtime_dir>/api.sock` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Optional TCP listener, e.g. `127.0.0.1:9165`. Requires a token, loopback
    /// too: any local user or web page reaches a loopback port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Bearer token for the TCP listener (prefer `token_file` or the environment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// File holding the bearer token (first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl ApiConfig {
    pub fn socket_path(&self, runtime_dir: &std::path::Path) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| runtime_dir.join("api.sock"))
    }

    /// The token, from `token` or `token_file`. Read at start and at reload; a
    /// file's token gets the same minimum length as one given inline.
    pub fn load_token(&self) -> Result<Option<String>, String> {
        if let Some(t) = &self.token {
            return Ok(Some(t.expose().to_string()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() {
            return Err(format!("{}: empty token", path.display()));
        }
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "{}: the token must be at least {MIN_TOKEN_CHARS} characters (it has {})",
                path.display(),
                token.chars().count()
            ));
        }
        Ok(Some(token))
    }
}

pub(super) fn validate(api: &ApiConfig, problems: &mut Vec<Problem>) {
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            key: vec!["api".into(), key.into()],
            message,
        })
    };
    if let Some(s) = &api.socket {
        if !s.is_absolute() {
            problem("socket", "must be an absolute path".into());
        }
    }
    if api.token.is_some() && api.token_file.is_some() {
        problem(
            "token_file",
            "give either api.token or api.token_file, not both".into(),
        );
    }
    if let Some(t) = &api.token {
        if t.expose().trim().chars().count() < MIN_TOKEN_CHARS {
            problem("token", format!("must be at least {MIN_TOKEN_CHARS} characters"));
        }
    }
    if let Some(f) = &api.token_file {
        if !f.is_absolute() {
            problem("token_file", "must be an absolute path".into());
        }
    }
    if let Some(addr) = api.listen {
        // Loopback included: any local user, a local web app (SSRF) or a browser
        // page reaches it (docs/security.md, "The API").
        if api.token.is_none() && api.token_file.is_none() {
            problem(
                "listen",
                format!("a TCP listener ({addr}) needs a token: set api.token_file (or api.token) so requests must carry a bearer token, or use the Unix socket"),
            );
        }
    }
}
