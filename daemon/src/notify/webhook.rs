//! Webhooks: one HTTP/1.1 POST with a JSON body per event (hyper, a fresh
//! connection each time; https verified against the WebPKI roots).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::notify::WebhookConfig;
pub use crate::config::notify::{parse_url, Target};

/// POSTs `body`; a non-2xx answer is an error.
pub async fn post(w: &WebhookConfig, body: &serde_json::Value) -> Result<u16, String> {
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
    let _ = resp.into_body().collect().await;
    conn.abort();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

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
