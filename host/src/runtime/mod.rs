//! The instance seam: what the controller sees of one instance of a node, whichever way it runs.
//!
//! Two drivers sit behind it, and [`NodeRuntime::spawn`] picks one per instance by
//! [`NodeSpec::isolate`]: [`in_process`] (the node's library loaded into the host) and
//! [`isolated`] (`isolate = true`: the node in a process of its own). The controller sees only
//! the seam. Arrows run one way: both drivers use the seam and the shared parts beside it
//! (`state`, `stats`, `view`, `asking`); `isolated`'s child process runs the in-process driver;
//! `in_process` never imports `isolated`.
//!
//! The contract, the same for both drivers:
//!
//! 1. [`NodeRuntime::spawn`] starts the driver on a thread of its own and returns at once;
//!    [`NodeRuntime::wait_built_until`] returns what the instance registered, or a typed
//!    [`BuildError`] saying why it could not be built. Nothing runs yet.
//! 2. The controller puts the registrations on the bus, then [`NodeRuntime::start`] hands the
//!    instance its topics (and a previous instance's saved state): it restores the state,
//!    starts its services and drains the node's queue.
//! 3. [`NodeRuntime::hand_over_until`] (a reload) stops the services, saves the state and stops
//!    draining, leaving the queue to the next instance; [`NodeRuntime::request_stop`] (an
//!    unload) does the same but drains what is queued as dropped. Either way the instance then
//!    drops everything the library made and closes it.
//!
//! The queue belongs to the node, not to an instance: messages sent while one instance hands over
//! to the next wait in it and reach the new one, once and in order. Every call into the library
//! happens on the threads a driver made, and they are all joined before the library is closed.

mod answer;
mod asking;
mod host;
pub(crate) mod in_process;
mod isolated;
mod service;
mod state;
mod stats;
mod timers;
pub(crate) mod view;

pub(crate) use answer::Answering;
pub(crate) use asking::Asking;
pub(crate) use isolated::scratch_folder;
pub use isolated::{CHILD_COMMAND, child_main};
pub(crate) use state::NodeShared;
pub use view::{NodeSnapshot, NodeStatus};
pub(crate) use view::{ServiceSnapshot, SubscriptionSnapshot, TimerSnapshot};

use crate::bus::{
    Delivery, Doorbell, Inbox, Pattern, QueueSender, Subscription, SubscriptionStats, Topic,
};
use crate::config::FaultPolicy;
use crate::loader::{Libraries, LibraryFile, LibraryInfo, LoadError};
use crate::logging::{Logs, NodeLog};
use crate::requests::{Desk, Mailbox, Router};
use crate::schemas::DeclaredTypes;
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::LogLevel;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long services get to return after being told to stop.
pub(crate) const SERVICE_STOP_DEADLINE: Duration = Duration::from_millis(800);

/// A node's message queue: it outlives instances, so a reload loses nothing.
#[derive(Clone)]
pub struct NodeQueue {
    /// Where the bus puts the node's deliveries (ringing the node thread's doorbell).
    pub sender: QueueSender,
    /// Where the node's instance takes them from.
    pub inbox: Inbox,
    /// The requests waiting for the node (the same doorbell).
    pub(crate) desk: Desk,
    /// The outcomes of the node's non-blocking asks (the same doorbell).
    pub(crate) mailbox: Mailbox,
}

impl NodeQueue {
    /// A queue with room for `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        let (sender, inbox) = crate::bus::queue(capacity);
        let bell = sender.bell().clone();
        Self {
            sender,
            inbox,
            desk: Desk::new(bell.clone()),
            mailbox: Mailbox::new(bell),
        }
    }
}

/// What the runtime needs to start an instance of a node.
#[derive(Clone)]
pub(crate) struct NodeSpec {
    /// The node's name in the hive.
    pub name: Arc<str>,
    /// The library file to load.
    pub library: PathBuf,
    /// The node's settings, as JSON text.
    pub settings_json: String,
    /// The node's queue.
    pub queue: NodeQueue,
    /// The bus registration this instance will have; deliveries routed under another one are
    /// matched against this instance's own patterns.
    pub generation: u64,
    /// How long the node's thread polls for the next message before it sleeps.
    pub spin: Duration,
    /// What to do when the node's code fails.
    pub faults: FaultPolicy,
    /// This host's name, which messages sent here carry.
    pub host: Arc<str>,
    /// Run the node in a process of its own (`isolate = true`, see [`isolated`]):
    /// [`NodeRuntime::spawn`] picks the driver by it.
    pub isolate: bool,
    /// Counts the deliveries the node has finished with, when someone needs to know (an
    /// isolated node's process, to tell the host what it may forget).
    pub processed: Option<Arc<Progress>>,
    /// The library's content, when whoever asked for this instance has just read it (a
    /// changed library): loaded as it is, without reading the file again.
    pub read: Option<Arc<LibraryFile>>,
}

/// How far a node's thread has got through its deliveries, for one watcher that must know
/// (an isolated node's process, which tells its host what it may forget).
///
/// Contract: [`Progress::handled`] only grows, by one per delivery whose callbacks have all
/// returned; the node's thread calls the watcher's `after_batch` after each batch of at most
/// [`in_process::BATCH`] deliveries in which it handled any, so at the latest before it sleeps:
/// a watcher waiting for progress needs no poll and hears of it at most once per batch, not once
/// per delivery.
pub(crate) struct Progress {
    handled: AtomicU64,
    /// Called on the node's thread; must not block (it delays the node's next delivery).
    after_batch: Box<dyn Fn() + Send + Sync>,
}

impl Progress {
    /// Progress from 0, calling `after_batch` on the node's thread after each batch.
    pub(crate) fn new(after_batch: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            handled: AtomicU64::new(0),
            after_batch: Box::new(after_batch),
        }
    }

    /// Deliveries handled so far.
    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::SeqCst)
    }

    /// One more delivery handled (the node's thread).
    pub(crate) fn one_handled(&self) {
        self.handled.fetch_add(1, Ordering::SeqCst);
    }

    /// A batch is done (the node's thread): tells the watcher.
    pub(crate) fn batch_done(&self) {
        (self.after_batch)();
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("handled", &self.handled())
            .finish_non_exhaustive()
    }
}

/// What every node of a hive shares.
pub(crate) struct Environment {
    /// Where node logs go.
    pub logs: Logs,
    /// The loaded node libraries.
    pub libraries: Libraries,
    /// Largest payload a service may send.
    pub max_payload_bytes: usize,
    /// A private folder for the host's own files (isolated nodes' sockets).
    pub scratch: PathBuf,
    /// The program an isolated node's process runs (this one, started with its hidden
    /// child command).
    pub child_exe: PathBuf,
    /// The host's request router.
    pub router: Arc<Router>,
    /// How the nodes reach their stores: the host's own, or (in an isolated node's process)
    /// through the connection to the host.
    pub store: Arc<dyn crate::store::Access>,
}

/// What an instance registered, for the controller to put on the bus.
pub(crate) struct Built {
    /// Its subscriptions, by index.
    pub subscriptions: Vec<Subscription>,
    /// Its services' names, by index.
    pub services: Vec<Arc<str>>,
    /// The library it runs.
    pub library: LibraryInfo,
    /// How long loading and building took.
    pub took: Duration,
    /// The payload types its services and subscriptions declared, by the same indices.
    pub types: DeclaredTypes,
    /// The request names it answers, with their help lines, by index.
    pub requests: Vec<(String, String)>,
}

pub(crate) enum Control {
    Start {
        topics: Vec<Arc<Topic>>,
        state: Option<String>,
        backlog: Vec<Delivery>,
    },
    HandOver(Sender<Option<String>>),
    Stop,
}

/// A running instance did not hand its state over by the deadline.
#[derive(Debug)]
pub(crate) struct HandOverTimedOut;

/// Why an instance could not be built. Shown to users as it displays: each case names the node
/// or file and what to do.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The library could not be opened or failed its checks.
    Library(LoadError),
    /// The node's constructor returned an error or panicked.
    Constructor {
        /// The node's name in the hive.
        node: Arc<str>,
        /// Whether it panicked (rather than returned an error).
        panicked: bool,
        /// What it said.
        message: String,
    },
    /// The node registered something the host refuses (a bad pattern, a bad or repeated
    /// service name); the text names the node and the thing.
    Registration(String),
    /// An isolated node's process could not be started, died while building, or reported that
    /// the node failed to build there; the text says which.
    Process(String),
    /// Not built within `[hive] build_timeout_ms`: the build goes on in the background.
    TimedOut {
        /// The node's name in the hive.
        node: Arc<str>,
        /// The deadline it missed.
        after: Duration,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Library(error) => write!(f, "{error}\nhelp: {}", error.help()),
            Self::Constructor {
                node,
                panicked,
                message,
            } => {
                let how = if *panicked { "panicked" } else { "failed" };
                write!(f, "the constructor of node `{node}` {how}: {message}")
            }
            Self::Registration(text) | Self::Process(text) => f.write_str(text),
            Self::TimedOut { node, after } => write!(
                f,
                "node `{node}` was not built within {} ms ([hive] build_timeout_ms in config/hive.toml): its library load or constructor is still running. The hive goes on without this instance; its thread is reported when it returns, and its library stays loaded until then. Fix the constructor (or raise the setting) and reload",
                after.as_millis()
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// A driver runs one instance on the thread [`NodeRuntime::spawn`] made for it, keeping the
/// contract in this module's documentation: it sends what the instance built (or why not) on
/// `built` exactly once, then obeys `control`, reporting through `shared`.
pub(crate) type Driver = fn(
    spec: NodeSpec,
    env: &Environment,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
    built: Sender<Result<Built, BuildError>>,
);

/// How waiting for an instance to be built ended.
pub(crate) enum BuildOutcome {
    /// Built: what it registered.
    Built(Box<Built>),
    /// It failed: why.
    Failed(BuildError),
    /// The deadline passed first; it may still finish.
    TimedOut,
    /// The hive is stopping.
    Interrupted,
}

/// One running (or failed) instance of a node.
pub(crate) struct NodeRuntime {
    shared: Arc<NodeShared>,
    control: Sender<Control>,
    /// The queue's doorbell: rung after each command, so a sleeping node thread sees it.
    bell: Arc<Doorbell>,
    built: Receiver<Result<Built, BuildError>>,
    thread: Option<JoinHandle<()>>,
}

impl NodeRuntime {
    /// Starts the driver `spec` asks for ([`NodeSpec::isolate`]) on a thread of its own to load
    /// and build an instance; returns at once.
    pub(crate) fn spawn(spec: NodeSpec, env: Arc<Environment>) -> Self {
        let driver: Driver = if spec.isolate {
            isolated::supervise
        } else {
            in_process::drive
        };
        let log = env.logs.node(&spec.name);
        let shared = Arc::new(NodeShared::new(
            spec.name.clone(),
            log,
            env.max_payload_bytes,
            spec.faults,
        ));
        let (control, control_inbox) = crossbeam_channel::unbounded();
        let (built_sender, built) = crossbeam_channel::bounded(1);
        let thread_shared = shared.clone();
        let bell = spec.queue.sender.bell().clone();
        let thread = std::thread::Builder::new()
            .name(format!("hm:{}", spec.name))
            .spawn(move || driver(spec, &env, &thread_shared, &control_inbox, built_sender))
            .expect("the OS refused to start a thread");
        Self {
            shared,
            control,
            bell,
            built,
            thread: Some(thread),
        }
    }

    /// Waits until the instance is built (what it registered) or has failed (why).
    pub(crate) fn wait_built(&self) -> Result<Built, BuildError> {
        self.built.recv().unwrap_or_else(|_| Err(self.vanished()))
    }

    /// The error for a driver that ended without saying how its build went.
    fn vanished(&self) -> BuildError {
        let said = self.shared.snapshot().error;
        BuildError::Process(said.unwrap_or_else(|| {
            format!(
                "the instance of node `{}` ended before it was built",
                self.shared.name
            )
        }))
    }

    /// [`NodeRuntime::wait_built`] until `deadline`, or until `interrupt` receives (the hive is
    /// stopping). An instance that times out or is interrupted is still building: its thread
    /// keeps its library mapped until the node's code returns.
    pub(crate) fn wait_built_until(
        &self,
        deadline: Instant,
        interrupt: &Receiver<()>,
    ) -> BuildOutcome {
        crossbeam_channel::select! {
            recv(self.built) -> built => match built {
                Ok(Ok(built)) => BuildOutcome::Built(Box::new(built)),
                Ok(Err(error)) => BuildOutcome::Failed(error),
                Err(_) => BuildOutcome::Failed(self.vanished()),
            },
            recv(interrupt) -> _ => BuildOutcome::Interrupted,
            default(deadline.saturating_duration_since(Instant::now())) => BuildOutcome::TimedOut,
        }
    }

    /// Whether the instance's thread has ended (it returned from the node's code and closed
    /// its library).
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Starts the instance: it takes `topics` for its services, restores `state`, starts its
    /// services, delivers `backlog` (messages left in a previous queue), then drains the node's
    /// queue.
    pub(crate) fn start(
        &self,
        topics: Vec<Arc<Topic>>,
        state: Option<String>,
        backlog: Vec<Delivery>,
    ) {
        let _ = self.control.send(Control::Start {
            topics,
            state,
            backlog,
        });
        self.bell.ring();
    }

    /// Stops the services, saves the node's state and stops draining the queue, which stays
    /// for the next instance; returns the saved state. The instance then closes its library.
    pub(crate) fn hand_over(&self) -> Option<String> {
        self.hand_over_until(Instant::now() + Duration::from_secs(3600))
            .unwrap_or_default()
    }

    /// [`NodeRuntime::hand_over`], waiting for the node's `save_state` until `deadline` at most:
    /// An error if it did not answer by then (a callback is stuck); the instance then stops,
    /// without handing anything over, once its code returns.
    pub(crate) fn hand_over_until(
        &self,
        deadline: Instant,
    ) -> Result<Option<String>, HandOverTimedOut> {
        let (reply, saved) = crossbeam_channel::bounded(1);
        self.shared.stop();
        if self.control.send(Control::HandOver(reply)).is_err() {
            return Ok(None);
        }
        self.bell.ring();
        match saved.recv_deadline(deadline) {
            Ok(state) => Ok(state),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Ok(None),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(HandOverTimedOut),
        }
    }

    /// Asks the instance to stop for good: every `sleep_for` wakes, every service loop ends
    /// after its current step, and what is still queued is counted as dropped. Returns at once;
    /// see [`NodeRuntime::join`].
    pub(crate) fn request_stop(&self) {
        self.shared.stop();
        let _ = self.control.send(Control::Stop);
        self.bell.ring();
    }

    /// Waits until `deadline` for the instance's threads to end; returns whether they did.
    pub(crate) fn join(&mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if thread.is_finished() {
            let _ = thread.join();
            true
        } else {
            self.thread = Some(thread);
            false
        }
    }

    /// The instance's current state and counters.
    pub(crate) fn snapshot(&self) -> NodeSnapshot {
        self.shared.snapshot()
    }

    /// What the instance's threads share, for whoever reports on it from outside.
    pub(crate) fn shared(&self) -> Arc<NodeShared> {
        self.shared.clone()
    }
}

/// Checks the subscription patterns a node registered (either driver), in registration order.
pub(crate) fn compile_subscriptions<'a>(
    node: &str,
    patterns: impl Iterator<Item = &'a str>,
) -> Result<Vec<Subscription>, String> {
    patterns
        .enumerate()
        .map(|(index, text)| {
            let pattern = Pattern::new(text).map_err(|e| format!("node `{node}`: {e}"))?;
            Ok(Subscription {
                index: index as u32,
                pattern,
                stats: Arc::new(SubscriptionStats::default()),
            })
        })
        .collect()
}

/// An instance stops for good: it answers nothing more, and the requests waiting for it fail
/// (`restarted`) at once rather than at their timeouts. Either driver.
pub(crate) fn withdraw(router: &Router, spec: &NodeSpec, log: &NodeLog) {
    router.withdraw(&spec.name, spec.generation);
    let failed = spec.queue.desk.drain();
    if failed > 0 {
        log.write(
            LogLevel::Warn,
            &format!("{failed} queued request(s) were not answered because the node stopped"),
        );
    }
}

/// Messages still queued when a node stops for good are counted as dropped and reported.
pub(crate) fn count_undelivered(inbox: &Inbox, subscriptions: &[Subscription], log: &NodeLog) {
    let mut count = 0u64;
    for delivery in inbox.try_iter() {
        count += 1;
        for subscription in subscriptions
            .iter()
            .filter(|s| s.pattern.matches(delivery.message.service()))
        {
            subscription.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    if count > 0 {
        log.write(
            LogLevel::Warn,
            &format!("{count} queued message(s) were not delivered because the node stopped"),
        );
    }
}
