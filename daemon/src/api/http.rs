//! Serving: listeners (Unix socket, optional TCP), routing, request bodies.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    REFERRER_POLICY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::events::ApiBody;
use super::limits::{Conns, Limits, Throttle};
use super::{ApiError, Hub};
use crate::config::Config;

/// Largest request body accepted: every request body is a small JSON object.
const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("API socket {path}: {source}")]
    Socket { path: PathBuf, source: std::io::Error },
    #[error("API listener {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("API listener {addr} (api.listen) has no token: set api.token_file (or api.token); every TCP listener, loopback too, requires one")]
    NoToken { addr: SocketAddr },
}

/// The TCP listener's bearer token: replaced when a reload re-reads it.
type TokenSlot = Arc<RwLock<Arc<str>>>;

/// Binds the listeners (errors are returned, so the daemon can say why the API is
/// off) and serves them on the current runtime.
pub async fn serve(
    hub: Hub,
    socket: &Path,
    tcp: Option<SocketAddr>,
    token: Option<String>,
) -> Result<(), ServeError> {
    // Any local user (or a web page through a browser, or an SSRF) reaches a
    // loopback port: TCP always needs the token. Validation refuses this first.
    let tcp = match (tcp, token) {
        (Some(addr), Some(token)) => Some((addr, token)),
        (Some(addr), None) => return Err(ServeError::NoToken { addr }),
        (None, _) => None,
    };
    let unix = bind_unix(socket)?;
    info!(socket = %socket.display(), "API listening");
    let hub = Arc::new(hub);
    {
        let hub = hub.clone();
        let conns = Conns::new(Limits::default());
        tokio::spawn(async move {
            let mut failures = Throttle::default();
            loop {
                match unix.accept().await {
                    Ok((stream, _)) => {
                        let hub = hub.clone();
                        conns.spawn("unix", stream, move |req| {
                            let hub = hub.clone();
                            async move { respond(&hub, None, req).await }
                        })
                    }
                    Err(error) => accept_failed(&mut failures, "unix", error).await,
                }
            }
        });
    }
    if let Some((addr, token)) = tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Tcp { addr, source })?;
        info!(%addr, "API listening on TCP (bearer token required)");
        let token: TokenSlot = Arc::new(RwLock::new(token.into()));
        tokio::spawn(follow_token(hub.config.clone(), token.clone()));
        let conns = Conns::new(Limits::default());
        tokio::spawn(async move {
            let mut failures = Throttle::default();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let hub = hub.clone();
                        let token = token.clone();
                        conns.spawn("tcp", stream, move |req| {
                            let hub = hub.clone();
                            let want = token.read().unwrap_or_else(|p| p.into_inner()).clone();
                            async move { respond(&hub, Some(&want), req).await }
                        })
                    }
                    Err(error) => accept_failed(&mut failures, "tcp", error).await,
                }
            }
        });
    }
    Ok(())
}

/// An accept error (out of file descriptors, usually): logged at most every few
/// seconds, and a pause so the loop does not spin on it.
async fn accept_failed(log: &mut Throttle, listener: &'static str, error: std::io::Error) {
    if let Some(failures) = log.hit() {
        warn!(listener, %error, failures, "API accept failed");
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Re-reads the token at every reload (the configuration changes only then), so a
/// rotated token file takes effect without a restart. A token that cannot be read
/// keeps the previous one: the reload was validated with it readable, so this is a
/// file changed in between, and locking everyone out is no better.
async fn follow_token(mut config: watch::Receiver<Arc<Config>>, slot: TokenSlot) {
    while config.changed().await.is_ok() {
        let api = config.borrow_and_update().api.clone();
        match api.load_token() {
            Ok(Some(token)) => {
                *slot.write().unwrap_or_else(|p| p.into_inner()) = token.into();
                info!("API token re-read");
            }
            Ok(None) => warn!("the reloaded configuration has no API token: the TCP listener keeps the previous one until a restart"),
            Err(error) => error!(%error, "API token not readable after the reload: the TCP listener keeps the previous one"),
        }
    }
}

fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    let err = |source| ServeError::Socket {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |what: String| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, what));
    if let Some(dir) = path.parent() {
        // Created owner-only: nobody else may swap the socket between bind and chmod.
        // A directory that exists keeps its mode (systemd's RuntimeDirectory, or one
        // an admin made group-readable to share the socket), but it must not be a
        // symlink someone could point elsewhere.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let meta = std::fs::symlink_metadata(dir).map_err(err)?;
        if !meta.is_dir() {
            return Err(refuse(format!(
                "{} is a symlink or not a directory: refusing to put the API socket there",
                dir.display()
            )));
        }
    }
    // A socket left by a daemon that was killed: only a socket is removed, and
    // only when nothing answers on it (a second daemon must not steal the first's).
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon answers on this socket",
                )));
            }
            std::fs::remove_file(path).map_err(err)?;
        } else {
            return Err(refuse(format!(
                "{} exists and is not a socket ({}): refusing to replace it",
                path.display(),
                if meta.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "some other file"
                }
            )));
        }
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    chmod_nofollow(path, 0o660).map_err(err)?;
    Ok(listener)
}

/// chmod that acts on `path` itself, never on what a symlink put there points to
/// (fchmodat with AT_SYMLINK_NOFOLLOW: an error for a symlink).
fn chmod_nofollow(path: &Path, mode: libc::mode_t) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: a valid NUL-terminated path; no memory is handed over.
    let rc = unsafe { libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_SYMLINK_NOFOLLOW) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The answer to a request that took longer than the request timeout.
pub(super) fn timed_out(limit: Duration) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"error": format!("request not finished within {} s", limit.as_secs())}),
    )
}

/// `token`: `None` on the Unix socket (its file mode guards it), the token
/// required on TCP.
async fn respond(hub: &Hub, token: Option<&str>, req: Request<Incoming>) -> Response<ApiBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let page = is_page(&path);
    let result = match token {
        Some(want) if !authorized(req.headers().get(AUTHORIZATION), want, page) => {
            Err(ApiError::Unauthorized)
        }
        // A stream, not a whole body: answered here, not in `route`.
        _ if path.trim_end_matches('/') == "/v1/events" => {
            super::events::serve(&crate::events::BUS, &hub.node, &req)
        }
        _ => route(hub, req).await.map(|r| r.map(ApiBody::from)),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                warn!(%method, path, error = %e, "API request failed");
            } else {
                debug!(%method, path, error = %e, "API request refused");
            }
            let mut r = json_response(e.status(), &e.body());
            if page {
                page_headers(&mut r);
                if matches!(e, ApiError::Unauthorized) {
                    // The browser asks for the token (as the password) itself.
                    r.headers_mut().insert(
                        WWW_AUTHENTICATE,
                        HeaderValue::from_static(
                            "Basic realm=\"hafront status (password: the API token)\", charset=\"UTF-8\"",
                        ),
                    );
                }
            }
            r.map(ApiBody::from)
        }
    }
}

/// The status page's paths (`/`, `/status`, `/status/...`): read-only, and the only
/// ones where a browser's Basic credentials stand for the bearer token.
fn is_page(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path.is_empty() || path == "/status" || path.starts_with("/status/")
}

/// `Authorization: Bearer TOKEN`, or on the status page (`basic`) also
/// `Authorization: Basic base64(ANY-USER:TOKEN)`, what a browser sends after
/// asking. Basic stays off the other routes: a browser attaches remembered Basic
/// credentials to cross-site requests too, and those must never reach a route that
/// changes anything.
fn authorized(header: Option<&HeaderValue>, want: &str, basic: bool) -> bool {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    if let Some(got) = value.strip_prefix("Bearer ") {
        return same(got.as_bytes(), want.as_bytes());
    }
    if basic {
        if let Some(pair) = value.strip_prefix("Basic ").and_then(|b| base64_decode(b.trim())) {
            if let Some(i) = pair.iter().position(|&b| b == b':') {
                return same(&pair[i + 1..], want.as_bytes());
            }
        }
    }
    false
}

/// Constant time in the token's length.
fn same(got: &[u8], want: &[u8]) -> bool {
    got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Standard base64 with padding (RFC 4648 §4), as in `Authorization: Basic`; `None`
/// when malformed. At most 1 KiB decoded: a header, not a payload.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 4 != 0 || s.len() > 1368 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (n, chunk) in s.chunks(4).enumerate() {
        let last = n == s.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | val(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_vec_pretty(body).unwrap_or_default();
    text.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The status page's security headers (also on its 401s).
fn page_headers(r: &mut Response<Full<Bytes>>) {
    let h = r.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::page::CSP),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn page_response(content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    page_headers(&mut r);
    r
}

fn text_response(content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Percent-decoding of one path segment (`%5B2001:db8::1%5D:80`).
fn decode_segment(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::NotFound(format!("bad percent-encoding in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::NotFound(format!("path segment {s:?} is not UTF-8")))
}

/// The request body: a JSON object with only the `allowed` keys (a typo must not
/// pass as "no change"), each at most once (`{"priority":100,"priority":200}` is
/// ambiguous, not "the last one wins"). Each key is then read with [`field`], so an
/// error names it.
async fn body_object(
    req: Request<Incoming>,
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError::TooLarge(MAX_BODY))?
        .to_bytes();
    parse_object(&body, allowed)
}

fn parse_object(
    body: &[u8],
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let Entries(entries) = serde_json::from_slice(body)
        .map_err(|e| ApiError::field("body", format!("not a JSON object: {e}")))?;
    let mut map = serde_json::Map::new();
    for (k, v) in entries {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::field(
                &k,
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            ));
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(ApiError::field(&k, "given more than once"));
        }
    }
    Ok(map)
}

/// A JSON object's entries in order, duplicates kept (serde_json's `Map` keeps the
/// last silently).
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    entries.push(kv);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// `Content-Type: application/json` (parameters such as `charset` allowed). A
/// browser sends a cross-site POST without a preflight only for form and text
/// types, so requiring JSON keeps web pages from changing anything.
fn is_json(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Key `name` of the body: `Ok(None)` when absent.
fn field<T: for<'de> Deserialize<'de>>(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match map.get(name) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|_| ApiError::field(name, format!("{v} is not {expected}"))),
    }
}

/// A maintenance request's body: `{"enabled": true|false}`.
async fn enabled_body(req: Request<Incoming>) -> Result<bool, ApiError> {
    let body = body_object(req, &["enabled"]).await?;
    field(&body, "enabled", "true or false")?
        .ok_or_else(|| ApiError::field("enabled", "is required (true or false)"))
}

async fn route(hub: &Hub, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    if method == Method::POST && !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let only = |allowed: Method| -> Result<(), ApiError> {
        if method == allowed {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed(method.to_string()))
        }
    };
    match segments.as_slice() {
        ["healthz"] => {
            only(Method::GET)?;
            Ok(json_response(StatusCode::OK, &json!({"status": "ok"})))
        }
        ["metrics"] => {
            only(Method::GET)?;
            Ok(text_response(
                "text/plain; version=0.0.4; charset=utf-8",
                super::metrics::render(hub),
            ))
        }
        ["v1", "status"] => {
            only(Method::GET)?;
            let mut r = Response::new(Full::new(Bytes::from(super::status::document(hub))));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(r)
        }
        [] => {
            only(Method::GET)?;
            let mut r = page_response("text/plain; charset=utf-8", "the status page is at /status\n");
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/status"));
            Ok(r)
        }
        ["status"] => {
            only(Method::GET)?;
            let doc = super::status::value(hub);
            let html = super::page::page(&doc, crate::shared::reload::unix_ms_now());
            Ok(page_response("text/html; charset=utf-8", html))
        }
        ["status", "live"] => {
            only(Method::GET)?;
            let doc = super::status::value(hub);
            let html = super::page::live(&doc, crate::shared::reload::unix_ms_now());
            Ok(page_response("text/html; charset=utf-8", html))
        }
        ["status", "page.css"] => {
            only(Method::GET)?;
            Ok(page_response("text/css; charset=utf-8", super::page::CSS))
        }
        ["status", "page.js"] => {
            only(Method::GET)?;
            Ok(page_response("text/javascript; charset=utf-8", super::page::JS))
        }
        ["status", "icon.svg"] => {
            only(Method::GET)?;
            Ok(page_response("image/svg+xml", super::page::ICON))
        }
        ["v1", "reload"] => {
            only(Method::POST)?;
            hub.controls.reload().await?;
            Ok(json_response(StatusCode::OK, &json!({"reloaded": true})))
        }
        ["v1", "instances", name, "maintenance"] => {
            only(Method::POST)?;
            let name = decode_segment(name)?;
            let enabled = enabled_body(req).await?;
            hub.controls.maintenance(&name, enabled).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"instance": name, "maintenance": enabled}),
            ))
        }
        ["v1", "anycast", name, "maintenance"] => {
            only(Method::POST)?;
            let name = decode_segment(name)?;
            let enabled = enabled_body(req).await?;
            hub.controls.anycast_maintenance(&name, enabled).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"anycast": name, "maintenance": enabled}),
            ))
        }
        ["v1", "instances", name, "priority"] => {
            only(Method::POST)?;
            let name = decode_segment(name)?;
            let body = body_object(req, &["priority"]).await?;
            if !body.contains_key("priority") {
                return Err(ApiError::field(
                    "priority",
                    "is required (1..254, or null to remove the override)",
                ));
            }
            let priority: Option<u8> =
                field::<Option<u8>>(&body, "priority", "a priority 1..254 or null")?.flatten();
            if let Some(p) = priority {
                if !(1..=254).contains(&p) {
                    return Err(ApiError::field(
                        "priority",
                        format!("{p} is out of range 1..254 (255 is the address owner's, 0 means release)"),
                    ));
                }
            }
            hub.controls.priority(&name, priority).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"instance": name, "priority": priority}),
            ))
        }
        ["v1", "ipvs", "services", service, "real-servers", addr] => {
            only(Method::POST)?;
            let service = decode_segment(service)?;
            let addr_text = decode_segment(addr)?;
            let addr: SocketAddr = addr_text.parse().map_err(|_| {
                ApiError::field("address", format!("{addr_text:?} is not an IP:port address"))
            })?;
            let body = body_object(req, &["enabled", "weight"]).await?;
            let enabled: Option<bool> = field(&body, "enabled", "true or false")?;
            // Absent: unchanged; null: back to the configured weight.
            let weight: Option<Option<u32>> = field(&body, "weight", "a weight 0..2147483647 or null")?;
            if enabled.is_none() && weight.is_none() {
                return Err(ApiError::field("body", "give \"enabled\" and/or \"weight\""));
            }
            if let Some(Some(w)) = weight {
                if w > i32::MAX as u32 {
                    return Err(ApiError::field(
                        "weight",
                        format!("{w} is too large (at most {})", i32::MAX),
                    ));
                }
            }
            let now = hub.controls.real_server(&service, addr, enabled, weight).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"service": service, "address": addr, "disabled": now.disabled, "weight_override": now.weight}),
            ))
        }
        _ => Err(ApiError::NotFound(format!("no such endpoint: {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    #[test]
    fn percent_decoding_and_bearer() {
        assert_eq!(
            decode_segment("%5B2001:db8::1%5D:80").unwrap(),
            "[2001:db8::1]:80"
        );
        assert!(decode_segment("%zz").is_err());
        let h = HeaderValue::from_static("Bearer abcdefghijklmnop");
        assert!(authorized(Some(&h), "abcdefghijklmnop", false));
        assert!(!authorized(Some(&h), "abcdefghijklmnoq", false));
        assert!(!authorized(None, "abcdefghijklmnop", false));
    }

    #[test]
    fn basic_credentials_only_on_the_page() {
        // base64("anyone:abcdefghijklmnop"), base64(":abcdefghijklmnop")
        let user = HeaderValue::from_static("Basic YW55b25lOmFiY2RlZmdoaWprbG1ub3A=");
        let empty = HeaderValue::from_static("Basic OmFiY2RlZmdoaWprbG1ub3A=");
        for h in [&user, &empty] {
            assert!(authorized(Some(h), "abcdefghijklmnop", true));
            assert!(
                !authorized(Some(h), "abcdefghijklmnop", false),
                "Basic off the page"
            );
            assert!(!authorized(Some(h), "abcdefghijklmnoq", true));
        }
        // base64("abcdefghijklmnop"): no colon, no password.
        let bare = HeaderValue::from_static("Basic YWJjZGVmZ2hpamtsbW5vcA==");
        assert!(!authorized(Some(&bare), "abcdefghijklmnop", true));
        for junk in [
            "Basic",
            "Basic ",
            "Basic ====",
            "Basic YQ=",
            "Basic Y=Q=",
            "Basic *AAA",
        ] {
            assert!(
                !authorized(Some(&HeaderValue::from_static(junk)), "", true),
                "{junk}"
            );
        }
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode(&"QUFB".repeat(400)), None, "over the bound");
        for p in [
            "/",
            "/status",
            "/status/",
            "/status/live",
            "/status/page.js",
            "/status/icon.svg",
        ] {
            assert!(is_page(p), "{p}");
        }
        for p in ["/v1/status", "/statusx", "/metrics", "/v1/reload"] {
            assert!(!is_page(p), "{p}");
        }
    }

    fn bad_field(r: Result<serde_json::Map<String, serde_json::Value>, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest { field: Some(f), .. }) => f,
            other => panic!("expected a 400 naming a field, got {other:?}"),
        }
    }

    #[test]
    fn body_keys_once_and_known() {
        let m = parse_object(br#"{"priority": 100}"#, &["priority"]).unwrap();
        assert_eq!(m["priority"], 100);
        // serde_json's Map would keep 200: the request is refused, naming the key.
        assert_eq!(
            bad_field(parse_object(br#"{"priority":100,"priority":200}"#, &["priority"])),
            "priority"
        );
        assert_eq!(bad_field(parse_object(br#"{"prio": 1}"#, &["priority"])), "prio");
        assert_eq!(bad_field(parse_object(br#"[1]"#, &["priority"])), "body");
        assert_eq!(bad_field(parse_object(b"{", &["priority"])), "body");
    }

    #[test]
    fn post_bodies_must_be_json() {
        let mut h = hyper::HeaderMap::new();
        assert!(!is_json(&h));
        for (v, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("application/jsonp", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), ok, "{v}");
        }
        assert_eq!(
            ApiError::UnsupportedMediaType.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hafront-http-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn socket_dir_owner_only_and_no_symlinks() {
        let base = scratch("bind");
        let sock = base.join("run/api.sock");
        let l = bind_unix(&sock).unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&base.join("run")), 0o700, "directory the daemon created");
        assert_eq!(mode(&sock), 0o660);
        drop(l);

        // A symlink in place of the socket: refused, its target left alone.
        let target = base.join("target");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::remove_file(&sock).unwrap();
        std::os::unix::fs::symlink(&target, &sock).unwrap();
        let e = bind_unix(&sock).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert_eq!(mode(&target), 0o600);
        assert!(chmod_nofollow(&sock, 0o666).is_err());
        assert_eq!(mode(&target), 0o600, "chmod followed the symlink");

        // A symlink in place of the directory: refused.
        let real = base.join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, base.join("linked")).unwrap();
        let e = bind_unix(&base.join("linked/api.sock")).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert!(!real.join("api.sock").exists());
        let _ = std::fs::remove_dir_all(&base);
    }

    fn small(max: usize) -> Limits {
        Limits {
            max_connections: max,
            header_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
        }
    }

    /// A listener whose handler answers "ok", or waits `hold` first.
    fn listen(name: &str, limits: Limits, hold: Duration) -> (PathBuf, Arc<Conns>) {
        let dir = scratch(name);
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let conns = Conns::new(limits);
        let c = conns.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                c.spawn("test", s, move |_req| async move {
                    tokio::time::sleep(hold).await;
                    text_response("text/plain", "ok".into())
                });
            }
        });
        (path, conns)
    }

    /// Everything until the server closes (a reset counts: closed with our request
    /// unread); `None` if it has not within 5 s.
    async fn read_all(s: &mut UnixStream) -> Option<String> {
        let mut out = Vec::new();
        match tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            _ => return None,
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn idle_and_slow_header_connections_are_closed() {
        let mut limits = small(8);
        limits.header_timeout = Duration::from_secs(60);
        let (path, conns) = listen("idle", limits, Duration::ZERO);
        // Sends nothing: closed after the idle timeout.
        let mut idle = UnixStream::connect(&path).await.unwrap();
        // Half a header: closed too (slowloris).
        let mut slow = UnixStream::connect(&path).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        assert_eq!(read_all(&mut idle).await.as_deref(), Some(""));
        assert_eq!(read_all(&mut slow).await.as_deref(), Some(""));
        // A keep-alive connection between requests is idle too.
        let mut ka = UnixStream::connect(&path).await.unwrap();
        ka.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let answer = read_all(&mut ka).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(conns.open(), 0);
    }

    #[tokio::test]
    async fn hyper_header_timeout_is_on() {
        let mut limits = small(8);
        limits.idle_timeout = Duration::from_secs(60);
        let (path, _) = listen("header", limits, Duration::ZERO);
        let mut slow = UnixStream::connect(&path).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        // hyper answers 408 or just closes: either way within the 5 s of read_all.
        assert!(
            read_all(&mut slow).await.is_some(),
            "a half-sent header was kept open"
        );
    }

    #[tokio::test]
    async fn over_the_cap_the_oldest_idle_goes_and_a_request_is_answered() {
        let mut limits = small(4);
        limits.idle_timeout = Duration::from_secs(60);
        limits.header_timeout = Duration::from_secs(60);
        let (path, conns) = listen("cap", limits, Duration::ZERO);
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(UnixStream::connect(&path).await.unwrap());
            tokio::task::yield_now().await;
        }
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(GET).await.unwrap();
        let answer = read_all(&mut s)
            .await
            .expect("no answer while idle connections fill the cap");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The first ones were closed to make room; at most the cap is open.
        assert_eq!(read_all(&mut idle[0]).await.as_deref(), Some(""));
        assert!(conns.open() <= 4, "{} open", conns.open());
    }

    #[tokio::test]
    async fn over_the_cap_with_every_slot_busy_the_new_one_is_closed() {
        let mut limits = small(2);
        limits.request_timeout = Duration::from_secs(2);
        let (path, _) = listen("busy", limits, Duration::from_secs(1));
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut s = UnixStream::connect(&path).await.unwrap();
            s.write_all(GET).await.unwrap();
            busy.push(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // both handlers running
        let mut late = UnixStream::connect(&path).await.unwrap();
        let _ = late.write_all(GET).await;
        assert_eq!(
            read_all(&mut late).await.as_deref(),
            Some(""),
            "answered over the cap"
        );
        for mut s in busy {
            let answer = read_all(&mut s).await.unwrap();
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "a busy one was dropped: {answer}"
            );
        }
    }

    /// A stream (`GET /v1/events`) outlives the idle and request timeouts, is not
    /// evicted at the cap, and ends when its handler closes it.
    #[tokio::test]
    async fn a_stream_is_not_idle_and_can_be_closed() {
        use futures::StreamExt;
        let dir = scratch("stream");
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let conns = Conns::new(small(1));
        let handle = super::super::limits::Streaming::default();
        let (c, h) = (conns.clone(), handle.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let h = h.clone();
                c.spawn("test", s, move |_req| {
                    let h = h.clone();
                    async move {
                        let body = futures::stream::iter([Bytes::from_static(b"first\n")])
                            .chain(futures::stream::pending());
                        let mut r = Response::new(ApiBody::Stream(Box::pin(body)));
                        r.extensions_mut().insert(h);
                        r
                    }
                });
            }
        });
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(GET).await.unwrap();
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("first") {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("no stream within 5 s")
                .unwrap();
            assert!(
                n > 0,
                "closed before the stream: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        // Past the idle and request timeouts (300 ms each).
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(conns.open(), 1, "the stream was closed as idle");
        // At the cap (1), the streaming slot is not taken for a newcomer.
        let mut late = UnixStream::connect(&path).await.unwrap();
        let _ = late.write_all(GET).await;
        assert_eq!(read_all(&mut late).await.as_deref(), Some(""));
        assert_eq!(conns.open(), 1, "the stream was evicted");
        handle.close();
        assert!(read_all(&mut s).await.is_some(), "not closed by its handler");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(conns.open(), 0);
    }

    #[tokio::test]
    async fn a_request_over_its_time_gets_503() {
        let (path, _) = listen("slow", small(4), Duration::from_secs(3));
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(GET).await.unwrap();
        let answer = read_all(&mut s).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    }

    #[tokio::test]
    async fn a_reload_re_reads_the_token_file() {
        let dir = scratch("token");
        let file = dir.join("token");
        std::fs::write(&file, "first-token-0123456789\n").unwrap();
        let mut cfg = Config::default();
        cfg.api.token_file = Some(file.clone());
        let (tx, rx) = watch::channel(Arc::new(cfg.clone()));
        let slot: TokenSlot = Arc::new(RwLock::new(cfg.api.load_token().unwrap().unwrap().into()));
        tokio::spawn(follow_token(rx, slot.clone()));
        let now = || slot.read().unwrap().to_string();
        std::fs::write(&file, "second-token-0123456789\n").unwrap();
        tokio::task::yield_now().await;
        assert_eq!(now(), "first-token-0123456789", "re-read before a reload");
        tx.send_replace(Arc::new(cfg.clone()));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(now(), "second-token-0123456789");
        // Unreadable at the next reload: the previous token stays.
        std::fs::remove_file(&file).unwrap();
        tx.send_replace(Arc::new(cfg));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(now(), "second-token-0123456789");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
