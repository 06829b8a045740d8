//! The anycast planner, pure: an anycast group's tracking verdict, the operator's
//! maintenance, the daemon stopping and what the kernel table holds now -> whether
//! its prefixes must be announced (routes in the table BIRD imports from) and why.

use crate::shared::AnycastTracking;

/// What one group's decision is made of.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The tracker's verdict; `None` until its first one (just started).
    pub tracking: Option<&'a AnycastTracking>,
    pub maintenance: bool,
    pub stopping: bool,
    /// Every prefix of the group is in the table now (left by a previous run, or
    /// written by this one).
    pub installed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub announce: bool,
    /// `healthy`, `maintenance`, `stopping`, the items that are down, or why the
    /// table is left as it is.
    pub why: String,
}

/// The rules, first match wins:
/// 1. stopping withdraws (first thing on stop, before the servers stop);
/// 2. maintenance withdraws;
/// 3. a tracked item down withdraws;
/// 4. with no verdict yet (the tracker not heard from, or an item not checked
///    yet), the table is left as it is: a restart adopts its announcement (no
///    flap), a fresh start waits for the first results before announcing;
/// 5. otherwise announce.
pub fn decide(i: Inputs<'_>) -> Decision {
    let d = |announce: bool, why: &str| Decision {
        announce,
        why: why.to_string(),
    };
    if i.stopping {
        return d(false, "stopping");
    }
    if i.maintenance {
        return d(false, "maintenance");
    }
    match i.tracking {
        Some(t) if t.fault => d(false, &t.reasons.join("; ")),
        Some(t) if !t.pending => d(true, "healthy"),
        _ if i.installed => d(true, "adopted (tracked items not checked yet)"),
        _ => d(false, "waiting for the first check results"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking(fault: bool, pending: bool) -> AnycastTracking {
        AnycastTracking {
            fault,
            pending,
            reasons: if fault {
                vec!["check nginx down".into()]
            } else {
                vec![]
            },
            items: vec![],
        }
    }

    fn inputs(t: Option<&AnycastTracking>) -> Inputs<'_> {
        Inputs {
            tracking: t,
            maintenance: false,
            stopping: false,
            installed: false,
        }
    }

    #[test]
    fn healthy_announces_and_a_down_item_withdraws_naming_it() {
        let ok = tracking(false, false);
        assert_eq!(
            decide(inputs(Some(&ok))),
            Decision {
                announce: true,
                why: "healthy".into()
            }
        );
        let down = tracking(true, false);
        assert_eq!(
            decide(Inputs {
                installed: true,
                ..inputs(Some(&down))
            }),
            Decision {
                announce: false,
                why: "check nginx down".into()
            }
        );
    }

    #[test]
    fn stopping_and_maintenance_withdraw_a_healthy_group() {
        let ok = tracking(false, false);
        let stop = decide(Inputs {
            stopping: true,
            maintenance: true,
            installed: true,
            ..inputs(Some(&ok))
        });
        assert_eq!((stop.announce, stop.why.as_str()), (false, "stopping"));
        let maint = decide(Inputs {
            maintenance: true,
            installed: true,
            ..inputs(Some(&ok))
        });
        assert_eq!((maint.announce, maint.why.as_str()), (false, "maintenance"));
    }

    /// A restart finds its routes in the table and keeps them until a verdict
    /// says otherwise; a fresh start announces only after the first results.
    #[test]
    fn no_verdict_yet_keeps_what_the_table_holds() {
        let pending = tracking(false, true);
        for t in [None, Some(&pending)] {
            assert!(
                decide(Inputs {
                    installed: true,
                    ..inputs(t)
                })
                .announce
            );
            assert!(!decide(inputs(t)).announce);
        }
        // A fault is known even while another item is pending.
        let both = tracking(true, true);
        assert!(
            !decide(Inputs {
                installed: true,
                ..inputs(Some(&both))
            })
            .announce
        );
    }
}
