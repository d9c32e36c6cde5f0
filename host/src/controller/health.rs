//! Health checks: the running nodes (failed on their own, stuck, crashed), the late builds, and
//! the host's own threads (the control thread, the reconciler, the watcher).
//!
//! The node checks run on the control thread, a few times a second; the thread checks run on
//! the caller's (health) thread and never wait for the control thread, so a control thread
//! busy with a slow build is not mistaken for a dead one.

use super::Core;
use super::STOP_DEADLINE;
use super::actor::Actor;
use super::slot::Phase;
use crate::events::EventKind;
use crate::runtime::NodeStatus;
use std::thread::JoinHandle;
use std::time::Instant;

impl Actor {
    /// Looks at every running node once; see [`super::Controller::check_health`].
    pub(super) fn check_health(&mut self) {
        self.check_late();
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            let Some(slot) = self.slots.get_mut(&name) else {
                continue;
            };
            let Phase::Running(runtime) = &mut slot.phase else {
                continue;
            };
            let snapshot = runtime.snapshot();
            // Crashes can come faster than the checks: each one is reported.
            while slot.reported_crashes < snapshot.crashes {
                slot.reported_crashes += 1;
                let how = snapshot.last_crash.clone().unwrap_or_default();
                tracing::error!("isolated node `{name}` crashed: {how}");
                self.core.events.emit(EventKind::Crashed, Some(&name), how);
            }
            match snapshot.status {
                NodeStatus::Failed => {
                    let reason = snapshot.error.unwrap_or_default();
                    self.core.bus.leave(&name);
                    self.core.schemas.forget(&name);
                    let Phase::Running(mut runtime) =
                        std::mem::replace(&mut slot.phase, Phase::Failed)
                    else {
                        continue;
                    };
                    slot.last_error = Some(reason.clone());
                    // Its threads are ending on their own; join them off this thread.
                    std::thread::spawn(move || runtime.join(Instant::now() + STOP_DEADLINE));
                    tracing::error!("{reason}");
                    self.core
                        .events
                        .emit(EventKind::Failed, Some(&name), reason);
                }
                NodeStatus::Stuck if !slot.reported_stuck => {
                    slot.reported_stuck = true;
                    let what = snapshot.error.unwrap_or_default();
                    tracing::warn!("node `{name}` is stuck: {what}");
                    self.core.events.emit(EventKind::Stuck, Some(&name), what);
                }
                NodeStatus::Running if slot.reported_stuck => {
                    slot.reported_stuck = false;
                    tracing::info!("node `{name}` runs again");
                    self.core
                        .events
                        .emit(EventKind::Stuck, Some(&name), "runs again");
                }
                _ => {}
            }
        }
    }

    /// Reports each late build whose thread has returned from the node's code.
    fn check_late(&mut self) {
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.late)
            .into_iter()
            .partition(|late| late.runtime.is_finished());
        self.late = waiting;
        for mut late in done {
            late.runtime.join(Instant::now());
            let message = format!(
                "the late build of node `{}` returned {:.1} s after its deadline; that instance was discarded and its library closed",
                late.name,
                late.since.elapsed().as_secs_f64()
            );
            tracing::warn!("{message}");
            self.core
                .events
                .emit(EventKind::Failed, Some(&late.name), message);
        }
    }
}

/// Reports, once each, the host's threads that have ended while the hive runs: `watched` (the
/// reconciler, the watcher) and the control thread.
pub(super) fn check_threads(
    core: &Core,
    watched: &mut Vec<(&'static str, JoinHandle<()>)>,
    control: Option<&JoinHandle<()>>,
) {
    let mut dead = Vec::new();
    watched.retain(|(name, thread)| {
        let finished = thread.is_finished();
        if finished {
            dead.push(*name);
        }
        !finished
    });
    if control.is_some_and(JoinHandle::is_finished) {
        dead.push("the control thread");
    }
    for name in dead {
        let message = format!(
            "{name} of this hm has stopped: changes to files are no longer applied. The nodes run on; restart hm to recover (and report the log above)"
        );
        let mut problems = core.problems.lock();
        if problems.contains(&message) {
            continue;
        }
        problems.push(message.clone());
        drop(problems);
        tracing::error!("{message}");
        core.events.emit(EventKind::Hive, None, message);
    }
}
