//! The reconciler's pure half: compare the desired table with the kernel's and
//! list the fewest netlink writes that make them equal.
//!
//! - A service in both with equal settings and destinations: no op (a restart or
//!   a reload with the same configuration writes nothing).
//! - A changed scheduler/flags/timeout/netmask: one SET_SERVICE, never a re-create
//!   (live connections keep their service).
//! - A changed weight, threshold or forwarding method: one SET_DEST.
//! - A service in the kernel that hafront does not own (not desired and not in
//!   `owned`, the keys it installed earlier) is never touched.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;

use super::message::{IpvsCmd, IpvsMessage};
use super::model::{DestSpec, ServiceEntry, ServiceKey, ServiceSpec, Table};
use super::nlas::IpvsAttr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    DelService(ServiceKey),
    NewService(ServiceSpec),
    SetService(ServiceSpec),
    DelDest(ServiceKey, SocketAddr),
    NewDest(ServiceKey, DestSpec),
    SetDest(ServiceKey, DestSpec),
}

impl Op {
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::DelService(k) | Op::DelDest(k, _) | Op::NewDest(k, _) | Op::SetDest(k, _) => k,
            Op::NewService(s) | Op::SetService(s) => &s.key,
        }
    }

    pub fn message(&self) -> IpvsMessage {
        match self {
            Op::DelService(k) => IpvsMessage::new(IpvsCmd::DelService, vec![IpvsAttr::Service(k.attrs())]),
            Op::NewService(s) => IpvsMessage::new(IpvsCmd::NewService, vec![IpvsAttr::Service(s.attrs())]),
            Op::SetService(s) => IpvsMessage::new(IpvsCmd::SetService, vec![IpvsAttr::Service(s.attrs())]),
            Op::DelDest(k, a) => IpvsMessage::new(
                IpvsCmd::DelDest,
                vec![
                    IpvsAttr::Service(k.attrs()),
                    IpvsAttr::Dest(DestSpec::key_attrs(*a)),
                ],
            ),
            Op::NewDest(k, d) => IpvsMessage::new(
                IpvsCmd::NewDest,
                vec![IpvsAttr::Service(k.attrs()), IpvsAttr::Dest(d.attrs())],
            ),
            Op::SetDest(k, d) => IpvsMessage::new(
                IpvsCmd::SetDest,
                vec![IpvsAttr::Service(k.attrs()), IpvsAttr::Dest(d.attrs())],
            ),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::DelService(k) => write!(f, "delete service {k}"),
            Op::NewService(s) => write!(f, "add service {} ({})", s.key, s.scheduler),
            Op::SetService(s) => write!(f, "edit service {} ({})", s.key, s.scheduler),
            Op::DelDest(k, a) => write!(f, "delete real server {a} from {k}"),
            Op::NewDest(k, d) => write!(f, "add real server {} to {k} (weight {})", d.addr, d.weight),
            Op::SetDest(k, d) => write!(f, "edit real server {} of {k} (weight {})", d.addr, d.weight),
        }
    }
}

/// Ops that turn `actual` into `desired`, touching only desired or `owned` services.
pub fn plan(desired: &Table, actual: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
    let mut ops = Vec::new();
    // Deletions first: they free what additions might need (and shrink the table).
    for key in actual.services.keys() {
        if !desired.services.contains_key(key) && owned.contains(key) {
            ops.push(Op::DelService(*key));
        }
    }
    for (key, want) in &desired.services {
        plan_service(key, Some(want), actual.services.get(key), true, &mut ops);
    }
    ops
}

/// The ops for one service: `want` is its desired entry (`None`: not desired),
/// `have` the kernel's; a service not desired is deleted only when `owned`.
/// Returns how many real servers were compared (the cost, for tests).
pub fn plan_service(
    key: &ServiceKey,
    want: Option<&ServiceEntry>,
    have: Option<&ServiceEntry>,
    owned: bool,
    ops: &mut Vec<Op>,
) -> usize {
    match (want, have) {
        (None, None) => 0,
        (None, Some(_)) => {
            if owned {
                ops.push(Op::DelService(*key));
            }
            0
        }
        (Some(want), None) => {
            ops.push(Op::NewService(want.spec.clone()));
            ops.extend(want.dests.values().map(|d| Op::NewDest(*key, d.clone())));
            want.dests.len()
        }
        (Some(want), Some(have)) => {
            if have.spec != want.spec {
                ops.push(Op::SetService(want.spec.clone()));
            }
            // Both sides are sorted by address: one merge pass, deletions first.
            let mut adds = Vec::new();
            let mut have_dests = have.dests.iter().peekable();
            for (addr, d) in &want.dests {
                while let Some((gone, _)) = have_dests.next_if(|(a, _)| *a < addr) {
                    ops.push(Op::DelDest(*key, *gone));
                }
                match have_dests.next_if(|(a, _)| *a == addr) {
                    None => adds.push(Op::NewDest(*key, d.clone())),
                    Some((_, h)) if h != d => adds.push(Op::SetDest(*key, d.clone())),
                    Some(_) => {}
                }
            }
            ops.extend(have_dests.map(|(gone, _)| Op::DelDest(*key, *gone)));
            ops.append(&mut adds);
            want.dests.len().max(have.dests.len())
        }
    }
}

/// The op (if any) for one real server of a service present on both sides.
pub fn plan_dest(
    key: &ServiceKey,
    addr: SocketAddr,
    want: Option<&DestSpec>,
    have: Option<&DestSpec>,
) -> Option<Op> {
    match (want, have) {
        (None, None) => None,
        (None, Some(_)) => Some(Op::DelDest(*key, addr)),
        (Some(w), None) => Some(Op::NewDest(*key, w.clone())),
        (Some(w), Some(h)) => (w != h).then(|| Op::SetDest(*key, w.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Forward, Protocol};

    fn svc(addr: &str, sched: &str) -> ServiceSpec {
        let addr: SocketAddr = addr.parse().unwrap();
        ServiceSpec {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr,
            },
            scheduler: sched.into(),
            flags: 0,
            timeout: 0,
            netmask: ServiceSpec::default_netmask(addr.is_ipv6()),
            pe_name: None,
        }
    }
    fn dest(addr: &str, w: u32) -> DestSpec {
        DestSpec::new(addr.parse().unwrap(), Forward::Dr, w)
    }
    fn table(entries: &[(ServiceSpec, Vec<DestSpec>)]) -> Table {
        let mut t = Table::default();
        for (s, d) in entries {
            t.insert(s.clone(), d.clone());
        }
        t
    }

    #[test]
    fn equal_tables_need_nothing() {
        let t = table(&[(
            svc("192.0.2.100:80", "wrr"),
            vec![dest("192.0.2.11:80", 1), dest("192.0.2.12:80", 2)],
        )]);
        assert!(plan(&t, &t, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn empty_kernel_gets_everything() {
        let s = svc("192.0.2.100:80", "wrr");
        let t = table(&[(s.clone(), vec![dest("192.0.2.11:80", 1)])]);
        assert_eq!(
            plan(&t, &Table::default(), &BTreeSet::new()),
            vec![
                Op::NewService(s.clone()),
                Op::NewDest(s.key, dest("192.0.2.11:80", 1))
            ]
        );
    }

    #[test]
    fn weight_change_is_one_set() {
        let s = svc("192.0.2.100:80", "wrr");
        let have = table(&[(
            s.clone(),
            vec![dest("192.0.2.11:80", 1), dest("192.0.2.12:80", 2)],
        )]);
        let want = table(&[(
            s.clone(),
            vec![dest("192.0.2.11:80", 1), dest("192.0.2.12:80", 5)],
        )]);
        assert_eq!(
            plan(&want, &have, &BTreeSet::new()),
            vec![Op::SetDest(s.key, dest("192.0.2.12:80", 5))]
        );
    }

    #[test]
    fn real_servers_are_merged_deletions_first() {
        let s = svc("192.0.2.100:80", "wrr");
        let have = table(&[(
            s.clone(),
            vec![
                dest("192.0.2.11:80", 1),
                dest("192.0.2.13:80", 1),
                dest("192.0.2.15:80", 1),
            ],
        )]);
        let want = table(&[(
            s.clone(),
            vec![
                dest("192.0.2.12:80", 1),
                dest("192.0.2.13:80", 4),
                dest("192.0.2.16:80", 1),
            ],
        )]);
        let a = |x: &str| x.parse().unwrap();
        assert_eq!(
            plan(&want, &have, &BTreeSet::new()),
            vec![
                Op::DelDest(s.key, a("192.0.2.11:80")),
                Op::DelDest(s.key, a("192.0.2.15:80")),
                Op::NewDest(s.key, dest("192.0.2.12:80", 1)),
                Op::SetDest(s.key, dest("192.0.2.13:80", 4)),
                Op::NewDest(s.key, dest("192.0.2.16:80", 1)),
            ]
        );
    }

    #[test]
    fn scheduler_change_edits_in_place() {
        let have = table(&[(svc("192.0.2.100:80", "wrr"), vec![dest("192.0.2.11:80", 1)])]);
        let want = table(&[(svc("192.0.2.100:80", "lc"), vec![dest("192.0.2.11:80", 1)])]);
        assert_eq!(
            plan(&want, &have, &BTreeSet::new()),
            vec![Op::SetService(svc("192.0.2.100:80", "lc"))]
        );
    }

    #[test]
    fn foreign_services_are_never_touched() {
        let ours = svc("192.0.2.100:80", "wrr");
        let foreign = svc("198.51.100.1:443", "rr");
        let gone = svc("192.0.2.101:80", "rr");
        let have = table(&[
            (ours.clone(), vec![dest("192.0.2.11:80", 1)]),
            (foreign.clone(), vec![dest("198.51.100.2:443", 1)]),
            (gone.clone(), vec![]),
        ]);
        let want = table(&[(ours.clone(), vec![])]);
        let owned: BTreeSet<_> = [ours.key, gone.key].into();
        assert_eq!(
            plan(&want, &have, &owned),
            vec![
                Op::DelService(gone.key),
                Op::DelDest(ours.key, "192.0.2.11:80".parse().unwrap())
            ]
        );
    }
}
