//! The command line's side of the API: one request over the Unix socket, or the
//! event stream.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no hafront daemon is running here ({path}: {source}); start one with `hafront run`, or give --socket / --runtime-dir")]
    NotRunning { path: String, source: std::io::Error },
    #[error("API request failed: {0}")]
    Http(String),
}

/// The answer: status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// One request on a new connection to the daemon's socket (served on this runtime).
async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::NotRunning {
            path: socket.display().to_string(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "hafront")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| ClientError::Http(e.to_string()))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))
}

pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Answer, ClientError> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = send(socket, method, path, Bytes::from(bytes)).await?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes()
        .to_vec();
    Ok(Answer { status, body })
}

/// An open `GET /v1/events?format=jsonl`: one JSON object per line.
pub struct EventLines {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

/// A line longer than this is not one the daemon sends: the stream is refused.
const MAX_LINE: usize = 1024 * 1024;

/// Opens the daemon's event stream (JSON lines).
pub async fn events(socket: &Path) -> Result<EventLines, ClientError> {
    let resp = send(socket, Method::GET, "/v1/events?format=jsonl", Bytes::new()).await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let msg = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(ClientError::Http(format!("{status}: {msg}")));
    }
    Ok(EventLines {
        body: resp.into_body(),
        buf: Vec::new(),
    })
}

impl EventLines {
    /// The next line (without its newline); `None` when the stream ended.
    pub async fn next_line(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > MAX_LINE {
                return Some(Err(ClientError::Http(format!(
                    "event stream line longer than {MAX_LINE} bytes"
                ))));
            }
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Err(e) => return Some(Err(ClientError::Http(e.to_string()))),
            }
        }
    }
}
