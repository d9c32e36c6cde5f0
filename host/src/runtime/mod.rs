//! Runs one instance of a node: loads its library, builds it, delivers its subscriptions'
//! messages on the node's own thread, runs each of its services on a thread of its own, and
//! takes it all down again in the order that lets the library be closed for real.
//!
//! This is the seam between the controller and a node:
//!
//! 1. [`NodeRuntime::spawn`] loads and builds the instance on its thread; [`NodeRuntime::wait_built`]
//!    returns what it registered (or why it failed). Nothing runs yet.
//! 2. The controller puts the registrations on the bus, then [`NodeRuntime::start`] hands the
//!    instance its topics (and a previous instance's saved state): it restores the state,
//!    starts its services and drains the node's queue.
//! 3. [`NodeRuntime::hand_over`] (a reload) stops the services, saves the state and stops
//!    draining, leaving the queue to the next instance; [`NodeRuntime::request_stop`] (an
//!    unload) does the same but drains what is queued as dropped. Either way the instance then
//!    drops everything the library made and closes it.
//!
//! The queue belongs to the node, not to an instance: messages sent while one instance hands over
//! to the next wait in it and reach the new one, once and in order. Every call into the library
//! happens on the threads made here, and they are all joined before the library is closed.

mod answer;
mod host;
mod service;
mod state;
mod timers;

pub use answer::Asking;
pub(crate) use state::{NodeShared, Overlay};
pub use state::{NodeSnapshot, NodeStatus, ServiceKind, ServiceSnapshot, SubscriptionSnapshot};

use crate::bus::{
    Delivery, Doorbell, Inbox, Pattern, QueueSender, Subscription, SubscriptionStats, Topic,
};
use crate::config::FaultPolicy;
use crate::loader::{Libraries, LibraryInfo, NodeLibrary};
use crate::logging::{Logs, NodeLog};
use crate::requests::{Desk, Mailbox, Router};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RStr};
use answer::Answering;
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::{
    HostBox, LogLevel, MessageView, NodeBox, NodeInit, NodeParts, RequestDecl, ServiceDecl,
    TimerDecl,
};
use host::NodeHost;
use service::ServiceThread;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use timers::Timers;

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
    pub desk: Desk,
    /// The outcomes of the node's non-blocking asks (the same doorbell).
    pub mailbox: Mailbox,
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
pub struct NodeSpec {
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
    /// Run the node in a process of its own (`isolate = true`), see [`crate::isolate`].
    pub isolate: bool,
    /// Counts the deliveries the node has finished with, when someone needs to know (an
    /// isolated node's process, to tell the host what it may forget).
    pub processed: Option<Arc<AtomicU64>>,
}

/// What every node of a hive shares.
pub struct Environment {
    /// Where node logs go.
    pub logs: Logs,
    /// The loaded node libraries.
    pub libraries: Libraries,
    /// Largest payload a service may send.
    pub max_payload_bytes: usize,
    /// A private folder for the host's own files (isolated nodes' sockets).
    pub scratch: PathBuf,
    /// The program an isolated node's process runs: this one, started with
    /// [`crate::isolate::CHILD_COMMAND`].
    pub child_exe: PathBuf,
    /// The host's request router.
    pub router: Arc<Router>,
}

/// What an instance registered, for the controller to put on the bus.
pub struct Built {
    /// Its subscriptions, by index.
    pub subscriptions: Vec<Subscription>,
    /// Its services' names, by index.
    pub services: Vec<Arc<str>>,
    /// The library it runs.
    pub library: LibraryInfo,
    /// How long loading and building took.
    pub took: Duration,
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
pub struct HandOverTimedOut;

/// How waiting for an instance to be built ended.
pub enum BuildOutcome {
    /// Built: what it registered.
    Built(Built),
    /// It failed: why.
    Failed(String),
    /// The deadline passed first; it may still finish.
    TimedOut,
    /// The hive is stopping.
    Interrupted,
}

/// One running (or failed) instance of a node.
pub struct NodeRuntime {
    shared: Arc<NodeShared>,
    control: Sender<Control>,
    /// The queue's doorbell: rung after each command, so a sleeping node thread sees it.
    bell: Arc<Doorbell>,
    built: Receiver<Result<Built, String>>,
    thread: Option<JoinHandle<()>>,
}

impl NodeRuntime {
    /// Starts loading and building an instance on a thread of its own; returns at once.
    pub fn spawn(spec: NodeSpec, env: Arc<Environment>) -> Self {
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
            .spawn(move || {
                if spec.isolate {
                    crate::isolate::supervise(
                        spec,
                        &env,
                        &thread_shared,
                        &control_inbox,
                        built_sender,
                    );
                } else {
                    node_thread(spec, &env, &thread_shared, &control_inbox, built_sender);
                }
            })
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
    pub fn wait_built(&self) -> Result<Built, String> {
        self.built
            .recv()
            .unwrap_or_else(|_| Err(self.shared.snapshot().error.unwrap_or_default()))
    }

    /// [`NodeRuntime::wait_built`] until `deadline`, or until `interrupt` receives (the hive is
    /// stopping). An instance that times out or is interrupted is still building: its thread
    /// keeps its library mapped until the node's code returns.
    pub fn wait_built_until(&self, deadline: Instant, interrupt: &Receiver<()>) -> BuildOutcome {
        crossbeam_channel::select! {
            recv(self.built) -> built => match built {
                Ok(Ok(built)) => BuildOutcome::Built(built),
                Ok(Err(error)) => BuildOutcome::Failed(error),
                Err(_) => BuildOutcome::Failed(self.shared.snapshot().error.unwrap_or_default()),
            },
            recv(interrupt) -> _ => BuildOutcome::Interrupted,
            default(deadline.saturating_duration_since(Instant::now())) => BuildOutcome::TimedOut,
        }
    }

    /// Whether the instance's thread has ended (it returned from the node's code and closed
    /// its library).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Starts the instance: it takes `topics` for its services, restores `state`, starts its
    /// services, delivers `backlog` (messages left in a previous queue), then drains the node's
    /// queue.
    pub fn start(&self, topics: Vec<Arc<Topic>>, state: Option<String>, backlog: Vec<Delivery>) {
        let _ = self.control.send(Control::Start {
            topics,
            state,
            backlog,
        });
        self.bell.ring();
    }

    /// Stops the services, saves the node's state and stops draining the queue, which stays
    /// for the next instance; returns the saved state. The instance then closes its library.
    pub fn hand_over(&self) -> Option<String> {
        self.hand_over_until(Instant::now() + Duration::from_secs(3600))
            .unwrap_or_default()
    }

    /// [`NodeRuntime::hand_over`], waiting for the node's `save_state` until `deadline` at most:
    /// An error if it did not answer by then (a callback is stuck); the instance then stops,
    /// without handing anything over, once its code returns.
    pub fn hand_over_until(&self, deadline: Instant) -> Result<Option<String>, HandOverTimedOut> {
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
    pub fn request_stop(&self) {
        self.shared.stop();
        let _ = self.control.send(Control::Stop);
        self.bell.ring();
    }

    /// Waits until `deadline` for the instance's threads to end; returns whether they did.
    pub fn join(&mut self, deadline: Instant) -> bool {
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
    pub fn snapshot(&self) -> NodeSnapshot {
        self.shared.snapshot()
    }

    /// What the instance's threads share, for whoever reports on it from outside.
    pub(crate) fn shared(&self) -> Arc<NodeShared> {
        self.shared.clone()
    }
}

/// The instance's own thread: it loads the library, builds the node, delivers messages and
/// tears everything down again.
fn node_thread(
    spec: NodeSpec,
    env: &Environment,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
    built: Sender<Result<Built, String>>,
) {
    let started = Instant::now();
    let library = match env.libraries.open(&spec.library) {
        Ok(library) => library,
        Err(error) => {
            let message = format!("{error}\nhelp: {}", error.help());
            shared.fail(&message);
            let _ = built.send(Err(message));
            return;
        }
    };
    shared.set_library(library.info().clone());
    let _ = shared.asking.set(Asking {
        router: env.router.clone(),
        mailbox: spec.queue.mailbox.clone(),
        host: spec.host.clone(),
    });
    let node = match build(&spec, shared, &library) {
        Ok(node) => node,
        Err(error) => {
            shared.fail(&error);
            let _ = built.send(Err(error));
            return;
        }
    };
    let took = started.elapsed();
    shared.log.write(
        LogLevel::Info,
        &format!(
            "loaded {} ({}, hivemind API {}, {}) in {:.1} ms",
            library.info().path.display(),
            library.info().type_name,
            library.info().api_version,
            library.info().hash,
            took.as_secs_f64() * 1e3
        ),
    );
    let _ = built.send(Ok(Built {
        subscriptions: node.subscriptions.clone(),
        services: node.service_names.clone(),
        library: library.info().clone(),
        took,
    }));
    if run(node, &spec, shared, control, &env.router) {
        // Every object the library made is gone and every thread that ran its code has ended:
        // closing it is sound.
        drop(library);
    } else {
        // A service thread still runs the library's code: it must stay mapped.
        std::mem::forget(library);
    }
}

/// A built instance, not yet started.
struct BuiltNode {
    object: NodeBox,
    services: Vec<ServiceDecl>,
    service_names: Vec<Arc<str>>,
    subscriptions: Vec<Subscription>,
    timers: Vec<TimerDecl>,
    requests: Vec<RequestDecl>,
}

fn build(
    spec: &NodeSpec,
    shared: &Arc<NodeShared>,
    library: &NodeLibrary,
) -> Result<BuiltNode, String> {
    let host = HostBox::from_value(NodeHost::new(shared.clone()), TD_Opaque);
    let init = NodeInit {
        name: RStr::from_str(&spec.name),
        settings_json: RStr::from_str(&spec.settings_json),
        host,
    };
    let NodeParts {
        node,
        services,
        subscriptions,
        timers,
        requests,
    } = library.new_node(init).into_result().map_err(|error| {
        let how = if error.panicked { "panicked" } else { "failed" };
        format!(
            "the constructor of node `{}` {how}: {}",
            spec.name, error.message
        )
    })?;
    let services: Vec<ServiceDecl> = services.into_iter().collect();
    let subscriptions =
        compile_subscriptions(&spec.name, subscriptions.iter().map(|p| p.as_str()))?;
    let service_names = service_names(&spec.name, &services)?;
    Ok(BuiltNode {
        object: node,
        services,
        service_names,
        subscriptions,
        timers: timers.into_iter().collect(),
        requests: requests.into_iter().collect(),
    })
}

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

fn service_names(node: &str, services: &[ServiceDecl]) -> Result<Vec<Arc<str>>, String> {
    let mut names: Vec<Arc<str>> = Vec::with_capacity(services.len());
    for service in services {
        let name = service.name.as_str();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(format!(
                "node `{node}` registered a service named {name:?}: service names must be non-empty and printable"
            ));
        }
        if names.iter().any(|n| &**n == name) {
            return Err(format!(
                "node `{node}` registered the service `{name}` twice: service names are unique within a node"
            ));
        }
        names.push(name.into());
    }
    Ok(names)
}

/// How an instance's run ended.
enum Ending {
    /// Handed over to a next instance: the queue is left as it is.
    HandOver(Sender<Option<String>>),
    /// Stopped for good: what is queued is dropped and counted.
    Stop,
    /// The node failed (too many panics): it stops like `Stop`, marked failed with the reason.
    Failed(String),
}

/// Waits for the start, delivers messages until told to hand over or stop, then stops the
/// services. Returns whether every service thread ended (so the library may be closed).
fn run(
    node: BuiltNode,
    spec: &NodeSpec,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
    router: &Router,
) -> bool {
    let BuiltNode {
        mut object,
        services,
        service_names: _,
        subscriptions,
        timers,
        requests,
    } = node;
    let (topics, state, backlog) = match control.recv() {
        Ok(Control::Start {
            topics,
            state,
            backlog,
        }) => (topics, state, backlog),
        Ok(Control::HandOver(reply)) => {
            let _ = reply.send(None);
            return true;
        }
        Ok(Control::Stop) | Err(_) => return true,
    };
    let stats = shared.register(topics, &subscriptions);
    let answering = Answering::new(
        &requests,
        spec.queue.desk.clone(),
        spec.queue.mailbox.clone(),
        router.max_payload_bytes(),
    );
    router.register(
        &spec.name,
        spec.generation,
        &Answering::registration(&requests),
        &spec.queue.desk,
    );
    if let Some(state) = state {
        restore(&mut object, &state, &shared.log);
    }
    let mut publishers = Vec::new();
    let mut threads: Vec<ServiceThread> = Vec::new();
    for (decl, stats) in services.into_iter().zip(stats) {
        match decl.runner.into_option() {
            Some(runner) => threads.push(ServiceThread::spawn(
                decl.name.into_string(),
                runner,
                stats,
                shared.clone(),
            )),
            None => {
                // A publisher has no loop: it "runs" while the instance does.
                stats.set_publisher();
                stats.set_running(true);
                publishers.push(stats);
            }
        }
    }
    let mut timers = Timers::new(&timers, Instant::now());
    shared.set_running();
    let mut failed = None;
    for delivery in &backlog {
        if let Err(reason) = deliver(&mut object, delivery, spec, &subscriptions, shared) {
            failed = Some(reason);
            break;
        }
    }
    let ending = match failed {
        Some(reason) => Ending::Failed(reason),
        None => deliver_until_told(
            &mut object,
            spec,
            &subscriptions,
            shared,
            control,
            &mut timers,
            &answering,
        ),
    };
    shared.stop();
    for stats in &publishers {
        stats.set_running(false);
    }
    let stuck = service::join_all(threads, Instant::now() + SERVICE_STOP_DEADLINE);
    match ending {
        Ending::HandOver(reply) => {
            let _ = reply.send(save(&mut object, &shared.log));
        }
        Ending::Stop => {
            withdraw(router, spec, shared);
            count_undelivered(&spec.queue.inbox, &subscriptions, &shared.log);
        }
        Ending::Failed(reason) => {
            withdraw(router, spec, shared);
            count_undelivered(&spec.queue.inbox, &subscriptions, &shared.log);
            shared.fail(&reason);
        }
    }
    drop(object);
    shared.set_stopped();
    if stuck.is_empty() {
        return true;
    }
    shared.log.write(
        LogLevel::Error,
        &format!(
            "service(s) {} did not return within {} ms of the stop; the node's library stays loaded",
            stuck.join(", "),
            SERVICE_STOP_DEADLINE.as_millis()
        ),
    );
    false
}

/// The instance stops for good: it answers nothing more, and the requests waiting for it fail
/// (`restarted`) at once rather than at their timeouts.
fn withdraw(router: &Router, spec: &NodeSpec, shared: &NodeShared) {
    router.withdraw(&spec.name, spec.generation);
    let failed = spec.queue.desk.drain();
    if failed > 0 {
        shared.log.write(
            LogLevel::Warn,
            &format!("{failed} queued request(s) were not answered because the node stopped"),
        );
    }
}

/// Deliveries handled between two looks at the control channel while the queue stays busy.
const BATCH: usize = 256;

/// Delivers until told to hand over or stop. Each wake-up drains everything queued (looking at
/// the control channel every [`BATCH`]); with nothing queued the thread parks on the queue's
/// [`Doorbell`](crate::bus::Doorbell) at once (after `spin`, if the node asked for one), and
/// the first message or command that arrives wakes it: no spinning or yielding in between, so
/// how fast messages go does not depend on how the scheduler treats a thread that yields.
fn deliver_until_told(
    object: &mut NodeBox,
    spec: &NodeSpec,
    subscriptions: &[Subscription],
    shared: &NodeShared,
    control: &Receiver<Control>,
    timers: &mut Timers,
    answering: &Answering,
) -> Ending {
    let inbox = &spec.queue.inbox;
    let bell = spec.queue.sender.bell();
    bell.attach();
    loop {
        // Timers tick between deliveries, on this thread: in order with the subscriptions.
        timers.tick_due(object, shared);
        // So do requests and the replies to the node's own asks. A request in hand is
        // finished before a hand-over; once stopping, the rest wait for the next instance.
        let mut handled = 0;
        if !shared.is_stopping() {
            handled += answering.handle(object, shared, BATCH);
        }
        // Once asked to hand over or stop, take no further message (the next instance will).
        while handled < BATCH && !shared.is_stopping() {
            match inbox.try_recv() {
                Ok(delivery) => {
                    if let Err(reason) = deliver(object, &delivery, spec, subscriptions, shared) {
                        return Ending::Failed(reason);
                    }
                    handled += 1;
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Ending::Stop,
            }
        }
        if let Some(ending) = ending(control.try_recv()) {
            return ending;
        }
        if handled > 0 || spin_for(inbox, spec.spin) {
            continue;
        }
        // Sleep until a message, a control command or the next timer's deadline.
        bell.sleep_unless_until(timers.next_due(), || {
            !control.is_empty()
                || (!shared.is_stopping() && (!inbox.is_empty() || answering.pending()))
        });
    }
}

/// Polls `inbox` for up to `spin`; returns whether a message is waiting.
fn spin_for(inbox: &Inbox, spin: Duration) -> bool {
    if spin.is_zero() {
        return false;
    }
    let until = Instant::now() + spin;
    while Instant::now() < until {
        if !inbox.is_empty() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

/// What a control message means for the delivery loop (`None`: carry on).
fn ending(command: Result<Control, crossbeam_channel::TryRecvError>) -> Option<Ending> {
    match command {
        Ok(Control::HandOver(reply)) => Some(Ending::HandOver(reply)),
        Ok(Control::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
            Some(Ending::Stop)
        }
        Ok(Control::Start { .. }) | Err(crossbeam_channel::TryRecvError::Empty) => None,
    }
}

fn restore(object: &mut NodeBox, state: &str, log: &NodeLog) {
    match object.restore_state(RStr::from_str(state)).into_result() {
        Ok(()) => log.write(
            LogLevel::Debug,
            "restored the state of the previous instance",
        ),
        Err(error) => log.write(
            LogLevel::Error,
            &format!(
                "restore_state {}: {}; the node runs on with the state `new` gave it",
                if error.panicked { "panicked" } else { "failed" },
                error.message
            ),
        ),
    }
}

fn save(object: &mut NodeBox, log: &NodeLog) -> Option<String> {
    match object.save_state().into_result() {
        // Copied out: the string was made by the library, which is about to close.
        Ok(ROption::RSome(state)) => Some(state.as_str().to_owned()),
        Ok(ROption::RNone) => None,
        Err(error) => {
            log.write(
                LogLevel::Error,
                &format!(
                    "save_state {}: {}; the next instance starts afresh",
                    if error.panicked { "panicked" } else { "failed" },
                    error.message
                ),
            );
            None
        }
    }
}

/// Runs the matching subscriptions' callbacks on one delivery. Fails (with the reason) once the
/// node's subscription callbacks have panicked `max_subscription_panics` times.
fn deliver(
    object: &mut NodeBox,
    delivery: &Delivery,
    spec: &NodeSpec,
    subscriptions: &[Subscription],
    shared: &NodeShared,
) -> Result<(), String> {
    let log = &shared.log;
    let message = &delivery.message;
    let view = MessageView {
        service: RStr::from_str(&message.service),
        node: RStr::from_str(&message.node),
        payload: RStr::from_str(&message.payload),
        host: RStr::from_str(message.host.as_deref().unwrap_or(&spec.host)),
    };
    // Routed for a previous instance, whose patterns may differ, or matching more subscriptions
    // than the route keeps inline: match against our own patterns.
    let rematched: Vec<u32>;
    let indices: &[u32] = match delivery.subscriptions.get() {
        Some(indices) if delivery.generation == spec.generation => indices,
        _ => {
            rematched = subscriptions
                .iter()
                .filter(|s| s.pattern.matches(&message.service))
                .map(|s| s.index)
                .collect();
            &rematched
        }
    };
    for &index in indices {
        let subscription = &subscriptions[index as usize];
        shared.busy_since.store(state::clock(), Ordering::Relaxed);
        let outcome = object.deliver(index, view).into_result();
        shared.busy_since.store(0, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                subscription.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                let (counter, how) = if error.panicked {
                    (&subscription.stats.panicked, "panicked")
                } else {
                    (&subscription.stats.failed, "failed")
                };
                let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
                log.write(
                    LogLevel::Error,
                    &format!(
                        "subscription `{}` {how} on a message from `{}` ({count} so far): {}",
                        subscription.pattern.as_str(),
                        message.service,
                        error.message
                    ),
                );
                if error.panicked {
                    check_panic_limit(subscriptions, shared)?;
                }
            }
        }
    }
    if let Some(processed) = &spec.processed {
        processed.fetch_add(1, Ordering::Release);
    }
    Ok(())
}

fn check_panic_limit(subscriptions: &[Subscription], shared: &NodeShared) -> Result<(), String> {
    let limit = shared.faults.max_subscription_panics;
    let panics: u64 = subscriptions
        .iter()
        .map(|s| s.stats.panicked.load(Ordering::Relaxed))
        .sum();
    if limit > 0 && panics >= limit {
        return Err(format!(
            "node `{}` failed: its subscription callbacks panicked {panics} times (max_subscription_panics = {limit}); it was unloaded. Fix it and reload, or raise the limit in config/hive.toml",
            shared.name
        ));
    }
    Ok(())
}

/// Messages still queued when a node stops for good are counted as dropped and reported.
pub(crate) fn count_undelivered(inbox: &Inbox, subscriptions: &[Subscription], log: &NodeLog) {
    let mut count = 0u64;
    for delivery in inbox.try_iter() {
        count += 1;
        for subscription in subscriptions
            .iter()
            .filter(|s| s.pattern.matches(&delivery.message.service))
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
