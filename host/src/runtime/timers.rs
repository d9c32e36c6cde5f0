//! A node's timers: deadlines its delivery loop waits on, and the ticks it runs when one passes.
//!
//! Guarantees: a timer ticks on the node's own thread, between deliveries, so never at the same
//! time as a subscription callback; its first tick comes one period after the instance starts;
//! a late tick runs once and the next is due a period after it (ticks never pile up); timers run
//! only while the delivery loop runs, so they pause during a hand-over and end with the
//! instance. A tick's error or panic is logged with the count so far; the timer keeps ticking.

use super::state::NodeShared;
use super::stats::TimerStats;
use hivemind::abi::{LogLevel, MIN_TIMER_PERIOD_NANOS, NodeBox, TimerDecl};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One timer's schedule.
struct Timer {
    name: String,
    period: Duration,
    /// When it ticks next.
    due: Instant,
    /// Its counters, as the page and the API show them.
    stats: Arc<TimerStats>,
}

/// An instance's timers, by id.
pub(super) struct Timers {
    timers: Vec<Timer>,
}

impl Timers {
    /// The timers the node registered, first due one period from `now`, with their counters
    /// registered in `shared`. A period below the ABI's minimum (1 ms) is raised to it.
    pub(super) fn new(decls: &[TimerDecl], now: Instant, shared: &NodeShared) -> Self {
        let timers = decls
            .iter()
            .map(|decl| {
                let period = Duration::from_nanos(decl.period_nanos.max(MIN_TIMER_PERIOD_NANOS));
                Timer {
                    name: decl.name.as_str().to_owned(),
                    period,
                    // A period too long to add (centuries) never comes due.
                    due: now
                        .checked_add(period)
                        .unwrap_or(now + Duration::from_secs(1 << 32)),
                    stats: Arc::new(TimerStats::new(decl.name.as_str(), period)),
                }
            })
            .collect::<Vec<_>>();
        shared.register_timers(timers.iter().map(|t| t.stats.clone()).collect());
        Self { timers }
    }

    /// The earliest deadline, if the node has timers.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.due).min()
    }

    /// Ticks every timer that is due; cheap (no clock read) for a node without timers.
    pub(super) fn tick_due(&mut self, object: &mut NodeBox, shared: &NodeShared) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        for (index, timer) in self.timers.iter_mut().enumerate() {
            if timer.due > now {
                continue;
            }
            let outcome = shared
                .busy
                .around(|| object.tick(index as u32).into_result());
            let after = Instant::now();
            let next = timer.due + timer.period;
            timer.due = if next > after {
                next
            } else {
                after + timer.period
            };
            let failures = timer
                .stats
                .ran(outcome.as_ref().err().map(|error| error.panicked));
            if let Err(error) = outcome {
                shared.log.write(
                    LogLevel::Error,
                    &format!(
                        "timer `{}` {} ({failures} so far): {}",
                        timer.name,
                        if error.panicked { "panicked" } else { "failed" },
                        error.message
                    ),
                );
            }
        }
    }
}
