//! A check's configuration compiled for running: targets parsed, regexes compiled,
//! PEM files loaded into a TLS client configuration. Building is also how the
//! configuration is validated (`config::checks::validate`), so a configuration that
//! passes check-config is one the checker can run. Errors name the key.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use regex::Regex;
use rustls_pki_types::ServerName;

use crate::config::checks::{parse_socket_addr, CheckConfig, CheckKind, StatusRange};

use super::dns;
use super::tls;

/// A key and what is wrong with it.
pub type SpecError = (&'static str, String);

/// Everything one check needs to run.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    pub rise: u32,
    pub fall: u32,
    pub warmup: Duration,
    pub bind: Bind,
    pub probe: ProbeSpec,
}

/// Where the probe's socket is bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bind {
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
}

#[derive(Clone, Debug)]
pub enum ProbeSpec {
    Tcp {
        target: SocketAddr,
    },
    Http(Arc<HttpSpec>),
    Exec {
        argv: Vec<String>,
        dynamic_weight: bool,
    },
    Ping {
        target: IpAddr,
    },
    Dns {
        server: SocketAddr,
        name: String,
        qtype: u16,
        expect: Vec<IpAddr>,
    },
    Smtp {
        target: SocketAddr,
        helo: String,
    },
    Udp {
        target: SocketAddr,
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
}

/// Where an HTTP check connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectTo {
    Addr(SocketAddr),
    /// A host name, resolved at each check.
    Name(String, u16),
}

impl fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectTo::Addr(a) => write!(f, "{a}"),
            ConnectTo::Name(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

#[derive(Clone)]
pub struct HttpSpec {
    pub connect: ConnectTo,
    /// Some for https.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub server_name: ServerName<'static>,
    pub method: Method,
    /// Request target (`/health?x=1`).
    pub path: Uri,
    /// `Host` header value.
    pub host_header: HeaderValue,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub expect_status: Vec<StatusRange>,
    pub expect_body: Option<String>,
    pub expect_body_regex: Option<Regex>,
    pub expect_digest: Option<Digest>,
}

impl HttpSpec {
    /// The body must be read (some body expectation is set).
    pub fn wants_body(&self) -> bool {
        self.expect_body.is_some() || self.expect_body_regex.is_some() || self.expect_digest.is_some()
    }
}

impl fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSpec")
            .field("connect", &self.connect)
            .field("tls", &self.tls.is_some())
            .field("server_name", &self.server_name)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("host_header", &self.host_header)
            .field("expect_status", &self.expect_status)
            .finish_non_exhaustive()
    }
}

/// A body digest: `md5:<32 hex>` (keepalived's genhash output) or `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

impl Digest {
    /// The digest of `body` with the same algorithm as `self`.
    pub fn same_kind_of(&self, body: &[u8]) -> Digest {
        use md5::Digest as _;
        match self {
            Digest::Md5(_) => Digest::Md5(md5::Md5::digest(body).into()),
            Digest::Sha256(_) => Digest::Sha256(sha2::Sha256::digest(body).into()),
        }
    }

    pub fn md5(body: &[u8]) -> Digest {
        Digest::Md5([0; 16]).same_kind_of(body)
    }

    pub fn sha256(body: &[u8]) -> Digest {
        Digest::Sha256([0; 32]).same_kind_of(body)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Digest::Md5(b) => b,
            Digest::Sha256(b) => b,
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Digest::Md5(_) => "md5:",
            Digest::Sha256(_) => "sha256:",
        })?;
        for b in self.bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: write \"md5:<hex>\" or \"sha256:<hex>\""))?;
        let bytes = parse_hex(hex).map_err(|e| format!("{s:?}: {e}"))?;
        match (algo.to_ascii_lowercase().as_str(), bytes.len()) {
            ("md5", 16) => Ok(Digest::Md5(bytes.try_into().expect("16 bytes"))),
            ("sha256", 32) => Ok(Digest::Sha256(bytes.try_into().expect("32 bytes"))),
            ("md5", n) => Err(format!("{s:?}: an MD5 digest is 32 hex digits, not {}", n * 2)),
            ("sha256", n) => Err(format!("{s:?}: a SHA-256 digest is 64 hex digits, not {}", n * 2)),
            (other, _) => Err(format!("{other:?} is not a digest algorithm (md5 or sha256)")),
        }
    }
}

/// Hex digits (case-insensitive, whitespace ignored) to bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let txt = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(txt, 16).map_err(|_| format!("{txt:?} is not hex"))
        })
        .collect()
}

/// A payload or expected reply: `hex:0a0b...` for bytes, otherwise the string's bytes.
pub fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    match s.strip_prefix("hex:") {
        Some(hex) => parse_hex(hex),
        None => Ok(s.as_bytes().to_vec()),
    }
}

/// A socket address, or an IP with a default port.
fn addr_or_ip(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.trim().parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    parse_socket_addr(s)
}

/// The host name of this machine (SMTP HELO default).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hafront".to_string())
}

impl CheckSpec {
    /// Compiles a check. Every problem is returned with its key (relative to
    /// `checks.<name>`).
    pub fn build(name: &str, c: &CheckConfig) -> Result<CheckSpec, Vec<SpecError>> {
        let mut errs: Vec<SpecError> = Vec::new();
        let bind = Bind {
            address: c.bind_address,
            interface: c.bind_interface.clone(),
        };
        let probe = match c.kind {
            CheckKind::Tcp => target(c, None, &mut errs).map(|target| ProbeSpec::Tcp { target }),
            CheckKind::Smtp => target(c, Some(25), &mut errs).map(|target| ProbeSpec::Smtp {
                target,
                helo: c.helo_name.clone().unwrap_or_else(hostname),
            }),
            CheckKind::Udp => {
                let target = target(c, None, &mut errs);
                let payload = match c.payload.as_deref().map(parse_bytes).transpose() {
                    Ok(p) => p.unwrap_or_default(),
                    Err(e) => {
                        errs.push(("payload", e));
                        Vec::new()
                    }
                };
                let expect = match c.expect.as_slice() {
                    [] => None,
                    [one] => match parse_bytes(one) {
                        Ok(b) if b.is_empty() => {
                            errs.push(("expect", "must not be empty".into()));
                            None
                        }
                        Ok(b) => Some(b),
                        Err(e) => {
                            errs.push(("expect", e));
                            None
                        }
                    },
                    _ => {
                        errs.push(("expect", "a udp check expects one reply string".into()));
                        None
                    }
                };
                target.map(|target| ProbeSpec::Udp {
                    target,
                    payload,
                    expect,
                })
            }
            CheckKind::Ping => match c.target.as_deref() {
                None => {
                    errs.push(("target", "is required (an IP address)".into()));
                    None
                }
                Some(t) => match t.trim().parse::<IpAddr>() {
                    Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                        errs.push(("target", format!("{ip} is not a unicast address")));
                        None
                    }
                    Ok(ip) => Some(ProbeSpec::Ping { target: ip }),
                    Err(_) => {
                        errs.push(("target", format!("{t:?} is not an IP address")));
                        None
                    }
                },
            },
            CheckKind::Exec => {
                if c.command.is_empty() || c.command[0].is_empty() {
                    errs.push((
                        "command",
                        "is required: the program and its arguments, e.g. [\"/usr/local/bin/check\", \"-q\"]"
                            .into(),
                    ));
                    None
                } else {
                    let prog = std::path::Path::new(&c.command[0]);
                    if prog.is_absolute() && !prog.exists() {
                        errs.push(("command", format!("{}: no such file", prog.display())));
                    }
                    Some(ProbeSpec::Exec {
                        argv: c.command.clone(),
                        dynamic_weight: c.dynamic_weight,
                    })
                }
            }
            CheckKind::Dns => dns_spec(c, &mut errs),
            CheckKind::Http | CheckKind::Https => {
                http_spec(c, &mut errs).map(|h| ProbeSpec::Http(Arc::new(h)))
            }
        };
        // The source address must be of the target's family.
        if let (Some(src), Some(dst)) = (bind.address, probe.as_ref().and_then(target_ip)) {
            if src.is_ipv6() != dst.is_ipv6() {
                errs.push(("bind_address", format!("{src} is not of the family of {dst}")));
            }
        }
        match probe {
            Some(probe) if errs.is_empty() => Ok(CheckSpec {
                name: name.to_string(),
                kind: c.kind,
                interval: c.interval,
                timeout: c.timeout,
                retries: c.retries,
                retry_delay: c.retry_delay,
                rise: c.rise.max(1),
                fall: c.fall.max(1),
                warmup: c.warmup(),
                bind,
                probe,
            }),
            _ => Err(errs),
        }
    }
}

fn target_ip(p: &ProbeSpec) -> Option<IpAddr> {
    match p {
        ProbeSpec::Tcp { target } | ProbeSpec::Smtp { target, .. } | ProbeSpec::Udp { target, .. } => {
            Some(target.ip())
        }
        ProbeSpec::Ping { target } => Some(*target),
        ProbeSpec::Dns { server, .. } => Some(server.ip()),
        ProbeSpec::Http(h) => match h.connect {
            ConnectTo::Addr(a) => Some(a.ip()),
            ConnectTo::Name(..) => None,
        },
        ProbeSpec::Exec { .. } => None,
    }
}

fn target(c: &CheckConfig, default_port: Option<u16>, errs: &mut Vec<SpecError>) -> Option<SocketAddr> {
    let Some(t) = c.target.as_deref() else {
        errs.push(("target", "is required (IP:port)".into()));
        return None;
    };
    let parsed = match default_port {
        Some(p) => addr_or_ip(t, p),
        None => parse_socket_addr(t),
    };
    match parsed {
        Ok(a) if a.port() == 0 => {
            errs.push(("target", format!("{a}: port 0")));
            None
        }
        Ok(a) if a.ip().is_unspecified() || a.ip().is_multicast() => {
            errs.push(("target", format!("{a} is not a unicast address")));
            None
        }
        Ok(a) => Some(a),
        Err(e) => {
            errs.push(("target", e));
            None
        }
    }
}

fn dns_spec(c: &CheckConfig, errs: &mut Vec<SpecError>) -> Option<ProbeSpec> {
    let server = match c.server.as_deref() {
        None => {
            errs.push(("server", "is required (IP or IP:port)".into()));
            None
        }
        Some(s) => match addr_or_ip(s, 53) {
            Ok(a) => Some(a),
            Err(e) => {
                errs.push(("server", e));
                None
            }
        },
    };
    let name = match c.query_name.as_deref() {
        None => {
            errs.push(("query_name", "is required".into()));
            None
        }
        Some(n) => match dns::check_name(n) {
            Ok(()) => Some(n.to_string()),
            Err(e) => {
                errs.push(("query_name", e));
                None
            }
        },
    };
    let qtype_name = c.query_type.as_deref().unwrap_or("A");
    let qtype = match dns::qtype_from_str(qtype_name) {
        Some(t) => Some(t),
        None => {
            errs.push((
                "query_type",
                format!(
                    "{qtype_name:?} is not a record type ({} or TYPE<n>)",
                    dns::QTYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            ));
            None
        }
    };
    let mut expect = Vec::new();
    for e in &c.expect {
        match e.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let fits = match qtype {
                    Some(dns::TYPE_A) => ip.is_ipv4(),
                    Some(dns::TYPE_AAAA) => ip.is_ipv6(),
                    _ => false,
                };
                if !fits {
                    errs.push((
                        "expect",
                        format!("{ip}: expected addresses need query_type A (IPv4) or AAAA (IPv6)"),
                    ));
                }
                expect.push(ip);
            }
            Err(_) => errs.push(("expect", format!("{e:?} is not an IP address"))),
        }
    }
    Some(ProbeSpec::Dns {
        server: server?,
        name: name?,
        qtype: qtype?,
        expect,
    })
}

fn http_spec(c: &CheckConfig, errs: &mut Vec<SpecError>) -> Option<HttpSpec> {
    let https = c.kind == CheckKind::Https;
    let Some(url) = c.url.as_deref() else {
        errs.push(("url", "is required".into()));
        return None;
    };
    // Messages show the URL without its userinfo (a password).
    let shown = crate::config::redact_userinfo(url);
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            errs.push(("url", format!("{shown:?} is not a URL: {e}")));
            return None;
        }
    };
    let want = if https { "https" } else { "http" };
    match uri.scheme_str() {
        Some(s) if s == want => {}
        Some("https") => {
            errs.push(("url", "is an https URL: use kind = \"https\"".into()));
            return None;
        }
        Some("http") => {
            errs.push(("url", "is an http URL: use kind = \"http\"".into()));
            return None;
        }
        _ => {
            errs.push(("url", format!("{shown:?}: must start with {want}://")));
            return None;
        }
    }
    let Some(authority) = uri.authority() else {
        errs.push(("url", format!("{shown:?} has no host")));
        return None;
    };
    if authority.as_str().contains('@') {
        errs.push((
            "url",
            "user:password in the URL is not supported; set headers.Authorization".into(),
        ));
    }
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let connect = match bare.parse::<IpAddr>() {
        Ok(ip) => ConnectTo::Addr(SocketAddr::new(ip, port)),
        Err(_) => ConnectTo::Name(bare.to_string(), port),
    };
    let path: Uri = match uri.path_and_query() {
        Some(pq) => pq.as_str().parse().expect("a path and query parse as a URI"),
        None => Uri::from_static("/"),
    };
    let host_text = c.host.clone().unwrap_or_else(|| authority.as_str().to_string());
    let host_header = match HeaderValue::from_str(&host_text) {
        Ok(v) => v,
        Err(_) => {
            errs.push(("host", format!("{host_text:?} is not a valid Host header")));
            HeaderValue::from_static("invalid")
        }
    };
    // The TLS server name: the host without its port (and IPv6 brackets).
    let sni_text = match c.host.as_deref() {
        Some(h) => strip_port(h),
        None => bare.to_string(),
    };
    let server_name = match ServerName::try_from(sni_text.clone()) {
        Ok(n) => n,
        Err(_) => {
            errs.push((
                if c.host.is_some() { "host" } else { "url" },
                format!("{sni_text:?} is not a DNS name or IP address"),
            ));
            ServerName::try_from("invalid.invalid").expect("a valid name")
        }
    };
    let method = match c.method.as_deref() {
        None => Method::GET,
        Some(m) => match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                errs.push(("method", format!("{m:?} is not an HTTP method")));
                Method::GET
            }
        },
    };
    let mut headers = Vec::new();
    for (k, v) in &c.headers {
        let name = match HeaderName::from_bytes(k.as_bytes()) {
            Ok(n) => n,
            Err(_) => {
                errs.push(("headers", format!("{k:?} is not a header name")));
                continue;
            }
        };
        if name == hyper::header::HOST {
            errs.push(("headers", "set the Host header with the host key".into()));
            continue;
        }
        match HeaderValue::from_str(v) {
            Ok(v) => headers.push((name, v)),
            Err(_) => errs.push((
                "headers",
                format!("the value of {k:?} is not a valid header value"),
            )),
        }
    }
    for p in &c.public_headers {
        if !c.headers.keys().any(|k| k.eq_ignore_ascii_case(p)) {
            errs.push(("public_headers", format!("{p:?} is not one of the headers")));
        }
    }
    let expect_body_regex = match c.expect_body_regex.as_deref().map(Regex::new).transpose() {
        Ok(r) => r,
        Err(e) => {
            errs.push(("expect_body_regex", e.to_string()));
            None
        }
    };
    let expect_digest = match c.expect_digest.as_deref().map(str::parse::<Digest>).transpose() {
        Ok(d) => d,
        Err(e) => {
            errs.push(("expect_digest", e));
            None
        }
    };
    if method == Method::HEAD
        && (c.expect_body.is_some() || expect_body_regex.is_some() || expect_digest.is_some())
    {
        errs.push(("method", "a HEAD response has no body to check".into()));
    }
    let tls = if https {
        match tls::client_config(c.into()) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                errs.push(e);
                None
            }
        }
    } else {
        None
    };
    Some(HttpSpec {
        connect,
        tls,
        server_name,
        method,
        path,
        host_header,
        headers,
        body: Bytes::from(c.body.clone().unwrap_or_default()),
        expect_status: c.expect_status.clone(),
        expect_body: c.expect_body.clone(),
        expect_body_regex,
        expect_digest,
    })
}

/// `example.com:8443` -> `example.com`; `[2001:db8::1]:443` -> `2001:db8::1`.
fn strip_port(h: &str) -> String {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    if h.parse::<IpAddr>().is_ok() {
        return h.to_string();
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name.to_string(),
        _ => h.to_string(),
    }
}
