//! Split-brain detection. Two signals, per instance, while this node is master:
//! - in band: adverts from another master keep arriving for over a second (a
//!   master that hears a better one yields at once; one that keeps hearing a
//!   worse one means that one does not hear us: a one-way path);
//! - out of band (`split_brain_probe`): an ARP probe (IPv4, arp.rs) or a Neighbor
//!   Solicitation (IPv6, ndp.rs) for the VIP is answered from another MAC: another
//!   node holds the VIP too (VRRP blocked both ways).
//!
//! Raised: a warning, the `split_brain` field of the instance in the status, and
//! the notifiers (webhooks, e-mail). Cleared once the signals stop; a node still
//! master then sends fresh gratuitous ARPs so that neighbours that followed the
//! other node come back.

pub mod arp;
pub mod ndp;

/// Reads the probe's socket (non-blocking) for `wait` at most, one datagram at a
/// time into a fixed buffer, until `holder` names a MAC other than ours.
async fn first_foreign_holder(
    s: socket2::Socket,
    wait: Duration,
    holder: impl Fn(&[u8]) -> Option<[u8; 6]>,
) -> std::io::Result<Option<[u8; 6]>> {
    use std::io::Read;
    // SAFETY: the AsyncFd owns the socket, which stays open as long as it does.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(s) }.map_err(std::io::Error::from)?;
    let listen = async {
        let mut buf = [0u8; 256];
        loop {
            let mut g = fd.readable().await?;
            match g.try_io(|s| s.get_ref().read(&mut buf)) {
                Ok(Ok(n)) => {
                    if let Some(mac) = holder(&buf[..n]) {
                        return Ok(Some(mac));
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
    };
    tokio::time::timeout(wait, listen).await.unwrap_or(Ok(None))
}

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Config;
use crate::net::{Links, VipCommand, VipSender};
use crate::shared::EngineSnapshot;
use crate::vrrp::State;

/// The `split_brain` field of an instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SplitBrainStatus {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_unix_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many times it was raised since start.
    pub detected: u64,
}

pub type Snapshot = BTreeMap<String, SplitBrainStatus>;

pub struct MonitorInputs {
    pub config: watch::Receiver<Arc<Config>>,
    pub engine: watch::Receiver<Arc<EngineSnapshot>>,
    pub links: Links,
    pub vips: VipSender,
    pub notify: crate::notify::Sender,
    pub status: watch::Sender<Arc<Snapshot>>,
}

/// In-band: adverts heard as master for this long mean two masters.
const INBAND_PERSIST: Duration = Duration::from_secs(1);
/// ...and a second without one ends it.
const INBAND_QUIET: Duration = Duration::from_millis(1500);
const STEP: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Track {
    master: bool,
    rx: u64,
    first_heard: Option<Instant>,
    last_heard: Option<Instant>,
    foreign: Option<[u8; 6]>,
    next_probe: Option<Instant>,
    status: SplitBrainStatus,
}

impl Track {
    /// Not master, nothing heard, probed or raised: what a pass leaves a track of
    /// an instance that is not master as it found it.
    fn is_idle(&self) -> bool {
        !self.master
            && self.first_heard.is_none()
            && self.last_heard.is_none()
            && self.foreign.is_none()
            && self.next_probe.is_none()
            && !self.status.active
    }
}

pub async fn run(mut inp: MonitorInputs) {
    let mut tracks: BTreeMap<String, Track> = BTreeMap::new();
    let mut step = tokio::time::interval(STEP);
    step.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_cfg: Option<Arc<Config>> = None;
    loop {
        let stepped = tokio::select! {
            r = inp.engine.changed() => if r.is_err() { return } else { false },
            _ = step.tick() => true,
        };
        // The steps time the probes and the in-band window of masters; a node
        // master of nothing has nothing to do between snapshots (a state change
        // publishes one), and a backup of 255 instances skips 10 passes a second.
        if stepped && !tracks.is_empty() && !tracks.values().any(|t| t.master) {
            continue;
        }
        let cfg = inp.config.borrow().clone();
        let snap = inp.engine.borrow_and_update().clone();
        // A node master of nothing, as it was at the last pass, with the same
        // configuration and nothing raised: a pass would change nothing (a backup's
        // snapshot a second, three lookups by name per instance: issue 19). A track
        // keeps its last advert count, which is read only once it is master.
        if last_cfg.as_ref().is_some_and(|l| Arc::ptr_eq(l, &cfg))
            && tracks.len() == snap.instances.len()
            && tracks.values().all(Track::is_idle)
            && snap.instances.iter().all(|(_, st)| st.state != State::Master)
        {
            continue;
        }
        let now = Instant::now();
        // The status is rebuilt and compared only when a track came, went or changed
        // (ten steps a second over every instance: no allocation per instance).
        let tracked = tracks.len();
        if last_cfg.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &cfg)) {
            tracks.retain(|name, _| cfg.vrrp.instances.contains_key(name));
            last_cfg = Some(cfg.clone());
        }
        let mut changed = tracks.len() != tracked;
        for (name, st) in &snap.instances {
            let Some(ic) = cfg.vrrp.instances.get(name) else {
                continue;
            };
            if !tracks.contains_key(name) {
                changed = true;
                tracks.insert(name.clone(), Track::default());
            }
            let Some(t) = tracks.get_mut(name) else {
                continue;
            };
            let master = st.state == State::Master;
            let rx = st.counters.adverts_received;
            if master && t.master && rx > t.rx {
                t.first_heard.get_or_insert(now);
                t.last_heard = Some(now);
            }
            if !master || t.last_heard.is_some_and(|l| now - l > INBAND_QUIET) {
                t.first_heard = None;
                t.last_heard = None;
            }
            t.master = master;
            t.rx = rx;
            // Out of band: probe while master.
            match (master, ic.split_brain_probe_every()) {
                (true, Some(every)) => {
                    if t.next_probe.is_none_or(|at| now >= at) {
                        t.next_probe = Some(now + every);
                        // The first IPv4 VIP (ARP), else the first IPv6 one (NDP).
                        let vip = ic
                            .virtual_ips
                            .iter()
                            .map(|v| v.addr())
                            .find(IpAddr::is_ipv4)
                            .or_else(|| ic.virtual_ips.first().map(|v| v.addr()));
                        if let Some(vip) = vip {
                            t.foreign = match inp.links.iface(&ic.interface).await {
                                Ok(iface) => {
                                    let wait = (every / 2).min(Duration::from_millis(200));
                                    let found = match vip {
                                        IpAddr::V4(v4) => arp::probe(&iface, v4, wait).await,
                                        IpAddr::V6(v6) => ndp::probe(&iface, v6, wait).await,
                                    };
                                    match found {
                                        Ok(f) => f,
                                        Err(error) => {
                                            warn!(instance = name.as_str(), %error, "split-brain probe failed");
                                            None
                                        }
                                    }
                                }
                                Err(_) => None,
                            };
                        }
                    }
                }
                _ => {
                    t.foreign = None;
                    t.next_probe = None;
                }
            }
            let inband = t
                .first_heard
                .zip(t.last_heard)
                .is_some_and(|(f, l)| l - f >= INBAND_PERSIST);
            let detail = match (inband, t.foreign) {
                (_, Some(mac)) => Some(format!(
                    "another node ({}) answers for VIP {} while this node is master",
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                    ic.virtual_ips[0]
                )),
                (true, None) => Some(format!(
                    "adverts from another master keep arriving (VRID {}): it does not hear this node",
                    ic.vrid
                )),
                _ => None,
            };
            let active = master && detail.is_some();
            if active != t.status.active {
                changed = true;
                let unix_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                if active {
                    let d = detail.clone().unwrap_or_default();
                    warn!(
                        instance = name.as_str(),
                        vrid = ic.vrid,
                        detail = d.as_str(),
                        "split brain detected: two masters"
                    );
                    t.status = SplitBrainStatus {
                        active: true,
                        since_unix_ms: Some(unix_ms as u64),
                        detail: detail.clone(),
                        detected: t.status.detected + 1,
                    };
                    crate::events::publish(|| crate::events::Kind::SplitBrain {
                        instance: name.clone(),
                        active: true,
                        reason: d.clone(),
                    });
                    inp.notify.send(crate::notify::Event::SplitBrain {
                        instance: name.clone(),
                        active: true,
                        detail: d,
                        unix_ms,
                    });
                } else {
                    info!(
                        instance = name.as_str(),
                        vrid = ic.vrid,
                        master,
                        "split brain cleared"
                    );
                    t.status = SplitBrainStatus {
                        detected: t.status.detected,
                        ..Default::default()
                    };
                    let mut text = "one master again".to_string();
                    if master {
                        // Neighbours that followed the other master come back.
                        if let Ok(iface) = inp.links.iface(&ic.interface).await {
                            let _ = inp.vips.send(VipCommand::Announce {
                                instance: name.clone(),
                                iface,
                                vips: ic.virtual_ips.iter().map(|v| v.addr()).collect(),
                                count: ic.garp.master_burst,
                                // Once per split brain cleared: not a repeat.
                                takeover: true,
                            });
                            info!(
                                instance = name.as_str(),
                                count = ic.garp.master_burst,
                                "fresh gratuitous ARPs / NAs sent"
                            );
                            text.push_str(": this node stays master and re-announced its VIPs");
                        }
                    }
                    crate::events::publish(|| crate::events::Kind::SplitBrain {
                        instance: name.clone(),
                        active: false,
                        reason: text.clone(),
                    });
                    inp.notify.send(crate::notify::Event::SplitBrain {
                        instance: name.clone(),
                        active: false,
                        detail: text,
                        unix_ms,
                    });
                }
            }
        }
        if !changed {
            continue;
        }
        let snapshot: Snapshot = tracks
            .iter()
            .map(|(n, t)| (n.clone(), t.status.clone()))
            .collect();
        inp.status.send_if_modified(|s| {
            let changed = **s != snapshot;
            if changed {
                *s = Arc::new(snapshot);
            }
            changed
        });
    }
}
