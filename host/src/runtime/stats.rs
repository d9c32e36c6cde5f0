//! A node's live counters: per service, per timer, and whether a callback runs (what the health
//! checks time). Written by the node's own threads with relaxed atomics (no lock on the message
//! path), read by snapshots into [`super::view`]'s plain values.

use super::view::{ServiceKind, ServiceSnapshot, TimerSnapshot};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One timer's counters, updated by the node's thread as it ticks.
#[derive(Debug)]
pub(crate) struct TimerStats {
    name: String,
    period: Duration,
    runs: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    /// When the last tick ended, in nanoseconds since the Unix epoch; 0: none yet.
    last_run: AtomicU64,
}

impl TimerStats {
    pub(crate) fn new(name: &str, period: Duration) -> Self {
        Self {
            name: name.to_owned(),
            period,
            runs: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            last_run: AtomicU64::new(0),
        }
    }

    /// Counts one tick that just ended; returns how many of its ticks have gone wrong so far
    /// (this one included) when it did.
    pub(crate) fn ran(&self, failure: Option<bool>) -> u64 {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        self.last_run.store(now, Ordering::Relaxed);
        match failure {
            None => 0,
            Some(panicked) => {
                let counter = if panicked {
                    &self.panicked
                } else {
                    &self.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.failed.load(Ordering::Relaxed) + self.panicked.load(Ordering::Relaxed)
            }
        }
    }

    pub(super) fn snapshot(&self) -> TimerSnapshot {
        let last = self.last_run.load(Ordering::Relaxed);
        TimerSnapshot {
            name: self.name.clone(),
            period_ms: self.period.as_secs_f64() * 1e3,
            runs: self.runs.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
            last_run: (last != 0)
                .then(|| {
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(last))
                        .ok()?
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .flatten(),
        }
    }
}

/// One service's counters, updated by its thread and by `send`.
#[derive(Debug)]
pub(crate) struct ServiceStats {
    pub(super) name: String,
    /// Set once, when the instance starts (a publisher has no loop).
    publisher: AtomicBool,
    pub(super) sent: AtomicU64,
    running: AtomicBool,
    restarts: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) last_payload: Mutex<Option<Arc<str>>>,
    /// Whether the service's callback runs, and since when as the health checks saw it.
    pub busy: Busy,
    error: Mutex<Option<String>>,
}

impl ServiceStats {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            publisher: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            running: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_payload: Mutex::new(None),
            busy: Busy::default(),
            error: Mutex::new(None),
        }
    }

    /// Counts a restart after a failure.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the service a publisher (no loop).
    pub(crate) fn set_publisher(&self) {
        self.publisher.store(true, Ordering::Relaxed);
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    pub(crate) fn set_error(&self, error: String) {
        *self.error.lock() = Some(error);
    }

    pub(super) fn snapshot(&self) -> ServiceSnapshot {
        ServiceSnapshot {
            name: self.name.clone(),
            kind: if self.publisher.load(Ordering::Relaxed) {
                ServiceKind::Publisher
            } else {
                ServiceKind::Loop
            },
            sent: self.sent.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            last_payload: self
                .last_payload
                .lock()
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            error: self.error.lock().clone(),
        }
    }
}

/// Whether a callback runs on one thread, and for how long as far as the health checks have
/// seen: what `stuck_after_ms` is measured with.
///
/// The running thread pays two plain stores to a counter of its own per callback, and reads no
/// clock (a clock read per message costs tens of ns with a fast clock source, and a system call
/// on a virtual machine whose clock source has no vDSO path). The time is taken by the reader:
/// the first health check (a few times a second) or snapshot that sees a given callback running
/// notes the time, and later ones measure from it. So a callback counts as running from at
/// most one check period after it started, never longer than it really ran.
#[derive(Debug, Default)]
pub(crate) struct Busy {
    /// Odd while a callback runs; bumped at each start and end.
    ///
    /// Invariant: written only by the one thread that runs the callbacks (a node's delivery
    /// thread, or one service's thread), so a load and a store suffice; that thread runs one
    /// callback at a time (none calls into another), so odd means "one runs".
    count: AtomicU64,
    /// The odd count a reader last saw, and when it first saw it.
    seen: Mutex<(u64, Option<Instant>)>,
}

impl Busy {
    /// Runs `callback` on the owning thread, counted as running meanwhile.
    pub(crate) fn around<T>(&self, callback: impl FnOnce() -> T) -> T {
        self.bump();
        let out = callback();
        self.bump();
        out
    }

    /// Moves the count on by one: odd on entering a callback, even on leaving it.
    fn bump(&self) {
        let count = self.count.load(Ordering::Relaxed);
        self.count.store(count.wrapping_add(1), Ordering::Release);
    }

    /// How long the running callback has run as seen from here, `None` if none runs.
    pub(crate) fn running_for(&self) -> Option<Duration> {
        let count = self.count.load(Ordering::Acquire);
        if count.is_multiple_of(2) {
            return None;
        }
        let mut seen = self.seen.lock();
        match *seen {
            (seen_count, Some(since)) if seen_count == count => Some(since.elapsed()),
            _ => {
                *seen = (count, Some(Instant::now()));
                Some(Duration::ZERO)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timers_counts_and_last_run_are_what_it_did() {
        let stats = TimerStats::new("tick", Duration::from_millis(20));
        assert_eq!(stats.snapshot().last_run, None);
        assert_eq!(stats.ran(None), 0);
        assert_eq!(stats.ran(Some(true)), 1);
        assert_eq!(stats.ran(Some(false)), 2);
        let seen = stats.snapshot();
        assert_eq!((seen.runs, seen.failed, seen.panicked), (3, 1, 1));
        assert_eq!(seen.period_ms, 20.0);
        assert!(seen.last_run.unwrap().ends_with('Z'));
    }

    #[test]
    fn busy_times_a_callback_from_when_a_check_first_saw_it() {
        let busy = Busy::default();
        assert_eq!(busy.running_for(), None, "nothing runs yet");
        busy.around(|| {
            assert_eq!(busy.running_for(), Some(Duration::ZERO), "first seen now");
            std::thread::sleep(Duration::from_millis(30));
            let ran = busy.running_for().expect("still running");
            assert!(ran >= Duration::from_millis(30), "{ran:?}");
        });
        assert_eq!(busy.running_for(), None, "returned");
        // The next callback is timed afresh, not from the first one's sighting.
        busy.around(|| {
            assert_eq!(busy.running_for(), Some(Duration::ZERO));
        });
        assert_eq!(busy.running_for(), None);
    }
}
