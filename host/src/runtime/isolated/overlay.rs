//! What an isolated node's process reports of itself, merged into what the host counts, and the
//! counters kept across the node's processes when one dies: the host counts what it sees
//! (messages sent, drops in the queue), the process the rest.

use crate::runtime::{NodeSnapshot, NodeStatus, TimerSnapshot};

/// What an isolated node's process reports of itself, merged into what the host counts:
/// the host counts what it sees (messages sent, drops in the queue), the process the rest.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    /// The process's last report, if it has sent one.
    pub report: Option<NodeSnapshot>,
    /// Counters of the processes that died before it, per subscription (delivered, failed,
    /// panicked) and per service (restarts), added to the report's.
    pub carried: Carried,
    /// Set while the process is dead: how it died.
    pub crashed: Option<String>,
    /// How the process died the last time.
    pub last_crash: Option<String>,
    /// How many times a process of this node died.
    pub crashes: u64,
}

/// Counters kept across an isolated node's processes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Carried {
    subscriptions: Vec<[u64; 3]>,
    restarts: Vec<u64>,
    /// The timers as the dead processes left them: their runs, failures and panics summed.
    timers: Vec<TimerSnapshot>,
}

impl Overlay {
    /// Keeps the dying process's counters for the next one.
    pub(crate) fn carry(&mut self) {
        let Some(report) = self.report.take() else {
            return;
        };
        let subscriptions = &mut self.carried.subscriptions;
        subscriptions.resize(report.subscriptions.len().max(subscriptions.len()), [0; 3]);
        for (sum, s) in subscriptions.iter_mut().zip(&report.subscriptions) {
            sum[0] += s.delivered;
            sum[1] += s.failed;
            sum[2] += s.panicked;
        }
        let restarts = &mut self.carried.restarts;
        restarts.resize(report.services.len().max(restarts.len()), 0);
        for (sum, s) in restarts.iter_mut().zip(&report.services) {
            *sum += s.restarts;
        }
        self.carried.timers = add_timers(&self.carried.timers, &report.timers);
    }

    /// `host`'s view of the node with what the process said added.
    pub(super) fn apply(&self, host: &mut NodeSnapshot) {
        host.isolated = true;
        host.crashes = self.crashes;
        host.last_crash.clone_from(&self.last_crash);
        if let Some(how) = &self.crashed {
            if matches!(host.status, NodeStatus::Running | NodeStatus::Loading) {
                host.status = NodeStatus::Crashed;
                host.error = Some(how.clone());
            }
            for service in &mut host.services {
                service.running = false;
            }
        }
        let carried = &self.carried;
        host.timers.clone_from(&carried.timers);
        for (index, s) in host.subscriptions.iter_mut().enumerate() {
            let [delivered, failed, panicked] = carried
                .subscriptions
                .get(index)
                .copied()
                .unwrap_or_default();
            s.delivered = delivered;
            s.failed = failed;
            s.panicked = panicked;
        }
        for (index, s) in host.services.iter_mut().enumerate() {
            s.restarts = carried.restarts.get(index).copied().unwrap_or_default();
        }
        let Some(report) = self.report.as_ref().filter(|_| self.crashed.is_none()) else {
            return;
        };
        if host.status == NodeStatus::Running
            && matches!(report.status, NodeStatus::Stuck | NodeStatus::Failed)
        {
            host.status = report.status;
            host.error.clone_from(&report.error);
        }
        for (s, theirs) in host.subscriptions.iter_mut().zip(&report.subscriptions) {
            s.delivered += theirs.delivered;
            s.failed += theirs.failed;
            s.panicked += theirs.panicked;
        }
        for (s, theirs) in host.services.iter_mut().zip(&report.services) {
            s.kind = theirs.kind;
            s.running = theirs.running;
            s.restarts += theirs.restarts;
            s.error.clone_from(&theirs.error);
        }
        host.timers = add_timers(&carried.timers, &report.timers);
    }
}

/// `now` (the running process's timers) with `carried`'s counts added, by position; a timer
/// only in `carried` (the new process has not reported yet) is kept as it was.
fn add_timers(carried: &[TimerSnapshot], now: &[TimerSnapshot]) -> Vec<TimerSnapshot> {
    let mut timers: Vec<TimerSnapshot> = now.to_vec();
    for (index, old) in carried.iter().enumerate() {
        match timers.get_mut(index) {
            Some(t) => {
                t.runs += old.runs;
                t.failed += old.failed;
                t.panicked += old.panicked;
                if t.last_run.is_none() {
                    t.last_run.clone_from(&old.last_run);
                }
            }
            None => timers.push(old.clone()),
        }
    }
    timers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::{ServiceKind, ServiceSnapshot, SubscriptionSnapshot};

    fn node(delivered: u64, restarts: u64) -> NodeSnapshot {
        NodeSnapshot {
            services: vec![ServiceSnapshot {
                name: "pong".into(),
                kind: ServiceKind::Loop,
                sent: 0,
                running: true,
                restarts,
                refused: 0,
                last_payload: None,
                error: None,
            }],
            subscriptions: vec![SubscriptionSnapshot {
                pattern: "ping".into(),
                delivered,
                dropped: 0,
                failed: 0,
                panicked: 0,
            }],
            ..NodeSnapshot::idle("echo", NodeStatus::Running)
        }
    }

    #[test]
    fn an_overlay_adds_the_processes_counters_across_crashes() {
        let mut overlay = Overlay {
            report: Some(node(40, 1)),
            ..Overlay::default()
        };
        overlay.carry();
        overlay.crashes = 1;
        overlay.crashed = Some("its process died (SIGSEGV)".into());
        let mut seen = node(0, 0);
        overlay.apply(&mut seen);
        assert_eq!(seen.status, NodeStatus::Crashed);
        assert_eq!(seen.subscriptions[0].delivered, 40);
        assert!(
            !seen.services[0].running,
            "no service runs while the process is down"
        );
        assert!(seen.isolated);
        assert_eq!(seen.crashes, 1);

        overlay.crashed = None;
        overlay.report = Some(node(2, 0));
        let mut seen = node(0, 0);
        overlay.apply(&mut seen);
        assert_eq!(seen.status, NodeStatus::Running);
        assert_eq!(
            seen.subscriptions[0].delivered, 42,
            "carried plus the new process's"
        );
        assert_eq!(seen.services[0].restarts, 1);
    }

    #[test]
    fn an_isolated_nodes_timers_are_counted_across_its_processes() {
        let timer = |runs: u64, panicked: u64, last: Option<&str>| TimerSnapshot {
            name: "tick".into(),
            period_ms: 25.0,
            runs,
            failed: 0,
            panicked,
            last_run: last.map(str::to_owned),
        };
        let mut report = node(0, 0);
        report.timers = vec![timer(10, 2, Some("2026-01-01T00:00:00Z"))];
        let mut overlay = Overlay {
            report: Some(report),
            ..Overlay::default()
        };
        overlay.carry();
        overlay.crashed = Some("its process died (SIGABRT)".into());
        let mut seen = node(0, 0);
        overlay.apply(&mut seen);
        assert_eq!(
            seen.timers,
            [timer(10, 2, Some("2026-01-01T00:00:00Z"))],
            "kept while the process is down"
        );

        overlay.crashed = None;
        let mut report = node(0, 0);
        report.timers = vec![timer(3, 0, None)];
        overlay.report = Some(report);
        let mut seen = node(0, 0);
        overlay.apply(&mut seen);
        assert_eq!(
            seen.timers,
            [timer(13, 2, Some("2026-01-01T00:00:00Z"))],
            "the new process's counts added to the dead one's"
        );
    }

    #[test]
    fn a_stuck_or_failed_process_shows_through() {
        let mut report = node(0, 0);
        report.status = NodeStatus::Stuck;
        report.error = Some("a subscription callback has run for 11.0 s".into());
        let overlay = Overlay {
            report: Some(report),
            ..Overlay::default()
        };
        let mut seen = node(0, 0);
        overlay.apply(&mut seen);
        assert_eq!(seen.status, NodeStatus::Stuck);
        assert!(seen.error.unwrap().contains("11.0 s"));
    }
}
