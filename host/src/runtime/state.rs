//! A node's shared state: what its threads, its host object and the controller all see.

use crate::bus::{Subscription, SubscriptionStats, Topic};
use crate::config::FaultPolicy;
use crate::loader::LibraryInfo;
use crate::logging::NodeLog;
use hivemind::abi::{LogLevel, SendErrorKind};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// In the config but not enabled (and not named with `-n`).
    Disabled,
    /// Its library is being loaded and the node built.
    Loading,
    /// Built and registered; services run.
    Running,
    /// Could not be loaded or built, or failed while running; `error` says why.
    Failed,
    /// A callback has run for longer than `stuck_after_ms`; `error` says which.
    Stuck,
    /// Stopped with the hive.
    Stopped,
    /// Isolated (`isolate = true`) and its process died; it is restarted with backoff, and its
    /// messages wait in its queue meanwhile. `error` says how it died.
    Crashed,
    /// On another host of the mesh that has stopped answering (it stopped, crashed or was cut
    /// off); shown as it was last seen.
    Gone,
}

/// A node's state and counters, for the page and the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The node's name.
    pub name: String,
    /// The host it runs on (its name on the mesh; this host's own name for local nodes).
    pub host: String,
    /// Where it is in its life.
    pub status: NodeStatus,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The library it runs.
    pub library: Option<LibraryInfo>,
    /// Its services.
    pub services: Vec<ServiceSnapshot>,
    /// Its subscriptions.
    pub subscriptions: Vec<SubscriptionSnapshot>,
    /// Its timers (none for another host's node).
    #[serde(default)]
    pub timers: Vec<TimerSnapshot>,
    /// Whether the config enables it.
    pub enabled: bool,
    /// How many times an instance of it was loaded (the first start counts).
    pub loads: u64,
    /// When the running instance was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    /// The last load, build or reload error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Whether it runs in a process of its own (`isolate = true`).
    #[serde(default)]
    pub isolated: bool,
    /// How many times its process died (isolated nodes only).
    #[serde(default)]
    pub crashes: u64,
    /// How its process died the last time (isolated nodes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crash: Option<String>,
    /// Its crate's last build failed (`hm dev`): the compiler's errors. The node runs its last
    /// good library meanwhile, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<crate::builds::BuildFailure>,
    /// The settings its running instance was started with (none when it does not run; the
    /// page then shows those of the config). Never serialized: the web layer adds `settings`
    /// to what it sends (its own rules), and other hosts of the mesh never get them.
    #[serde(skip)]
    pub settings: Option<serde_json::Value>,
}

impl NodeSnapshot {
    /// A node with no instance.
    pub fn idle(name: &str, status: NodeStatus) -> Self {
        Self {
            name: name.to_owned(),
            host: String::new(),
            status,
            error: None,
            library: None,
            services: Vec::new(),
            subscriptions: Vec::new(),
            timers: Vec::new(),
            enabled: false,
            loads: 0,
            loaded_at: None,
            last_error: None,
            isolated: false,
            crashes: 0,
            last_crash: None,
            build_error: None,
            settings: None,
        }
    }
}

/// What a service is: a loop on its own thread, or a publisher the node sends on from its
/// other callbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// `add_service`: a callback the host runs in a loop.
    #[default]
    Loop,
    /// `add_publisher`: no loop; `running` means the node runs.
    Publisher,
}

/// One service's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    /// The service's name.
    pub name: String,
    /// A loop or a publisher (`"loop"`, `"publisher"`).
    #[serde(default)]
    pub kind: ServiceKind,
    /// Messages it sent.
    pub sent: u64,
    /// Whether its loop is running.
    pub running: bool,
    /// How many times it was restarted after failing.
    pub restarts: u64,
    /// The payload it sent last (for a busy service: one of its last 256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_payload: Option<serde_json::Value>,
    /// Payloads the host refused to send for it: over `[messages] max_payload_bytes`, or,
    /// from an isolated node's process, not JSON.
    #[serde(default)]
    pub refused: u64,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
}

/// One subscription's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    /// The pattern.
    pub pattern: String,
    /// Messages handled without error.
    pub delivered: u64,
    /// Messages dropped (queue full, or the node stopped).
    pub dropped: u64,
    /// Callbacks that returned an error.
    pub failed: u64,
    /// Callbacks that panicked.
    pub panicked: u64,
}

/// One timer's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimerSnapshot {
    /// The timer's name.
    pub name: String,
    /// Milliseconds between two ticks.
    pub period_ms: f64,
    /// Ticks run (failed and panicked ones included).
    pub runs: u64,
    /// Ticks that returned an error.
    pub failed: u64,
    /// Ticks that panicked.
    pub panicked: u64,
    /// When the last tick ended (RFC 3339), if one has run.
    pub last_run: Option<String>,
}

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

    fn snapshot(&self) -> TimerSnapshot {
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
    name: String,
    /// Set once, when the instance starts (a publisher has no loop).
    publisher: AtomicBool,
    sent: AtomicU64,
    running: AtomicBool,
    restarts: AtomicU64,
    refused: AtomicU64,
    last_payload: Mutex<Option<Arc<str>>>,
    /// Whether the service's callback runs, and since when as the health checks saw it.
    pub busy: Busy,
    error: Mutex<Option<String>>,
}

impl ServiceStats {
    fn new(name: &str) -> Self {
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

    fn snapshot(&self) -> ServiceSnapshot {
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
    fn apply(&self, host: &mut NodeSnapshot) {
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
    /// Set for an isolated node: what its process reports.
    pub overlay: Mutex<Option<Overlay>>,
    /// How the node asks requests; set before its constructor runs.
    pub asking: OnceLock<super::answer::Asking>,
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
            overlay: Mutex::new(None),
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
        if let Some(overlay) = self.overlay.lock().as_ref() {
            overlay.apply(&mut snapshot);
        }
        snapshot
    }

    fn own_snapshot(&self) -> NodeSnapshot {
        let stuck = self.stuck();
        let state = self.state.lock();
        let status = match (&stuck, state.status) {
            (Some(_), NodeStatus::Running) => NodeStatus::Stuck,
            (_, status) => status,
        };
        NodeSnapshot {
            name: self.name.to_string(),
            host: String::new(),
            status,
            error: state.error.clone().or(stuck),
            library: state.library.clone(),
            enabled: false,
            loads: 0,
            loaded_at: None,
            last_error: None,
            isolated: false,
            crashes: 0,
            last_crash: None,
            build_error: None,
            settings: None,
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
