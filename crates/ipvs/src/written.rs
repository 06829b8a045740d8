//! What hafront last wrote: the kernel table as hafront last read it (a dump) and
//! then changed it (every write the kernel acknowledged), so that an event (one
//! check flipping, one API weight change, a role change) is planned against this
//! model and costs only the writes that differ, without reading the table back.
//!
//! The model is unknown (`None`), and the executor must dump first:
//! - at start, and after the connection to the kernel was lost;
//! - after a write the kernel refused (the model no longer says what the kernel has);
//! - at the periodic resync, where the dump is compared with the model: what
//!   differs on the services hafront owns was changed behind hafront's back (drift,
//!   counted and logged by the executor, then repaired by the next plan).
//!
//! Pure: the executor (the daemon's `ipvs::reconcile`) does the I/O.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::model::{ServiceEntry, ServiceKey, Table};
use super::plan::{plan, plan_dest, plan_service, Op};

/// What one event changed in the desired table: one real server of a service, or
/// (a quorum with a sorry server, where one verdict can swap the whole set) one
/// service. An event is planned over these only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Touched {
    Service(ServiceKey),
    Dest(ServiceKey, SocketAddr),
}

/// The writes for an event, and what planning them cost.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub ops: Vec<Op>,
    /// Real servers compared (the model against the desired table): 1 per real
    /// server touched, a service's size per service touched; never the table's.
    pub compared: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Written {
    model: Option<Table>,
}

impl Written {
    /// True when the next pass must dump the table first (the model is unknown).
    pub fn needs_dump(&self) -> bool {
        self.model.is_none()
    }

    /// The kernel table as hafront believes it is; `None` until a dump.
    pub fn model(&self) -> Option<&Table> {
        self.model.as_ref()
    }

    /// Forget the model: the next pass dumps (lost connection, refused write).
    pub fn forget(&mut self) {
        self.model = None;
    }

    /// A dump arrived: it becomes the model. Returns the drift, the ops that would
    /// turn the dump back into the previous model, over the services in `owned`
    /// only (foreign services are not hafront's to watch); empty when there was no
    /// model (the first dump, or one after a refusal or a lost connection).
    pub fn observe(&mut self, actual: Table, owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
        let drift = match &self.model {
            Some(model) => plan(&only(model, owned), &only(&actual, owned), owned),
            None => Vec::new(),
        };
        self.model = Some(actual);
        drift
    }

    /// The writes that turn the model into `desired` (see `plan`); everything when
    /// there is no model (the executor dumps before planning, so that is only for
    /// callers that know the kernel is empty).
    pub fn plan(&self, desired: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
        match &self.model {
            Some(model) => plan(desired, model, owned),
            None => plan(desired, &Table::default(), owned),
        }
    }

    /// The writes for what an event `touched` only (see `Touched`), against the
    /// model; the rest of the table is not looked at. Without a model (the executor
    /// dumps first, so only for callers that know the kernel is empty) it is planned
    /// against an empty table.
    pub fn plan_delta(&self, desired: &Table, touched: &[Touched], owned: &BTreeSet<ServiceKey>) -> Delta {
        let empty = Table::default();
        let model = self.model.as_ref().unwrap_or(&empty);
        let mut delta = Delta::default();
        // Whole services first; a real server of a service planned whole, or one
        // touched twice, is planned once.
        let mut services: Vec<ServiceKey> = Vec::new();
        let mut dests: BTreeSet<(ServiceKey, SocketAddr)> = BTreeSet::new();
        for t in touched {
            match *t {
                Touched::Service(key) => services.push(key),
                Touched::Dest(key, addr) => {
                    let whole = !(desired.services.contains_key(&key) && model.services.contains_key(&key));
                    if whole {
                        services.push(key);
                    } else {
                        dests.insert((key, addr));
                    }
                }
            }
        }
        services.sort_unstable();
        services.dedup();
        for key in &services {
            let (want, have) = (desired.services.get(key), model.services.get(key));
            delta.compared += plan_service(key, want, have, owned.contains(key), &mut delta.ops);
        }
        for (key, addr) in dests {
            if services.binary_search(&key).is_ok() {
                continue;
            }
            delta.compared += 1;
            let (want, have) = (&desired.services[&key], &model.services[&key]);
            delta.ops.extend(plan_dest(
                &key,
                addr,
                want.dests.get(&addr),
                have.dests.get(&addr),
            ));
        }
        delta
    }

    /// The executor's results, one per op in `ops`: each acknowledged write updates
    /// the model; any refusal forgets it (the next pass dumps).
    pub fn applied<'a>(&mut self, results: impl IntoIterator<Item = (&'a Op, bool)>) {
        let mut refused = false;
        if let Some(model) = &mut self.model {
            for (op, ok) in results {
                if ok {
                    refused |= !apply(model, op);
                } else {
                    refused = true;
                }
            }
        } else {
            refused = true;
        }
        if refused {
            self.model = None;
        }
    }
}

/// `table` restricted to the services in `keys`.
fn only(table: &Table, keys: &BTreeSet<ServiceKey>) -> Table {
    Table {
        services: table
            .services
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, e)| (*k, e.clone()))
            .collect(),
    }
}

/// What an acknowledged write did to the kernel's table. False when the op does
/// not fit the model (a real server of a service the model lacks): the model is
/// then wrong and must be read again.
pub fn apply(table: &mut Table, op: &Op) -> bool {
    match op {
        Op::DelService(k) => table.services.remove(k).is_some(),
        Op::NewService(s) => {
            table.services.insert(
                s.key,
                ServiceEntry {
                    spec: s.clone(),
                    dests: Default::default(),
                },
            );
            true
        }
        Op::SetService(s) => match table.services.get_mut(&s.key) {
            Some(e) => {
                e.spec = s.clone();
                true
            }
            None => false,
        },
        Op::DelDest(k, a) => table
            .services
            .get_mut(k)
            .is_some_and(|e| e.dests.remove(a).is_some()),
        Op::NewDest(k, d) | Op::SetDest(k, d) => match table.services.get_mut(k) {
            Some(e) => {
                e.dests.insert(d.addr, d.clone());
                true
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DestSpec, Forward, Protocol, ServiceSpec};
    use std::net::SocketAddr;

    fn svc(addr: &str) -> ServiceSpec {
        let addr: SocketAddr = addr.parse().unwrap();
        ServiceSpec::new(
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr,
            },
            "wrr",
        )
    }
    fn dest(addr: &str, w: u32) -> DestSpec {
        DestSpec::new(addr.parse().unwrap(), Forward::Nat, w)
    }
    /// 100 services x 100 real servers (the benchmark's size).
    fn big() -> Table {
        let mut t = Table::default();
        for s in 0..100u16 {
            let spec = svc(&format!("203.0.113.100:{}", 1000 + s));
            let dests = (0..100u16).map(|r| dest(&format!("192.0.2.{}:{}", 1 + r, 8000 + s), 1));
            t.insert(spec, dests);
        }
        t
    }
    fn owned(t: &Table) -> BTreeSet<ServiceKey> {
        t.services.keys().copied().collect()
    }
    /// The big table, as the kernel's and hafront's model of it.
    fn known() -> (Table, BTreeSet<ServiceKey>, Written) {
        let t = big();
        let own = owned(&t);
        let mut w = Written::default();
        assert!(w.observe(t.clone(), &own).is_empty());
        (t, own, w)
    }
    fn apply_all(w: &mut Written, ops: &[Op]) {
        w.applied(ops.iter().map(|op| (op, true)));
    }

    #[test]
    fn a_model_is_needed_first_and_a_first_dump_is_no_drift() {
        let mut w = Written::default();
        assert!(w.needs_dump());
        let t = big();
        assert!(w.observe(t.clone(), &owned(&t)).is_empty());
        assert!(!w.needs_dump());
        assert_eq!(w.model(), Some(&t));
    }

    #[test]
    fn one_real_server_going_down_is_one_write_against_the_model() {
        let (t, own, mut w) = known();
        let mut desired = t.clone();
        let key = *desired.services.keys().nth(42).unwrap();
        let gone: SocketAddr = "192.0.2.7:8042".parse().unwrap();
        desired.services.get_mut(&key).unwrap().dests.remove(&gone);
        let ops = w.plan(&desired, &own);
        assert_eq!(ops, vec![Op::DelDest(key, gone)]);
        apply_all(&mut w, &ops);
        // The model follows the write: the next event plans against it, and the
        // same desired table needs nothing more.
        assert!(w.plan(&desired, &own).is_empty());
        // It comes back: one write again.
        let ops = w.plan(&t, &own);
        assert_eq!(ops, vec![Op::NewDest(key, dest("192.0.2.7:8042", 1))]);
        apply_all(&mut w, &ops);
        assert_eq!(w.model(), Some(&t));
    }

    #[test]
    fn every_kind_of_write_updates_the_model() {
        let s = svc("203.0.113.100:80");
        let mut w = Written::default();
        w.observe(Table::default(), &BTreeSet::new());
        let mut want = Table::default();
        want.insert(
            s.clone(),
            vec![dest("192.0.2.11:80", 1), dest("192.0.2.12:80", 2)],
        );
        let own = owned(&want);
        let steps = [
            want.clone(),
            {
                // weight, scheduler, a real server replaced
                let mut t = Table::default();
                let mut s2 = s.clone();
                s2.scheduler = "lc".into();
                t.insert(s2, vec![dest("192.0.2.11:80", 5), dest("192.0.2.13:80", 1)]);
                t
            },
            Table::default(),
        ];
        for want in steps {
            let ops = w.plan(&want, &own);
            apply_all(&mut w, &ops);
            assert_eq!(w.model(), Some(&want));
            assert!(w.plan(&want, &own).is_empty());
        }
    }

    #[test]
    fn a_refused_write_forgets_the_model() {
        let (t, own, mut w) = known();
        let mut desired = t.clone();
        let key = *desired.services.keys().next().unwrap();
        desired.services.get_mut(&key).unwrap().spec.scheduler = "nosuch".into();
        desired.services.get_mut(&key).unwrap().dests.clear();
        let ops = w.plan(&desired, &own);
        assert_eq!(ops.len(), 101);
        // The scheduler is refused; the deletions went through.
        w.applied(ops.iter().map(|op| (op, !matches!(op, Op::SetService(_)))));
        assert!(w.needs_dump(), "after a refusal the next pass reads the kernel");
    }

    #[test]
    fn a_write_that_does_not_fit_the_model_forgets_it() {
        let mut w = Written::default();
        w.observe(Table::default(), &BTreeSet::new());
        let s = svc("203.0.113.100:80");
        let op = Op::NewDest(s.key, dest("192.0.2.11:80", 1));
        w.applied([(&op, true)]);
        assert!(w.needs_dump());
    }

    #[test]
    fn drift_on_owned_services_is_found_and_repaired_foreign_changes_are_not_drift() {
        let (t, own, mut w) = known();
        // Behind hafront's back (ipvsadm): a weight edited, a real server deleted,
        // one added, a service deleted, and a foreign service created.
        let mut kernel = t.clone();
        let keys: Vec<ServiceKey> = kernel.services.keys().copied().collect();
        let e = kernel.services.get_mut(&keys[3]).unwrap();
        let first = *e.dests.keys().next().unwrap();
        e.dests.get_mut(&first).unwrap().weight = 9;
        let second = *e.dests.keys().nth(1).unwrap();
        e.dests.remove(&second);
        e.dests
            .insert("198.51.100.9:80".parse().unwrap(), dest("198.51.100.9:80", 1));
        kernel.services.remove(&keys[7]);
        kernel.insert(svc("198.51.100.200:443"), vec![dest("198.51.100.2:443", 1)]);

        let drift = w.observe(kernel.clone(), &own);
        // 3 on the edited service; the deleted one: 1 service + 100 real servers.
        assert_eq!(drift.len(), 3 + 101, "{drift:?}");
        assert!(drift.iter().all(|op| own.contains(op.service())));
        // The model is now the kernel's table; planning the desired table repairs
        // exactly the drift, and leaves the foreign service alone.
        assert_eq!(w.model(), Some(&kernel));
        let repair = w.plan(&t, &own);
        assert_eq!(repair.len(), drift.len());
        apply_all(&mut w, &repair);
        let mut want = t.clone();
        want.insert(svc("198.51.100.200:443"), vec![dest("198.51.100.2:443", 1)]);
        assert_eq!(w.model(), Some(&want));
        // The next resync finds no drift.
        assert!(w.observe(want, &own).is_empty());
    }

    /// `services` x `reals`, as `big` builds it.
    fn sized(services: u16, reals: u16) -> Table {
        let mut t = Table::default();
        for s in 0..services {
            let spec = svc(&format!("203.0.113.{}:{}", 1 + s / 1000, 1000 + s % 1000));
            let dests = (0..reals).map(|r| dest(&format!("192.0.2.{}:{}", 1 + r, 8000 + s), 1));
            t.insert(spec, dests);
        }
        t
    }

    #[test]
    fn a_flip_costs_the_same_work_whatever_the_tables_size() {
        // Issue 16: a verdict plans its own real server only. The cost counted is the
        // real servers compared; it must not grow from 10 to 10,000 to 100,000.
        for (services, reals) in [(1u16, 10u16), (100, 100), (1000, 100)] {
            let t = sized(services, reals);
            let own = owned(&t);
            let mut w = Written::default();
            w.observe(t.clone(), &own);
            let mut desired = t.clone();
            let key = *desired.services.keys().next_back().unwrap();
            let entry = desired.services.get_mut(&key).unwrap();
            let gone = *entry.dests.keys().next().unwrap();
            entry.dests.remove(&gone);
            let delta = w.plan_delta(&desired, &[Touched::Dest(key, gone)], &own);
            assert_eq!(delta.ops, vec![Op::DelDest(key, gone)], "{services}x{reals}");
            assert_eq!(
                delta.compared, 1,
                "{services}x{reals}: a flip compares one real server"
            );
            // The full plan agrees, and it is what the delta saves.
            assert_eq!(w.plan(&desired, &own), delta.ops);
            apply_all(&mut w, &delta.ops);
            // A weight change (the API) is one compare and one write too.
            let mut reweighted = desired.clone();
            let other = *reweighted.services[&key].dests.keys().next().unwrap();
            reweighted
                .services
                .get_mut(&key)
                .unwrap()
                .dests
                .get_mut(&other)
                .unwrap()
                .weight = 5;
            let delta = w.plan_delta(
                &reweighted,
                &[Touched::Dest(key, other), Touched::Dest(key, other)],
                &own,
            );
            assert_eq!((delta.ops.len(), delta.compared), (1, 1));
            assert!(matches!(&delta.ops[0], Op::SetDest(k, d) if *k == key && d.weight == 5));
        }
    }

    #[test]
    fn a_touched_service_is_planned_whole_and_once() {
        let (t, own, w) = known();
        let key = *t.services.keys().nth(5).unwrap();
        // Quorum lost: the real servers replaced by a sorry server.
        let mut desired = t.clone();
        desired.insert(t.services[&key].spec.clone(), vec![dest("198.51.100.50:80", 1)]);
        let touched = [
            Touched::Dest(key, "192.0.2.1:8005".parse().unwrap()),
            Touched::Service(key),
        ];
        let delta = w.plan_delta(&desired, &touched, &own);
        assert_eq!(delta.ops, w.plan(&desired, &own));
        assert_eq!(delta.ops.len(), 101);
        assert_eq!(delta.compared, 100, "one service's real servers, not the table's");
        // A real server of a service missing on one side plans that service (no model
        // entry to edit): here a service to remove, owned, is deleted.
        let mut gone = t.clone();
        gone.services.remove(&key);
        let delta = w.plan_delta(
            &gone,
            &[Touched::Dest(key, "192.0.2.1:8005".parse().unwrap())],
            &own,
        );
        assert_eq!(delta.ops, vec![Op::DelService(key)]);
    }
}
