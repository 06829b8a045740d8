//! One probe of each kind: an async function returning how long it took, or a typed
//! error saying what failed. Every attempt runs under the check's timeout; retries
//! and the pause between them are applied by [`run`].

mod exec;
mod http;
mod ping;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::dns;
use super::spec::{Bind, CheckSpec, Digest, ProbeSpec};

pub use exec::exit_verdict;
pub use ping::{echo_request, parse_echo_reply, EchoReply};

/// A successful probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeOk {
    /// From the start of the successful attempt to its verdict.
    pub latency: Duration,
    /// exec with `dynamic_weight`: exit code − 2 for codes 2..255.
    pub dynamic_weight: Option<i32>,
}

/// What failed, in words that name it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("timeout after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("connection refused")]
    Refused,
    #[error("port unreachable (ICMP)")]
    PortUnreachable,
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("{stage}: {message}")]
    Io { stage: &'static str, message: String },
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("status {got} not in {expected}")]
    Status { got: u16, expected: String },
    #[error("body does not contain {0:?}")]
    BodyMissing(String),
    #[error("body does not match /{0}/")]
    BodyRegex(String),
    #[error("body digest mismatch: got {got}, expected {expected}")]
    Digest { expected: Digest, got: Digest },
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("exit status {0}")]
    ExitCode(i32),
    #[error("killed by signal {0}")]
    Signal(i32),
    #[error("cannot run {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("ICMP: {0}")]
    Icmp(String),
    #[error("DNS: {0}")]
    Dns(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("reply {got} does not contain the expected bytes")]
    Reply { got: String },
}

impl ProbeError {
    /// An I/O error of `stage`, classified.
    pub fn io(stage: &'static str, e: io::Error) -> ProbeError {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ProbeError::Refused,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                ProbeError::Unreachable(e.to_string())
            }
            _ => match e.raw_os_error() {
                Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => ProbeError::Unreachable(e.to_string()),
                _ => ProbeError::Io {
                    stage,
                    message: e.to_string(),
                },
            },
        }
    }
}

/// One check: up to `1 + retries` attempts, `retry_delay` apart.
pub async fn run(spec: &CheckSpec) -> Result<ProbeOk, ProbeError> {
    run_ended(spec).await.0
}

/// [`run`], and a time at which the check was over (for the scheduler's next
/// probe, so that it needs no clock read of its own): the clock read that measured
/// a success's latency, a timeout's deadline (the timer fired at or after it), the
/// clock after any other failure.
pub(crate) async fn run_ended(spec: &CheckSpec) -> (Result<ProbeOk, ProbeError>, Instant) {
    let mut attempt = 0;
    loop {
        let (result, ended) = run_once_ended(spec).await;
        if result.is_ok() || attempt >= spec.retries {
            return (result, ended);
        }
        attempt += 1;
        tokio::time::sleep_until(ended + spec.retry_delay).await;
    }
}

/// One attempt of a `tcp` check, as [`run_ended`] makes it, in a future small enough
/// for a check's task to hold without boxing (`run`'s holds every kind's state,
/// kilobytes; `idle_check_tasks_are_small` keeps the task under 1 KB).
pub(crate) async fn tcp_once_ended(
    spec: &CheckSpec,
    target: SocketAddr,
) -> (Result<ProbeOk, ProbeError>, Instant) {
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let connect = async { tcp_connect(target, &spec.bind, false).await.map(|_| None) };
    ended(start, deadline, spec.timeout, timeout_at(deadline, connect).await)
}

/// An attempt's result, and when it was over (see [`run_ended`]).
fn ended(
    start: Instant,
    deadline: Instant,
    timeout: Duration,
    r: Result<Result<Option<i32>, ProbeError>, tokio::time::error::Elapsed>,
) -> (Result<ProbeOk, ProbeError>, Instant) {
    match r {
        Ok(Ok(dynamic_weight)) => {
            let end = Instant::now();
            (
                Ok(ProbeOk {
                    latency: end.saturating_duration_since(start),
                    dynamic_weight,
                }),
                end,
            )
        }
        Ok(Err(e)) => (Err(e), Instant::now()),
        Err(_) => (Err(ProbeError::Timeout(timeout)), deadline),
    }
}

/// One attempt under the check's timeout.
pub async fn run_once(spec: &CheckSpec) -> Result<ProbeOk, ProbeError> {
    run_once_ended(spec).await.0
}

async fn run_once_ended(spec: &CheckSpec) -> (Result<ProbeOk, ProbeError>, Instant) {
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let inner = async {
        match &spec.probe {
            ProbeSpec::Tcp { target } => tcp_connect(*target, &spec.bind, false).await.map(|_| None),
            ProbeSpec::Http(h) => http::probe(h, &spec.bind).await.map(|_| None),
            ProbeSpec::Exec { argv, dynamic_weight } => {
                exec::probe(argv, *dynamic_weight, deadline, spec.timeout).await
            }
            ProbeSpec::Ping { target } => ping::probe(*target, &spec.bind).await.map(|_| None),
            ProbeSpec::Dns {
                server,
                name,
                qtype,
                expect,
            } => dns_probe(*server, name, *qtype, expect, &spec.bind, deadline, spec.timeout)
                .await
                .map(|_| None),
            ProbeSpec::Smtp { target, helo } => smtp_probe(*target, helo, &spec.bind, deadline)
                .await
                .map(|_| None),
            ProbeSpec::Udp {
                target,
                payload,
                expect,
            } => udp_probe(
                *target,
                payload,
                expect.as_deref(),
                &spec.bind,
                deadline,
                spec.timeout,
            )
            .await
            .map(|_| None),
        }
    };
    ended(start, deadline, spec.timeout, timeout_at(deadline, inner).await)
}

fn bind_error(e: io::Error) -> ProbeError {
    ProbeError::Io {
        stage: "bind",
        message: e.to_string(),
    }
}

/// A TCP connection from the check's source, closed with a reset when dropped (no
/// TIME_WAIT left on either side, as haproxy does for its checks). `nodelay` for a
/// connection that will carry a conversation (a `tcp` check only connects: one
/// system call fewer a probe).
pub(crate) async fn tcp_connect(
    target: SocketAddr,
    bind: &Bind,
    nodelay: bool,
) -> Result<TcpStream, ProbeError> {
    let sock = if target.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(|e| ProbeError::io("socket", e))?;
    if let Some(a) = bind.address {
        sock.bind(SocketAddr::new(a, 0)).map_err(bind_error)?;
    }
    if let Some(i) = &bind.interface {
        sock.bind_device(Some(i.as_bytes())).map_err(bind_error)?;
    }
    let stream = sock
        .connect(target)
        .await
        .map_err(|e| ProbeError::io("connect", e))?;
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    if nodelay {
        let _ = stream.set_nodelay(true);
    }
    Ok(stream)
}

/// A UDP socket connected to `target` (ICMP errors then show as ECONNREFUSED).
fn udp_connect(target: SocketAddr, bind: &Bind) -> Result<UdpSocket, ProbeError> {
    let sock = Socket::new(Domain::for_address(target), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| ProbeError::io("socket", e))?;
    sock.set_nonblocking(true)
        .map_err(|e| ProbeError::io("socket", e))?;
    if let Some(i) = &bind.interface {
        sock.bind_device(Some(i.as_bytes())).map_err(bind_error)?;
    }
    if let Some(a) = bind.address {
        sock.bind(&SocketAddr::new(a, 0).into()).map_err(bind_error)?;
    }
    sock.connect(&target.into())
        .map_err(|e| ProbeError::io("connect", e))?;
    UdpSocket::from_std(sock.into()).map_err(|e| ProbeError::io("socket", e))
}

fn udp_error(stage: &'static str, e: io::Error) -> ProbeError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        ProbeError::PortUnreachable
    } else {
        ProbeError::io(stage, e)
    }
}

/// When a receive loop gives up: a hair before the check's deadline, so that its
/// own verdict (what it ignored) is reported rather than a bare timeout.
fn receive_until(deadline: Instant) -> Instant {
    let margin = (deadline.saturating_duration_since(Instant::now()) / 10).min(Duration::from_millis(10));
    deadline - margin
}

/// Receives until `accept` takes a datagram (`Ok(Ok(t))`) or `until` passes
/// (`Ok(Err(ignored))`: how many it refused and the last refusal's words). Refused
/// datagrams are ignored, so that one forged or stray datagram cannot fail a check;
/// a receive error (ICMP port unreachable) ends the wait.
async fn receive_matching<T>(
    sock: &UdpSocket,
    until: Instant,
    mut accept: impl FnMut(&[u8]) -> Result<T, String>,
) -> Result<Result<T, Option<(u32, String)>>, ProbeError> {
    let mut buf = vec![0u8; 65536];
    let mut ignored: Option<(u32, String)> = None;
    loop {
        let n = match timeout_at(until, sock.recv(&mut buf)).await {
            Ok(r) => r.map_err(|e| udp_error("receive", e))?,
            Err(_) => return Ok(Err(ignored)),
        };
        match accept(&buf[..n]) {
            Ok(t) => return Ok(Ok(t)),
            Err(why) => ignored = Some((ignored.map_or(1, |(n, _)| n + 1), why)),
        }
    }
}

async fn dns_probe(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    expect: &[std::net::IpAddr],
    bind: &Bind,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ProbeError> {
    // The socket is connected: the kernel drops datagrams from another address or
    // port. What is left must answer this query (id and question) to count.
    let sock = udp_connect(server, bind)?;
    let id = fastrand::u16(..);
    let query = dns::encode_query(id, name, qtype);
    sock.send(&query).await.map_err(|e| udp_error("send", e))?;
    let answer = receive_matching(&sock, receive_until(deadline), |m| {
        let r = dns::decode_response(m).map_err(|e| format!("malformed response: {e}"))?;
        if r.id != id {
            return Err(format!("response with id {} (query id {id})", r.id));
        }
        if !dns::same_question(&query, m) {
            return Err("response to another question".into());
        }
        Ok(r)
    })
    .await?;
    match answer {
        // TC: the answer did not fit in the datagram; ask again over TCP (RFC 7766 §5).
        Ok(r) if r.truncated => {
            let r = dns_over_tcp(server, &query, bind).await?;
            dns::check_response(&r, qtype, expect).map_err(ProbeError::Dns)
        }
        Ok(r) => dns::check_response(&r, qtype, expect).map_err(ProbeError::Dns),
        Err(None) => Err(ProbeError::Timeout(timeout)),
        Err(Some((n, last))) => Err(ProbeError::Dns(format!(
            "no answer to the query within {}: {n} datagram(s) ignored, the last a {last}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// `query` over TCP (two-byte length prefixes, RFC 1035 §4.2.2), for a truncated UDP
/// answer. The length prefix bounds what is read to 65,535 bytes.
async fn dns_over_tcp(server: SocketAddr, query: &[u8], bind: &Bind) -> Result<dns::Response, ProbeError> {
    let mut s = tcp_connect(server, bind, true).await?;
    let mut out = Vec::with_capacity(2 + query.len());
    out.extend_from_slice(&(query.len() as u16).to_be_bytes());
    out.extend_from_slice(query);
    s.write_all(&out)
        .await
        .map_err(|e| ProbeError::io("send (TCP)", e))?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)
        .await
        .map_err(|e| ProbeError::io("receive (TCP)", e))?;
    let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut m)
        .await
        .map_err(|e| ProbeError::io("receive (TCP)", e))?;
    let r = dns::decode_response(&m).map_err(|e| ProbeError::Dns(format!("malformed TCP response: {e}")))?;
    if r.id != u16::from_be_bytes([query[0], query[1]]) || !dns::same_question(query, &m) {
        return Err(ProbeError::Dns("TCP response to another query".into()));
    }
    if r.truncated {
        return Err(ProbeError::Dns("TCP response truncated (TC)".into()));
    }
    Ok(r)
}

/// Reads one SMTP reply (RFC 5321 §4.2: `ddd-` continuation lines, then `ddd `).
async fn smtp_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<(u16, String), ProbeError> {
    let mut text = String::new();
    for _ in 0..100 {
        let mut line = String::new();
        let n = (&mut *r)
            .take(2048)
            .read_line(&mut line)
            .await
            .map_err(|e| ProbeError::io("read", e))?;
        if n == 0 {
            return Err(ProbeError::Smtp(if text.is_empty() {
                "connection closed without a reply".into()
            } else {
                format!("connection closed in the reply {:?}", text.trim_end())
            }));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| ProbeError::Smtp(format!("not an SMTP reply: {line:?}")))?;
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
    Err(ProbeError::Smtp("reply longer than 100 lines".into()))
}

async fn smtp_probe(
    target: SocketAddr,
    helo: &str,
    bind: &Bind,
    deadline: Instant,
) -> Result<(), ProbeError> {
    let stream = tcp_connect(target, bind, true).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let (code, text) = smtp_reply(&mut r).await?;
    if !(200..300).contains(&code) {
        return Err(ProbeError::Smtp(format!("banner {text:?}")));
    }
    w.write_all(format!("HELO {helo}\r\n").as_bytes())
        .await
        .map_err(|e| ProbeError::io("write", e))?;
    let (code, text) = smtp_reply(&mut r).await?;
    if code != 250 {
        return Err(ProbeError::Smtp(format!("HELO answered {text:?}")));
    }
    // Say goodbye, but do not fail a healthy server on a slow 221.
    if w.write_all(b"QUIT\r\n").await.is_ok() {
        let wait = (Instant::now() + Duration::from_millis(200)).min(deadline - Duration::from_millis(1));
        let _ = timeout_at(wait, smtp_reply(&mut r)).await;
    }
    Ok(())
}

/// Printable form of a reply for error messages (first 64 bytes).
fn show_bytes(b: &[u8]) -> String {
    let head = &b[..b.len().min(64)];
    let more = if b.len() > 64 { "..." } else { "" };
    match std::str::from_utf8(head) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\r') => format!("{s:?}{more}"),
        _ => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("hex:{hex}{more}")
        }
    }
}

/// Without `expect`, silence until just before the deadline is success: only an
/// ICMP port unreachable (or another error) fails. With `expect`, replies without
/// the bytes are ignored until the deadline (then the last one is reported).
async fn udp_probe(
    target: SocketAddr,
    payload: &[u8],
    expect: Option<&[u8]>,
    bind: &Bind,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let sock = udp_connect(target, bind)?;
    sock.send(payload).await.map_err(|e| udp_error("send", e))?;
    let until = receive_until(deadline);
    match expect {
        Some(want) => {
            let reply = receive_matching(&sock, until, |got| {
                if got.windows(want.len().max(1)).any(|w| w == want) {
                    Ok(())
                } else {
                    Err(show_bytes(got))
                }
            })
            .await?;
            match reply {
                Ok(()) => Ok(()),
                Err(None) => Err(ProbeError::Timeout(timeout)),
                Err(Some((_, got))) => Err(ProbeError::Reply { got }),
            }
        }
        None => {
            let mut buf = [0u8; 1];
            match timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => Ok(()),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(udp_error("receive", e)),
            }
        }
    }
}

#[cfg(test)]
mod dns_tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use std::io::{Read, Write};
    use std::net::Ipv4Addr;

    /// The answer to `query` with `n` A records (203.0.113.1..), TC as given.
    fn answer(query: &[u8], n: u8, truncated: bool) -> Vec<u8> {
        let q = Message::from_vec(query).expect("a query");
        let mut m = Message::new();
        m.set_id(q.id())
            .set_message_type(MessageType::Response)
            .set_recursion_desired(true)
            .set_truncated(truncated)
            .add_queries(q.queries().to_vec());
        let owner = q.queries()[0].name().clone();
        for i in 1..=n {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                60,
                RData::A(A(Ipv4Addr::new(203, 0, 113, i))),
            ));
        }
        m.to_vec().unwrap()
    }

    /// A server whose UDP answer does not fit (TC, one of its 100 records) and whose
    /// TCP answer has them all, as a large round-robin name gets: the probe asks again
    /// over TCP and finds the expected address that only the full answer holds.
    #[tokio::test]
    async fn truncated_answer_is_asked_again_over_tcp() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = tcp.local_addr().unwrap();
        let udp = std::net::UdpSocket::bind(server).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&answer(&buf[..n], 1, true), peer);
            }
        });
        std::thread::spawn(move || {
            let Ok((mut c, _)) = tcp.accept() else { return };
            let mut len = [0u8; 2];
            c.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            c.read_exact(&mut q).unwrap();
            let a = answer(&q, 100, false);
            c.write_all(&(a.len() as u16).to_be_bytes()).unwrap();
            c.write_all(&a).unwrap();
        });
        let timeout = Duration::from_secs(5);
        let want: std::net::IpAddr = "203.0.113.100".parse().unwrap();
        let r = dns_probe(
            server,
            "web.example",
            dns::TYPE_A,
            &[want],
            &Bind::default(),
            Instant::now() + timeout,
            timeout,
        )
        .await;
        assert_eq!(r, Ok(()));
    }
}
