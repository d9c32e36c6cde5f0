//! Runs one node: loads its library, builds it, delivers its subscriptions' messages on the
//! node's own thread, runs each of its services on a thread of its own, and takes it all down
//! again in the order that lets the library be closed for real.
//!
//! This is the seam between the controller and a node: [`NodeRuntime::spawn`] (load and
//! register), [`NodeRuntime::start_services`], message delivery through the node's queue, and
//! [`NodeRuntime::request_stop`] / [`NodeRuntime::join`]. Every call into the library happens on
//! the threads made here, and they are all joined before the library is closed.

mod host;
mod service;
mod state;

pub use state::{NodeSnapshot, NodeStatus, ServiceSnapshot, SubscriptionSnapshot};

use crate::bus::{Bus, Delivery, Inbox, Pattern, Subscription, SubscriptionStats};
use crate::loader::NodeLibrary;
use crate::logging::{Logs, NodeLog};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RStr;
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::{HostBox, LogLevel, MessageView, NodeBox, NodeInit, NodeParts, ServiceDecl};
use host::NodeHost;
use service::ServiceThread;
use state::{NodeShared, ServiceStats};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the runtime needs to start a node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The node's name in the hive.
    pub name: Arc<str>,
    /// The library file to load.
    pub library: PathBuf,
    /// The node's settings, as JSON text.
    pub settings_json: String,
    /// How many messages may wait for this node.
    pub queue_capacity: usize,
}

/// What every node of a hive shares.
pub struct Environment {
    /// The hive's routing table.
    pub bus: Arc<Bus>,
    /// Where node logs go.
    pub logs: Logs,
    /// Where private copies of libraries are loaded from.
    pub scratch: PathBuf,
    /// Largest payload a service may send.
    pub max_payload_bytes: usize,
}

enum Control {
    StartServices,
    Stop,
}

/// A running (or failed) node.
pub struct NodeRuntime {
    shared: Arc<NodeShared>,
    control: Sender<Control>,
    ready: Receiver<Result<(), String>>,
    thread: Option<JoinHandle<()>>,
}

impl NodeRuntime {
    /// Starts loading and registering the node on a thread of its own; returns at once.
    /// Its services start only after [`NodeRuntime::start_services`].
    pub fn spawn(spec: NodeSpec, env: Arc<Environment>) -> Self {
        let log = env.logs.node(&spec.name);
        let shared = Arc::new(NodeShared::new(
            spec.name.clone(),
            log,
            env.max_payload_bytes,
        ));
        let (control, control_inbox) = crossbeam_channel::unbounded();
        let (ready_sender, ready) = crossbeam_channel::bounded(1);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hm:{}", spec.name))
            .spawn(move || {
                node_thread(spec, env, thread_shared, control_inbox, ready_sender);
            })
            .expect("the OS refused to start a thread");
        Self {
            shared,
            control,
            ready,
            thread: Some(thread),
        }
    }

    /// Waits until the node has registered (Ok) or failed to load or build (Err, with why).
    pub fn wait_ready(&self) -> Result<(), String> {
        self.ready
            .recv()
            .unwrap_or_else(|_| Err(self.shared.snapshot().error.unwrap_or_default()))
    }

    /// Starts the node's services.
    pub fn start_services(&self) {
        let _ = self.control.send(Control::StartServices);
    }

    /// Asks the node to stop: every `sleep_for` wakes and every service loop ends after its
    /// current step. Returns at once; see [`NodeRuntime::join`].
    pub fn request_stop(&self) {
        self.shared.stop();
        let _ = self.control.send(Control::Stop);
    }

    /// Waits until `deadline` for the node's threads to end; returns whether they did.
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

    /// The node's current state and counters.
    pub fn snapshot(&self) -> NodeSnapshot {
        self.shared.snapshot()
    }
}

/// The node's own thread: it loads the library, builds the node, delivers messages and tears
/// everything down again.
fn node_thread(
    spec: NodeSpec,
    env: Arc<Environment>,
    shared: Arc<NodeShared>,
    control: Receiver<Control>,
    ready: Sender<Result<(), String>>,
) {
    let started = Instant::now();
    let library = match NodeLibrary::open(&spec.library, &env.scratch) {
        Ok(library) => library,
        Err(error) => {
            shared.fail(&format!("{error}\nhelp: {}", error.help()));
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    shared.set_library(library.info().clone());
    let node = match build(&spec, &env, &shared, &library) {
        Ok(node) => node,
        Err(error) => {
            shared.fail(&error);
            let _ = ready.send(Err(error));
            return;
        }
    };
    shared.log.write(
        LogLevel::Info,
        &format!(
            "loaded {} ({}, hivemind API {}) in {:.1} ms",
            library.info().path.display(),
            library.info().type_name,
            library.info().api_version,
            started.elapsed().as_secs_f64() * 1e3
        ),
    );
    let _ = ready.send(Ok(()));
    if run(node, &env, &shared, &control) {
        // Every object the library made is gone and every thread that ran its code has ended:
        // closing it is sound.
        drop(library);
    } else {
        // A service thread still runs the library's code: it must stay mapped.
        std::mem::forget(library);
    }
}

/// A built node, registered on the bus, with its services not yet started.
struct BuiltNode {
    object: NodeBox,
    inbox: Inbox,
    services: Vec<(ServiceDecl, Arc<ServiceStats>)>,
    subscriptions: Vec<Subscription>,
}

fn build(
    spec: &NodeSpec,
    env: &Environment,
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
    let names = service_names(&spec.name, &services)?;
    let (sender, inbox) = crate::bus::queue(spec.queue_capacity);
    let topics = env
        .bus
        .join(&spec.name, sender, subscriptions.clone(), &names)
        .map_err(|e| e.to_string())?;
    let stats = shared.register(topics, &subscriptions);
    Ok(BuiltNode {
        object: node,
        inbox,
        services: services.into_iter().zip(stats).collect(),
        subscriptions,
    })
}

fn compile_subscriptions<'a>(
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

/// Delivers messages until told to stop, then stops the services and leaves the bus. Returns
/// whether every service thread ended (so the library may be closed).
fn run(
    node: BuiltNode,
    env: &Environment,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
) -> bool {
    let BuiltNode {
        mut object,
        inbox,
        services,
        subscriptions,
    } = node;
    let mut services = Some(services);
    let mut threads: Vec<ServiceThread> = Vec::new();
    loop {
        crossbeam_channel::select! {
            recv(inbox) -> delivery => match delivery {
                Ok(delivery) => deliver(&mut object, &delivery, &subscriptions, &shared.log),
                Err(_) => break,
            },
            recv(control) -> command => match command {
                Ok(Control::StartServices) => {
                    for (decl, stats) in services.take().into_iter().flatten() {
                        threads.push(ServiceThread::spawn(decl, stats, shared.clone()));
                    }
                    shared.set_running();
                }
                Ok(Control::Stop) | Err(_) => break,
            },
        }
    }
    env.bus.leave(&shared.name);
    shared.stop();
    let stuck = service::join_all(threads, Instant::now() + Duration::from_millis(800));
    count_undelivered(&inbox, &subscriptions, &shared.log);
    drop(services);
    drop(object);
    shared.set_stopped();
    if stuck.is_empty() {
        return true;
    }
    shared.log.write(
        LogLevel::Error,
        &format!(
            "service(s) {} did not return within 0.8 s of the stop; the node's library stays loaded",
            stuck.join(", ")
        ),
    );
    false
}

fn deliver(
    object: &mut NodeBox,
    delivery: &Delivery,
    subscriptions: &[Subscription],
    log: &NodeLog,
) {
    let message = &delivery.message;
    let view = MessageView {
        service: RStr::from_str(&message.service),
        node: RStr::from_str(&message.node),
        payload: RStr::from_str(&message.payload),
    };
    for &index in delivery.subscriptions.iter() {
        let subscription = &subscriptions[index as usize];
        match object.deliver(index, view).into_result() {
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
            }
        }
    }
}

/// Messages still queued when a node stops are counted as dropped and reported.
fn count_undelivered(inbox: &Inbox, subscriptions: &[Subscription], log: &NodeLog) {
    let mut count = 0u64;
    for delivery in inbox.try_iter() {
        count += 1;
        for &index in delivery.subscriptions.iter() {
            subscriptions[index as usize]
                .stats
                .dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    if count > 0 {
        log.write(
            LogLevel::Warn,
            &format!("{count} queued message(s) were not delivered because the node stopped"),
        );
    }
}
