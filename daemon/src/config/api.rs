//! `[api]`: where the HTTP API listens and who may use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::schema::Secret;
use super::validate::Problem;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Unix socket (mode 0660); `<runtime_dir>/api.sock` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Optional TCP listener, e.g. `127.0.0.1:9165`. A non-loopback address
    /// requires a token.
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

    /// The token, from `token` or `token_file`. Read at start and at reload.
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
        if t.expose().trim().len() < 16 {
            problem("token", "must be at least 16 characters".into());
        }
    }
    if let Some(f) = &api.token_file {
        if !f.is_absolute() {
            problem("token_file", "must be an absolute path".into());
        }
    }
    if let Some(addr) = api.listen {
        if !addr.ip().is_loopback() && api.token.is_none() && api.token_file.is_none() {
            problem(
                "listen",
                format!("{addr} is not a loopback address: set api.token_file (or api.token) so requests must carry a bearer token"),
            );
        }
    }
}
