//! Message rates, computed in one place for every page and client: the same node shows the same
//! rate on every page at the same moment.
//!
//! Guarantees:
//! - Each time the hive's JSON is made for the page or the API ([`Rates::annotate`]), the
//!   counters are sampled, at most once per [`EVERY`]; the samples of the last [`WINDOW`] are
//!   kept (a fixed bound: `WINDOW / EVERY + 1` samples).
//! - Rates come from the stored samples only (the newest against the oldest that has the
//!   counter), so every request between two samples gets the same numbers.
//! - Each service gets `rate` (messages sent per second) and each subscription `rate`
//!   (messages delivered per second). Until a counter has been seen twice, at least
//!   [`EVERY`] apart, it has no `rate` (the page shows `–`). A counter that went down (a
//!   restarted instance) counts from its new value.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The least time between two samples.
pub(super) const EVERY: Duration = Duration::from_secs(1);
/// How far back rates look.
pub(super) const WINDOW: Duration = Duration::from_secs(10);
/// The most samples kept.
const KEPT: usize = (WINDOW.as_secs() / EVERY.as_secs()) as usize + 1;

/// The counters of the hive at one moment, by counter key.
struct Sample {
    at: Instant,
    counters: HashMap<String, u64>,
}

/// The hive's recent counters.
#[derive(Default)]
pub(super) struct Rates {
    /// Oldest first; at most [`KEPT`], none older than [`WINDOW`] before the newest.
    samples: Mutex<VecDeque<Sample>>,
}

impl Rates {
    /// Samples the counters in `hive` (the JSON of `/api/hive`) if the last sample is
    /// [`EVERY`] old, then writes each service's and subscription's `rate` into it.
    pub(super) fn annotate(&self, hive: &mut Value) {
        self.annotate_at(hive, Instant::now());
    }

    fn annotate_at(&self, hive: &mut Value, now: Instant) {
        let mut samples = self.samples.lock();
        if samples.back().is_none_or(|last| now >= last.at + EVERY) {
            let mut counters = HashMap::new();
            visit(hive, |key, count, _| {
                counters.insert(key, count);
            });
            samples.push_back(Sample { at: now, counters });
            while samples.len() > KEPT
                || samples
                    .front()
                    .is_some_and(|first| now.duration_since(first.at) > WINDOW)
            {
                samples.pop_front();
            }
        }
        let Some(newest) = samples.back() else {
            return;
        };
        visit(hive, |key, _, item| {
            let Some(&last) = newest.counters.get(&key) else {
                return;
            };
            // From the oldest sample that has the counter, or from its last restart.
            let mut first: Option<(Instant, u64)> = None;
            let mut previous: Option<u64> = None;
            for sample in samples.iter() {
                if let Some(&count) = sample.counters.get(&key) {
                    if previous.is_none_or(|before| count < before) {
                        first = Some((sample.at, count));
                    }
                    previous = Some(count);
                }
            }
            let Some((since, first)) = first else { return };
            let seconds = newest.at.duration_since(since).as_secs_f64();
            if seconds <= 0.0 {
                return;
            }
            let rate = last.saturating_sub(first) as f64 / seconds;
            item["rate"] = serde_json::json!((rate * 1000.0).round() / 1000.0);
        });
    }
}

/// Calls `each(key, count, item)` for every service (`sent`) and subscription (`delivered`) of
/// every node in `hive`, where `key` names the counter across samples.
fn visit(hive: &mut Value, mut each: impl FnMut(String, u64, &mut Value)) {
    let Some(nodes) = hive["nodes"].as_array_mut() else {
        return;
    };
    for node in nodes {
        let id = format!(
            "{}\u{0}{}",
            node["host"].as_str().unwrap_or_default(),
            node["name"].as_str().unwrap_or_default()
        );
        if let Some(services) = node["services"].as_array_mut() {
            for service in services {
                let key = format!(
                    "{id}\u{0}service\u{0}{}",
                    service["name"].as_str().unwrap_or_default()
                );
                let count = service["sent"].as_u64().unwrap_or(0);
                each(key, count, service);
            }
        }
        if let Some(subscriptions) = node["subscriptions"].as_array_mut() {
            for (index, subscription) in subscriptions.iter_mut().enumerate() {
                let key = format!("{id}\u{0}subscription\u{0}{index}");
                let count = subscription["delivered"].as_u64().unwrap_or(0);
                each(key, count, subscription);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hive(sent: u64, delivered: u64) -> Value {
        json!({"nodes": [
            {"host": "h", "name": "batsignal", "services": [{"name": "bat-signal-main", "sent": sent}], "subscriptions": []},
            {"host": "h", "name": "batman", "services": [], "subscriptions": [{"pattern": "bat-signal-*", "delivered": delivered}]},
        ]})
    }

    #[test]
    fn every_request_between_two_samples_gets_the_same_rates() {
        let rates = Rates::default();
        let start = Instant::now();
        let mut first = hive(0, 0);
        rates.annotate_at(&mut first, start);
        assert!(
            first["nodes"][0]["services"][0].get("rate").is_none(),
            "one sample gives no rate"
        );
        let mut later = hive(10, 8);
        rates.annotate_at(&mut later, start + Duration::from_secs(2));
        assert_eq!(later["nodes"][0]["services"][0]["rate"], 5.0);
        assert_eq!(later["nodes"][1]["subscriptions"][0]["rate"], 4.0);
        // Half a second on, counters moved, but no new sample is due: the same numbers.
        let mut again = hive(13, 9);
        rates.annotate_at(&mut again, start + Duration::from_millis(2500));
        assert_eq!(again["nodes"][0]["services"][0]["rate"], 5.0);
        assert_eq!(again["nodes"][1]["subscriptions"][0]["rate"], 4.0);
    }

    #[test]
    fn old_samples_leave_the_window_and_counters_that_restart_count_from_zero() {
        let rates = Rates::default();
        let start = Instant::now();
        for second in 0..=30 {
            let mut value = hive(second * 2, 0);
            rates.annotate_at(&mut value, start + Duration::from_secs(second));
        }
        assert!(rates.samples.lock().len() <= KEPT);
        let mut value = hive(62, 0);
        rates.annotate_at(&mut value, start + Duration::from_secs(31));
        assert_eq!(value["nodes"][0]["services"][0]["rate"], 2.0);
        // The node was reloaded: its counter starts again, below the stored ones, and its rate
        // counts from there.
        let mut value = hive(1, 0);
        rates.annotate_at(&mut value, start + Duration::from_secs(32));
        assert!(value["nodes"][0]["services"][0].get("rate").is_none());
        let mut value = hive(4, 0);
        rates.annotate_at(&mut value, start + Duration::from_secs(33));
        assert_eq!(value["nodes"][0]["services"][0]["rate"], 3.0);
    }
}
