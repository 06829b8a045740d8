//! The VIP executor: adds and removes virtual addresses through rtnetlink and sends
//! the announcements, in the order the instances asked for them.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use rtnetlink::packet_route::AddressFamily;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::announce::Announcer;
use super::error::{errno, NetError};
use super::link::{Iface, Links};

#[derive(Debug)]
pub enum VipCommand {
    Add {
        instance: String,
        iface: Iface,
        vips: Vec<IpNet>,
        label: Option<String>,
    },
    Remove {
        instance: String,
        iface: Iface,
        vips: Vec<IpNet>,
    },
    Announce {
        instance: String,
        iface: Iface,
        vips: Vec<IpAddr>,
        count: u32,
    },
    /// Answered once every earlier command is done.
    Flush(oneshot::Sender<()>),
}

pub struct VipExecutor {
    links: Links,
    announcers: HashMap<u32, Announcer>,
}

impl VipExecutor {
    /// Spawns the executor; commands run one at a time, in order.
    pub fn spawn(links: Links) -> mpsc::UnboundedSender<VipCommand> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut exec = VipExecutor {
            links,
            announcers: HashMap::new(),
        };
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                exec.run(cmd).await;
            }
        });
        tx
    }

    async fn run(&mut self, cmd: VipCommand) {
        match cmd {
            VipCommand::Add {
                instance,
                iface,
                vips,
                label,
            } => {
                for vip in vips {
                    match self.add(&iface, vip, label.as_deref()).await {
                        Ok(true) => {
                            info!(instance, vip = %vip, iface = iface.name, "virtual address added")
                        }
                        Ok(false) => {
                            debug!(instance, vip = %vip, "virtual address already present")
                        }
                        Err(error) => warn!(instance, %error, "virtual address not added"),
                    }
                }
            }
            VipCommand::Remove {
                instance,
                iface,
                vips,
            } => {
                for vip in vips {
                    match self.remove(&iface, vip).await {
                        Ok(true) => {
                            info!(instance, vip = %vip, iface = iface.name, "virtual address removed")
                        }
                        Ok(false) => {}
                        Err(error) => warn!(instance, %error, "virtual address not removed"),
                    }
                }
            }
            VipCommand::Announce {
                instance,
                iface,
                vips,
                count,
            } => {
                let ann = self
                    .announcers
                    .entry(iface.index)
                    .or_insert_with(|| Announcer::new(iface.clone()));
                match ann.announce(&vips, count) {
                    Ok(n) => debug!(instance, packets = n, "addresses announced"),
                    Err(source) => {
                        let error = NetError::Socket {
                            iface: iface.name.clone(),
                            source,
                        };
                        warn!(instance, %error, "announcement failed");
                    }
                }
            }
            VipCommand::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Adds one VIP; `Ok(false)` when it was there already.
    async fn add(&self, iface: &Iface, vip: IpNet, label: Option<&str>) -> Result<bool, NetError> {
        let mut req = self
            .links
            .handle()
            .address()
            .add(iface.index, vip.addr(), vip.prefix_len());
        let msg = req.message_mut();
        if vip.addr().is_ipv6() {
            // No duplicate address detection: the address must work at once, and the
            // peer that held it a moment ago is no longer master (keepalived does the same).
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        } else if let Some(label) = label {
            msg.attributes.push(AddressAttribute::Label(label.to_string()));
        }
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(source) => Err(NetError::Address {
                op: "add",
                addr: vip.addr(),
                iface: iface.name.clone(),
                source: Box::new(source),
            }),
        }
    }

    /// Removes one VIP; `Ok(false)` when it was not there.
    async fn remove(&self, iface: &Iface, vip: IpNet) -> Result<bool, NetError> {
        let mut msg = AddressMessage::default();
        msg.header.family = if vip.addr().is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.prefix_len = vip.prefix_len();
        msg.header.index = iface.index;
        msg.attributes.push(AddressAttribute::Local(vip.addr()));
        if vip.addr().is_ipv6() {
            msg.attributes.push(AddressAttribute::Address(vip.addr()));
        }
        match self.links.handle().address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ESRCH)
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(NetError::Address {
                op: "remove",
                addr: vip.addr(),
                iface: iface.name.clone(),
                source: Box::new(source),
            }),
        }
    }
}
