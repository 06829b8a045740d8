//! http / https: one request on a fresh connection (hyper's HTTP/1 connection
//! driven in this future: no pool, no spawned task), status then body checked.

use std::error::Error as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{tcp_connect, ProbeError};
use crate::checks::spec::{Bind, ConnectTo, HttpSpec};
use crate::checks::tls;
use crate::config::checks::StatusRange;

/// Bodies are read up to this size when a body expectation is set.
pub const MAX_BODY: usize = 1 << 20;

pub(super) async fn probe(h: &HttpSpec, bind: &Bind) -> Result<(), ProbeError> {
    let addr = resolve(&h.connect, bind).await?;
    let tcp = tcp_connect(addr, bind, true).await?;
    match &h.tls {
        None => exchange(tcp, h).await,
        Some(cfg) => {
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(h.server_name.clone(), tcp)
                .await
                .map_err(tls_error)?;
            exchange(tls, h).await
        }
    }
}

async fn resolve(to: &ConnectTo, bind: &Bind) -> Result<SocketAddr, ProbeError> {
    match to {
        ConnectTo::Addr(a) => Ok(*a),
        ConnectTo::Name(name, port) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), *port))
                .await
                .map_err(|e| ProbeError::Resolve(format!("{name}: {e}")))?
                .collect();
            // With a source address, an address of its family.
            addrs
                .iter()
                .find(|a| bind.address.is_none_or(|b| b.is_ipv6() == a.is_ipv6()))
                .copied()
                .ok_or_else(|| ProbeError::Resolve(format!("{name}: no usable address")))
        }
    }
}

fn tls_error(e: std::io::Error) -> ProbeError {
    if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return ProbeError::Tls(tls::describe(r));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            ProbeError::Tls("handshake: connection closed by the server".into())
        }
        _ => ProbeError::Tls(format!("handshake: {e}")),
    }
}

/// A hyper error with its causes (`connection closed before message completed:
/// Connection reset by peer`); TLS errors met after the handshake are named so.
fn http_error(e: hyper::Error) -> ProbeError {
    let mut source = e.source();
    let mut text = e.to_string();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return ProbeError::Tls(tls::describe(r));
        }
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ProbeError::Http(text)
}

async fn exchange<T>(io: T, h: &HttpSpec) -> Result<(), ProbeError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    let mut req = Request::builder()
        .method(h.method.clone())
        .uri(h.path.clone())
        .header(HOST, h.host_header.clone())
        .header(USER_AGENT, "hafront-check");
    for (k, v) in &h.headers {
        req = req.header(k, v);
    }
    let req = req
        .body(Full::new(h.body.clone()))
        .map_err(|e| ProbeError::Http(format!("request: {e}")))?;
    let exchange = async {
        let resp = sender.send_request(req).await.map_err(http_error)?;
        let status = resp.status().as_u16();
        if !StatusRange::any_contains(&h.expect_status, status) {
            return Err(ProbeError::Status {
                got: status,
                expected: StatusRange::list(&h.expect_status),
            });
        }
        if !h.wants_body() {
            return Ok(());
        }
        let body = match Limited::new(resp.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(ProbeError::BodyTooLarge(MAX_BODY))
            }
            Err(e) => match e.downcast::<hyper::Error>() {
                Ok(he) => return Err(http_error(*he)),
                Err(e) => return Err(ProbeError::Http(format!("body: {e}"))),
            },
        };
        check_body(h, &body)
    };
    // Drive the connection here: the exchange first, so that a connection that
    // ends right after the response does not hide it.
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        r = &mut exchange => r,
        c = &mut conn => match c {
            Err(e) => Err(http_error(e)),
            Ok(()) => exchange.await,
        },
    }
}

/// Substring, regex and digest expectations, in that order.
pub fn check_body(h: &HttpSpec, body: &[u8]) -> Result<(), ProbeError> {
    if let Some(want) = &h.expect_body {
        let found = !want.is_empty() && body.windows(want.len()).any(|w| w == want.as_bytes());
        if !found && !want.is_empty() {
            return Err(ProbeError::BodyMissing(want.clone()));
        }
    }
    if let Some(re) = &h.expect_body_regex {
        if !re.is_match(&String::from_utf8_lossy(body)) {
            return Err(ProbeError::BodyRegex(re.as_str().to_string()));
        }
    }
    if let Some(want) = &h.expect_digest {
        let got = want.same_kind_of(body);
        if got != *want {
            return Err(ProbeError::Digest { expected: *want, got });
        }
    }
    Ok(())
}
