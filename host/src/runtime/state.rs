//! A node's shared state: what its threads, its host object and the controller all see of one
//! instance (its status, its registrations and counters, how it stops and asks), and the one
//! place its snapshot is made.

use super::asking::Asking;
use super::stats::{Busy, ServiceStats, TimerStats};
use super::view::{NodeSnapshot, NodeStatus, SubscriptionSnapshot};
use crate::bus::{Subscription, SubscriptionStats, Topic};
use crate::config::FaultPolicy;
use crate::loader::LibraryInfo;
use crate::logging::NodeLog;
use hivemind::abi::{LogLevel, SendErrorKind};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Adds to a node's view what a driver keeps elsewhere (see [`NodeShared::adjust_views`]).
pub(crate) type Adjust = Box<dyn Fn(&mut NodeSnapshot) + Send + Sync>;

struct State {
    status: NodeStatus,
    error: Option<String>,
    library: Option<LibraryInfo>,
    services: Vec<Arc<ServiceStats>>,
    subscriptions: Vec<(String, Arc<SubscriptionStats>)>,
    timers: Vec<Arc<TimerStats>>,
}

/// Why a message was not sent: its kind (for the node's code) and the reason (for people).
pub(super) type Refused = (SendErrorKind, String);

/// The state a node's threads share with its host object and the controller.
pub(crate) struct NodeShared {
    /// The node's name.
    pub name: Arc<str>,
    /// The node's log.
    pub log: NodeLog,
    max_payload_bytes: usize,
    /// What to do when the node's code fails.
    pub faults: FaultPolicy,
    /// Whether a callback runs on the node's thread, and since when as the health checks saw it.
    pub busy: Busy,
    stopping: AtomicBool,
    sleepers: Mutex<()>,
    wake: Condvar,
    /// The node's services' topics and counters, by service id; set once it has registered.
    outlets: OnceLock<Vec<(Arc<Topic>, Arc<ServiceStats>)>>,
    state: Mutex<State>,
    /// Set by a driver that keeps part of the node's counters elsewhere (an isolated node's
    /// process reports them): adds them to the host's view in every snapshot.
    adjust: OnceLock<Adjust>,
    /// How the node asks requests; set before its constructor runs.
    pub asking: OnceLock<Asking>,
}

impl NodeShared {
    pub(crate) fn new(
        name: Arc<str>,
        log: NodeLog,
        max_payload_bytes: usize,
        faults: FaultPolicy,
    ) -> Self {
        Self {
            name,
            log,
            max_payload_bytes,
            faults,
            busy: Busy::default(),
            stopping: AtomicBool::new(false),
            sleepers: Mutex::new(()),
            wake: Condvar::new(),
            outlets: OnceLock::new(),
            state: Mutex::new(State {
                status: NodeStatus::Loading,
                error: None,
                library: None,
                services: Vec::new(),
                subscriptions: Vec::new(),
                timers: Vec::new(),
            }),
            adjust: OnceLock::new(),
            asking: OnceLock::new(),
        }
    }

    /// Publishes a payload on service `service` of this node.
    pub(crate) fn send(&self, service: u32, payload: &str) -> Result<(), Refused> {
        if self.is_stopping() {
            return Err((SendErrorKind::Stopping, "the node is stopping".into()));
        }
        self.forward(service, payload)
    }

    /// Publishes what a service of this node has sent, even while the node stops: an isolated
    /// node's process sent it before it heard of the stop.
    pub(crate) fn forward(&self, service: u32, payload: &str) -> Result<(), Refused> {
        let Some(outlets) = self.outlets.get() else {
            return Err(self.refuse(
                SendErrorKind::NotStarted,
                "a message was sent before the node started (send from a service or a subscription, not from Node::new)".into(),
            ));
        };
        let Some((topic, stats)) = outlets.get(service as usize) else {
            return Err(self.refuse(
                SendErrorKind::UnknownService,
                format!("this node has no service number {service}"),
            ));
        };
        if payload.len() > self.max_payload_bytes {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(self.refuse(SendErrorKind::TooLarge, format!(
                "service `{}` sent a payload of {} bytes, over the hive's limit of {} bytes ([messages] max_payload_bytes in config/hive.toml); it was not sent",
                topic.name(),
                payload.len(),
                self.max_payload_bytes
            )));
        }
        let sent = stats.sent.fetch_add(1, Ordering::Relaxed);
        // Keeping every payload would cost a lock and a copy per message: a busy service keeps
        // one in 256 once it has sent 256.
        if sent < 256 || sent % 256 == 0 {
            *stats.last_payload.lock() = Some(payload.into());
        }
        topic.publish(&self.name, payload);
        Ok(())
    }

    /// Counts a payload of service `service` refused before it reached [`Self::forward`];
    /// returns how many that service had refused before.
    pub(crate) fn count_refused(&self, service: u32) -> u64 {
        self.outlets
            .get()
            .and_then(|outlets| outlets.get(service as usize))
            .map_or(0, |(_, stats)| {
                stats.refused.fetch_add(1, Ordering::Relaxed)
            })
    }

    fn refuse(&self, kind: SendErrorKind, reason: String) -> Refused {
        self.log.write(LogLevel::Warn, &reason);
        (kind, reason)
    }

    /// Sleeps up to `duration`, waking early when the node stops; returns whether it still runs.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.sleepers.lock();
        while !self.is_stopping() {
            match deadline {
                Some(deadline) => {
                    if self.wake.wait_until(&mut guard, deadline).timed_out() {
                        break;
                    }
                }
                None => self.wake.wait(&mut guard),
            }
        }
        !self.is_stopping()
    }

    /// Whether the node has been asked to stop.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Asks the node to stop and wakes every sleeping service.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let _guard = self.sleepers.lock();
        self.wake.notify_all();
    }

    /// Records the registered services (by id) and subscriptions; returns the services' counters.
    pub(crate) fn register(
        &self,
        topics: Vec<Arc<Topic>>,
        subscriptions: &[Subscription],
    ) -> Vec<Arc<ServiceStats>> {
        let stats: Vec<Arc<ServiceStats>> = topics
            .iter()
            .map(|topic| Arc::new(ServiceStats::new(topic.name())))
            .collect();
        let _ = self
            .outlets
            .set(topics.into_iter().zip(stats.iter().cloned()).collect());
        let mut state = self.state.lock();
        state.services = stats.clone();
        state.subscriptions = subscriptions
            .iter()
            .map(|s| (s.pattern.as_str().to_owned(), s.stats.clone()))
            .collect();
        stats
    }

    /// Records the instance's timers' counters, by timer id.
    pub(crate) fn register_timers(&self, timers: Vec<Arc<TimerStats>>) {
        self.state.lock().timers = timers;
    }

    pub(crate) fn set_library(&self, info: LibraryInfo) {
        self.state.lock().library = Some(info);
    }

    pub(crate) fn set_running(&self) {
        self.state.lock().status = NodeStatus::Running;
    }

    pub(crate) fn set_stopped(&self) {
        let mut state = self.state.lock();
        if state.status != NodeStatus::Failed {
            state.status = NodeStatus::Stopped;
        }
    }

    /// Marks the node failed, with the error in its log and the host's.
    pub(crate) fn fail(&self, error: &str) {
        self.log.write_to_file(LogLevel::Error, error);
        tracing::error!("node `{}` failed: {error}", self.name);
        let mut state = self.state.lock();
        state.status = NodeStatus::Failed;
        state.error = Some(error.to_owned());
    }

    /// What has run for longer than `stuck_after`, if anything.
    pub(crate) fn stuck(&self) -> Option<String> {
        let limit = self.faults.stuck_after;
        let describe = |what: String, took: Duration| {
            format!(
                "{what} has run for {:.1} s (stuck_after_ms = {}); the rest of the hive is not affected",
                took.as_secs_f64(),
                limit.as_millis()
            )
        };
        if let Some(took) = self.busy.running_for().filter(|t| *t > limit) {
            return Some(describe("a subscription callback".into(), took));
        }
        let state = self.state.lock();
        state.services.iter().find_map(|service| {
            service
                .busy
                .running_for()
                .filter(|t| *t > limit)
                .map(|took| describe(format!("service `{}`", service.name), took))
        })
    }

    pub(crate) fn snapshot(&self) -> NodeSnapshot {
        let mut snapshot = self.own_snapshot();
        if let Some(adjust) = self.adjust.get() {
            adjust(&mut snapshot);
        }
        snapshot
    }

    /// Has every later snapshot adjusted by `adjust` (set once; a second call is ignored).
    pub(crate) fn adjust_views(&self, adjust: Adjust) {
        let _ = self.adjust.set(adjust);
    }

    fn own_snapshot(&self) -> NodeSnapshot {
        let stuck = self.stuck();
        let state = self.state.lock();
        let status = match (&stuck, state.status) {
            (Some(_), NodeStatus::Running) => NodeStatus::Stuck,
            (_, status) => status,
        };
        NodeSnapshot {
            error: state.error.clone().or(stuck),
            library: state.library.clone(),
            timers: state.timers.iter().map(|t| t.snapshot()).collect(),
            services: state.services.iter().map(|s| s.snapshot()).collect(),
            subscriptions: state
                .subscriptions
                .iter()
                .map(|(pattern, stats)| SubscriptionSnapshot {
                    pattern: pattern.clone(),
                    delivered: stats.delivered.load(Ordering::Relaxed),
                    dropped: stats.dropped.load(Ordering::Relaxed),
                    failed: stats.failed.load(Ordering::Relaxed),
                    panicked: stats.panicked.load(Ordering::Relaxed),
                })
                .collect(),
            ..NodeSnapshot::idle(&self.name, status)
        }
    }
}
