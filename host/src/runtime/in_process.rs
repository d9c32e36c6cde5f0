//! The in-process driver of the instance seam ([`super`]): the node's library is loaded into the
//! host and its code runs on threads made here: one delivery thread (subscriptions and timers, in
//! order) and one thread per service ([`super::service`]). The library's calls back into the host
//! go through [`super::host::NodeHost`].
//!
//! Guarantees: every call into the library happens on these threads, and they are all joined
//! before the library is closed; a thread that does not end keeps the library mapped for good.

use super::host::NodeHost;
use super::service::{self, ServiceThread};
use super::timers::Timers;
use super::{
    Answering, Asking, BuildError, Built, Control, Environment, NodeShared, NodeSpec,
    SERVICE_STOP_DEADLINE, compile_subscriptions, count_undelivered, withdraw,
};
use crate::bus::{Delivery, Inbox, Subscription};
use crate::loader::NodeLibrary;
use crate::logging::NodeLog;
use crate::requests::Router;
use crate::schemas::DeclaredTypes;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RStr, RString};
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::{
    HostBox, LogLevel, MessageView, NodeBox, NodeInit, NodeParts, RequestDecl, ServiceDecl,
    TimerDecl,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The in-process [`Driver`](super::Driver), on the instance's own thread: it loads the library,
/// builds the node, delivers messages and tears everything down again.
pub(crate) fn drive(
    spec: NodeSpec,
    env: &Environment,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
    built: Sender<Result<Built, BuildError>>,
) {
    let started = Instant::now();
    let opened = match &spec.read {
        Some(file) => env.libraries.open_read(&spec.library, file),
        None => env.libraries.open(&spec.library),
    };
    let library = match opened {
        Ok(library) => library,
        Err(error) => {
            let error = BuildError::Library(error);
            shared.fail(&error.to_string());
            let _ = built.send(Err(error));
            return;
        }
    };
    shared.set_library(library.info().clone());
    let _ = shared.asking.set(Asking {
        router: env.router.clone(),
        mailbox: spec.queue.mailbox.clone(),
        host: spec.host.clone(),
    });
    let node = match build(&spec, shared, env, &library) {
        Ok(node) => node,
        Err(error) => {
            shared.fail(&error.to_string());
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
        types: node.types.clone(),
        requests: Answering::registration(&node.requests),
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
    types: DeclaredTypes,
    requests: Vec<RequestDecl>,
}

fn build(
    spec: &NodeSpec,
    shared: &Arc<NodeShared>,
    env: &Environment,
    library: &NodeLibrary,
) -> Result<BuiltNode, BuildError> {
    let host = HostBox::from_value(NodeHost::new(shared.clone(), env.store.clone()), TD_Opaque);
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
        schemas,
        requests,
    } = library
        .new_node(init)
        .into_result()
        .map_err(|error| BuildError::Constructor {
            node: spec.name.clone(),
            panicked: error.panicked,
            message: error.message.into_string(),
        })?;
    let services: Vec<ServiceDecl> = services.into_iter().collect();
    let subscriptions = compile_subscriptions(&spec.name, subscriptions.iter().map(|p| p.as_str()))
        .map_err(BuildError::Registration)?;
    let service_names = service_names(&spec.name, &services).map_err(BuildError::Registration)?;
    let text = |schema: &ROption<RString>| schema.as_ref().map(|t| t.to_string()).into_option();
    let types = DeclaredTypes {
        services: schemas.services.iter().map(text).collect(),
        subscriptions: schemas.subscriptions.iter().map(text).collect(),
    };
    Ok(BuiltNode {
        object: node,
        services,
        service_names,
        subscriptions,
        timers: timers.into_iter().collect(),
        types,
        requests: requests.into_iter().collect(),
    })
}

/// The names of `node`'s services, in registration order, once the node API's rule for them
/// ([`hivemind::names::check_service_names`]) accepts them.
fn service_names(node: &str, services: &[ServiceDecl]) -> Result<Vec<Arc<str>>, String> {
    hivemind::names::check_service_names(node, services.iter().map(|s| s.name.as_str()))
        .map_err(|e| e.to_string())?;
    Ok(services.iter().map(|s| s.name.as_str().into()).collect())
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
        types: _,
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
    let mut timers = Timers::new(&timers, Instant::now(), shared);
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
            withdraw(router, spec, &shared.log);
            count_undelivered(&spec.queue.inbox, &subscriptions, &shared.log);
        }
        Ending::Failed(reason) => {
            withdraw(router, spec, &shared.log);
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

/// Deliveries handled between two looks at the control channel while the queue stays busy.
pub(crate) const BATCH: usize = 256;

/// Delivers until told to hand over or stop. Each wake-up drains everything queued (looking at
/// the control channel every [`BATCH`]); with nothing queued the thread parks on the queue's
/// [`Doorbell`](crate::bus::Doorbell) (after `spin`, if the node asked for one, and after a
/// [`Catch`] of a few µs while those pay off), and the first message or command that arrives
/// wakes it: nothing yields, so how fast messages go does not depend on how the scheduler
/// treats a thread that yields.
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
    let mut catch = Catch::default();
    loop {
        // Timers tick between deliveries, on this thread: in order with the subscriptions.
        timers.tick_due(object, shared);
        // So do requests and the replies to the node's own asks. A request in hand is
        // finished before a hand-over; once stopping, the rest wait for the next instance.
        let mut handled = answering.handle(object, shared, BATCH);
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
        if handled > 0
            && let Some(progress) = &spec.processed
        {
            progress.batch_done();
        }
        if let Some(ending) = ending(control.try_recv()) {
            return ending;
        }
        catch.handled(handled);
        if handled > 0 || spin_for(inbox, spec.spin) || catch.next(inbox) {
            continue;
        }
        // Sleep until a message, a control command or the next timer's deadline.
        bell.sleep_unless_until(timers.next_due(), || {
            !control.is_empty()
                || (!shared.is_stopping() && (!inbox.is_empty() || answering.pending()))
        });
        catch.slept();
    }
}

/// How many times [`Catch`] looks at the queue before the thread sleeps: with a pause
/// instruction between looks, about 2 to 4 µs (the pause's length is the CPU's: no clock is read
/// and nothing is yielded to the scheduler).
const CATCH_LOOKS: u32 = 64;

/// A short wait for the next message before sleeping, taken only while it pays off.
///
/// At full rate a node's thread empties its queue a few hundred ns before the next message
/// arrives. Sleeping then costs a wake-up per burst, and on a virtual machine the publisher pays
/// tens of µs for each (the trials of one 1→1 run differed 2.6× with the sink's sleeps per
/// message, 0.0005 against 0.0089). Catching the next message in a few µs keeps the thread
/// awake while messages come close together. Once two waits in a row caught nothing, the
/// thread sleeps at once, until a wake-up finds more than one delivery waiting (dense traffic
/// again): at a moderate rate (10,000 msg/s, one message per wake-up) and on an idle hive,
/// nothing polls.
#[derive(Debug, Default)]
struct Catch {
    /// Waits in a row that caught nothing.
    misses: u8,
    /// The thread has slept since it last handled deliveries.
    woke: bool,
}

impl Catch {
    /// Looks at the queue up to [`CATCH_LOOKS`] times, unless the last waits caught nothing;
    /// returns whether a message is waiting.
    fn next(&mut self, inbox: &Inbox) -> bool {
        if self.misses >= 2 {
            return false;
        }
        for _ in 0..CATCH_LOOKS {
            if !inbox.is_empty() {
                self.misses = 0;
                return true;
            }
            std::hint::spin_loop();
        }
        self.misses += 1;
        false
    }

    /// The thread is about to look at its queue again after sleeping.
    fn slept(&mut self) {
        self.woke = true;
    }

    /// The thread handled `handled` deliveries in one go. The first go after a sleep that
    /// finds more than one means messages come close together: catching is worth trying again.
    fn handled(&mut self, handled: usize) {
        if std::mem::take(&mut self.woke) && handled > 1 {
            self.misses = 0;
        }
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
        service: RStr::from_str(message.service()),
        node: RStr::from_str(message.node()),
        payload: RStr::from_str(message.payload()),
        host: RStr::from_str(message.host().unwrap_or(&spec.host)),
    };
    // Routed for a previous instance, whose patterns may differ, or matching more subscriptions
    // than the route keeps inline: match against our own patterns.
    let rematched: Vec<u32>;
    let indices: &[u32] = match delivery.subscriptions.get() {
        Some(indices) if delivery.generation == spec.generation => indices,
        _ => {
            rematched = subscriptions
                .iter()
                .filter(|s| s.pattern.matches(message.service()))
                .map(|s| s.index)
                .collect();
            &rematched
        }
    };
    for &index in indices {
        let subscription = &subscriptions[index as usize];
        let outcome = shared
            .busy
            .around(|| object.deliver(index, view).into_result());
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
                        message.service(),
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
        processed.one_handled();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Delivery, Message};

    fn delivery() -> Delivery {
        Delivery {
            message: Message::new("bat-signal", "batsignal", "1", None),
            subscriptions: std::iter::empty().collect(),
            generation: 0,
        }
    }

    #[test]
    fn the_catch_stops_after_two_misses_and_looks_again_when_traffic_is_dense() {
        let (sender, inbox) = crate::bus::queue(4);
        let mut catch = Catch::default();
        assert!(!catch.next(&inbox), "nothing queued: a miss");
        assert!(!catch.next(&inbox), "a second miss");
        sender.try_send(delivery()).expect("room");
        assert!(
            !catch.next(&inbox),
            "after two misses the thread sleeps at once, without looking"
        );
        catch.slept();
        catch.handled(1);
        assert!(
            !catch.next(&inbox),
            "one delivery per wake-up (a moderate rate): still no looking"
        );
        catch.slept();
        catch.handled(2);
        assert!(
            catch.next(&inbox),
            "several deliveries per wake-up: it looks again, and finds the message"
        );
        assert_eq!(inbox.len(), 1, "looking takes nothing off the queue");
    }
}
