//! What one API listener lets its clients hold: a connection cap, a header-read,
//! a request and an idle timeout (issue 13: 19,000 idle connections used every
//! file descriptor, so requests, the status file and the accept loop all failed).
//!
//! At the cap, the connection idle the longest (no request being handled: a
//! fresh one that sent nothing, a keep-alive one between requests, or one still
//! sending its header) is closed to make room, so a flood of idle clients cannot
//! lock out `GET /v1/status`; only when every slot is handling a request is the
//! new connection closed at once. Both are counted and logged at most once per
//! [`LOG_EVERY`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

/// At most one log line per this much time for refused connections and accept errors.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// After this many connections were open at once, memory is handed back to the
/// system when the last one closes (glibc keeps freed arenas otherwise: RSS stayed
/// at 243-385 MB after a burst in issue 13).
const TRIM_AFTER: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections per listener.
    pub max_connections: usize,
    /// A request's header must arrive within this (hyper's own timer).
    pub header_timeout: Duration,
    /// Reading the body and answering: longer gets a 503 (what the handler started
    /// on a task of its own, such as a maintenance change, still completes).
    pub request_timeout: Duration,
    /// A connection with no request being handled is closed after this.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            // Above the 30 s a reload may wait for the engine.
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts events and says when to log them: the first at once, then at most one
/// line per [`LOG_EVERY`] with how many came in between.
#[derive(Default)]
pub struct Throttle {
    last: Option<Instant>,
    pending: u64,
}

impl Throttle {
    /// `Some(n)`: log now, `n` events since the last line (this one included).
    pub fn hit(&mut self) -> Option<u64> {
        self.pending += 1;
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < LOG_EVERY => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.pending))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Idle(Instant),
    Busy(Instant),
    /// Sending a stream (`GET /v1/events`) until it ends: neither idle (no idle
    /// timeout, not closed to make room) nor bound by the request timeout. The
    /// streams are capped by their own count (api/events.rs).
    Streaming,
}

/// Put in a response's extensions by a handler whose body is a stream: the
/// connection then counts as [`Phase::Streaming`], and the handler can close it
/// ([`Streaming::close`]; a client that stopped reading never lets the body end).
#[derive(Clone, Default)]
pub struct Streaming(Arc<OnceLock<Weak<Conn>>>);

impl Streaming {
    /// Closes the connection the stream goes out on (nothing if it is gone).
    pub fn close(&self) {
        if let Some(conn) = self.0.get().and_then(Weak::upgrade) {
            conn.close.notify_one();
        }
    }
}

struct Conn {
    phase: Mutex<Phase>,
    close: Notify,
}

impl Conn {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection must be gone if nothing changes. A busy one gets a
    /// second beyond the request timeout: the handler answers 503 itself first.
    fn deadline(&self, limits: &Limits) -> Instant {
        match self.phase() {
            Phase::Idle(since) => since + limits.idle_timeout,
            Phase::Busy(since) => since + limits.request_timeout + Duration::from_secs(1),
            // Looked at again in a day: the stream ends by itself or is closed.
            Phase::Streaming => Instant::now() + Duration::from_secs(86_400),
        }
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Arc<Conn>>,
    /// Most connections open at once since the last trim.
    peak: usize,
    evicted: u64,
    refused: u64,
    log: Throttle,
}

/// The connections of one listener.
pub struct Conns {
    limits: Limits,
    table: Mutex<Table>,
}

impl Conns {
    pub fn new(limits: Limits) -> Arc<Conns> {
        Arc::new(Conns {
            limits,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.table().live.len()
    }

    /// A slot for a new connection, or `None`: every slot is handling a request.
    fn admit(&self, listener: &str) -> Option<(u64, Arc<Conn>)> {
        let mut t = self.table();
        let t = &mut *t;
        let mut event = true;
        let admitted = if t.live.len() < self.limits.max_connections {
            event = false;
            true
        } else {
            let oldest_idle = t
                .live
                .iter()
                .filter_map(|(id, c)| match c.phase() {
                    Phase::Idle(since) => Some((since, *id)),
                    Phase::Busy(_) | Phase::Streaming => None,
                })
                .min();
            match oldest_idle.and_then(|(_, id)| t.live.remove(&id)) {
                Some(old) => {
                    old.close.notify_one();
                    t.evicted += 1;
                    true
                }
                None => {
                    t.refused += 1;
                    false
                }
            }
        };
        if event && t.log.hit().is_some() {
            warn!(
                listener,
                max = self.limits.max_connections,
                idle_closed = t.evicted,
                refused = t.refused,
                "API connection cap reached: idle connections closed to make room, new ones refused while every slot is busy"
            );
            t.evicted = 0;
            t.refused = 0;
        }
        if !admitted {
            return None;
        }
        t.next_id += 1;
        let conn = Arc::new(Conn {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            close: Notify::new(),
        });
        t.live.insert(t.next_id, conn.clone());
        t.peak = t.peak.max(t.live.len());
        Some((t.next_id, conn))
    }

    fn leave(&self, id: u64) {
        let mut t = self.table();
        t.live.remove(&id);
        if t.live.is_empty() && t.peak >= TRIM_AFTER {
            t.peak = 0;
            drop(t);
            trim_heap();
        }
    }

    /// Serves one accepted connection within the limits, on a task of its own;
    /// over the cap it is dropped (closed) at once.
    pub fn spawn<I, F, Fut, B>(self: &Arc<Self>, listener: &'static str, io: I, handler: F)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + AsRawFd + Unpin + Send + 'static,
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body<Data = Bytes> + From<Full<Bytes>> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some((id, conn)) = self.admit(listener) else {
            return;
        };
        let conns = self.clone();
        let limits = self.limits;
        let handler = Arc::new(handler);
        // Valid while the connection is served: the service below runs inside it.
        let fd = io.as_raw_fd();
        tokio::spawn(async move {
            let svc = {
                let conn = conn.clone();
                service_fn(move |req| {
                    let conn = conn.clone();
                    let handler = handler.clone();
                    async move {
                        conn.set(Phase::Busy(Instant::now()));
                        let mut r = tokio::time::timeout(limits.request_timeout, handler(req))
                            .await
                            .unwrap_or_else(|_| super::http::timed_out(limits.request_timeout).map(B::from));
                        match r.extensions_mut().remove::<Streaming>() {
                            Some(s) => {
                                let _ = s.0.set(Arc::downgrade(&conn));
                                conn.set(Phase::Streaming);
                                limit_send_buffer(fd);
                            }
                            None => conn.set(Phase::Idle(Instant::now())),
                        }
                        Ok::<_, Infallible>(r)
                    }
                })
            };
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(io), svc);
            let mut http = std::pin::pin!(http);
            loop {
                let deadline = conn.deadline(&limits);
                tokio::select! {
                    r = http.as_mut() => {
                        if let Err(error) = r {
                            debug!(%error, "API connection ended");
                        }
                        break;
                    }
                    // Closed to make room for a new connection.
                    _ = conn.close.notified() => break,
                    _ = tokio::time::sleep_until(deadline) => {
                        // The phase may have changed while asleep.
                        if Instant::now() >= conn.deadline(&limits) {
                            debug!("API connection idle too long: closed");
                            break;
                        }
                    }
                }
            }
            conns.leave(id);
        });
    }
}

/// The kernel's send buffer of a streaming connection (it doubles the value).
/// Autotuned, a TCP socket to a client that does not read grows its buffer to
/// `tcp_wmem`'s maximum (4 MB): kernel memory per client, and thousands of events
/// before the stream notices that the client is behind.
const STREAM_SNDBUF: libc::c_int = 64 * 1024;

fn limit_send_buffer(fd: RawFd) {
    let size = STREAM_SNDBUF;
    // SAFETY: setsockopt reads one c_int from the valid pointer given; `fd` is the
    // connection's socket, open while its service runs.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        debug!(error = %std::io::Error::last_os_error(), "SO_SNDBUF of an event stream not set");
    }
}

/// Hands freed heap back to the system (glibc only; other allocators do it themselves
/// or have no such call).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
