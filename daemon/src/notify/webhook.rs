//! Webhooks: one HTTP/1.1 POST with a JSON body per event (hyper, a fresh
//! connection each time; https verified against the WebPKI roots).
//!
//! The receiver controls the answer: only its status line and headers are read
//! (hyper caps their size), never its body, and the whole exchange runs within
//! `webhooks[].timeout`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::notify::WebhookConfig;
pub use crate::config::notify::{parse_url, Target};

/// POSTs `body` within `w.timeout`; a non-2xx answer is an error.
pub async fn post(w: &WebhookConfig, body: &serde_json::Value) -> Result<u16, String> {
    tokio::time::timeout(w.timeout, post_unbounded(w, body))
        .await
        .map_err(|_| format!("no answer within {}", humantime::format_duration(w.timeout)))?
}

async fn post_unbounded(w: &WebhookConfig, body: &serde_json::Value) -> Result<u16, String> {
    let t = parse_url(&w.url)?;
    let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", t.host, t.port))?;
    let status = if t.tls {
        let cfg = crate::checks::tls::client_config(Default::default()).map_err(|e| format!("TLS: {e:?}"))?;
        let name =
            rustls_pki_types::ServerName::try_from(t.host.clone()).map_err(|e| format!("{}: {e}", t.host))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        exchange(tls, &t, w, body).await?
    } else {
        exchange(tcp, &t, w, body).await?
    };
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("answered {status}"))
    }
}

async fn exchange<T>(io: T, t: &Target, w: &WebhookConfig, body: &serde_json::Value) -> Result<u16, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let conn = tokio::spawn(conn);
    let mut req = Request::post(t.path.as_str())
        .header(HOST, t.authority.as_str())
        .header(USER_AGENT, concat!("hafront/", env!("CARGO_PKG_VERSION")))
        .header(CONTENT_TYPE, "application/json");
    for (k, v) in &w.headers {
        req = req.header(k.as_str(), v.expose());
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
    let status = resp.status().as_u16();
    // The body is not read: dropping it with the connection bounds what a
    // receiver can make hafront read (an endless body).
    drop(resp);
    conn.abort();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::{serve, Serve};
    use std::time::Duration;

    fn hook(addr: &str, timeout_ms: u64) -> WebhookConfig {
        WebhookConfig {
            url: format!("http://{addr}/hook"),
            headers: Default::default(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// A receiver answering 200 with an endless body: the status counts, the body
    /// is not read (before: read whole, never returned).
    #[tokio::test]
    async fn endless_body_is_not_read() {
        let addr = serve(Serve::EndlessAfterRequest(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n",
            b"x",
        ));
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            post(&hook(&addr, 60_000), &serde_json::json!({})),
        )
        .await
        .expect("post returns without reading the body");
        assert_eq!(r, Ok(200));
    }

    /// `webhooks[].timeout` bounds the exchange (before: validated, never used).
    #[tokio::test]
    async fn silent_receiver_times_out() {
        let addr = serve(Serve::Silent);
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            post(&hook(&addr, 300), &serde_json::json!({})),
        )
        .await
        .expect("webhooks[].timeout applies");
        assert_eq!(r, Err("no answer within 300ms".into()));
    }

    #[test]
    fn userinfo_is_refused_and_never_shown() {
        let e = parse_url("http://user:s3cret@198.51.100.7/hook").unwrap_err();
        assert!(e.contains("not supported") && !e.contains("s3cret"), "{e}");
        let e = parse_url("ftp://user:s3cret@198.51.100.7/").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn urls() {
        let t = parse_url("http://198.51.100.7:8080/hook?x=1").unwrap();
        assert!(!t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("198.51.100.7", 8080, "/hook?x=1")
        );
        let t = parse_url("https://[2001:db8::1]/").unwrap();
        assert!(t.tls);
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 443));
        assert!(parse_url("ftp://x/").unwrap_err().contains("only http"));
        assert!(parse_url("not a url").is_err());
    }
}
