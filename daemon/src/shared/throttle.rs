//! A log throttle for events a peer or an endpoint can repeat at will (a failing
//! announcement, a dropped notification): the first is logged, then at most one
//! line per interval, saying how many were not logged in between.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// One more event at `now`: `Some(n)` when it is to be logged, `n` events not
    /// logged since the last line; `None` when it is not.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_count() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.hit(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(t.hit(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(t.hit(t0 + Duration::from_secs(10)), Some(99));
        assert_eq!(t.hit(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(30)), Some(1));
    }
}
