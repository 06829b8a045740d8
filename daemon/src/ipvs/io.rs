//! The thin executor: one generic netlink connection, dumps into a `Table`, and
//! one request per planned `Op`.

use futures::StreamExt;
use genetlink::GenetlinkHandle;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;
use tracing::debug;

use super::error::IpvsError;
use super::message::{IpvsCmd, IpvsMessage};
use super::model::{DestCounters, DestSpec, ServiceSpec, Stats, Table};
use super::nlas::IpvsAttr;
use super::plan::Op;

/// Kernel counters beside the table (for status and metrics).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub table: Table,
    pub service_stats: std::collections::BTreeMap<super::model::ServiceKey, Stats>,
    pub dest_counters:
        std::collections::BTreeMap<(super::model::ServiceKey, std::net::SocketAddr), DestCounters>,
}

pub struct Ipvs {
    handle: GenetlinkHandle,
}

#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Ipvs {
    /// Opens the connection and resolves the family, so that a kernel without IPVS
    /// is reported once, clearly, before anything else.
    pub async fn connect() -> Result<Ipvs, IpvsError> {
        let (conn, handle, _) = genetlink::new_connection().map_err(IpvsError::Socket)?;
        tokio::spawn(conn);
        let ipvs = Ipvs { handle };
        ipvs.handle
            .resolve_family::<IpvsMessage>()
            .await
            .map_err(|_| IpvsError::Unavailable)?;
        Ok(ipvs)
    }

    async fn request(
        &mut self,
        msg: IpvsMessage,
        flags: u16,
        what: impl Fn() -> String,
    ) -> Result<Vec<IpvsMessage>, IpvsError> {
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(msg));
        nl.header.flags = flags;
        let mut stream = self.handle.request(nl).await.map_err(|e| IpvsError::Protocol {
            what: what(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        while let Some(reply) = stream.next().await {
            let reply = reply.map_err(|e| IpvsError::Protocol {
                what: what(),
                message: e.to_string(),
            })?;
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m.payload),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(IpvsError::Kernel {
                        what: what(),
                        source: e.to_io(),
                    })
                }
                _ => {}
            }
        }
        Ok(out)
    }

    pub async fn info(&mut self) -> Result<Info, IpvsError> {
        let replies = self
            .request(IpvsMessage::new(IpvsCmd::GetInfo, vec![]), NLM_F_REQUEST, || {
                "IPVS info".into()
            })
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
        self.request(op.message(), NLM_F_REQUEST | NLM_F_ACK, || op.to_string())
            .await?;
        Ok(())
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
