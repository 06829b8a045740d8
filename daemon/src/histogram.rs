//! A fixed-bucket histogram in the Prometheus sense, for failover durations and
//! check latencies (`/metrics` renders it; status shows it).

use serde::Serialize;

/// Failover durations, seconds: from 10 ms adverts to 1 s adverts with slack.
pub const FAILOVER_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.5, 5.0, 10.0, 30.0];
/// Check latencies, seconds.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// Upper bounds, ascending.
    #[serde(skip)]
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative: the exposition accumulates);
    /// values above the last bound only count in `count` and `sum`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// `(upper bound, cumulative count)` per bucket, as Prometheus wants them.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .zip(self.counts.iter())
            .scan(0u64, |acc, (b, c)| {
                *acc += c;
                Some((*b, *acc))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_accumulate_and_overflow_counts_only_in_total() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.1);
        h.observe(0.5);
        h.observe(7.0);
        assert_eq!(h.cumulative().collect::<Vec<_>>(), vec![(0.1, 2), (1.0, 3)]);
        assert_eq!(h.count, 4);
        assert!((h.sum - 7.65).abs() < 1e-9);
    }
}
