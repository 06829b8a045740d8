//! The thin executor: a generic netlink socket of its own (non-blocking, in tokio's
//! reactor), dumps into a `Table`, and the planned `Op`s sent in batches.
//!
//! Batches: up to `BATCH` requests go in one datagram, each with NLM_F_ACK. The
//! kernel handles the messages of a datagram one by one, in order, inside the
//! sendmsg call, and acknowledges each one (a refusal does not stop the rest), so a
//! batch in plan order behaves exactly like one request at a time (a service exists
//! before its real servers are added) and every op keeps its own result, while
//! 10,000 real servers cost ~80 sendmsg calls instead of 10,000 round trips.
//! Dumps are one at a time (the kernel runs one dump per socket).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

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

use super::constants::IPVS_GENL_NAME;
use super::error::IpvsError;
use super::message::{IpvsCmd, IpvsMessage};
use super::model::{DestCounters, DestSpec, ServiceSpec, Stats, Table};
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
    pub service_stats: std::collections::BTreeMap<super::model::ServiceKey, Stats>,
    pub dest_counters:
        std::collections::BTreeMap<(super::model::ServiceKey, std::net::SocketAddr), DestCounters>,
}

pub struct Ipvs {
    fd: AsyncFd<OwnedFd>,
    family: u16,
    seq: u32,
    rx: Vec<u8>,
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
        let count = msgs.len();
        let first = self.next_seq(count);
        let mut buf = Vec::new();
        for (i, msg) in msgs.into_iter().enumerate() {
            let mut g = GenlMessage::from_payload(msg);
            g.set_resolved_family_id(self.family);
            let mut nl = NetlinkMessage::from(g);
            nl.header.flags = flags;
            nl.header.sequence_number = first.wrapping_add(i as u32);
            nl.finalize();
            let at = buf.len();
            buf.resize(at + nl.buffer_len(), 0);
            nl.serialize(&mut buf[at..]);
        }
        self.send(&buf)?;
        // Per request: replies so far, the first undecodable reply, the answer.
        let mut replies: Vec<Vec<IpvsMessage>> = vec![Vec::new(); count];
        let mut undecodable: Vec<Option<String>> = vec![None; count];
        let mut answers: Vec<Option<Answer>> = Vec::new();
        answers.resize_with(count, || None);
        let mut pending = count;
        while pending > 0 {
            let len = match self.recv().await {
                Ok(len) => len,
                // ENOBUFS: answers were dropped (receive buffer overrun).
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    for (i, a) in answers.iter_mut().enumerate().filter(|(_, a)| a.is_none()) {
                        *a = Some(Answer {
                            replies: Vec::new(),
                            result: Err(IpvsError::Protocol {
                                what: what(i),
                                message: "answer lost (receive buffer overrun)".into(),
                            }),
                        });
                    }
                    break;
                }
                Err(e) => return Err(e),
            };
            for msg in split(&self.rx[..len]) {
                let msg = msg?;
                let seq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
                let i = seq.wrapping_sub(first) as usize;
                if i >= count || answers[i].is_some() {
                    continue; // not ours (an earlier, abandoned exchange)
                }
                let kind = u16::from_ne_bytes([msg[4], msg[5]]);
                let end = match NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(msg) {
                    Ok(m) => match m.payload {
                        NetlinkPayload::InnerMessage(g) => {
                            replies[i].push(g.payload);
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
                        undecodable[i].get_or_insert_with(|| e.to_string());
                        (kind == NLMSG_ERROR || kind == NLMSG_DONE).then_some(Ok(()))
                    }
                };
                if let Some(result) = end {
                    let result = match (result, undecodable[i].take()) {
                        (Ok(()), Some(message)) => Err(IpvsError::Protocol {
                            what: what(i),
                            message,
                        }),
                        (r, _) => r,
                    };
                    let replies = std::mem::take(&mut replies[i]);
                    answers[i] = Some(Answer { replies, result });
                    pending -= 1;
                }
            }
        }
        Ok(answers.into_iter().map(|a| a.expect("answered")).collect())
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

    /// Dumps every service and its destinations.
    pub async fn dump(&mut self) -> Result<Observed, IpvsError> {
        let services = self
            .request(
                IpvsMessage::new(IpvsCmd::GetService, vec![]),
                NLM_F_REQUEST | NLM_F_DUMP,
                || "list services".into(),
            )
            .await?;
        let mut obs = Observed::default();
        for m in services {
            for attr in m.attrs {
                let IpvsAttr::Service(attrs) = attr else { continue };
                let (spec, stats) = match ServiceSpec::from_attrs(&attrs) {
                    Ok(s) => s,
                    Err(e) => {
                        debug!(error = %e, "skipping a kernel service hafront cannot represent");
                        continue;
                    }
                };
                let key = spec.key;
                let dests = self
                    .request(
                        IpvsMessage::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.attrs())]),
                        NLM_F_REQUEST | NLM_F_DUMP,
                        || format!("list real servers of {key}"),
                    )
                    .await?;
                let mut list = Vec::new();
                for d in dests.into_iter().flat_map(|m| m.attrs) {
                    let IpvsAttr::Dest(attrs) = d else { continue };
                    match DestSpec::from_attrs(&attrs, key.is_ipv6()) {
                        Ok((dest, counters)) => {
                            obs.dest_counters.insert((key, dest.addr), counters);
                            list.push(dest);
                        }
                        Err(e) => debug!(service = %key, error = %e, "skipping a real server"),
                    }
                }
                obs.service_stats.insert(key, stats);
                obs.table.insert(spec, list);
            }
        }
        Ok(obs)
    }

    pub async fn execute(&mut self, op: &Op) -> Result<(), IpvsError> {
        self.execute_all(std::slice::from_ref(op))
            .await
            .pop()
            .expect("one result")
    }

    /// Executes `ops` in order, in batches; one result per op.
    pub async fn execute_all(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>> {
        let mut results = Vec::with_capacity(ops.len());
        let mut rest = ops;
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
            match self
                .exchange(msgs, NLM_F_REQUEST | NLM_F_ACK, &|i| batch[i].to_string())
                .await
            {
                Ok(answers) => results.extend(answers.into_iter().map(|a| a.result)),
                Err(e) => results.extend(batch.iter().map(|op| {
                    Err(IpvsError::Protocol {
                        what: op.to_string(),
                        message: e.to_string(),
                    })
                })),
            }
            rest = &rest[n..];
        }
        results
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
