//! Attributes of the IPVS family, one enum per nesting level, each with an `Other`
//! catch-all so a newer kernel's attribute never fails a dump.
//!
//! Wire shapes follow net/netfilter/ipvs/ip_vs_ctl.c: addresses are 16 bytes
//! (`union nf_inet_addr`, IPv4 in the first 4), ports are big-endian, the netmask is
//! kept raw (IPv4: mask bytes in network order; IPv6: prefix length), flags are
//! `struct ip_vs_flags { flags, mask }`. Nested attributes are emitted without
//! NLA_F_NESTED, as the kernel's own dumps are, unless the message asks for it
//! (`IpvsMessage::nested_flag`: ipvsadm on libnl 3.7 sets it; the kernel accepts
//! both).

use netlink_packet_core::{
    emit_u16, emit_u16_be, emit_u32, emit_u64, parse_string, parse_u16, parse_u16_be, parse_u32, parse_u64,
    parse_u8, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable,
};

use super::constants::*;

/// 16 bytes, as the kernel's `union nf_inet_addr`.
pub type InetAddr = [u8; 16];

fn parse_inet_addr(payload: &[u8]) -> Result<InetAddr, DecodeError> {
    if payload.is_empty() || payload.len() > 16 {
        return Err(DecodeError::from(format!("address of {} bytes", payload.len())));
    }
    let mut a = [0u8; 16];
    a[..payload.len()].copy_from_slice(payload);
    Ok(a)
}

fn emit_string(buf: &mut [u8], s: &str) {
    buf[..s.len()].copy_from_slice(s.as_bytes());
    buf[s.len()] = 0;
}

fn parse_nested<T, F>(payload: &[u8], what: &'static str, f: F) -> Result<Vec<T>, DecodeError>
where
    F: Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
{
    // Sized up front: a dump holds ~10,000 of these (one allocation each, not four).
    let mut out = Vec::with_capacity(NlasIterator::new(payload).count());
    for nla in NlasIterator::new(payload) {
        out.push(nla.and_then(|nla| f(&nla)).context(what)?);
    }
    Ok(out)
}

/// Statistics (IPVS_STATS_ATTR_*). In `STATS` the counters of packets and rates are
/// 32 bits and bytes 64; in `STATS64` all are 64 bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsAttr {
    Conns(u64),
    InPkts(u64),
    OutPkts(u64),
    InBytes(u64),
    OutBytes(u64),
    Cps(u64),
    InPps(u64),
    OutPps(u64),
    InBps(u64),
    OutBps(u64),
    /// Alignment padding the kernel emits before 64-bit values.
    Pad(Vec<u8>),
    Other(DefaultNla),
}

impl StatsAttr {
    fn kind(&self) -> u16 {
        match self {
            StatsAttr::Conns(_) => IPVS_STATS_ATTR_CONNS,
            StatsAttr::InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            StatsAttr::OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            StatsAttr::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            StatsAttr::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            StatsAttr::Cps(_) => IPVS_STATS_ATTR_CPS,
            StatsAttr::InPps(_) => IPVS_STATS_ATTR_INPPS,
            StatsAttr::OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            StatsAttr::InBps(_) => IPVS_STATS_ATTR_INBPS,
            StatsAttr::OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            StatsAttr::Pad(_) => IPVS_STATS_ATTR_PAD,
            StatsAttr::Other(n) => n.kind(),
        }
    }

    fn value(&self) -> Option<u64> {
        match self {
            StatsAttr::Conns(v)
            | StatsAttr::InPkts(v)
            | StatsAttr::OutPkts(v)
            | StatsAttr::InBytes(v)
            | StatsAttr::OutBytes(v)
            | StatsAttr::Cps(v)
            | StatsAttr::InPps(v)
            | StatsAttr::OutPps(v)
            | StatsAttr::InBps(v)
            | StatsAttr::OutBps(v) => Some(*v),
            _ => None,
        }
    }

    fn is_bytes(&self) -> bool {
        matches!(self, StatsAttr::InBytes(_) | StatsAttr::OutBytes(_))
    }

    fn parse(buf: &NlaBuffer<&[u8]>, wide: bool) -> Result<Self, DecodeError> {
        let p = buf.value();
        let kind = buf.kind();
        let num = |bytes64: bool| -> Result<u64, DecodeError> {
            if wide || bytes64 {
                parse_u64(p)
            } else {
                parse_u32(p).map(u64::from)
            }
        };
        Ok(match kind {
            IPVS_STATS_ATTR_CONNS => StatsAttr::Conns(num(false)?),
            IPVS_STATS_ATTR_INPKTS => StatsAttr::InPkts(num(false)?),
            IPVS_STATS_ATTR_OUTPKTS => StatsAttr::OutPkts(num(false)?),
            IPVS_STATS_ATTR_INBYTES => StatsAttr::InBytes(num(true)?),
            IPVS_STATS_ATTR_OUTBYTES => StatsAttr::OutBytes(num(true)?),
            IPVS_STATS_ATTR_CPS => StatsAttr::Cps(num(false)?),
            IPVS_STATS_ATTR_INPPS => StatsAttr::InPps(num(false)?),
            IPVS_STATS_ATTR_OUTPPS => StatsAttr::OutPps(num(false)?),
            IPVS_STATS_ATTR_INBPS => StatsAttr::InBps(num(false)?),
            IPVS_STATS_ATTR_OUTBPS => StatsAttr::OutBps(num(false)?),
            IPVS_STATS_ATTR_PAD => StatsAttr::Pad(p.to_vec()),
            _ => StatsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// A statistics block, emitted with the width of its container.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StatsNla<'a> {
    attr: &'a StatsAttr,
    wide: bool,
}

impl Nla for StatsNla<'_> {
    fn value_len(&self) -> usize {
        match self.attr {
            StatsAttr::Pad(v) => v.len(),
            StatsAttr::Other(n) => n.value_len(),
            a if self.wide || a.is_bytes() => 8,
            _ => 4,
        }
    }
    fn kind(&self) -> u16 {
        self.attr.kind()
    }
    fn emit_value(&self, buf: &mut [u8]) {
        match (self.attr, self.attr.value()) {
            (StatsAttr::Pad(v), _) => buf.copy_from_slice(v),
            (StatsAttr::Other(n), _) => n.emit_value(buf),
            (a, Some(v)) if self.wide || a.is_bytes() => emit_u64(buf, v).expect("sized by value_len"),
            (_, Some(v)) => emit_u32(buf, v as u32).expect("sized by value_len"),
            (_, None) => {}
        }
    }
}

fn stats_len(attrs: &[StatsAttr], wide: bool) -> usize {
    attrs
        .iter()
        .map(|attr| StatsNla { attr, wide }.buffer_len())
        .sum()
}

fn emit_stats(attrs: &[StatsAttr], wide: bool, buf: &mut [u8]) {
    let mut off = 0;
    for attr in attrs {
        let n = StatsNla { attr, wide };
        let len = n.buffer_len();
        n.emit(&mut buf[off..off + len]);
        off += len;
    }
}

/// IPVS_SVC_ATTR_*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceAttr {
    AddressFamily(u16),
    Protocol(u16),
    Address(InetAddr),
    Port(u16),
    Fwmark(u32),
    SchedName(String),
    /// `struct ip_vs_flags`: the flags, and which of them to change.
    Flags {
        flags: u32,
        mask: u32,
    },
    /// Persistence timeout, seconds.
    Timeout(u32),
    /// Raw: IPv4 mask bytes in network order, or IPv6 prefix length.
    Netmask(u32),
    Stats(Vec<StatsAttr>),
    PeName(String),
    Stats64(Vec<StatsAttr>),
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            ServiceAttr::AddressFamily(_) | ServiceAttr::Protocol(_) | ServiceAttr::Port(_) => 2,
            ServiceAttr::Address(_) => 16,
            ServiceAttr::Fwmark(_) | ServiceAttr::Timeout(_) | ServiceAttr::Netmask(_) => 4,
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => s.len() + 1,
            ServiceAttr::Flags { .. } => 8,
            ServiceAttr::Stats(a) => stats_len(a, false),
            ServiceAttr::Stats64(a) => stats_len(a, true),
            ServiceAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            ServiceAttr::AddressFamily(_) => IPVS_SVC_ATTR_AF,
            ServiceAttr::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            ServiceAttr::Address(_) => IPVS_SVC_ATTR_ADDR,
            ServiceAttr::Port(_) => IPVS_SVC_ATTR_PORT,
            ServiceAttr::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            ServiceAttr::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            ServiceAttr::Flags { .. } => IPVS_SVC_ATTR_FLAGS,
            ServiceAttr::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            ServiceAttr::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            ServiceAttr::Stats(_) => IPVS_SVC_ATTR_STATS,
            ServiceAttr::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            ServiceAttr::Stats64(_) => IPVS_SVC_ATTR_STATS64,
            ServiceAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            ServiceAttr::AddressFamily(v) | ServiceAttr::Protocol(v) => emit_u16(buf, *v).expect("2 bytes"),
            ServiceAttr::Port(v) => emit_u16_be(buf, *v).expect("2 bytes"),
            ServiceAttr::Address(a) => buf.copy_from_slice(a),
            ServiceAttr::Fwmark(v) | ServiceAttr::Timeout(v) | ServiceAttr::Netmask(v) => {
                emit_u32(buf, *v).expect("4 bytes")
            }
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => emit_string(buf, s),
            ServiceAttr::Flags { flags, mask } => {
                emit_u32(&mut buf[..4], *flags).expect("4 bytes");
                emit_u32(&mut buf[4..8], *mask).expect("4 bytes");
            }
            ServiceAttr::Stats(a) => emit_stats(a, false, buf),
            ServiceAttr::Stats64(a) => emit_stats(a, true, buf),
            ServiceAttr::Other(n) => n.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => ServiceAttr::AddressFamily(parse_u16(p).context("IPVS_SVC_ATTR_AF")?),
            IPVS_SVC_ATTR_PROTOCOL => ServiceAttr::Protocol(parse_u16(p).context("IPVS_SVC_ATTR_PROTOCOL")?),
            IPVS_SVC_ATTR_ADDR => ServiceAttr::Address(parse_inet_addr(p).context("IPVS_SVC_ATTR_ADDR")?),
            IPVS_SVC_ATTR_PORT => ServiceAttr::Port(parse_u16_be(p).context("IPVS_SVC_ATTR_PORT")?),
            IPVS_SVC_ATTR_FWMARK => ServiceAttr::Fwmark(parse_u32(p).context("IPVS_SVC_ATTR_FWMARK")?),
            IPVS_SVC_ATTR_SCHED_NAME => {
                ServiceAttr::SchedName(parse_string(p).context("IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                if p.len() != 8 {
                    return Err(DecodeError::from("IPVS_SVC_ATTR_FLAGS: expected 8 bytes"));
                }
                ServiceAttr::Flags {
                    flags: parse_u32(&p[..4])?,
                    mask: parse_u32(&p[4..])?,
                }
            }
            IPVS_SVC_ATTR_TIMEOUT => ServiceAttr::Timeout(parse_u32(p).context("IPVS_SVC_ATTR_TIMEOUT")?),
            IPVS_SVC_ATTR_NETMASK => ServiceAttr::Netmask(parse_u32(p).context("IPVS_SVC_ATTR_NETMASK")?),
            IPVS_SVC_ATTR_STATS => ServiceAttr::Stats(parse_nested(p, "IPVS_SVC_ATTR_STATS", |n| {
                StatsAttr::parse(n, false)
            })?),
            IPVS_SVC_ATTR_PE_NAME => ServiceAttr::PeName(parse_string(p).context("IPVS_SVC_ATTR_PE_NAME")?),
            IPVS_SVC_ATTR_STATS64 => ServiceAttr::Stats64(parse_nested(p, "IPVS_SVC_ATTR_STATS64", |n| {
                StatsAttr::parse(n, true)
            })?),
            _ => ServiceAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// IPVS_DEST_ATTR_*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAttr {
    Address(InetAddr),
    Port(u16),
    /// IP_VS_CONN_F_* forwarding method.
    FwdMethod(u32),
    Weight(u32),
    UpperThreshold(u32),
    LowerThreshold(u32),
    ActiveConns(u32),
    InactiveConns(u32),
    PersistentConns(u32),
    Stats(Vec<StatsAttr>),
    AddressFamily(u16),
    Stats64(Vec<StatsAttr>),
    TunnelType(u8),
    TunnelPort(u16),
    TunnelFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::Address(_) => 16,
            DestAttr::Port(_)
            | DestAttr::AddressFamily(_)
            | DestAttr::TunnelPort(_)
            | DestAttr::TunnelFlags(_) => 2,
            DestAttr::TunnelType(_) => 1,
            DestAttr::FwdMethod(_)
            | DestAttr::Weight(_)
            | DestAttr::UpperThreshold(_)
            | DestAttr::LowerThreshold(_)
            | DestAttr::ActiveConns(_)
            | DestAttr::InactiveConns(_)
            | DestAttr::PersistentConns(_) => 4,
            DestAttr::Stats(a) => stats_len(a, false),
            DestAttr::Stats64(a) => stats_len(a, true),
            DestAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DestAttr::Address(_) => IPVS_DEST_ATTR_ADDR,
            DestAttr::Port(_) => IPVS_DEST_ATTR_PORT,
            DestAttr::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            DestAttr::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            DestAttr::UpperThreshold(_) => IPVS_DEST_ATTR_U_THRESH,
            DestAttr::LowerThreshold(_) => IPVS_DEST_ATTR_L_THRESH,
            DestAttr::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            DestAttr::InactiveConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            DestAttr::PersistentConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            DestAttr::Stats(_) => IPVS_DEST_ATTR_STATS,
            DestAttr::AddressFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            DestAttr::Stats64(_) => IPVS_DEST_ATTR_STATS64,
            DestAttr::TunnelType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            DestAttr::TunnelPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            DestAttr::TunnelFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            DestAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            DestAttr::Address(a) => buf.copy_from_slice(a),
            DestAttr::Port(v) | DestAttr::TunnelPort(v) => emit_u16_be(buf, *v).expect("2 bytes"),
            DestAttr::AddressFamily(v) | DestAttr::TunnelFlags(v) => emit_u16(buf, *v).expect("2 bytes"),
            DestAttr::TunnelType(v) => buf[0] = *v,
            DestAttr::FwdMethod(v)
            | DestAttr::Weight(v)
            | DestAttr::UpperThreshold(v)
            | DestAttr::LowerThreshold(v)
            | DestAttr::ActiveConns(v)
            | DestAttr::InactiveConns(v)
            | DestAttr::PersistentConns(v) => emit_u32(buf, *v).expect("4 bytes"),
            DestAttr::Stats(a) => emit_stats(a, false, buf),
            DestAttr::Stats64(a) => emit_stats(a, true, buf),
            DestAttr::Other(n) => n.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => DestAttr::Address(parse_inet_addr(p).context("IPVS_DEST_ATTR_ADDR")?),
            IPVS_DEST_ATTR_PORT => DestAttr::Port(parse_u16_be(p).context("IPVS_DEST_ATTR_PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => {
                DestAttr::FwdMethod(parse_u32(p).context("IPVS_DEST_ATTR_FWD_METHOD")?)
            }
            IPVS_DEST_ATTR_WEIGHT => DestAttr::Weight(parse_u32(p).context("IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => {
                DestAttr::UpperThreshold(parse_u32(p).context("IPVS_DEST_ATTR_U_THRESH")?)
            }
            IPVS_DEST_ATTR_L_THRESH => {
                DestAttr::LowerThreshold(parse_u32(p).context("IPVS_DEST_ATTR_L_THRESH")?)
            }
            IPVS_DEST_ATTR_ACTIVE_CONNS => {
                DestAttr::ActiveConns(parse_u32(p).context("IPVS_DEST_ATTR_ACTIVE_CONNS")?)
            }
            IPVS_DEST_ATTR_INACT_CONNS => {
                DestAttr::InactiveConns(parse_u32(p).context("IPVS_DEST_ATTR_INACT_CONNS")?)
            }
            IPVS_DEST_ATTR_PERSIST_CONNS => {
                DestAttr::PersistentConns(parse_u32(p).context("IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            IPVS_DEST_ATTR_STATS => DestAttr::Stats(parse_nested(p, "IPVS_DEST_ATTR_STATS", |n| {
                StatsAttr::parse(n, false)
            })?),
            IPVS_DEST_ATTR_ADDR_FAMILY => {
                DestAttr::AddressFamily(parse_u16(p).context("IPVS_DEST_ATTR_ADDR_FAMILY")?)
            }
            IPVS_DEST_ATTR_STATS64 => DestAttr::Stats64(parse_nested(p, "IPVS_DEST_ATTR_STATS64", |n| {
                StatsAttr::parse(n, true)
            })?),
            IPVS_DEST_ATTR_TUN_TYPE => DestAttr::TunnelType(parse_u8(p).context("IPVS_DEST_ATTR_TUN_TYPE")?),
            IPVS_DEST_ATTR_TUN_PORT => {
                DestAttr::TunnelPort(parse_u16_be(p).context("IPVS_DEST_ATTR_TUN_PORT")?)
            }
            IPVS_DEST_ATTR_TUN_FLAGS => {
                DestAttr::TunnelFlags(parse_u16(p).context("IPVS_DEST_ATTR_TUN_FLAGS")?)
            }
            _ => DestAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// Sync daemon attributes (IPVS_DAEMON_ATTR_*), as net/netfilter/ipvs/ip_vs_ctl.c
/// reads them (`ip_vs_genl_new_daemon`) and answers GET_DAEMON
/// (`ip_vs_genl_fill_daemon`, one IPVS_CMD_NEW_DAEMON message per running daemon):
///
/// ```text
/// STATE        u32   IP_VS_STATE_MASTER | IP_VS_STATE_BACKUP
/// MCAST_IFN    NUL-terminated interface name (< IP_VS_IFNAME_MAXLEN)
/// SYNC_ID      u32   (the kernel keeps the low 8 bits)
/// SYNC_MAXLEN  u16   UDP payload size
/// MCAST_GROUP  4 bytes, network order (nla_put_in_addr)
/// MCAST_GROUP6 16 bytes
/// MCAST_PORT   u16 in host order (nla_get_u16; the kernel adds htons itself)
/// MCAST_TTL    u8
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonAttr {
    State(u32),
    McastIfn(String),
    SyncId(u32),
    SyncMaxLen(u16),
    McastGroup([u8; 4]),
    McastGroup6([u8; 16]),
    McastPort(u16),
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        match self {
            DaemonAttr::State(_) | DaemonAttr::SyncId(_) | DaemonAttr::McastGroup(_) => 4,
            DaemonAttr::McastIfn(s) => s.len() + 1,
            DaemonAttr::SyncMaxLen(_) | DaemonAttr::McastPort(_) => 2,
            DaemonAttr::McastGroup6(_) => 16,
            DaemonAttr::McastTtl(_) => 1,
            DaemonAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DaemonAttr::State(_) => IPVS_DAEMON_ATTR_STATE,
            DaemonAttr::McastIfn(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            DaemonAttr::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            DaemonAttr::SyncMaxLen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            DaemonAttr::McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            DaemonAttr::McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            DaemonAttr::McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            DaemonAttr::McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            DaemonAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            DaemonAttr::State(v) | DaemonAttr::SyncId(v) => emit_u32(buf, *v).expect("4 bytes"),
            DaemonAttr::McastIfn(s) => emit_string(buf, s),
            DaemonAttr::SyncMaxLen(v) | DaemonAttr::McastPort(v) => emit_u16(buf, *v).expect("2 bytes"),
            DaemonAttr::McastGroup(a) => buf[..4].copy_from_slice(a),
            DaemonAttr::McastGroup6(a) => buf[..16].copy_from_slice(a),
            DaemonAttr::McastTtl(v) => buf[0] = *v,
            DaemonAttr::Other(n) => n.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        let fixed = |n: usize, what: &str| -> Result<(), DecodeError> {
            if p.len() == n {
                Ok(())
            } else {
                Err(DecodeError::from(format!(
                    "{what}: {} bytes, expected {n}",
                    p.len()
                )))
            }
        };
        Ok(match buf.kind() {
            IPVS_DAEMON_ATTR_STATE => DaemonAttr::State(parse_u32(p).context("IPVS_DAEMON_ATTR_STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                if p.len() > IP_VS_IFNAME_MAXLEN {
                    return Err(DecodeError::from(format!(
                        "IPVS_DAEMON_ATTR_MCAST_IFN: {} bytes, at most {IP_VS_IFNAME_MAXLEN}",
                        p.len()
                    )));
                }
                DaemonAttr::McastIfn(parse_string(p).context("IPVS_DAEMON_ATTR_MCAST_IFN")?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => DaemonAttr::SyncId(parse_u32(p).context("IPVS_DAEMON_ATTR_SYNC_ID")?),
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                DaemonAttr::SyncMaxLen(parse_u16(p).context("IPVS_DAEMON_ATTR_SYNC_MAXLEN")?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => {
                fixed(4, "IPVS_DAEMON_ATTR_MCAST_GROUP")?;
                DaemonAttr::McastGroup([p[0], p[1], p[2], p[3]])
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                fixed(16, "IPVS_DAEMON_ATTR_MCAST_GROUP6")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(p);
                DaemonAttr::McastGroup6(a)
            }
            IPVS_DAEMON_ATTR_MCAST_PORT => {
                DaemonAttr::McastPort(parse_u16(p).context("IPVS_DAEMON_ATTR_MCAST_PORT")?)
            }
            IPVS_DAEMON_ATTR_MCAST_TTL => {
                DaemonAttr::McastTtl(parse_u8(p).context("IPVS_DAEMON_ATTR_MCAST_TTL")?)
            }
            _ => DaemonAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// First-level attributes. Their numbers depend on the command: the reply to
/// GET_INFO (command SET_INFO) reuses 1 and 2 for IPVS_INFO_ATTR_*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpvsAttr {
    Service(Vec<ServiceAttr>),
    Dest(Vec<DestAttr>),
    /// Sync daemon attributes (NEW_DAEMON, DEL_DAEMON, GET_DAEMON's replies).
    Daemon(Vec<DaemonAttr>),
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    InfoVersion(u32),
    InfoConnTabSize(u32),
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            IpvsAttr::Service(a) => a.as_slice().buffer_len(),
            IpvsAttr::Dest(a) => a.as_slice().buffer_len(),
            IpvsAttr::Daemon(a) => a.as_slice().buffer_len(),
            IpvsAttr::TimeoutTcp(_)
            | IpvsAttr::TimeoutTcpFin(_)
            | IpvsAttr::TimeoutUdp(_)
            | IpvsAttr::InfoVersion(_)
            | IpvsAttr::InfoConnTabSize(_) => 4,
            IpvsAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            IpvsAttr::Service(_) => IPVS_CMD_ATTR_SERVICE,
            IpvsAttr::Dest(_) => IPVS_CMD_ATTR_DEST,
            IpvsAttr::Daemon(_) => IPVS_CMD_ATTR_DAEMON,
            IpvsAttr::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            IpvsAttr::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            IpvsAttr::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            IpvsAttr::InfoVersion(_) => IPVS_INFO_ATTR_VERSION,
            IpvsAttr::InfoConnTabSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            IpvsAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            IpvsAttr::Service(a) => a.as_slice().emit(buf),
            IpvsAttr::Dest(a) => a.as_slice().emit(buf),
            IpvsAttr::Daemon(a) => a.as_slice().emit(buf),
            IpvsAttr::TimeoutTcp(v)
            | IpvsAttr::TimeoutTcpFin(v)
            | IpvsAttr::TimeoutUdp(v)
            | IpvsAttr::InfoVersion(v)
            | IpvsAttr::InfoConnTabSize(v) => emit_u32(buf, *v).expect("4 bytes"),
            IpvsAttr::Other(n) => n.emit_value(buf),
        }
    }
}

impl IpvsAttr {
    /// Parses a first-level attribute of a message with command `cmd`.
    pub fn parse_for(buf: &NlaBuffer<&[u8]>, cmd: u8) -> Result<Self, DecodeError> {
        let p = buf.value();
        if cmd == IPVS_CMD_SET_INFO || cmd == IPVS_CMD_GET_INFO {
            return Ok(match buf.kind() {
                IPVS_INFO_ATTR_VERSION => {
                    IpvsAttr::InfoVersion(parse_u32(p).context("IPVS_INFO_ATTR_VERSION")?)
                }
                IPVS_INFO_ATTR_CONN_TAB_SIZE => {
                    IpvsAttr::InfoConnTabSize(parse_u32(p).context("IPVS_INFO_ATTR_CONN_TAB_SIZE")?)
                }
                _ => IpvsAttr::Other(DefaultNla::parse(buf)?),
            });
        }
        Ok(match buf.kind() {
            IPVS_CMD_ATTR_SERVICE => IpvsAttr::Service(parse_nested(p, "IPVS_CMD_ATTR_SERVICE", |n| {
                ServiceAttr::parse(n)
            })?),
            IPVS_CMD_ATTR_DEST => {
                IpvsAttr::Dest(parse_nested(p, "IPVS_CMD_ATTR_DEST", |n| DestAttr::parse(n))?)
            }
            IPVS_CMD_ATTR_DAEMON => {
                IpvsAttr::Daemon(parse_nested(p, "IPVS_CMD_ATTR_DAEMON", |n| DaemonAttr::parse(n))?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP => {
                IpvsAttr::TimeoutTcp(parse_u32(p).context("IPVS_CMD_ATTR_TIMEOUT_TCP")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => {
                IpvsAttr::TimeoutTcpFin(parse_u32(p).context("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_UDP => {
                IpvsAttr::TimeoutUdp(parse_u32(p).context("IPVS_CMD_ATTR_TIMEOUT_UDP")?)
            }
            _ => IpvsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
