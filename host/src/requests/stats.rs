//! Per-name request counters: asked, replied, failed by kind, and a latency histogram, kept
//! with atomics so that recording never waits.

use super::{ALL_KINDS, Outcome, kind_name};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The latency histogram's upper bounds, in seconds (then `+Inf`).
pub(crate) const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0,
];

/// One request name's counters.
#[derive(Debug)]
pub(crate) struct NameStats {
    asked: AtomicU64,
    replies: AtomicU64,
    errors: [AtomicU64; ALL_KINDS.len()],
    /// Per bucket of [`LATENCY_BUCKETS`], then one for `+Inf` (not cumulative).
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
}

impl Default for NameStats {
    fn default() -> Self {
        Self {
            asked: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_nanos: AtomicU64::new(0),
        }
    }
}

/// A name's counters at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct StatsSnapshot {
    /// Requests asked from this host.
    pub(crate) asked: u64,
    /// Replies received (one per responder for `request_all`).
    pub(crate) replies: u64,
    /// Failures by kind (`timeout`, `handler_error`, ...); only kinds that happened.
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// Failures of every kind.
    pub(crate) failed: u64,
    /// Requests per latency bucket: `(upper bound in seconds, count)`, cumulative, the last
    /// bound being `+Inf` (as `null`).
    pub(crate) latency: Vec<(Option<f64>, u64)>,
    /// The sum of every request's latency, in seconds.
    pub(crate) latency_sum_seconds: f64,
    /// The mean latency in milliseconds (0 with nothing asked).
    pub(crate) mean_ms: f64,
}

impl NameStats {
    /// Counts one request's outcome, which took `took`.
    pub(crate) fn record(&self, outcome: &Outcome, took: Duration) {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let count = |kind| {
            if let Some(i) = ALL_KINDS.iter().position(|k| *k == kind) {
                self.errors[i].fetch_add(1, Ordering::Relaxed);
            }
        };
        match outcome {
            Ok(parts) => {
                for part in parts {
                    match part {
                        Ok(_) => {
                            self.replies.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(failure) => count(failure.kind),
                    }
                }
            }
            Err(failure) => count(failure.kind),
        }
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let asked = self.asked.load(Ordering::Relaxed);
        let mut errors = BTreeMap::new();
        for (kind, counter) in ALL_KINDS.iter().zip(&self.errors) {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                errors.insert(kind_name(*kind), n);
            }
        }
        let mut total = 0;
        let latency = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, counter)| {
                total += counter.load(Ordering::Relaxed);
                (LATENCY_BUCKETS.get(i).copied(), total)
            })
            .collect();
        let sum = self.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        StatsSnapshot {
            asked,
            replies: self.replies.load(Ordering::Relaxed),
            failed: errors.values().sum(),
            errors,
            latency,
            latency_sum_seconds: sum,
            mean_ms: if asked == 0 {
                0.0
            } else {
                sum * 1e3 / asked as f64
            },
        }
    }
}
