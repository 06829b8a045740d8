//! VRRP sockets: one raw IPPROTO_VRRP socket per (interface, family), shared by the
//! instances on it and demultiplexed by VRID. Thin: it moves bytes and the IP header
//! fields the protocol checks (source, destination, TTL/hop limit); all judgement is
//! in [`super::instance`].

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::packet::{IPPROTO_VRRP, MCAST_V4, MCAST_V6};

/// Socket-level failures of the VRRP I/O layer.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("interface {0}: not found")]
    NoInterface(String),
    #[error("interface {iface}: {what}: {source}")]
    Socket {
        iface: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A received VRRP packet, its payload in the caller's [`RecvBuf`].
#[derive(Debug)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub payload: &'a [u8],
}

/// A datagram read into a [`RecvBuf`]: its header fields and where its payload lies.
struct Meta {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: std::ops::Range<usize>,
}

impl Meta {
    fn packet(self, buf: &RecvBuf) -> Packet<'_> {
        Packet {
            src: self.src,
            dst: self.dst,
            ttl: self.ttl,
            payload: &buf.data[self.payload],
        }
    }
}

/// Where packets are received, reused from one to the next (no allocation per
/// advert: 255 instances at 100 ms are 2,550 a second, issue 19).
pub struct RecvBuf {
    data: [u8; 2048],
    /// IPv6's control messages (hop limit, destination).
    cmsg: CmsgSpace,
}

/// Room for `in6_pktinfo` and the hop limit, aligned as a cmsghdr must be.
#[repr(C, align(8))]
struct CmsgSpace([u8; 128]);

impl RecvBuf {
    pub fn new() -> RecvBuf {
        RecvBuf {
            data: [0; 2048],
            cmsg: CmsgSpace([0; 128]),
        }
    }
}

impl Default for RecvBuf {
    fn default() -> Self {
        Self::new()
    }
}

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ipv6: bool,
    ifindex: u32,
}

impl VrrpSocket {
    /// Opens the socket on `iface` and joins the VRRP multicast group.
    pub fn open(iface: &str, ifindex: u32, ipv6: bool) -> Result<VrrpSocket, IoError> {
        let err = |what: &'static str| {
            move |source: io::Error| IoError::Socket {
                iface: iface.to_string(),
                what,
                source,
            }
        };
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::RAW, Some(Protocol::from(i32::from(IPPROTO_VRRP))))
            .map_err(err("socket"))?;
        s.bind_device(Some(iface.as_bytes()))
            .map_err(err("SO_BINDTODEVICE"))?;
        // Bursts of adverts from many instances must not overflow the queue.
        let _ = s.set_recv_buffer_size(4 << 20);
        // Network control precedence (0xc0), as keepalived marks its adverts: queues
        // that prioritise by DSCP/precedence must not drop VRRP under load.
        const TOS_NETWORK_CONTROL: u32 = 0xc0;
        if ipv6 {
            s.set_tclass_v6(TOS_NETWORK_CONTROL).map_err(err("IPV6_TCLASS"))?;
            s.set_multicast_hops_v6(255).map_err(err("IPV6_MULTICAST_HOPS"))?;
            s.set_unicast_hops_v6(255).map_err(err("IPV6_UNICAST_HOPS"))?;
            s.set_multicast_loop_v6(false)
                .map_err(err("IPV6_MULTICAST_LOOP"))?;
            s.set_multicast_if_v6(ifindex).map_err(err("IPV6_MULTICAST_IF"))?;
            s.join_multicast_v6(&MCAST_V6, ifindex)
                .map_err(err("IPV6_ADD_MEMBERSHIP"))?;
            setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)
                .map_err(|e| err("IPV6_RECVHOPLIMIT")(e.into()))?;
            setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| err("IPV6_RECVPKTINFO")(e.into()))?;
        } else {
            s.set_tos_v4(TOS_NETWORK_CONTROL).map_err(err("IP_TOS"))?;
            s.set_multicast_ttl_v4(255).map_err(err("IP_MULTICAST_TTL"))?;
            s.set_ttl_v4(255).map_err(err("IP_TTL"))?;
            s.set_multicast_loop_v4(false).map_err(err("IP_MULTICAST_LOOP"))?;
            s.join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(err("IP_ADD_MEMBERSHIP"))?;
        }
        s.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        // SAFETY: the socket is owned by the AsyncFd and outlives its registration.
        let fd = unsafe { AsyncFd::register(s) }.map_err(|e| err("register")(e.into()))?;
        Ok(VrrpSocket { fd, ipv6, ifindex })
    }

    /// Ready when the kernel has (or may have) a packet queued: the engine polls
    /// its sockets itself, then reads them with [`VrrpSocket::recv_ready`]. The
    /// readiness stays set until a read finds the queue empty.
    pub fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        match self.fd.poll_read_ready(cx) {
            std::task::Poll::Ready(Ok(_guard)) => std::task::Poll::Ready(()),
            // The reactor is gone (shutting down): nothing more to read.
            std::task::Poll::Ready(Err(_)) | std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    /// The next packet queued, when the socket is ready (`WouldBlock` otherwise,
    /// or once the queue is empty, which clears the readiness); `None` for a
    /// datagram that is not ours (consumed). A failed read clears the readiness
    /// too: the next packet's arrival wakes the engine again, and a lasting error
    /// cannot keep it spinning.
    pub fn recv_ready<'b>(&self, buf: &'b mut RecvBuf) -> io::Result<Option<Packet<'b>>> {
        let mut failed = None;
        let got = self
            .fd
            .try_io(Interest::READABLE, |s| match self.recv_now(s.as_raw_fd(), buf) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                    failed = Some(e);
                    Err(io::ErrorKind::WouldBlock.into())
                }
                got => got,
            });
        match failed {
            Some(e) => Err(e),
            None => Ok(got?.map(|m| m.packet(buf))),
        }
    }

    /// The next packet the kernel has already queued, whatever the reactor last
    /// saw (`None` when nothing is queued). The engine reads what arrived before
    /// it acts on an expired Master_Down_Timer (a starved engine has not polled
    /// its sockets' readiness yet).
    pub fn try_recv<'b>(&self, buf: &'b mut RecvBuf) -> io::Result<Option<Packet<'b>>> {
        let fd = self.fd.get_ref().as_raw_fd();
        loop {
            match self.recv_now(fd, buf) {
                Ok(Some(m)) => return Ok(Some(m.packet(buf))),
                // A datagram that is not ours was consumed: look at the next one.
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one datagram into `buf`: where its VRRP payload lies, and the IP
    /// header's fields that matter (`None`: not a packet of ours, consumed).
    fn recv_now(&self, fd: i32, buf: &mut RecvBuf) -> io::Result<Option<Meta>> {
        if self.ipv6 {
            return self.recv_now_v6(fd, buf);
        }
        // IPv4 raw sockets deliver the IP header: TTL and addresses come from it,
        // and a plain recv(2) does.
        let data = &mut buf.data;
        // SAFETY: writes at most `data.len()` bytes into `data`.
        let n = unsafe { libc::recv(fd, data.as_mut_ptr().cast(), data.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let data = &data[..(n as usize).min(data.len())];
        if data.len() < 20 {
            return Ok(None);
        }
        let ihl = usize::from(data[0] & 0x0f) * 4;
        if ihl < 20 || data.len() < ihl {
            return Ok(None);
        }
        Ok(Some(Meta {
            src: IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15])),
            dst: IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19])),
            ttl: data[8],
            payload: ihl..data.len(),
        }))
    }

    fn recv_now_v6(&self, fd: i32, buf: &mut RecvBuf) -> io::Result<Option<Meta>> {
        let (bytes, src, ttl, dst) = {
            let mut iov = [IoSliceMut::new(&mut buf.data)];
            let msg =
                recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut buf.cmsg.0[..]), MsgFlags::MSG_DONTWAIT)
                    .map_err(io::Error::from)?;
            let mut ttl = None;
            let mut dst = None;
            for c in msg.cmsgs().map_err(io::Error::from)? {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => ttl = Some(h),
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
                    }
                    _ => {}
                }
            }
            let src = msg
                .address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in6())
                .map(|a| a.ip());
            (msg.bytes, src, ttl, dst)
        };
        let (Some(src), Some(ttl), Some(dst)) = (src, ttl, dst) else {
            return Ok(None);
        };
        Ok(Some(Meta {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl: ttl.clamp(0, 255) as u8,
            payload: 0..bytes.min(buf.data.len()),
        }))
    }

    /// Sends `payload` from `src` (which the checksum was computed for) to `dst`.
    pub fn send(&self, payload: &[u8], src: IpAddr, dst: IpAddr) -> io::Result<()> {
        self.send_batch(&[Outgoing { payload, src, dst }]).map(|_| ())
    }

    /// Sends the adverts in `msgs` in one sendmmsg(2) call, up to [`SEND_BATCH`]:
    /// the adverts of the instances whose timers fell due together (255 instances
    /// at 10 ms are 25,500 adverts a second: issue 19). `Ok(n)`: the first `n` left
    /// (at least one unless `msgs` is empty); `Err`: the kernel refused the first,
    /// which the caller counts against its instance before sending the rest.
    pub fn send_batch(&self, msgs: &[Outgoing<'_>]) -> io::Result<usize> {
        // A few adverts a wake is the usual (staggered instances): their headers
        // zeroed, not 32 sets of them (5.5 KB of memset per wake, issue 19).
        if msgs.len() <= SMALL_BATCH {
            self.send_up_to::<SMALL_BATCH>(msgs)
        } else {
            self.send_up_to::<SEND_BATCH>(msgs)
        }
    }

    /// [`VrrpSocket::send_batch`] of at most `N` adverts.
    fn send_up_to<const N: usize>(&self, msgs: &[Outgoing<'_>]) -> io::Result<usize> {
        let mut n = msgs.len().min(N);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY (the four zeroed arrays): plain C structs and bytes, for which all
        // zeroes is a valid value.
        let mut names: [libc::sockaddr_in6; N] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; N] = unsafe { std::mem::zeroed() };
        // u64 words: aligned as a cmsghdr must be.
        let mut controls: [[u64; 8]; N] = [[0; 8]; N];
        let mut hdrs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        for (i, m) in msgs[..n].iter().enumerate() {
            let name = std::ptr::addr_of_mut!(names[i]).cast::<u8>();
            let (namelen, level, kind, info_len) = match (m.src, m.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    let to = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(d).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    // SAFETY: a sockaddr_in fits in the sockaddr_in6 it is written over.
                    unsafe { std::ptr::write_unaligned(name.cast::<libc::sockaddr_in>(), to) };
                    let info = libc::in_pktinfo {
                        ipi_ifindex: self.ifindex as i32,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from(s).to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    write_control(&mut controls[i], &info);
                    (
                        std::mem::size_of::<libc::sockaddr_in>(),
                        libc::IPPROTO_IP,
                        libc::IP_PKTINFO,
                        std::mem::size_of::<libc::in_pktinfo>(),
                    )
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    let scope = if d.is_multicast() || d.segments()[0] & 0xffc0 == 0xfe80 {
                        self.ifindex
                    } else {
                        0
                    };
                    names[i] = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr { s6_addr: d.octets() },
                        sin6_scope_id: scope,
                    };
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr { s6_addr: s.octets() },
                        ipi6_ifindex: self.ifindex,
                    };
                    write_control(&mut controls[i], &info);
                    (
                        std::mem::size_of::<libc::sockaddr_in6>(),
                        libc::IPPROTO_IPV6,
                        libc::IPV6_PKTINFO,
                        std::mem::size_of::<libc::in6_pktinfo>(),
                    )
                }
                _ if i == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "source and destination families differ",
                    ))
                }
                // Sent first, then refused on the next call as the first.
                _ => {
                    n = i;
                    break;
                }
            };
            iovs[i] = libc::iovec {
                iov_base: m.payload.as_ptr() as *mut libc::c_void,
                iov_len: m.payload.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = name.cast();
            h.msg_namelen = namelen as libc::socklen_t;
            h.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
            h.msg_iovlen = 1;
            h.msg_control = controls[i].as_mut_ptr().cast();
            // SAFETY: CMSG_* compute sizes and walk the buffer set just above,
            // which holds one control message of `info_len` bytes (write_control).
            unsafe {
                h.msg_controllen = libc::CMSG_SPACE(info_len as u32) as _;
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = level;
                (*c).cmsg_type = kind;
                (*c).cmsg_len = libc::CMSG_LEN(info_len as u32) as _;
            }
        }
        let fd = self.fd.get_ref().as_raw_fd();
        // SAFETY: `hdrs[..n]` point into the arrays above and into `msgs`, all alive
        // for the call; the kernel only reads them (and writes msg_len).
        let rc = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, libc::MSG_DONTWAIT) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

/// Adverts per sendmmsg(2) call at most.
pub const SEND_BATCH: usize = 32;

/// Up to this many adverts, [`VrrpSocket::send_batch`] prepares room for only so many.
const SMALL_BATCH: usize = 4;

/// One advert to send: its bytes, the source address its checksum was computed
/// for (also the packet's source) and the destination.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub payload: &'a [u8],
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Copies `info` where the first control message's data goes in `buf`.
fn write_control<T: Copy>(buf: &mut [u64; 8], info: &T) {
    // SAFETY: CMSG_LEN(0) is the aligned header size (16 bytes on Linux), and the
    // 64-byte buffer holds it and `T` (a pktinfo, at most 20 bytes); unaligned write.
    unsafe {
        let at = buf.as_mut_ptr().cast::<u8>().add(libc::CMSG_LEN(0) as usize);
        debug_assert!(libc::CMSG_LEN(std::mem::size_of::<T>() as u32) as usize <= std::mem::size_of_val(buf));
        std::ptr::write_unaligned(at.cast::<T>(), *info);
    }
}
