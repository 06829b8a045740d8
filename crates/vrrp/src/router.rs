//! The instances of one node, sans-IO: what the engine used to decide around
//! them. A received packet goes to the instance of its VRID on the socket it came
//! from (RFC 5798 §7.1: "the receiver MUST ... discard if VRID not configured"),
//! except our own (a raw socket hears what it sends on multicast); an advert an
//! instance wants sent comes out with its source, each destination (the multicast
//! group, or every unicast peer) and the checksum mode; sync groups move their
//! members together (`crate::sync`). The engine executes the outputs: it owns the
//! sockets, the clock, the VIPs.
//!
//! `K` names a socket (the engine: interface index and family); ids are the
//! caller's.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::instance::{Input, Instance, Output, Params, Reason, State};
use crate::packet::{Advert, ChecksumMode};
use crate::sync::{self, Member, Move};

/// What the router asks of the engine, per instance id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Routed {
    /// Send `advert` from `src` to `dst` (encoded for those addresses with
    /// `checksum`: the pseudo-header depends on both).
    Send {
        src: IpAddr,
        dst: IpAddr,
        checksum: ChecksumMode,
        advert: Advert,
    },
    /// Any other output of the instance (VIPs, announcements, timers, state
    /// changes, rejections). `SendAdvert` and `WantMaster` never appear here.
    Output { output: Output },
    /// An input fed to an instance whose inputs are recorded (`Router::record`):
    /// sync-group moves are inputs the engine did not give itself.
    Fed { input: Input },
}

/// Where a received packet went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery<I> {
    /// To this instance.
    To(I),
    /// Sent by the instance of its VRID on this socket: ignored.
    Own,
    /// No VRID byte, or a VRID not configured on this socket: counted.
    UnknownVrid(Option<u8>),
}

struct Slot<K> {
    name: String,
    key: K,
    inst: Instance,
    /// Names of the other members of its sync groups.
    sync_peers: Vec<String>,
    record: bool,
}

/// The instances of one node, by id.
pub struct Router<I, K> {
    slots: BTreeMap<I, Slot<K>>,
    by_vrid: BTreeMap<(K, u8), I>,
    unknown_vrid: u64,
    /// Sync-group moves found while handling outputs, carried out after them
    /// (last found first), shared by nested feeds.
    pending: Vec<(I, Move)>,
    /// An instance's outputs for one input, reused from one input to the next (a
    /// nested feed, by a sync-group move, takes a fresh one).
    outputs: Vec<Output>,
}

impl<I, K> Default for Router<I, K> {
    fn default() -> Self {
        Router {
            slots: BTreeMap::new(),
            by_vrid: BTreeMap::new(),
            unknown_vrid: 0,
            pending: Vec::new(),
            outputs: Vec::new(),
        }
    }
}

impl<I: Copy + Ord, K: Copy + Ord> Router<I, K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance on socket `key` (its `params.primary` filled in). Nothing
    /// is fed to it: the caller sends its start inputs through [`Router::handle`].
    pub fn add(&mut self, id: I, name: &str, key: K, params: Params, sync_peers: Vec<String>) {
        self.by_vrid.insert((key, params.vrid), id);
        self.slots.insert(
            id,
            Slot {
                name: name.to_string(),
                key,
                inst: Instance::new(params),
                sync_peers,
                record: false,
            },
        );
    }

    /// Also report every input fed to `id` (`Routed::Fed`), for a recorder.
    pub fn record(&mut self, id: I) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.record = true;
        }
    }

    /// Removes an instance (the caller has fed it `Shutdown` first).
    pub fn remove(&mut self, id: I) -> Option<Instance> {
        let slot = self.slots.remove(&id)?;
        let vrid = (slot.key, slot.inst.params().vrid);
        if self.by_vrid.get(&vrid) == Some(&id) {
            self.by_vrid.remove(&vrid);
        }
        Some(slot.inst)
    }

    /// The instance of `vrid` on socket `key`.
    pub fn by_vrid(&self, key: K, vrid: u8) -> Option<I> {
        self.by_vrid.get(&(key, vrid)).copied()
    }

    pub fn instance(&self, id: I) -> Option<&Instance> {
        self.slots.get(&id).map(|s| &s.inst)
    }

    pub fn name(&self, id: I) -> Option<&str> {
        self.slots.get(&id).map(|s| s.name.as_str())
    }

    /// The ids of the instance called `name` (none while a reload restarts it).
    pub fn ids_named(&self, name: &str) -> Vec<I> {
        self.slots
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn ids(&self) -> impl Iterator<Item = I> + '_ {
        self.slots.keys().copied()
    }

    /// Packets with no VRID byte or for a VRID not configured on their socket.
    pub fn unknown_vrid(&self) -> u64 {
        self.unknown_vrid
    }

    /// A packet received on socket `key`: to the instance of its VRID there.
    pub fn packet(
        &mut self,
        key: K,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: Vec<u8>,
    ) -> (Delivery<I>, Vec<(I, Routed)>) {
        let mut out = Vec::new();
        let delivery = self.packet_into(key, src, dst, ttl, payload, 0, &mut out);
        (delivery, out)
    }

    /// [`Router::packet`] with the realtime clock at reception (nanoseconds since
    /// the Unix epoch), which auth_hmac's `time` anti-replay reads, appending the
    /// outputs to `out` (a caller's buffer, reused from one packet to the next: no
    /// allocation per advert).
    #[allow(clippy::too_many_arguments)]
    pub fn packet_into(
        &mut self,
        key: K,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: Vec<u8>,
        wall_ns: u64,
        out: &mut Vec<(I, Routed)>,
    ) -> Delivery<I> {
        // The VRID is the second byte in both versions (RFC 3768 §5.1, RFC 5798 §5.1).
        let Some(&vrid) = payload.get(1) else {
            self.unknown_vrid += 1;
            return Delivery::UnknownVrid(None);
        };
        let Some(&id) = self.by_vrid.get(&(key, vrid)) else {
            self.unknown_vrid += 1;
            return Delivery::UnknownVrid(Some(vrid));
        };
        if self
            .slots
            .get(&id)
            .is_some_and(|s| s.inst.params().primary == src)
        {
            return Delivery::Own;
        }
        self.feed(
            id,
            Input::Packet {
                src,
                dst,
                ttl,
                payload,
                wall_ns,
            },
            out,
        );
        Delivery::To(id)
    }

    /// The auth_hmac trailer for an advert of instance `id` (`Instance::sign`),
    /// encoded for `src`, at realtime `now`.
    /// The clock is read only for an instance that signs (not per advert of the others).
    pub fn sign(
        &mut self,
        id: I,
        pdu: &[u8],
        src: IpAddr,
        now: impl FnOnce() -> std::time::Duration,
    ) -> Option<[u8; crate::auth_hmac::TRAILER_LEN]> {
        let inst = &mut self.slots.get_mut(&id)?.inst;
        if !inst.signs() {
            return None;
        }
        inst.sign(pdu, src, now())
    }

    /// Feeds one input to instance `id`, then carries out the sync-group moves it
    /// caused. The outputs of every instance concerned, in order.
    pub fn handle(&mut self, id: I, input: Input) -> Vec<(I, Routed)> {
        let mut out = Vec::new();
        self.feed(id, input, &mut out);
        out
    }

    /// [`Router::handle`], appending to `out` (a caller's buffer, reused from one
    /// input to the next: no allocation per advert).
    pub fn handle_into(&mut self, id: I, input: Input, out: &mut Vec<(I, Routed)>) {
        self.feed(id, input, out);
    }

    fn feed(&mut self, id: I, input: Input, out: &mut Vec<(I, Routed)>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.record {
            out.push((id, Routed::Fed { input: input.clone() }));
        }
        let mut outputs = std::mem::take(&mut self.outputs);
        slot.inst.handle_into(input, &mut outputs);
        for output in outputs.drain(..) {
            match output {
                Output::SendAdvert { advert } => {
                    let p = slot.inst.params();
                    let (src, checksum) = (p.primary, p.checksum_mode());
                    let send = |dst, advert| Routed::Send {
                        src,
                        dst,
                        checksum,
                        advert,
                    };
                    // The advert moves into the last (usually the only) destination.
                    match p.unicast_peers.split_last() {
                        None => out.push((id, send(p.multicast_group(), advert))),
                        Some((last, others)) => {
                            for dst in others {
                                out.push((id, send(*dst, advert.clone())));
                            }
                            out.push((id, send(*last, advert)));
                        }
                    }
                }
                Output::WantMaster => self.pending.push((id, Move::WantMaster)),
                Output::StateChange { from, to, reason } => {
                    if from == State::Master
                        && to == State::Backup
                        && reason != Reason::SyncGroup
                        && !slot.sync_peers.is_empty()
                    {
                        self.pending.push((id, Move::LeftMaster));
                    }
                    out.push((
                        id,
                        Routed::Output {
                            output: Output::StateChange { from, to, reason },
                        },
                    ));
                }
                output => out.push((id, Routed::Output { output })),
            }
        }
        self.outputs = outputs;
        while let Some((id, m)) = self.pending.pop() {
            self.sync_move(id, m, out);
        }
    }

    fn sync_move(&mut self, id: I, m: Move, out: &mut Vec<(I, Routed)>) {
        let Some(slot) = self.slots.get(&id) else { return };
        let peers: Vec<Option<Vec<Member<I>>>> = slot
            .sync_peers
            .iter()
            .map(|name| {
                let ids = self.ids_named(name);
                (!ids.is_empty()).then(|| {
                    ids.into_iter()
                        .filter_map(|p| self.slots.get(&p).map(|s| Member::of(p, &s.inst)))
                        .collect()
                })
            })
            .collect();
        let me = Member::of(id, &slot.inst);
        for (member, to) in sync::moves(me, &peers, m) {
            // A member fed earlier in this loop may have moved on its own.
            let state = self.slots.get(&member).map(|s| s.inst.state());
            if state == Some(sync::from_state(to)) {
                self.feed(member, Input::SyncGroup { to }, out);
            }
        }
    }
}
