//! `GET /v1/events`: the event stream ([`crate::events`]) as server-sent events
//! (`text/event-stream`, default) or JSON lines (`?format=jsonl`).
//!
//! Each event is one JSON object with its `id` (consecutive: a client sees a gap),
//! `type`, `time` (RFC 3339 UTC), `unix_ms` and `reason`; in SSE also as the
//! `id:` and `event:` fields. The stream opens with a `hello` (the node and the
//! last id before it), sends a heartbeat every [`HEARTBEAT`] (an SSE comment, or
//! `{"type":"heartbeat"}`), and is bounded: at most [`MAX_CLIENTS`] streams (503
//! beyond), each reading the shared ring at its own pace. A client more than the
//! ring behind gets a final `lagged` event when it can still take one and is
//! disconnected (`hafront_api_event_clients_dropped_total`): it never slows a
//! producer, and holds no more memory than the ring it shares with the others.
//! The connection is not "idle" while it streams (limits.rs): the idle timeout and
//! the eviction at the connection cap leave it alone.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::limits::Streaming;
use super::ApiError;
use crate::events::{Bus, Event, Listener, RING};

/// Streams open at once, over every listener.
pub const MAX_CLIENTS: usize = 32;
/// A comment (SSE) or heartbeat line (JSON lines) this often, so a client and any
/// proxy in between see the stream alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a stream checks whether its client still reads.
const WATCH_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Sse,
    Jsonl,
}

impl Format {
    /// From the query string: `format=sse` (default) or `format=jsonl`.
    pub fn from_query(query: Option<&str>) -> Result<Format, ApiError> {
        let mut format = Format::Sse;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (k, v) {
                ("format", "sse") => format = Format::Sse,
                ("format", "jsonl") => format = Format::Jsonl,
                ("format", other) => {
                    return Err(ApiError::field(
                        "format",
                        format!("{other:?} is not a format; expected sse or jsonl"),
                    ))
                }
                (other, _) => return Err(ApiError::field(other, "unknown query parameter; expected format")),
            }
        }
        Ok(format)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Sse => "text/event-stream",
            Format::Jsonl => "application/x-ndjson",
        }
    }
}

/// One record: `id:`, `event:` and `data:` (SSE), or a line (JSON lines).
fn record(format: Format, id: Option<u64>, name: &str, json: &str) -> Bytes {
    match format {
        Format::Sse => {
            let mut s = String::with_capacity(json.len() + 40);
            if let Some(id) = id {
                s.push_str(&format!("id: {id}\n"));
            }
            s.push_str(&format!("event: {name}\ndata: {json}\n\n"));
            Bytes::from(s)
        }
        Format::Jsonl => Bytes::from(format!("{json}\n")),
    }
}

/// An event as it goes on the wire. serde_json escapes newlines in strings, so
/// the JSON is one line and one SSE `data:` field.
pub fn encode(ev: &Event, format: Format) -> Bytes {
    let json = serde_json::to_string(ev).unwrap_or_else(|e| {
        json!({"id": ev.id, "type": "error", "reason": format!("event not encodable: {e}")}).to_string()
    });
    record(format, Some(ev.id), ev.kind.name(), &json)
}

/// What a stream starts with: the node and the last event before this stream.
pub fn hello(format: Format, node: &str, last_id: u64) -> Bytes {
    let now = SystemTime::now();
    let json = json!({
        "type": "hello",
        "node": node,
        "last_id": last_id,
        "time": humantime::format_rfc3339_millis(now).to_string(),
        "unix_ms": crate::shared::reload::unix_ms_now(),
    });
    record(format, None, "hello", &json.to_string())
}

/// The last record a client too slow for the ring gets.
pub fn lagged(format: Format, missed: u64) -> Bytes {
    let json = json!({
        "type": "lagged",
        "missed": missed,
        "unix_ms": crate::shared::reload::unix_ms_now(),
        "reason": format!("this client fell more than {RING} events behind and is disconnected; reconnect and re-read /v1/status"),
    });
    record(format, None, "lagged", &json.to_string())
}

pub fn heartbeat(format: Format) -> Bytes {
    match format {
        Format::Sse => Bytes::from_static(b": heartbeat\n\n"),
        Format::Jsonl => Bytes::from(format!(
            "{}\n",
            json!({"type": "heartbeat", "unix_ms": crate::shared::reload::unix_ms_now()})
        )),
    }
}

/// A response body: a whole one, or an event stream.
pub enum ApiBody {
    Full(Full<Bytes>),
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl std::fmt::Debug for ApiBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApiBody::Full(_) => "ApiBody::Full",
            ApiBody::Stream(_) => "ApiBody::Stream",
        })
    }
}

impl From<Full<Bytes>> for ApiBody {
    fn from(f: Full<Bytes>) -> ApiBody {
        ApiBody::Full(f)
    }
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ApiBody::Full(f) => Pin::new(f).poll_frame(cx),
            ApiBody::Stream(s) => s.as_mut().poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ApiBody::Full(f) => f.is_end_stream(),
            ApiBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ApiBody::Full(f) => f.size_hint(),
            ApiBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// One connected client's place among the [`MAX_CLIENTS`].
struct Slot(&'static Bus);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a stream and its watcher share.
struct Shared {
    /// The id of the last event taken from the ring.
    taken: AtomicU64,
    /// Dropped for lagging (counted once).
    lagged: AtomicBool,
    _slot: Slot,
}

impl Shared {
    /// Counts the drop once; `true` the first time.
    fn drop_for_lag(&self, bus: &Bus, missed: u64) -> bool {
        if self.lagged.swap(true, Ordering::Relaxed) {
            return false;
        }
        bus.dropped.fetch_add(1, Ordering::Relaxed);
        warn!(
            missed,
            ring = RING,
            "event stream client too slow: sent `lagged` and disconnected"
        );
        true
    }
}

struct State {
    listener: Listener<'static>,
    first: Option<Bytes>,
    heartbeat: tokio::time::Interval,
    format: Format,
    shared: Arc<Shared>,
    bus: &'static Bus,
    done: bool,
}

async fn next(mut st: State) -> Option<(Bytes, State)> {
    if let Some(b) = st.first.take() {
        return Some((b, st));
    }
    if st.done {
        return None;
    }
    let bytes = tokio::select! {
        r = st.listener.rx.recv() => match r {
            Ok(ev) => {
                st.shared.taken.store(ev.id, Ordering::Relaxed);
                encode(&ev, st.format)
            }
            Err(RecvError::Lagged(missed)) => {
                st.done = true;
                st.shared.drop_for_lag(st.bus, missed);
                lagged(st.format, missed)
            }
            Err(RecvError::Closed) => return None,
        },
        _ = st.heartbeat.tick() => heartbeat(st.format),
    };
    Some((bytes, st))
}

/// A client that stopped reading never polls its stream, so the stream cannot see
/// that it lags: this does, from the ids, and closes the connection.
async fn watch(shared: Weak<Shared>, bus: &'static Bus, conn: Streaming) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else { return };
        let behind = bus.last_id().saturating_sub(s.taken.load(Ordering::Relaxed));
        if behind > RING as u64 {
            s.drop_for_lag(bus, behind - RING as u64);
            drop(s);
            conn.close();
            return;
        }
    }
}

/// The answer to `GET /v1/events`.
pub fn serve<B>(bus: &'static Bus, node: &str, req: &Request<B>) -> Result<Response<ApiBody>, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed(req.method().to_string()));
    }
    let format = Format::from_query(req.uri().query())?;
    if bus.clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
        bus.clients.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::Unavailable(format!(
            "{MAX_CLIENTS} event streams are open already; try again later"
        )));
    }
    let slot = Slot(bus);
    let listener = bus.subscribe();
    let shared = Arc::new(Shared {
        taken: AtomicU64::new(listener.last_id),
        lagged: AtomicBool::new(false),
        _slot: slot,
    });
    info!(
        clients = bus.clients.load(Ordering::Relaxed),
        ?format,
        "event stream opened"
    );
    let streaming = Streaming::default();
    tokio::spawn(watch(Arc::downgrade(&shared), bus, streaming.clone()));
    let state = State {
        first: Some(hello(format, node, listener.last_id)),
        listener,
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
        format,
        shared,
        bus,
        done: false,
    };
    let stream = futures::stream::unfold(state, next);
    let mut r = Response::new(ApiBody::Stream(Box::pin(stream)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The connection ends with the stream (never reused): limits.rs treats it as
    // streaming, not idle, until then.
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r.extensions_mut().insert(streaming);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Kind;

    fn ev(id: u64, reason: &str) -> Event {
        Event::new(
            id,
            std::time::UNIX_EPOCH + Duration::from_millis(1_796_000_000_123),
            Kind::Reload {
                by: "SIGHUP",
                successful: false,
                reason: reason.into(),
            },
        )
    }

    #[test]
    fn sse_record_has_id_event_and_one_data_line() {
        let b = encode(&ev(42, "bad.toml: line 3\nsecond line"), Format::Sse);
        let text = std::str::from_utf8(&b).unwrap();
        assert!(text.starts_with("id: 42\nevent: reload\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n"), "{text}");
        // The reason's newline is escaped inside the JSON: one data line.
        assert_eq!(text.lines().filter(|l| l.starts_with("data: ")).count(), 1);
        assert_eq!(text.matches('\n').count(), 4, "{text}");
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["type"], "reload");
        assert_eq!(v["successful"], false);
        assert_eq!(v["reason"], "bad.toml: line 3\nsecond line");
        assert_eq!(v["time"], "2026-11-30T00:53:20.123Z");
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let b = encode(&ev(1, "x\ny"), Format::Jsonl);
        let text = std::str::from_utf8(&b).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["id"], 1);
        for b in [
            heartbeat(Format::Jsonl),
            lagged(Format::Jsonl, 3),
            hello(Format::Jsonl, "n1", 9),
        ] {
            let line = std::str::from_utf8(&b).unwrap();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
            assert!(v["type"].is_string(), "{line}");
        }
        let l = lagged(Format::Sse, 3);
        assert!(std::str::from_utf8(&l)
            .unwrap()
            .starts_with("event: lagged\ndata: {"));
        assert_eq!(&heartbeat(Format::Sse)[..], b": heartbeat\n\n");
    }

    #[test]
    fn query_is_checked() {
        assert_eq!(Format::from_query(None).unwrap(), Format::Sse);
        assert_eq!(Format::from_query(Some("format=jsonl")).unwrap(), Format::Jsonl);
        assert_eq!(Format::from_query(Some("format=sse")).unwrap(), Format::Sse);
        for bad in ["format=xml", "fmt=jsonl"] {
            assert!(matches!(
                Format::from_query(Some(bad)),
                Err(ApiError::BadRequest { field: Some(_), .. })
            ));
        }
    }

    fn get(query: &str) -> Request<()> {
        Request::builder()
            .uri(format!("/v1/events{query}"))
            .body(())
            .unwrap()
    }

    async fn frame(body: &mut ApiBody) -> Bytes {
        use http_body_util::BodyExt;
        let f = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("no frame within 5 s")
            .expect("stream ended")
            .unwrap();
        f.into_data().unwrap()
    }

    #[tokio::test]
    async fn streams_are_capped_and_a_slot_is_freed_on_drop() {
        let bus: &'static Bus = Box::leak(Box::new(Bus::new(RING)));
        let mut open = Vec::new();
        for _ in 0..MAX_CLIENTS {
            open.push(serve(bus, "n1", &get("")).unwrap());
        }
        let e = serve(bus, "n1", &get("")).unwrap_err();
        assert_eq!(e.status(), hyper::StatusCode::SERVICE_UNAVAILABLE);
        drop(open.pop());
        let mut r = serve(bus, "n1", &get("?format=jsonl")).unwrap();
        assert_eq!(r.headers()[CONTENT_TYPE], "application/x-ndjson");
        assert_eq!(r.headers()[CONNECTION], "close");
        assert!(r.extensions().get::<Streaming>().is_some());
        let hello = frame(r.body_mut()).await;
        assert!(std::str::from_utf8(&hello).unwrap().contains("\"hello\""));
        bus.publish(|| ev(0, "rejected").kind);
        let line = frame(r.body_mut()).await;
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!((v["id"].as_u64(), v["type"].as_str()), (Some(1), Some("reload")));
    }

    /// A quiet stream still sends something every HEARTBEAT, and not before: the
    /// clock is tokio's paused one, advanced only when every task waits.
    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_sends_a_heartbeat_every_interval() {
        use http_body_util::BodyExt;
        let bus: &'static Bus = Box::leak(Box::new(Bus::new(RING)));
        for (query, want) in [
            ("", &b": heartbeat\n\n"[..]),
            ("?format=jsonl", &b"{\"type\":\"heartbeat\""[..]),
        ] {
            let mut r = serve(bus, "n1", &get(query)).unwrap();
            let _hello = r.body_mut().frame().await.unwrap().unwrap();
            let start = tokio::time::Instant::now();
            for n in 1..=2u32 {
                let f = r.body_mut().frame().await.expect("stream ended").unwrap();
                let data = f.into_data().unwrap();
                assert!(data.starts_with(want), "{query}: {data:?}");
                assert_eq!(start.elapsed(), HEARTBEAT * n, "{query}: heartbeat {n}");
            }
        }
    }

    #[tokio::test]
    async fn a_client_behind_the_ring_gets_lagged_and_the_stream_ends() {
        let bus: &'static Bus = Box::leak(Box::new(Bus::new(RING)));
        let mut r = serve(bus, "n1", &get("")).unwrap();
        let _hello = frame(r.body_mut()).await;
        for _ in 0..RING + 10 {
            bus.publish(|| ev(0, "x").kind);
        }
        let last = frame(r.body_mut()).await;
        assert!(
            std::str::from_utf8(&last).unwrap().starts_with("event: lagged\n"),
            "{last:?}"
        );
        use http_body_util::BodyExt;
        assert!(r.body_mut().frame().await.is_none(), "the stream went on");
        assert_eq!(bus.dropped.load(Ordering::Relaxed), 1);
    }
}
