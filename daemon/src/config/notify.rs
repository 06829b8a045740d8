//! `[notify]` (e-mail and webhook alerts, notifier timeout) and `[security]` (who
//! runs scripts), with their validation. The per-instance `notify_*` scripts are
//! keys of `[vrrp.instances.NAME]` (schema.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::schema::{duration, redact_userinfo, Secret};
use super::validate::Problem;
use super::Config;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Limit for each notifier (a script, a webhook, a mail); the next one in the
    /// instance's queue runs after it.
    #[serde(with = "duration")]
    pub timeout: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            timeout: Duration::from_secs(10),
            smtp: None,
            webhooks: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay).
    None,
    /// Plain connection upgraded with STARTTLS (port 587); refused if not offered.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port` (port 25 when omitted).
    pub server: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM CA bundle to verify the server with (the WebPKI roots by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Limit for the whole exchange.
    #[serde(with = "duration", default = "default_smtp_timeout")]
    pub timeout: Duration,
    /// AUTH PLAIN, only over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL receiving a JSON POST per state change.
    #[serde(serialize_with = "super::schema::redacted_url")]
    pub url: String,
    /// Extra request headers (e.g. `Authorization`); values are never printed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    #[serde(with = "duration", default = "default_smtp_timeout")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The user tracking scripts, exec checks and notify scripts run as. Unset:
    /// `hafront-script` when that user exists, else the daemon's own user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_user: Option<String>,
    /// When hafront runs as root, refuse scripts that a non-root user could change
    /// (the file or a directory on its path writable by one).
    pub script_security: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            script_user: None,
            script_security: true,
        }
    }
}

/// The default script user's name.
pub const DEFAULT_SCRIPT_USER: &str = "hafront-script";

pub(super) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let mut p = |key: &[&str], message: String| {
        problems.push(Problem {
            key: key.iter().map(|s| s.to_string()).collect(),
            message,
        })
    };
    let n = &cfg.notify;
    if n.timeout.is_zero() {
        p(&["notify", "timeout"], "must be more than 0".into());
    }
    if let Some(s) = &n.smtp {
        if split_server(&s.server).is_err() {
            p(
                &["notify", "smtp", "server"],
                format!("{:?} is not host:port (e.g. \"mail.example.org:587\")", s.server),
            );
        }
        if let Err(e) = check_address(&s.from) {
            p(&["notify", "smtp", "from"], format!("{:?} {e}", s.from));
        }
        if s.to.is_empty() {
            p(
                &["notify", "smtp", "to"],
                "at least one recipient is needed".into(),
            );
        }
        for (i, to) in s.to.iter().enumerate() {
            if let Err(e) = check_address(to) {
                p(&["notify", "smtp", "to"], format!("entry {i} ({to:?}) {e}"));
            }
        }
        if s.username.is_some() != s.password.is_some() {
            p(
                &["notify", "smtp", "password"],
                "give both username and password, or neither".into(),
            );
        }
        if s.username.is_some() && s.tls == SmtpTls::None {
            p(
                &["notify", "smtp", "tls"],
                "AUTH sends the password: use \"starttls\" or \"tls\"".into(),
            );
        }
        if s.timeout.is_zero() {
            p(&["notify", "smtp", "timeout"], "must be more than 0".into());
        }
    }
    for (i, w) in n.webhooks.iter().enumerate() {
        let idx = i.to_string();
        if let Err(e) = parse_url(&w.url) {
            p(&["notify", "webhooks", &idx, "url"], e);
        }
        if w.timeout.is_zero() {
            p(
                &["notify", "webhooks", &idx, "timeout"],
                "must be more than 0".into(),
            );
        }
    }
    if !cfg.conntrackd.binary.is_absolute() {
        p(
            &["conntrackd", "binary"],
            format!("{:?} must be an absolute path", cfg.conntrackd.binary),
        );
    }
    for (iname, inst) in &cfg.vrrp.instances {
        if let Some(d) = inst.split_brain_probe.filter(|d| !d.is_zero()) {
            if d < Duration::from_millis(100) {
                p(
                    &["vrrp", "instances", iname, "split_brain_probe"],
                    "must be at least 100ms (0s = off)".into(),
                );
            }
        }
        for ((field, idx), argv) in inst.hooks.commands() {
            let key = ["vrrp", "instances", iname, "hooks", field, &idx];
            match argv.first() {
                None => p(&key, "an empty command".into()),
                Some(a) if !a.starts_with('/') => p(
                    &key,
                    format!("{a:?} must be an absolute path (no PATH lookup for hooks run as root)"),
                ),
                Some(_) => {}
            }
        }
        if let Some(t) = inst.hooks.timeout {
            if t.is_zero() || t > super::schema::HOOK_TIMEOUT_MAX {
                p(
                    &["vrrp", "instances", iname, "hooks", "timeout"],
                    format!(
                        "must be more than 0 and at most {}",
                        humantime::format_duration(super::schema::HOOK_TIMEOUT_MAX)
                    ),
                );
            }
        }
        for (field, argv) in inst.notify_scripts() {
            if argv.is_empty() {
                continue;
            }
            if argv[0].is_empty() || !argv[0].starts_with('/') {
                p(
                    &["vrrp", "instances", iname, field],
                    format!(
                        "{:?} must be an absolute path (no PATH lookup for scripts run as root)",
                        argv[0]
                    ),
                );
            }
        }
    }
}

/// An SMTP server: `host:port`, `host` (port 25), `[v6]:port`.
pub fn split_server(server: &str) -> Result<(String, u16), String> {
    let s = server.trim();
    if s.is_empty() {
        return Err("empty".into());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or("unclosed [")?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if tail.is_empty() => 25,
            None => return Err("junk after ]".into()),
        };
        return Ok((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_string(), p.parse().map_err(|_| "bad port")?)),
        Some(_) => Err("IPv6 addresses go in brackets".into()),
        None => Ok((s.to_string(), 25)),
    }
}

/// A parsed webhook URL.
#[derive(Debug)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `host[:port]` as written in the URL (the Host header; never userinfo:
    /// `parse_url` refuses it).
    pub authority: String,
}

pub fn parse_url(url: &str) -> Result<Target, String> {
    // Messages show the URL without its userinfo (a password).
    let shown = redact_userinfo(url);
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("{shown:?}: only http:// and https:// URLs")),
    };
    let authority = uri.authority().ok_or_else(|| format!("{shown:?} has no host"))?;
    if authority.as_str().contains('@') {
        // Refused rather than turned into Basic auth: a password in a URL ends up
        // in too many places (shell history, process lists, other tools' logs).
        return Err("user:password in the URL is not supported; set headers.Authorization".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    Ok(Target {
        tls,
        port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        authority: authority.as_str().to_string(),
        host,
    })
}

/// An address that goes into `MAIL FROM:<…>`/`RCPT TO:<…>` as it is: `local@domain`,
/// ASCII (a non-ASCII one needs SMTPUTF8, RFC 6531, which hafront does not speak),
/// without blanks or angle brackets.
fn check_address(a: &str) -> Result<(), String> {
    if !a.contains('@') || a.contains(['<', '>']) || a.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err("is not an e-mail address".into());
    }
    if !a.is_ascii() {
        return Err("is not ASCII: write the domain in its xn-- form (non-ASCII local parts need SMTPUTF8, which hafront does not speak)".into());
    }
    Ok(())
}
