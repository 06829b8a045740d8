//! The kernel's IPVS connection sync daemon (IPVS_CMD_NEW_DAEMON / DEL_DAEMON /
//! GET_DAEMON): a master daemon multicasts the director's connection entries on
//! the sync interface, a backup daemon installs what it hears, so the backup
//! director knows the established connections when it takes over.
//! What keepalived's `lvs_sync_daemon` and `ipvsadm --start-daemon` configure.

use std::net::IpAddr;

use super::constants::*;
use super::message::{IpvsCmd, IpvsMessage};
use super::nlas::{DaemonAttr, IpvsAttr};

/// Which daemon: the kernel runs at most one of each per network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncRole {
    Master,
    Backup,
}

impl SyncRole {
    pub fn state(self) -> u32 {
        match self {
            SyncRole::Master => IP_VS_STATE_MASTER,
            SyncRole::Backup => IP_VS_STATE_BACKUP,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

/// One sync daemon's settings; `None` is the kernel's default (max_len from the
/// interface's MTU, group 224.0.0.81, port 8848, TTL 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDaemon {
    pub role: SyncRole,
    pub interface: String,
    pub sync_id: u8,
    pub max_len: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

impl SyncDaemon {
    /// The attributes of NEW_DAEMON, in the order ipvsadm sends them.
    pub fn attrs(&self) -> Vec<DaemonAttr> {
        let mut a = vec![
            DaemonAttr::State(self.role.state()),
            DaemonAttr::McastIfn(self.interface.clone()),
            DaemonAttr::SyncId(u32::from(self.sync_id)),
        ];
        if let Some(v) = self.max_len {
            a.push(DaemonAttr::SyncMaxLen(v));
        }
        match self.group {
            Some(IpAddr::V4(g)) => a.push(DaemonAttr::McastGroup(g.octets())),
            Some(IpAddr::V6(g)) => a.push(DaemonAttr::McastGroup6(g.octets())),
            None => {}
        }
        if let Some(v) = self.port {
            a.push(DaemonAttr::McastPort(v));
        }
        if let Some(v) = self.ttl {
            a.push(DaemonAttr::McastTtl(v));
        }
        a
    }

    /// A daemon from the kernel's GET_DAEMON answer (every value it reports is
    /// kept, defaults included).
    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<SyncDaemon, String> {
        let mut role = None;
        let mut d = SyncDaemon {
            role: SyncRole::Master,
            interface: String::new(),
            sync_id: 0,
            max_len: None,
            group: None,
            port: None,
            ttl: None,
        };
        for a in attrs {
            match a {
                DaemonAttr::State(IP_VS_STATE_MASTER) => role = Some(SyncRole::Master),
                DaemonAttr::State(IP_VS_STATE_BACKUP) => role = Some(SyncRole::Backup),
                DaemonAttr::State(s) => {
                    return Err(format!(
                        "IPVS_DAEMON_ATTR_STATE {s}: not master (1) or backup (2)"
                    ))
                }
                DaemonAttr::McastIfn(s) => d.interface = s.clone(),
                DaemonAttr::SyncId(v) => d.sync_id = (*v & 0xff) as u8,
                DaemonAttr::SyncMaxLen(v) => d.max_len = Some(*v),
                DaemonAttr::McastGroup(g) => d.group = Some(IpAddr::from(*g)),
                DaemonAttr::McastGroup6(g) => d.group = Some(IpAddr::from(*g)),
                DaemonAttr::McastPort(v) => d.port = Some(*v),
                DaemonAttr::McastTtl(v) => d.ttl = Some(*v),
                DaemonAttr::Other(_) => {}
            }
        }
        d.role = role.ok_or("no IPVS_DAEMON_ATTR_STATE")?;
        Ok(d)
    }
}

/// IPVS_CMD_NEW_DAEMON: starts `d`.
pub fn new_daemon(d: &SyncDaemon) -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::NewDaemon, vec![IpvsAttr::Daemon(d.attrs())])
}

/// IPVS_CMD_DEL_DAEMON: stops the daemon of `role` (the kernel reads the state only).
pub fn del_daemon(role: SyncRole) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::DelDaemon,
        vec![IpvsAttr::Daemon(vec![DaemonAttr::State(role.state())])],
    )
}

/// IPVS_CMD_GET_DAEMON (a dump request): one NEW_DAEMON reply per running daemon.
pub fn get_daemon() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetDaemon, vec![])
}

/// The daemons in the kernel's replies to [`get_daemon`].
pub fn daemons(replies: &[IpvsMessage]) -> Result<Vec<SyncDaemon>, String> {
    let mut out = Vec::new();
    for m in replies {
        for a in &m.attrs {
            if let IpvsAttr::Daemon(d) = a {
                out.push(SyncDaemon::from_attrs(d)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, NlaBuffer, Parseable};

    #[test]
    fn every_daemon_attribute_roundtrips() {
        let d = SyncDaemon {
            role: SyncRole::Backup,
            interface: "eth1".into(),
            sync_id: 7,
            max_len: Some(1400),
            group: Some("ff02::1:3".parse().unwrap()),
            port: Some(8850),
            ttl: Some(3),
        };
        for a in d.attrs() {
            let mut buf = vec![0u8; a.buffer_len()];
            a.emit(&mut buf);
            let back = DaemonAttr::parse(&NlaBuffer::new(&buf[..])).unwrap();
            assert_eq!(back, a);
        }
        assert_eq!(SyncDaemon::from_attrs(&d.attrs()).unwrap(), d);
        let v4 = SyncDaemon {
            group: Some("239.1.2.3".parse().unwrap()),
            ..d
        };
        assert_eq!(SyncDaemon::from_attrs(&v4.attrs()).unwrap(), v4);
    }

    #[test]
    fn bad_daemon_attributes_are_errors() {
        // An interface name longer than IP_VS_IFNAME_MAXLEN, a group of 3 bytes.
        let mut long = [0u8; 4 + 20];
        long[..2].copy_from_slice(&24u16.to_ne_bytes());
        long[2..4].copy_from_slice(&IPVS_DAEMON_ATTR_MCAST_IFN.to_ne_bytes());
        long[4..23].fill(b'x');
        assert!(DaemonAttr::parse(&NlaBuffer::new(&long[..])).is_err());
        let mut short = [0u8; 8];
        short[..2].copy_from_slice(&7u16.to_ne_bytes());
        short[2..4].copy_from_slice(&IPVS_DAEMON_ATTR_MCAST_GROUP.to_ne_bytes());
        assert!(DaemonAttr::parse(&NlaBuffer::new(&short[..7])).is_err());
        assert!(SyncDaemon::from_attrs(&[DaemonAttr::State(9)]).is_err());
        assert!(SyncDaemon::from_attrs(&[DaemonAttr::SyncId(1)]).is_err());
    }
}
