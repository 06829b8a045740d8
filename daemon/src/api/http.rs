//! Serving: listeners (Unix socket, optional TCP), routing, request bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, UnixListener};
use tracing::{debug, info, warn};

use super::{ApiError, Hub};

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
}

/// Binds the listeners (errors are returned, so the daemon can say why the API is
/// off) and serves them on the current runtime.
pub async fn serve(
    hub: Hub,
    socket: &Path,
    tcp: Option<SocketAddr>,
    token: Option<String>,
) -> Result<(), ServeError> {
    let unix = bind_unix(socket)?;
    info!(socket = %socket.display(), "API listening");
    let hub = Arc::new(hub);
    {
        let hub = hub.clone();
        tokio::spawn(async move {
            loop {
                match unix.accept().await {
                    Ok((stream, _)) => spawn_conn(TokioIo::new(stream), hub.clone(), None),
                    Err(error) => {
                        warn!(%error, "API accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    if let Some(addr) = tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Tcp { addr, source })?;
        info!(%addr, token = token.is_some(), "API listening on TCP");
        let token = token.map(Arc::new);
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        spawn_conn(TokioIo::new(stream), hub.clone(), Some(token.clone()))
                    }
                    Err(error) => {
                        warn!(%error, "API accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    Ok(())
}

fn bind_unix(path: &Path) -> Result<UnixListener, ServeError> {
    let err = |source| ServeError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
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
        }
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(listener)
}

/// `token`: `None` on the Unix socket (file permissions guard it); on TCP,
/// `Some(None)` without a token (loopback only, enforced by validation).
fn spawn_conn<I>(io: I, hub: Arc<Hub>, token: Option<Option<Arc<String>>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let hub = hub.clone();
            let token = token.clone();
            async move { Ok::<_, Infallible>(respond(&hub, token.as_ref().and_then(|t| t.as_deref()), req).await) }
        });
        if let Err(error) = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .await
        {
            debug!(%error, "API connection ended");
        }
    });
}

async fn respond(hub: &Hub, token: Option<&String>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = match token {
        Some(want) if !authorized(req.headers().get(AUTHORIZATION), want) => Err(ApiError::Unauthorized),
        _ => route(hub, req).await,
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                warn!(%method, path, error = %e, "API request failed");
            } else {
                debug!(%method, path, error = %e, "API request refused");
            }
            json_response(e.status(), &e.body())
        }
    }
}

fn authorized(header: Option<&HeaderValue>, want: &str) -> bool {
    let Some(got) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Constant time in the token's length.
    got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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
/// pass as "no change"). Each key is then read with [`field`], so an error names it.
async fn body_object(
    req: Request<Incoming>,
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError::TooLarge(MAX_BODY))?
        .to_bytes();
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::field("body", format!("not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::field(
            k,
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        ));
    }
    Ok(map)
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

async fn route(hub: &Hub, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
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
        ["v1", "reload"] => {
            only(Method::POST)?;
            hub.controls.reload().await?;
            Ok(json_response(StatusCode::OK, &json!({"reloaded": true})))
        }
        ["v1", "instances", name, "maintenance"] => {
            only(Method::POST)?;
            let name = decode_segment(name)?;
            let body = body_object(req, &["enabled"]).await?;
            let enabled: bool = field(&body, "enabled", "true or false")?
                .ok_or_else(|| ApiError::field("enabled", "is required (true or false)"))?;
            hub.controls.maintenance(&name, enabled).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"instance": name, "maintenance": enabled}),
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

    #[test]
    fn percent_decoding_and_bearer() {
        assert_eq!(
            decode_segment("%5B2001:db8::1%5D:80").unwrap(),
            "[2001:db8::1]:80"
        );
        assert!(decode_segment("%zz").is_err());
        let h = HeaderValue::from_static("Bearer abcdefghijklmnop");
        assert!(authorized(Some(&h), "abcdefghijklmnop"));
        assert!(!authorized(Some(&h), "abcdefghijklmnoq"));
        assert!(!authorized(None, "abcdefghijklmnop"));
    }
}
