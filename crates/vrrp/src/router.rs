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

struct Slot<I, K> {
    id: I,
    name: String,
    key: K,
    inst: Instance,
    /// Names of the other members of its sync groups.
    sync_peers: Vec<String>,
    record: bool,
}

/// The instances of one node, by id.
pub struct Router<I, K> {
    /// The instances, at the places `ids` and `by_vrid` give (a free place is
    /// taken again): a received advert finds its instance with two indexings,
    /// where two B-tree searches were ~300 instructions an advert (issue 19).
    slots: Vec<Option<Slot<I, K>>>,
    ids: BTreeMap<I, usize>,
    /// Per socket, each VRID's place in `slots`.
    by_vrid: Vec<(K, Box<[Option<usize>; 256]>)>,
    unknown_vrid: u64,
    /// Sync-group moves found while handling outputs, carried out after them
    /// (last found first), shared by nested feeds.
    pending: Vec<(I, Move)>,
    /// One instance's outputs for one input, reused from one input to the next.
    outputs: Vec<Output>,
}

/// An input on its way to an instance: a received packet's payload stays in the
/// caller's buffer (no copy per advert).
enum Feed<'a> {
    Input(Input),
    Packet {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &'a [u8],
        wall_ns: u64,
    },
}

impl Feed<'_> {
    fn to_input(&self) -> Input {
        match self {
            Feed::Input(input) => input.clone(),
            &Feed::Packet {
                src,
                dst,
                ttl,
                payload,
                wall_ns,
            } => Input::Packet {
                src,
                dst,
                ttl,
                payload: payload.to_vec(),
                wall_ns,
            },
        }
    }
}

impl<I, K> Default for Router<I, K> {
    fn default() -> Self {
        Router {
            slots: Vec::new(),
            ids: BTreeMap::new(),
            by_vrid: Vec::new(),
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
        let vrid = params.vrid;
        let slot = Slot {
            id,
            name: name.to_string(),
            key,
            inst: Instance::new(params),
            sync_peers,
            record: false,
        };
        let at = match self.ids.get(&id) {
            Some(&at) => at,
            None => match self.slots.iter().position(Option::is_none) {
                Some(free) => free,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            },
        };
        self.slots[at] = Some(slot);
        self.ids.insert(id, at);
        *self.vrid_place(key, vrid) = Some(at);
    }

    /// Where socket `key`'s VRID `vrid` points (made on first use).
    fn vrid_place(&mut self, key: K, vrid: u8) -> &mut Option<usize> {
        let i = match self.by_vrid.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.by_vrid.push((key, Box::new([None; 256])));
                self.by_vrid.len() - 1
            }
        };
        &mut self.by_vrid[i].1[usize::from(vrid)]
    }

    /// The place in `slots` of the instance of `vrid` on socket `key`.
    fn vrid_at(&self, key: K, vrid: u8) -> Option<usize> {
        let (_, places) = self.by_vrid.iter().find(|(k, _)| *k == key)?;
        places[usize::from(vrid)]
    }

    fn slot(&self, id: I) -> Option<&Slot<I, K>> {
        self.slots.get(*self.ids.get(&id)?)?.as_ref()
    }

    /// Also report every input fed to `id` (`Routed::Fed`), for a recorder.
    pub fn record(&mut self, id: I) {
        if let Some(&at) = self.ids.get(&id) {
            if let Some(s) = self.slots[at].as_mut() {
                s.record = true;
            }
        }
    }

    /// Removes an instance (the caller has fed it `Shutdown` first).
    pub fn remove(&mut self, id: I) -> Option<Instance> {
        let at = self.ids.remove(&id)?;
        let slot = self.slots.get_mut(at)?.take()?;
        let place = self.vrid_place(slot.key, slot.inst.params().vrid);
        if *place == Some(at) {
            *place = None;
        }
        Some(slot.inst)
    }

    /// The instance of `vrid` on socket `key`.
    pub fn by_vrid(&self, key: K, vrid: u8) -> Option<I> {
        let at = self.vrid_at(key, vrid)?;
        self.slots[at].as_ref().map(|s| s.id)
    }

    pub fn instance(&self, id: I) -> Option<&Instance> {
        self.slot(id).map(|s| &s.inst)
    }

    pub fn name(&self, id: I) -> Option<&str> {
        self.slot(id).map(|s| s.name.as_str())
    }

    /// The ids of the instance called `name` (none while a reload restarts it).
    pub fn ids_named(&self, name: &str) -> Vec<I> {
        self.ids
            .iter()
            .filter(|(_, &at)| self.slots[at].as_ref().is_some_and(|s| s.name == name))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn ids(&self) -> impl Iterator<Item = I> + '_ {
        self.ids.keys().copied()
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
        let delivery = self.packet_into(key, src, dst, ttl, &payload, 0, &mut out);
        (delivery, out)
    }

    /// [`Router::packet`] with the realtime clock at reception (nanoseconds since
    /// the Unix epoch), which auth_hmac's `time` anti-replay reads, appending the
    /// outputs to `out` (a caller's buffer, reused from one packet to the next: no
    /// allocation per advert). The payload is borrowed: the caller's receive buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn packet_into(
        &mut self,
        key: K,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
        wall_ns: u64,
        out: &mut Vec<(I, Routed)>,
    ) -> Delivery<I> {
        // The VRID is the second byte in both versions (RFC 3768 §5.1, RFC 5798 §5.1).
        let Some(&vrid) = payload.get(1) else {
            self.unknown_vrid += 1;
            return Delivery::UnknownVrid(None);
        };
        let Some((at, slot)) = self
            .vrid_at(key, vrid)
            .and_then(|at| Some((at, self.slots[at].as_ref()?)))
        else {
            self.unknown_vrid += 1;
            return Delivery::UnknownVrid(Some(vrid));
        };
        let id = slot.id;
        if slot.inst.params().primary == src {
            return Delivery::Own;
        }
        self.feed_at(
            at,
            Feed::Packet {
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
        let at = *self.ids.get(&id)?;
        let inst = &mut self.slots[at].as_mut()?.inst;
        if !inst.signs() {
            return None;
        }
        inst.sign(pdu, src, now())
    }

    /// Feeds one input to instance `id`, then carries out the sync-group moves it
    /// caused. The outputs of every instance concerned, in order.
    pub fn handle(&mut self, id: I, input: Input) -> Vec<(I, Routed)> {
        let mut out = Vec::new();
        self.feed(id, Feed::Input(input), &mut out);
        out
    }

    /// [`Router::handle`], appending to `out` (a caller's buffer, reused from one
    /// input to the next: no allocation per advert).
    pub fn handle_into(&mut self, id: I, input: Input, out: &mut Vec<(I, Routed)>) {
        self.feed(id, Feed::Input(input), out);
    }

    fn feed(&mut self, id: I, input: Feed<'_>, out: &mut Vec<(I, Routed)>) {
        if let Some(&at) = self.ids.get(&id) {
            self.feed_at(at, input, out);
        }
    }

    /// [`Router::feed`] to the instance at `at` in `slots`.
    fn feed_at(&mut self, at: usize, input: Feed<'_>, out: &mut Vec<(I, Routed)>) {
        let Some(slot) = self.slots.get_mut(at).and_then(Option::as_mut) else {
            return;
        };
        let id = slot.id;
        if slot.record {
            out.push((
                id,
                Routed::Fed {
                    input: input.to_input(),
                },
            ));
        }
        // Taken while this instance's outputs are handled: a nested feed (a sync
        // group's move, below) finds it back in place.
        let mut outputs = std::mem::take(&mut self.outputs);
        match input {
            Feed::Input(input) => slot.inst.handle_into(input, &mut outputs),
            Feed::Packet {
                src,
                dst,
                ttl,
                payload,
                wall_ns,
            } => slot
                .inst
                .packet_into(src, dst, ttl, payload, wall_ns, &mut outputs),
        }
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
        let Some(slot) = self.slot(id) else { return };
        let peers: Vec<Option<Vec<Member<I>>>> = slot
            .sync_peers
            .iter()
            .map(|name| {
                let ids = self.ids_named(name);
                (!ids.is_empty()).then(|| {
                    ids.into_iter()
                        .filter_map(|p| self.slot(p).map(|s| Member::of(p, &s.inst)))
                        .collect()
                })
            })
            .collect();
        let me = Member::of(id, &slot.inst);
        for (member, to) in sync::moves(me, &peers, m) {
            // A member fed earlier in this loop may have moved on its own.
            let state = self.slot(member).map(|s| s.inst.state());
            if state == Some(sync::from_state(to)) {
                self.feed(member, Feed::Input(Input::SyncGroup { to }), out);
            }
        }
    }
}
