//! The thin executor: a generic netlink socket in tokio's reactor for requests
//! (the family, info, sync daemons), and a blocking one for the planned `Op`s,
//! sent in batches, and for the table dump, read in place into a `Table`
//! (dump.rs).
//!
//! Batches: up to `BATCH` requests go in one datagram, each with NLM_F_ACK. The
//! kernel handles the messages of a datagram one by one, in order, inside the
//! sendmsg call, and acknowledges each one (a refusal does not stop the rest), so a
//! batch in plan order behaves exactly like one request at a time (a service exists
//! before its real servers are added) and every op keeps its own result, while
//! 10,000 real servers cost ~80 sendmsg calls instead of 10,000 round trips.
//! Dumps are one at a time (the kernel runs one dump per socket).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

use super::constants::{IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_GENL_NAME};
use super::dump::{self, EntryError};
use super::error::IpvsError;
use super::message::{IpvsCmd, IpvsMessage};
use super::model::{DestCounters, DestSpec, ServiceKey, ServiceSpec, Stats, Table};
use super::nlas::IpvsAttr;
use super::plan::Op;

/// Requests per datagram. Their acknowledgements (~1 KiB of receive buffer each
/// while queued) must fit in the socket's receive buffer.
const BATCH: usize = 128;
/// Bytes per datagram (well below the socket's send buffer).
const BATCH_BYTES: usize = 32 * 1024;
/// Receive buffer asked for (SO_RCVBUFFORCE as root, else capped by rmem_max).
const RCVBUF: usize = 4 << 20;
/// Larger than any datagram the kernel sends (dumps come in up to 32 KiB).
const RX_BUF: usize = 64 * 1024;
/// The kernel answers inside sendmsg; this only guards against a lost answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Kernel counters beside the table (for status and metrics).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub table: Table,
    pub service_stats: BTreeMap<ServiceKey, Stats>,
    /// Per service, per real server.
    pub dest_counters: BTreeMap<ServiceKey, BTreeMap<SocketAddr, DestCounters>>,
    /// What reading them took.
    pub read: DumpStats,
}

pub struct Ipvs {
    fd: AsyncFd<OwnedFd>,
    family: u16,
    seq: u32,
    rx: Vec<u8>,
    /// The blocking socket dumps are read and ops written on, kept between uses.
    blocking: Option<BlockingSocket>,
}

/// The answer to one request of an exchange.
struct Answer {
    replies: Vec<IpvsMessage>,
    result: Result<(), IpvsError>,
}

#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Ipvs {
    /// Opens the socket and resolves the family, so that a kernel without IPVS is
    /// reported once, clearly, before anything else.
    pub async fn connect() -> Result<Ipvs, IpvsError> {
        let sock_err = |e: nix::Error| IpvsError::Socket(e.into());
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(sock_err)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sock_err)?;
        // Room for a batch's acknowledgements; without CAP_NET_ADMIN the default
        // (capped) size still holds BATCH of them.
        if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        // SAFETY: the AsyncFd owns the descriptor, which stays open as long as it does.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| IpvsError::Socket(e.into()))?;
        let mut ipvs = Ipvs {
            fd,
            family: 0,
            seq: 0,
            rx: vec![0; RX_BUF],
            blocking: None,
        };
        ipvs.family = ipvs.resolve_family().await?;
        Ok(ipvs)
    }

    fn next_seq(&mut self, n: usize) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n as u32);
        first
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        let n = send(self.fd.get_ref().as_raw_fd(), buf, MsgFlags::empty())?;
        if n != buf.len() {
            return Err(io::Error::other(format!("sent {n} of {} bytes", buf.len())));
        }
        Ok(())
    }

    /// Reads one datagram into `self.rx`; returns its length.
    async fn recv(&mut self) -> io::Result<usize> {
        let Ipvs { fd, rx, .. } = self;
        let read = async {
            loop {
                let mut guard = fd.readable().await?;
                // MSG_TRUNC: the datagram's real length, to detect truncation.
                let r = guard.try_io(|fd| Ok(recv(fd.get_ref().as_raw_fd(), rx, MsgFlags::MSG_TRUNC)?));
                if let Ok(r) = r {
                    return r;
                }
            }
        };
        let n = tokio::time::timeout(ANSWER_TIMEOUT, read)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel"))??;
        if n > self.rx.len() {
            return Err(io::Error::other(format!("datagram of {n} bytes truncated")));
        }
        Ok(n)
    }

    async fn resolve_family(&mut self) -> Result<u16, IpvsError> {
        let seq = self.next_seq(1);
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(IPVS_GENL_NAME.into())],
        }));
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.send(&buf).map_err(IpvsError::Socket)?;
        let mut family = None;
        loop {
            let n = self.recv().await.map_err(IpvsError::Socket)?;
            for msg in split(&self.rx[..n]) {
                let Ok(m) =
                    NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(msg.map_err(IpvsError::Socket)?)
                else {
                    continue;
                };
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(g) => {
                        for a in g.payload.nlas {
                            if let GenlCtrlAttrs::FamilyId(id) = a {
                                family = Some(id);
                            }
                        }
                    }
                    // ENOENT: no such family. Its acknowledgement ends the answer.
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => {
                        return family.ok_or(IpvsError::Unavailable);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends `msgs` in one datagram, each with `flags`, and waits for every answer:
    /// replies until the acknowledgement, or for a dump until NLMSG_DONE (a dump goes
    /// alone: the kernel runs one per socket). `what(i)` names request i in errors.
    /// An error here (the socket) concerns all of them.
    async fn exchange(
        &mut self,
        msgs: Vec<IpvsMessage>,
        flags: u16,
        what: &(dyn Fn(usize) -> String + Sync),
    ) -> Result<Vec<Answer>, io::Error> {
        let first = self.next_seq(msgs.len());
        let mut answers = Answers::new(first, msgs.len());
        self.send(&encode(msgs, self.family, flags, first))?;
        while !answers.complete() {
            match self.recv().await {
                Ok(len) => answers.datagram(&self.rx[..len], what)?,
                // ENOBUFS: answers were dropped (receive buffer overrun).
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => answers.overrun(what),
                Err(e) => return Err(e),
            }
        }
        Ok(answers.finish())
    }

    /// One request (a dump with NLM_F_DUMP): its replies, or its error.
    async fn request(
        &mut self,
        msg: IpvsMessage,
        flags: u16,
        what: impl Fn() -> String + Sync,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let mut answers =
            self.exchange(vec![msg], flags, &|_| what())
                .await
                .map_err(|e| IpvsError::Protocol {
                    what: what(),
                    message: e.to_string(),
                })?;
        let Answer { replies, result } = answers.pop().expect("one answer");
        result.map(|()| replies)
    }

    pub async fn info(&mut self) -> Result<Info, IpvsError> {
        let replies = self
            .request(
                IpvsMessage::new(IpvsCmd::GetInfo, vec![]),
                NLM_F_REQUEST | NLM_F_ACK,
                || "IPVS info".into(),
            )
            .await?;
        let mut info = Info {
            version: 0,
            conn_tab_size: 0,
        };
        for attr in replies.iter().flat_map(|m| &m.attrs) {
            match attr {
                IpvsAttr::InfoVersion(v) => info.version = *v,
                IpvsAttr::InfoConnTabSize(v) => info.conn_tab_size = *v,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Dumps every service and its destinations, decoded in place (dump.rs).
    ///
    /// Blocking: the kernel fills a dump's datagrams inside the sendmsg and recvmsg
    /// calls that ask for them (~10 ms for 10,000 destinations on a host, 10x that
    /// under TCG), on a blocking socket of its own. The reconciler has a thread of
    /// its own for this; handing the dump to a pool thread instead cost ~20 ms more
    /// in the VM (a new thread's malloc arena faulting its pages in).
    pub fn dump(&mut self) -> Result<Observed, IpvsError> {
        let result = dump_table(self.family, &mut self.blocking);
        // After an error the socket may still hold part of an abandoned dump.
        if result.is_err() {
            self.blocking = None;
        }
        result
    }

    /// Executes `ops` in order, in batches; one result per op.
    ///
    /// Blocking, on the blocking socket dumps use: the kernel does an op's work
    /// inside the sendmsg, and the answer is there when sendmsg returns. The
    /// reconciler writes from its own thread, and a health verdict is written on the
    /// checks' thread as it is reached (reconcile.rs, `InlineWriter`): no reactor
    /// between a verdict and the kernel.
    pub fn execute_all(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>> {
        let sock = match &mut self.blocking {
            Some(s) => s,
            None => match BlockingSocket::open(self.family) {
                Ok(s) => self.blocking.insert(s),
                Err(e) => {
                    let message = e.to_string();
                    return ops
                        .iter()
                        .map(|op| {
                            Err(IpvsError::Protocol {
                                what: op.to_string(),
                                message: message.clone(),
                            })
                        })
                        .collect();
                }
            },
        };
        let mut results = Vec::with_capacity(ops.len());
        let mut rest = ops;
        let mut lost = false;
        while !rest.is_empty() {
            let (mut n, mut bytes) = (0, 0);
            let mut msgs = Vec::new();
            while n < rest.len() && n < BATCH {
                let msg = rest[n].message();
                // nlmsghdr 16 + genlmsghdr 4 + attributes
                let len = 20 + netlink_packet_core::Emitable::buffer_len(&msg);
                if n > 0 && bytes + len > BATCH_BYTES {
                    break;
                }
                msgs.push(msg);
                bytes += len;
                n += 1;
            }
            let batch = &rest[..n];
            match sock.exchange(msgs, NLM_F_REQUEST | NLM_F_ACK, &|i| batch[i].to_string()) {
                Ok(answers) => results.extend(answers.into_iter().map(|a| a.result)),
                Err(e) => {
                    lost = true;
                    results.extend(batch.iter().map(|op| {
                        Err(IpvsError::Protocol {
                            what: op.to_string(),
                            message: e.to_string(),
                        })
                    }))
                }
            }
            rest = &rest[n..];
        }
        // The socket may still hold answers of an abandoned exchange.
        if lost {
            self.blocking = None;
        }
        results
    }

    /// The connection sync daemons the kernel runs (GET_DAEMON).
    pub async fn sync_daemons(&mut self) -> Result<Vec<super::SyncDaemon>, IpvsError> {
        let what = || "sync daemons".to_string();
        let replies = self
            .request(super::sync::get_daemon(), NLM_F_REQUEST | NLM_F_DUMP, what)
            .await?;
        super::sync::daemons(&replies).map_err(|message| IpvsError::Protocol {
            what: what(),
            message,
        })
    }

    /// Starts a connection sync daemon (NEW_DAEMON).
    pub async fn start_sync_daemon(&mut self, d: &super::SyncDaemon) -> Result<(), IpvsError> {
        let what = || format!("{} sync daemon on {}", d.role.as_str(), d.interface);
        self.request(super::sync::new_daemon(d), NLM_F_REQUEST | NLM_F_ACK, what)
            .await
            .map(drop)
    }

    /// Stops the connection sync daemon of `role` (DEL_DAEMON).
    pub async fn stop_sync_daemon(&mut self, role: super::SyncRole) -> Result<(), IpvsError> {
        let what = || format!("stop of the {} sync daemon", role.as_str());
        self.request(super::sync::del_daemon(role), NLM_F_REQUEST | NLM_F_ACK, what)
            .await
            .map(drop)
    }

    /// Removes every service (only for tests and tools: the daemon never flushes).
    pub async fn flush(&mut self) -> Result<(), IpvsError> {
        self.request(
            IpvsMessage::new(IpvsCmd::Flush, vec![]),
            NLM_F_REQUEST | NLM_F_ACK,
            || "flush".into(),
        )
        .await?;
        Ok(())
    }
}

/// The whole table, on one socket: the services, then each one's destinations.
/// (Dumping services on several threads at once gains nothing: the kernel runs
/// IPVS dumps under its IPVS and generic netlink mutexes, one at a time; measured
/// in the VM, two threads took longer than one.)
fn dump_table(family: u16, slot: &mut Option<BlockingSocket>) -> Result<Observed, IpvsError> {
    let start = Instant::now();
    let sock = match slot {
        Some(s) => s,
        None => slot.insert(BlockingSocket::open(family)?),
    };
    sock.stats = DumpStats::default();
    let mut obs = Observed::default();
    for (spec, stats) in sock.services()? {
        let key = spec.key;
        let (dests, counters) = sock.dests(&key)?;
        obs.dest_counters.insert(key, counters.into_iter().collect());
        obs.service_stats.insert(key, stats);
        obs.table.insert(spec, dests);
    }
    sock.stats.total = start.elapsed();
    obs.read = sock.stats;
    let DumpStats {
        datagrams,
        bytes,
        kernel,
        total,
    } = sock.stats;
    debug!(
        services = obs.table.services.len(),
        datagrams,
        bytes,
        kernel_ms = kernel.as_secs_f64() * 1e3,
        total_ms = total.as_secs_f64() * 1e3,
        "IPVS table read"
    );
    Ok(obs)
}

/// What reading the table took: the kernel's share is the time inside sendmsg and
/// recvmsg (where it fills the dump's datagrams and copies them out), the rest is
/// hafront's (decoding, building the table).
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpStats {
    pub datagrams: usize,
    pub bytes: usize,
    pub kernel: Duration,
    pub total: Duration,
}

/// How a dump ended, when not well.
enum DumpEnd {
    Kernel(io::Error),
    Protocol(String),
}

/// A blocking generic netlink socket for dumps and writes (a receive timeout
/// guards against a lost answer).
struct BlockingSocket {
    fd: OwnedFd,
    family: u16,
    seq: u32,
    rx: Vec<u8>,
    stats: DumpStats,
}

impl BlockingSocket {
    fn open(family: u16) -> Result<BlockingSocket, IpvsError> {
        let sock_err = |e: nix::Error| IpvsError::Socket(e.into());
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(sock_err)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sock_err)?;
        let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT.as_secs() as _, 0);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(sock_err)?;
        // Room for a batch's acknowledgements, as on the reactor's socket.
        if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        Ok(BlockingSocket {
            fd,
            family,
            seq: 0,
            rx: vec![0; RX_BUF],
            stats: DumpStats::default(),
        })
    }

    /// Reads one datagram into `self.rx`; returns its length.
    fn recv(&mut self) -> io::Result<usize> {
        let len = loop {
            match recv(self.fd.as_raw_fd(), &mut self.rx, MsgFlags::MSG_TRUNC) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no answer from the kernel",
                    ))
                }
                Err(e) => return Err(e.into()),
                Ok(n) => break n,
            }
        };
        if len > self.rx.len() {
            return Err(io::Error::other(format!("datagram of {len} bytes truncated")));
        }
        Ok(len)
    }

    /// `Ipvs::exchange`, blocking.
    fn exchange(
        &mut self,
        msgs: Vec<IpvsMessage>,
        flags: u16,
        what: &(dyn Fn(usize) -> String + Sync),
    ) -> Result<Vec<Answer>, io::Error> {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(msgs.len() as u32);
        let mut answers = Answers::new(first, msgs.len());
        let buf = encode(msgs, self.family, flags, first);
        let n = send(self.fd.as_raw_fd(), &buf, MsgFlags::empty())?;
        if n != buf.len() {
            return Err(io::Error::other(format!("sent {n} of {} bytes", buf.len())));
        }
        while !answers.complete() {
            match self.recv() {
                Ok(len) => answers.datagram(&self.rx[..len], what)?,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => answers.overrun(what),
                Err(e) => return Err(e),
            }
        }
        Ok(answers.finish())
    }

    /// The services, in the kernel's order (those hafront cannot represent skipped).
    fn services(&mut self) -> Result<Vec<(ServiceSpec, Stats)>, IpvsError> {
        let mut services = Vec::new();
        self.dump_each(
            IpvsMessage::new(IpvsCmd::GetService, vec![]),
            || "list services".into(),
            |payload| {
                let Some(attrs) = dump::nested(payload, IPVS_CMD_ATTR_SERVICE).map_err(|e| e.to_string())?
                else {
                    return Ok(());
                };
                match dump::service(attrs) {
                    Ok(s) => services.push(s),
                    Err(EntryError::Unsupported(e)) => {
                        debug!(error = %e, "skipping a kernel service hafront cannot represent")
                    }
                    Err(e) => return Err(format!("service: {e}")),
                }
                Ok(())
            },
        )?;
        Ok(services)
    }

    /// A service's destinations and their counters.
    #[allow(clippy::type_complexity)]
    fn dests(
        &mut self,
        key: &ServiceKey,
    ) -> Result<(Vec<DestSpec>, Vec<(SocketAddr, DestCounters)>), IpvsError> {
        let ipv6 = key.is_ipv6();
        let (mut dests, mut counters) = (Vec::new(), Vec::new());
        self.dump_each(
            IpvsMessage::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.attrs())]),
            || format!("list real servers of {key}"),
            |payload| {
                let Some(attrs) = dump::nested(payload, IPVS_CMD_ATTR_DEST).map_err(|e| e.to_string())?
                else {
                    return Ok(());
                };
                match dump::dest(attrs, ipv6) {
                    Ok((dest, c)) => {
                        counters.push((dest.addr, c));
                        dests.push(dest);
                    }
                    Err(EntryError::Unsupported(e)) => {
                        debug!(service = %key, error = %e, "skipping a real server")
                    }
                    Err(e) => return Err(format!("real server: {e}")),
                }
                Ok(())
            },
        )?;
        Ok((dests, counters))
    }

    /// Runs one dump and hands each reply's payload (the attributes after the generic
    /// netlink header) to `each`, in place, in the receive buffer. The first error of
    /// `each` (a malformed reply) is the dump's error once the kernel has finished it.
    fn dump_each(
        &mut self,
        msg: IpvsMessage,
        what: impl Fn() -> String,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), IpvsError> {
        let protocol = |message: String| IpvsError::Protocol {
            what: what(),
            message,
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut g = GenlMessage::from_payload(msg);
        g.set_resolved_family_id(self.family);
        let mut nl = NetlinkMessage::from(g);
        nl.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        let t = Instant::now();
        let n = send(self.fd.as_raw_fd(), &buf, MsgFlags::empty()).map_err(|e| protocol(e.to_string()))?;
        if n != buf.len() {
            return Err(protocol(format!("sent {n} of {} bytes", buf.len())));
        }
        self.stats.kernel += t.elapsed();
        let mut failed = None;
        loop {
            let t = Instant::now();
            let len = self.recv().map_err(|e| protocol(e.to_string()))?;
            self.stats.kernel += t.elapsed();
            self.stats.datagrams += 1;
            self.stats.bytes += len;
            let end = self.datagram(len, seq, &mut each, &mut failed);
            if let Some(end) = end {
                return end.map_err(|e| match e {
                    DumpEnd::Kernel(source) => IpvsError::Kernel { what: what(), source },
                    DumpEnd::Protocol(m) => protocol(m),
                });
            }
        }
    }

    /// The messages of one dump datagram: `Some` at the dump's end.
    fn datagram(
        &self,
        len: usize,
        seq: u32,
        each: &mut impl FnMut(&[u8]) -> Result<(), String>,
        failed: &mut Option<String>,
    ) -> Option<Result<(), DumpEnd>> {
        for msg in split(&self.rx[..len]) {
            let msg = match msg {
                Ok(m) => m,
                Err(e) => return Some(Err(DumpEnd::Protocol(e.to_string()))),
            };
            if u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]) != seq {
                continue; // not ours (an earlier, abandoned dump)
            }
            let kind = u16::from_ne_bytes([msg[4], msg[5]]);
            match kind {
                // NLMSG_ERROR and NLMSG_DONE carry an errno (0 or negative) first.
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = msg
                        .get(16..20)
                        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
                    return Some(match code {
                        Some(c) if c < 0 => Err(DumpEnd::Kernel(io::Error::from_raw_os_error(-c))),
                        _ => failed.take().map_or(Ok(()), |m| Err(DumpEnd::Protocol(m))),
                    });
                }
                k if k == self.family => {
                    let result = match msg.get(20..) {
                        Some(payload) => each(payload),
                        None => Err(format!("reply of {} bytes", msg.len())),
                    };
                    if let Err(m) = result {
                        failed.get_or_insert(m);
                    }
                }
                _ => {} // NLMSG_NOOP
            }
        }
        None
    }
}

/// `msgs` in one datagram, numbered from `first`, each with `flags`.
fn encode(msgs: Vec<IpvsMessage>, family: u16, flags: u16, first: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    for (i, msg) in msgs.into_iter().enumerate() {
        let mut g = GenlMessage::from_payload(msg);
        g.set_resolved_family_id(family);
        let mut nl = NetlinkMessage::from(g);
        nl.header.flags = flags;
        nl.header.sequence_number = first.wrapping_add(i as u32);
        nl.finalize();
        let at = buf.len();
        buf.resize(at + nl.buffer_len(), 0);
        nl.serialize(&mut buf[at..]);
    }
    buf
}

/// The answers of one exchange as its datagrams arrive: per request, its replies
/// so far, the first undecodable reply, and its answer once complete.
struct Answers {
    first: u32,
    replies: Vec<Vec<IpvsMessage>>,
    undecodable: Vec<Option<String>>,
    answers: Vec<Option<Answer>>,
    pending: usize,
}

impl Answers {
    fn new(first: u32, count: usize) -> Answers {
        let mut answers = Vec::new();
        answers.resize_with(count, || None);
        Answers {
            first,
            replies: vec![Vec::new(); count],
            undecodable: vec![None; count],
            answers,
            pending: count,
        }
    }

    fn complete(&self) -> bool {
        self.pending == 0
    }

    /// The receive buffer overran: the answers still missing are lost.
    fn overrun(&mut self, what: &(dyn Fn(usize) -> String + Sync)) {
        for (i, a) in self.answers.iter_mut().enumerate().filter(|(_, a)| a.is_none()) {
            *a = Some(Answer {
                replies: Vec::new(),
                result: Err(IpvsError::Protocol {
                    what: what(i),
                    message: "answer lost (receive buffer overrun)".into(),
                }),
            });
        }
        self.pending = 0;
    }

    fn datagram(&mut self, buf: &[u8], what: &(dyn Fn(usize) -> String + Sync)) -> io::Result<()> {
        for msg in split(buf) {
            let msg = msg?;
            let seq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
            let i = seq.wrapping_sub(self.first) as usize;
            if i >= self.answers.len() || self.answers[i].is_some() {
                continue; // not ours (an earlier, abandoned exchange)
            }
            let kind = u16::from_ne_bytes([msg[4], msg[5]]);
            let end = match NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(msg) {
                Ok(m) => match m.payload {
                    NetlinkPayload::InnerMessage(g) => {
                        self.replies[i].push(g.payload);
                        None
                    }
                    NetlinkPayload::Error(e) => Some(match e.code {
                        Some(_) => Err(IpvsError::Kernel {
                            what: what(i),
                            source: e.to_io(),
                        }),
                        None => Ok(()),
                    }),
                    NetlinkPayload::Done(d) if d.code < 0 => Some(Err(IpvsError::Kernel {
                        what: what(i),
                        source: io::Error::from_raw_os_error(-d.code),
                    })),
                    NetlinkPayload::Done(_) => Some(Ok(())),
                    _ => None,
                },
                // Undecodable: the request's error; its end still comes.
                Err(e) => {
                    self.undecodable[i].get_or_insert_with(|| e.to_string());
                    (kind == NLMSG_ERROR || kind == NLMSG_DONE).then_some(Ok(()))
                }
            };
            if let Some(result) = end {
                let result = match (result, self.undecodable[i].take()) {
                    (Ok(()), Some(message)) => Err(IpvsError::Protocol {
                        what: what(i),
                        message,
                    }),
                    (r, _) => r,
                };
                let replies = std::mem::take(&mut self.replies[i]);
                self.answers[i] = Some(Answer { replies, result });
                self.pending -= 1;
            }
        }
        Ok(())
    }

    fn finish(self) -> Vec<Answer> {
        self.answers.into_iter().map(|a| a.expect("answered")).collect()
    }
}

/// The netlink messages of a datagram.
fn split(buf: &[u8]) -> impl Iterator<Item = io::Result<&[u8]>> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + 16 > buf.len() {
            return None;
        }
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < 16 || off + len > buf.len() {
            off = buf.len();
            return Some(Err(io::Error::other(format!("bad netlink message length {len}"))));
        }
        let msg = &buf[off..off + len];
        off += (len + 3) & !3;
        Some(Ok(msg))
    })
}

#[cfg(test)]
mod tests {
    use super::split;

    fn nlmsg(len: u32, fill: u8) -> Vec<u8> {
        let mut m = len.to_ne_bytes().to_vec();
        m.resize(len as usize, fill);
        m
    }

    #[test]
    fn split_walks_aligned_messages_and_stops_at_a_bad_length() {
        // 20 bytes, then 18 (+2 bytes of alignment), then 16.
        let mut buf = nlmsg(20, 1);
        buf.extend(nlmsg(18, 2));
        buf.extend([0, 0]);
        buf.extend(nlmsg(16, 3));
        let lens: Vec<usize> = split(&buf).map(|m| m.unwrap().len()).collect();
        assert_eq!(lens, [20, 18, 16]);
        // A length past the end, or below a header, is an error and the end.
        let mut bad = nlmsg(20, 1);
        bad.extend(nlmsg(16, 2));
        bad[20..24].copy_from_slice(&64u32.to_ne_bytes());
        let r: Vec<_> = split(&bad).collect();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok() && r[1].is_err());
        assert!(split(&nlmsg(16, 0)[..8]).next().is_none());
        let mut tiny = nlmsg(16, 0);
        tiny[..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(split(&tiny).next().unwrap().is_err());
    }
}
