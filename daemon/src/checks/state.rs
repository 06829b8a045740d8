//! The rise/fall state machine of one check (pure: results in, changes out).
//!
//! A check starts `Unknown`. It becomes `Up` after `rise` consecutive successes and
//! `Down` after `fall` consecutive failures, from `Unknown` as from the opposite
//! state; a result of the other sign resets the count. While up, an exec check with
//! `dynamic_weight` may also change its weight: that is a change too.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    #[default]
    Unknown,
    Up,
    Down,
}

impl Verdict {
    /// `Some(true)` up, `Some(false)` down, `None` not decided yet.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Verdict::Unknown => None,
            Verdict::Up => Some(true),
            Verdict::Down => Some(false),
        }
    }
}

/// What a recorded result changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: Verdict,
    /// `Up` or `Down`.
    pub to: Verdict,
    /// The weight given by the last successful exec with `dynamic_weight`
    /// (`None`: the configured weight).
    pub dynamic_weight: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckState {
    rise: u32,
    fall: u32,
    verdict: Verdict,
    consecutive_ok: u32,
    consecutive_fail: u32,
    dynamic_weight: Option<i32>,
}

impl CheckState {
    /// `rise` and `fall` of 0 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> CheckState {
        CheckState {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: Verdict::Unknown,
            consecutive_ok: 0,
            consecutive_fail: 0,
            dynamic_weight: None,
        }
    }

    /// Keeps the verdict and weight, takes new thresholds, restarts the counts
    /// (a reconfigured check: no flap, but the new settings decide from now on).
    pub fn reconfigured(&self, rise: u32, fall: u32) -> CheckState {
        CheckState {
            verdict: self.verdict,
            dynamic_weight: self.dynamic_weight,
            ..CheckState::new(rise, fall)
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }
    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }
    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }
    pub fn dynamic_weight(&self) -> Option<i32> {
        self.dynamic_weight
    }

    /// Records one check's result; `weight` is the dynamic weight of a success.
    pub fn record(&mut self, ok: bool, weight: Option<i32>) -> Option<Change> {
        let from = self.verdict;
        if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            if self.verdict == Verdict::Up {
                if weight != self.dynamic_weight {
                    self.dynamic_weight = weight;
                    return Some(self.change(from));
                }
                return None;
            }
            if self.consecutive_ok >= self.rise {
                self.verdict = Verdict::Up;
                self.dynamic_weight = weight;
                return Some(self.change(from));
            }
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            if self.verdict != Verdict::Down && self.consecutive_fail >= self.fall {
                self.verdict = Verdict::Down;
                self.dynamic_weight = None;
                return Some(self.change(from));
            }
        }
        None
    }

    fn change(&self, from: Verdict) -> Change {
        Change {
            from,
            to: self.verdict,
            dynamic_weight: self.dynamic_weight,
        }
    }
}
