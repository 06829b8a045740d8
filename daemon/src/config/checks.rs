//! `[checks.<name>]`: health checks (keepalived's TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, PING_CHECK, DNS_CHECK, SMTP_CHECK, UDP_CHECK and vrrp_script), and
//! their validation. One flat table per check: the keys of every kind are listed
//! here, and a key that does not apply to the check's `kind` is an error.
//!
//! Kind-specific parsing (URLs, targets, digests, PEM files) lives in
//! `crate::checks::spec`; `crate::preflight` runs it on every check, so that
//! check-config and the running checker agree.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::schema::duration;
use super::validate::Problem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Tcp,
    Http,
    Https,
    Exec,
    Ping,
    Dns,
    Smtp,
    Udp,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Https => "https",
            CheckKind::Exec => "exec",
            CheckKind::Ping => "ping",
            CheckKind::Dns => "dns",
            CheckKind::Smtp => "smtp",
            CheckKind::Udp => "udp",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One health check. Common keys first, then the keys of each kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub kind: CheckKind,
    /// Time between the starts of two checks.
    #[serde(with = "duration", default = "default_interval")]
    pub interval: Duration,
    /// Limit for one attempt (connect + exchange, or the command's run time).
    #[serde(with = "duration", default = "default_timeout")]
    pub timeout: Duration,
    /// Extra attempts after a failed one before the check counts as failed.
    #[serde(default)]
    pub retries: u32,
    /// Pause before each extra attempt.
    #[serde(with = "duration", default = "default_retry_delay")]
    pub retry_delay: Duration,
    /// Consecutive successes to go up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures to go down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Upper bound of the random delay before the first check (default: `interval`).
    #[serde(
        default,
        with = "super::schema::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub warmup: Option<Duration>,
    /// Source address of the probe's socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<IpAddr>,
    /// Interface the probe's socket is bound to (SO_BINDTODEVICE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_interface: Option<String>,

    /// tcp, smtp, udp: `IP:port`; ping: an IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,

    /// http, https: the URL (`http://192.0.2.11/health`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::schema::redacted_opt_url"
    )]
    pub url: Option<String>,
    /// HTTP method (`GET`, `HEAD`, `POST`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Extra request headers. Their values are redacted when the configuration is
    /// printed, except those named in `public_headers`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "redacted_headers"
    )]
    pub headers: BTreeMap<String, String>,
    /// Names of `headers` whose values are not secret and may be printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_headers: Vec<String>,
    /// Virtual host (`Host` header) and TLS server name; the URL's host by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request body (POST, PUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Accepted status codes and ranges (`[200, "300-399"]`); 200-299 when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<StatusRange>,
    /// The body must contain this string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// The body must match this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body_regex: Option<String>,
    /// `md5:<hex>` (as keepalived's genhash prints it) or `sha256:<hex>` of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_digest: Option<String>,
    /// https: PEM file of extra trusted CA certificates (beside the bundled roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// https: PEM client certificate chain (with `client_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// https: PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// https: verify the server's certificate and name. `false` is an explicit opt-out.
    #[serde(default = "yes")]
    pub tls_verify: bool,

    /// exec: the program and its arguments (no shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// exec: exit codes 2..255 mean up with weight = code − 2 (keepalived `misc_dynamic`).
    #[serde(default)]
    pub dynamic_weight: bool,

    /// dns: the server, `IP:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// dns: the name to query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_name: Option<String>,
    /// dns: the record type (`A`, `AAAA`, `MX`...); `A` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    /// dns: addresses that must all be in the answer; udp: the reply must contain
    /// this (one string; `hex:` prefix for bytes).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub expect: Vec<String>,

    /// smtp: the HELO argument; the host name by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo_name: Option<String>,

    /// udp: the datagram to send (`hex:` prefix for bytes); empty by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn yes() -> bool {
    true
}

impl CheckConfig {
    /// A check of `kind` with every other key at its default.
    pub fn new(kind: CheckKind) -> CheckConfig {
        CheckConfig {
            kind,
            interval: default_interval(),
            timeout: default_timeout(),
            retries: 0,
            retry_delay: default_retry_delay(),
            rise: default_rise(),
            fall: default_fall(),
            warmup: None,
            bind_address: None,
            bind_interface: None,
            target: None,
            url: None,
            method: None,
            headers: BTreeMap::new(),
            public_headers: Vec::new(),
            host: None,
            body: None,
            expect_status: Vec::new(),
            expect_body: None,
            expect_body_regex: None,
            expect_digest: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            tls_verify: true,
            command: Vec::new(),
            dynamic_weight: false,
            server: None,
            query_name: None,
            query_type: None,
            expect: Vec::new(),
            helo_name: None,
            payload: None,
        }
    }

    /// The effective warm-up bound.
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or(self.interval)
    }

    /// Every kind-specific key that is set applies to the kind (otherwise the
    /// check is reported for that and not compiled).
    pub fn keys_fit_kind(&self) -> bool {
        let allowed = kind_keys(self.kind);
        self.kind_keys_set().iter().all(|k| allowed.contains(k))
    }

    /// The kind-specific keys that are set, for the "does not apply" rule.
    fn kind_keys_set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut key = |on: bool, name: &'static str| {
            if on {
                set.push(name)
            }
        };
        key(self.target.is_some(), "target");
        key(self.url.is_some(), "url");
        key(self.method.is_some(), "method");
        key(!self.headers.is_empty(), "headers");
        key(!self.public_headers.is_empty(), "public_headers");
        key(self.host.is_some(), "host");
        key(self.body.is_some(), "body");
        key(!self.expect_status.is_empty(), "expect_status");
        key(self.expect_body.is_some(), "expect_body");
        key(self.expect_body_regex.is_some(), "expect_body_regex");
        key(self.expect_digest.is_some(), "expect_digest");
        key(self.ca_file.is_some(), "ca_file");
        key(self.client_cert.is_some(), "client_cert");
        key(self.client_key.is_some(), "client_key");
        key(!self.tls_verify, "tls_verify");
        key(!self.command.is_empty(), "command");
        key(self.dynamic_weight, "dynamic_weight");
        key(self.server.is_some(), "server");
        key(self.query_name.is_some(), "query_name");
        key(self.query_type.is_some(), "query_type");
        key(!self.expect.is_empty(), "expect");
        key(self.helo_name.is_some(), "helo_name");
        key(self.payload.is_some(), "payload");
        key(self.bind_address.is_some(), "bind_address");
        key(self.bind_interface.is_some(), "bind_interface");
        set
    }
}

/// The keys each kind accepts beyond the common ones.
pub fn kind_keys(kind: CheckKind) -> &'static [&'static str] {
    const NET: [&str; 2] = ["bind_address", "bind_interface"];
    match kind {
        CheckKind::Tcp => &["target", NET[0], NET[1]],
        CheckKind::Http => &[
            "url",
            "method",
            "headers",
            "public_headers",
            "host",
            "body",
            "expect_status",
            "expect_body",
            "expect_body_regex",
            "expect_digest",
            NET[0],
            NET[1],
        ],
        CheckKind::Https => &[
            "url",
            "method",
            "headers",
            "public_headers",
            "host",
            "body",
            "expect_status",
            "expect_body",
            "expect_body_regex",
            "expect_digest",
            "ca_file",
            "client_cert",
            "client_key",
            "tls_verify",
            NET[0],
            NET[1],
        ],
        CheckKind::Exec => &["command", "dynamic_weight"],
        CheckKind::Ping => &["target", NET[0], NET[1]],
        CheckKind::Dns => &["server", "query_name", "query_type", "expect", NET[0], NET[1]],
        CheckKind::Smtp => &["target", "helo_name", NET[0], NET[1]],
        CheckKind::Udp => &["target", "payload", "expect", NET[0], NET[1]],
    }
}

/// An accepted HTTP status: one code or an inclusive range. Written `200` or
/// `"200-299"` (a single code may also be a string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

impl StatusRange {
    pub fn contains(&self, code: u16) -> bool {
        (self.low..=self.high).contains(&code)
    }

    /// True if some range of `ranges` contains `code`; an empty list means 200-299.
    pub fn any_contains(ranges: &[StatusRange], code: u16) -> bool {
        if ranges.is_empty() {
            (200..=299).contains(&code)
        } else {
            ranges.iter().any(|r| r.contains(code))
        }
    }

    /// `[200, 300-399]`, as error messages show the expected set.
    pub fn list(ranges: &[StatusRange]) -> String {
        let items: Vec<String> = if ranges.is_empty() {
            vec!["200-299".to_string()]
        } else {
            ranges.iter().map(|r| r.to_string()).collect()
        };
        format!("[{}]", items.join(", "))
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl FromStr for StatusRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = |t: &str| -> Result<u16, String> {
            match t.trim().parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!("{:?} is not an HTTP status code (100..599)", t.trim())),
            }
        };
        let r = match s.split_once('-') {
            Some((a, b)) => StatusRange {
                low: code(a)?,
                high: code(b)?,
            },
            None => {
                let c = code(s)?;
                StatusRange { low: c, high: c }
            }
        };
        if r.low > r.high {
            return Err(format!("{s:?}: the range is empty (low > high)"));
        }
        Ok(r)
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.low == self.high {
            s.serialize_u16(self.low)
        } else {
            s.serialize_str(&self.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            I(i64),
            S(String),
        }
        let text = match Raw::deserialize(d) {
            Ok(Raw::I(i)) => i.to_string(),
            Ok(Raw::S(s)) => s,
            Err(_) => {
                return Err(serde::de::Error::custom(
                    "expected a status code (200) or a range (\"200-299\")",
                ))
            }
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Every header value is printed as `<redacted>` (an API key may hide in any
/// header); [`Config::to_redacted_toml`](super::Config::to_redacted_toml) puts back the public ones.
fn redacted_headers<S: Serializer>(h: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&str, &str> = h.keys().map(|k| (k.as_str(), super::REDACTED)).collect();
    shown.serialize(s)
}

impl CheckConfig {
    /// The headers whose values may be printed: those named in `public_headers`
    /// (names compared without case).
    pub fn public_header_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(k, _)| self.public_headers.iter().any(|p| p.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A string or a list of strings (`expect = "pong"` or `expect = ["192.0.2.1"]`).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    match Raw::deserialize(d) {
        Ok(Raw::One(s)) => Ok(vec![s]),
        Ok(Raw::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom("expected a string or a list of strings")),
    }
}

/// Parses `IP:port` (IPv6 as `[2001:db8::1]:53`).
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not IP:port (IPv6: \"[2001:db8::1]:80\")"))
}

const DURATION_MAX: Duration = Duration::from_secs(3600);
const COUNT_MAX: u32 = 1000;

pub(super) fn validate(checks: &BTreeMap<String, CheckConfig>, problems: &mut Vec<Problem>) {
    for (name, c) in checks {
        let mut p = |field: &str, message: String| {
            let mut key = vec!["checks".to_string(), name.clone()];
            key.extend(field.split('.').filter(|f| !f.is_empty()).map(str::to_string));
            problems.push(Problem { key, message });
        };
        if !super::validate::valid_instance_name(name) {
            p(
                "",
                format!(
                    "check name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-', \
                     starting with a letter or digit"
                ),
            );
        }
        if c.interval < Duration::from_millis(10) || c.interval > DURATION_MAX {
            p("interval", "must be 10ms..1h".into());
        }
        if c.timeout < Duration::from_millis(1) || c.timeout > DURATION_MAX {
            p("timeout", "must be 1ms..1h".into());
        }
        if c.retry_delay > DURATION_MAX {
            p("retry_delay", "must be at most 1h".into());
        }
        if c.warmup.is_some_and(|w| w > DURATION_MAX) {
            p("warmup", "must be at most 1h".into());
        }
        if c.retries > 100 {
            p("retries", "must be 0..100".into());
        }
        if c.rise == 0 || c.rise > COUNT_MAX {
            p("rise", format!("must be 1..{COUNT_MAX}"));
        }
        if c.fall == 0 || c.fall > COUNT_MAX {
            p("fall", format!("must be 1..{COUNT_MAX}"));
        }
        // As for scripts: a program found on PATH is whatever comes first on the
        // daemon's PATH, with the daemon's privileges.
        if c.kind == CheckKind::Exec
            && c.command
                .first()
                .is_some_and(|p| !p.is_empty() && !p.starts_with('/'))
        {
            p(
                "command",
                format!(
                    "{:?} must be an absolute path (no PATH lookup for exec checks, which run with \
                     hafront's privileges)",
                    c.command[0]
                ),
            );
        }
        if let Some(i) = &c.bind_interface {
            if !super::validate::is_interface_name(i) {
                p("bind_interface", format!("{i:?} is not an interface name"));
            }
        }
        let allowed = kind_keys(c.kind);
        for key in c.kind_keys_set() {
            if !allowed.contains(&key) {
                p(
                    key,
                    format!(
                        "does not apply to kind = \"{}\" (its keys: {})",
                        c.kind,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}
