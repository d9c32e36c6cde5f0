//! The controller's pub/sub core: carries each message from a service to every subscription
//! whose pattern matches the service's name.
//!
//! # Guarantees
//!
//! - **Once per subscription.** A message reaches each matching subscription exactly once, even
//!   when one node has several subscriptions that match (each gets its copy) and whatever the
//!   number of publishers sharing a service name.
//! - **Per-service order.** The messages one service sends reach a subscription in the order
//!   they were sent: a service sends from one thread, and each subscribing node has one FIFO
//!   queue drained by one thread.
//! - **Routes are computed on membership changes, not per message.** A [`Topic`] holds the
//!   list of queues its messages go to; publishing reads that list without locking. Registering
//!   or removing a node updates only the topics its patterns match.
//! - **Bounded queues, counted drops.** Each subscribing node has one queue of
//!   `queue_capacity` messages. When it is full, a new message for that node is dropped (the
//!   publisher and the other subscribers are never slowed); the drop is counted on each
//!   subscription it was meant for and logged (the 1st, 2nd, 4th, 8th... drop). A message
//!   still queued when its node stops is counted and logged too. Nothing is lost silently.
//!   A node may choose [`Overflow::Block`] instead: its publishers wait for room, for a while.
//! - **One wake-up per sleep, not per message.** Queueing rings the node's [`Doorbell`]: a
//!   fence and a load of a flag while the node's thread is awake, a wake-up only when it sleeps
//!   (see `docs/DESIGN-handoff.md`). Nothing yields on either side; the node's thread looks
//!   at its queue for a few µs before sleeping only while that keeps catching messages.
//! - **Other hosts.** With the mesh on, an [`Outlet`] also gets every message sent on this host
//!   (by its nodes or its API), once, after the local routes; messages from other hosts come in
//!   through [`Bus::inject`], reach the local routes only, and never go back out, so nothing
//!   echoes between hosts.

mod doorbell;
mod pattern;

pub use doorbell::Doorbell;
pub use pattern::Pattern;

use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One message on its way: who sent it, on which service, and its JSON payload.
///
/// One allocation holds the service's name, the node's name and the payload, one after the
/// other (the names are short; copying them costs less than sharing them). So a message costs
/// one allocation, and cloning it for another receiver touches one reference count: with
/// fan-out, the publisher's thread and the receivers' threads would otherwise pass three
/// counters' cache lines back and forth per delivery (1.5× the deliveries per second with one
/// shared counter instead of three, measured with a plain channel fan-out of 16 on 2 vCPUs).
#[derive(Debug, Clone)]
pub struct Message {
    /// The service's name, the node's name and the payload, in that order.
    text: Arc<str>,
    /// Invariant: `service_end <= node_end <= text.len()`, each on a character boundary (the
    /// ends of whole strings that [`Message::new`] put together).
    service_end: usize,
    node_end: usize,
    /// The host it was sent on when that is another host of the mesh; `None`: this host.
    host: Option<Arc<str>>,
}

thread_local! {
    /// Where a message's text is put together before its one allocation (a `String` of its own
    /// would cost a second allocation: `Arc<str>` copies it into its own block).
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The largest scratch text a thread keeps between messages.
const KEPT_SCRATCH_BYTES: usize = 64 * 1024;

impl Message {
    /// A message of node `node` on `service`; `host` is `None` for this host, or the other host
    /// of the mesh it was sent on.
    pub fn new(service: &str, node: &str, payload: &str, host: Option<Arc<str>>) -> Self {
        let join = |text: &mut String| -> Arc<str> {
            text.clear();
            text.push_str(service);
            text.push_str(node);
            text.push_str(payload);
            Arc::from(text.as_str())
        };
        let text = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let text = join(&mut scratch);
                if scratch.capacity() > KEPT_SCRATCH_BYTES {
                    *scratch = String::new();
                }
                text
            }
            // Not reentrant in practice; a fresh buffer if it ever is.
            Err(_) => join(&mut String::new()),
        });
        Self {
            text,
            service_end: service.len(),
            node_end: service.len() + node.len(),
            host,
        }
    }

    /// The service (topic) name.
    pub fn service(&self) -> &str {
        &self.text[..self.service_end]
    }

    /// The sending node's name.
    pub fn node(&self) -> &str {
        &self.text[self.service_end..self.node_end]
    }

    /// The payload as JSON text.
    pub fn payload(&self) -> &str {
        &self.text[self.node_end..]
    }

    /// The host it was sent on when that is another host of the mesh; `None`: this host.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether `self` and `other` are clones of one message.
    pub fn same(&self, other: &Message) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
    }
}

/// A message from another host, for [`Bus::inject_all`].
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// The service it was sent on.
    pub service: &'a str,
    /// The node of the other host that sent it.
    pub node: &'a str,
    /// The payload as JSON text.
    pub payload: &'a str,
}

/// Where the messages sent on this host also go (the mesh).
///
/// Called on the sender's thread, once per message, after the message was queued for the local
/// subscriptions; it must not block.
pub trait Outlet: Send + Sync {
    /// Takes a message sent on this host.
    fn forward(&self, message: &Message);
}

/// The bus's current outlet, shared by its topics.
type OutletSlot = Arc<OutletCell>;

/// Where the outlet is kept: without one (a hive without the mesh) a publish costs one load of
/// a flag here, not a load of the slot (an `arc_swap` load: tens of instructions per message).
#[derive(Default)]
struct OutletCell {
    /// Whether `slot` may hold an outlet.
    ///
    /// Invariant: set after `slot` is filled and cleared before it is emptied, so a publisher
    /// that reads `false` may skip the slot, and one that reads `true` still handles an empty
    /// slot (the outlet was just removed).
    present: AtomicBool,
    slot: ArcSwapOption<Box<dyn Outlet>>,
}

/// A message queued for one node, with the node's subscriptions it is meant for.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Indices of the receiving node's subscriptions that match the message's service, as
    /// registered under `generation`.
    pub subscriptions: Indices,
    /// The registration the indices belong to: an instance registered under another one
    /// matches the message against its own patterns instead.
    pub generation: u64,
}

/// The indices of a node's subscriptions that a message matches, kept inline (most messages
/// match one or two of a node's subscriptions; copying a few words costs less than sharing a
/// list between threads). Past [`Indices::INLINE`] matches it says "too many", and the node
/// matches the message against its patterns itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indices {
    len: u8,
    items: [u32; Self::INLINE],
}

impl Indices {
    /// How many indices fit inline.
    pub const INLINE: usize = 4;

    /// The indices, or `None` if there were too many to keep inline.
    pub fn get(&self) -> Option<&[u32]> {
        self.items.get(..usize::from(self.len))
    }
}

impl FromIterator<u32> for Indices {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut indices = Indices {
            len: 0,
            items: [0; Self::INLINE],
        };
        for index in iter {
            match indices.items.get_mut(usize::from(indices.len)) {
                Some(slot) => {
                    *slot = index;
                    indices.len += 1;
                }
                // Too many: an out-of-range length makes `get` say so.
                None => indices.len = u8::MAX,
            }
        }
        indices
    }
}

/// The receiving end of a node's queue, drained by the node's thread.
pub(crate) type Inbox = Receiver<Delivery>;

/// The sending end of a node's queue: what is put in it rings the node's [`Doorbell`], which
/// wakes the node's thread only if it sleeps.
#[derive(Debug, Clone)]
pub struct QueueSender {
    sender: Sender<Delivery>,
    bell: Arc<Doorbell>,
}

impl QueueSender {
    /// Queues `delivery` if there is room, then rings.
    pub fn try_send(&self, delivery: Delivery) -> Result<(), TrySendError<Delivery>> {
        self.sender.try_send(delivery)?;
        self.bell.ring();
        Ok(())
    }

    /// Queues `delivery`, waiting for room up to `patience`, then rings.
    pub fn send_timeout(
        &self,
        delivery: Delivery,
        patience: std::time::Duration,
    ) -> Result<(), SendTimeoutError<Delivery>> {
        self.sender.send_timeout(delivery, patience)?;
        self.bell.ring();
        Ok(())
    }

    /// Queues `delivery`, waiting for room as long as it takes, then rings; fails only if the
    /// inbox is gone.
    pub fn send(&self, delivery: Delivery) -> Result<(), crossbeam_channel::SendError<Delivery>> {
        self.sender.send(delivery)?;
        self.bell.ring();
        Ok(())
    }

    /// The doorbell of the queue's consumer.
    pub fn bell(&self) -> &Arc<Doorbell> {
        &self.bell
    }
}

/// Creates a node's queue: the sender goes to [`Bus::join`], the inbox to the node.
pub(crate) fn queue(capacity: usize) -> (QueueSender, Inbox) {
    let (sender, inbox) = crossbeam_channel::bounded(capacity);
    let bell = Arc::new(Doorbell::new());
    (QueueSender { sender, bell }, inbox)
}

/// Counters of one subscription.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    /// Callbacks that returned `Ok`.
    pub delivered: AtomicU64,
    /// Messages dropped because the node's queue was full or the node stopped.
    pub dropped: AtomicU64,
    /// Callbacks that returned an error.
    pub failed: AtomicU64,
    /// Callbacks that panicked.
    pub panicked: AtomicU64,
}

/// A subscription as registered: its node-local index and its pattern.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Index in the node's registration order (the id used at the ABI).
    pub index: u32,
    /// The compiled pattern.
    pub pattern: Pattern,
    /// Its counters, shared with the node's runtime.
    pub stats: Arc<SubscriptionStats>,
}

/// Called after a message was queued for a [`Tap`], so that an async reader can sleep
/// without a thread of its own blocked on the queue.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// Where a topic's messages go for one subscribing node.
#[derive(Clone)]
struct Route {
    node: Arc<str>,
    generation: u64,
    overflow: Overflow,
    drop_report: Option<DropReport>,
    wake: Option<Wake>,
    sender: QueueSender,
    subscriptions: Indices,
    stats: Arc<[Arc<SubscriptionStats>]>,
}

/// What happens to a message for a node whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop it (counted and logged): the publisher and the other subscribers never wait.
    #[default]
    Drop,
    /// Make the publisher wait for room, up to the given time, then drop it: lossless for a
    /// subscriber that keeps up on average, at the price of slowing its publishers.
    Block(std::time::Duration),
}

/// A service name with the routes its messages take.
pub struct Topic {
    name: Arc<str>,
    routes: ArcSwap<Vec<Route>>,
    outlet: OutletSlot,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("routes", &self.routes.load().len())
            .finish()
    }
}

impl Topic {
    /// The service name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Queues `payload` from node `from` of this host for every matching subscription, then
    /// hands it to the outlet if there is one; never blocks.
    pub fn publish(&self, from: &Arc<str>, payload: &str) {
        let message = Message::new(&self.name, from, payload, None);
        if !self.outlet.present.load(Ordering::Acquire) {
            return self.deliver_here(message);
        }
        let outlet = self.outlet.slot.load();
        match outlet.as_ref() {
            Some(outlet) => {
                self.deliver_here(message.clone());
                outlet.forward(&message);
            }
            None => self.deliver_here(message),
        }
    }

    /// Queues `message` for every matching subscription of this host only.
    fn deliver_here(&self, message: Message) {
        let routes = self.routes.load();
        let Some((last, others)) = routes.split_last() else {
            return;
        };
        for route in others {
            route.push(message.clone());
        }
        last.push(message);
    }
}

impl Route {
    fn push(&self, message: Message) {
        let delivery = Delivery {
            message,
            subscriptions: self.subscriptions,
            generation: self.generation,
        };
        let (reason, delivery) = match self.sender.try_send(delivery) {
            Ok(()) => {
                if let Some(wake) = &self.wake {
                    wake();
                }
                return;
            }
            Err(TrySendError::Full(delivery)) => match self.overflow {
                Overflow::Drop => ("its queue is full", delivery),
                Overflow::Block(patience) => match self.sender.send_timeout(delivery, patience) {
                    Ok(()) => {
                        if let Some(wake) = &self.wake {
                            wake();
                        }
                        return;
                    }
                    Err(SendTimeoutError::Timeout(delivery)) => (
                        "its queue stayed full for the whole overflow wait",
                        delivery,
                    ),
                    Err(SendTimeoutError::Disconnected(delivery)) => ("it has stopped", delivery),
                },
            },
            Err(TrySendError::Disconnected(delivery)) => ("it has stopped", delivery),
        };
        let message = delivery.message;
        let mut dropped = 0;
        for stats in self.stats.iter() {
            dropped = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        }
        if dropped.is_power_of_two() {
            tracing::warn!(
                node = %self.node,
                service = %message.service(),
                dropped,
                "dropped a message for node `{}` because {reason} (raise queue_capacity in config/hive.toml if it cannot keep up)",
                self.node,
            );
            if let Some(report) = &self.drop_report {
                report(&self.node, message.service(), dropped);
            }
        }
    }
}

struct NodeEntry {
    generation: u64,
    overflow: Overflow,
    drop_report: Option<DropReport>,
    wake: Option<Wake>,
    sender: QueueSender,
    subscriptions: Vec<Subscription>,
    services: Vec<Arc<str>>,
}

impl NodeEntry {
    fn route_for(&self, node: &Arc<str>, service: &str) -> Option<Route> {
        let matching: Vec<&Subscription> = self
            .subscriptions
            .iter()
            .filter(|s| s.pattern.matches(service))
            .collect();
        if matching.is_empty() {
            return None;
        }
        Some(Route {
            node: node.clone(),
            generation: self.generation,
            overflow: self.overflow,
            drop_report: self.drop_report.clone(),
            wake: self.wake.clone(),
            sender: self.sender.clone(),
            subscriptions: matching.iter().map(|s| s.index).collect(),
            stats: matching.iter().map(|s| s.stats.clone()).collect(),
        })
    }
}

#[derive(Default)]
struct Registry {
    /// Nodes in registration order, which is the order routes list them in.
    nodes: Vec<(Arc<str>, NodeEntry)>,
    topics: HashMap<Arc<str>, Arc<Topic>>,
    outlet: OutletSlot,
}

impl Registry {
    fn routes_for(&self, service: &str) -> Vec<Route> {
        self.nodes
            .iter()
            .filter_map(|(name, entry)| entry.route_for(name, service))
            .collect()
    }

    fn topic(&mut self, service: &str) -> Arc<Topic> {
        if let Some(topic) = self.topics.get(service) {
            return topic.clone();
        }
        let name: Arc<str> = service.into();
        let topic = Arc::new(Topic {
            name: name.clone(),
            routes: ArcSwap::from_pointee(self.routes_for(service)),
            outlet: self.outlet.clone(),
        });
        self.topics.insert(name, topic.clone());
        topic
    }

    fn forget_unoffered_topics(&mut self) {
        let stale: Vec<Arc<str>> = self
            .topics
            .keys()
            .filter(|service| !self.is_advertised(service))
            .cloned()
            .collect();
        for service in stale {
            self.topics.remove(&service);
        }
    }

    fn is_advertised(&self, service: &str) -> bool {
        self.nodes
            .iter()
            .any(|(_, entry)| entry.services.iter().any(|s| &**s == service))
    }
}

/// Told about dropped messages (node, service, drops so far) on the 1st, 2nd, 4th, 8th... drop
/// for a node: the controller turns these into events for the page.
pub(crate) type DropReport = Arc<dyn Fn(&str, &str, u64) + Send + Sync>;

/// Topics kept at most for services no local node offers (named by messages from other hosts).
pub(crate) const MAX_KEPT_TOPICS: usize = 16 * 1024;

/// The routing table of a hive.
#[derive(Default)]
pub struct Bus {
    registry: Mutex<Registry>,
    drop_report: Option<DropReport>,
}

/// Who sends on a service and who receives it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicInfo {
    /// The service name.
    pub service: String,
    /// Nodes that offer a service of this name.
    pub publishers: Vec<String>,
    /// Nodes with a subscription matching it.
    pub subscribers: Vec<String>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty bus that tells `report` about dropped messages.
    pub fn with_drop_report(report: DropReport) -> Self {
        Self {
            registry: Mutex::default(),
            drop_report: Some(report),
        }
    }

    /// Adds node `node` with its subscriptions (fed through `sender`) and the services it
    /// offers, registered as `generation`; returns the topics its services publish on, in the
    /// order given. Refuses a name already present.
    ///
    /// Only the topics its patterns match get new routes.
    pub fn join(
        &self,
        node: &Arc<str>,
        sender: QueueSender,
        subscriptions: Vec<Subscription>,
        services: &[Arc<str>],
    ) -> Result<Vec<Arc<Topic>>, JoinError> {
        if self
            .registry
            .lock()
            .nodes
            .iter()
            .any(|(name, _)| name == node)
        {
            return Err(JoinError::AlreadyJoined(node.to_string()));
        }
        Ok(self.register(node, sender, subscriptions, services, 0, Overflow::Drop))
    }

    /// Registers node `node` as [`Bus::join`] does, replacing its current registration if it
    /// has one, in one step: each topic's routes switch from the old registration to the new
    /// one at once, so a message is routed under one or the other, never lost or doubled.
    pub fn register(
        &self,
        node: &Arc<str>,
        sender: QueueSender,
        subscriptions: Vec<Subscription>,
        services: &[Arc<str>],
        generation: u64,
        overflow: Overflow,
    ) -> Vec<Arc<Topic>> {
        let entry = NodeEntry {
            generation,
            overflow,
            drop_report: self.drop_report.clone(),
            wake: None,
            sender,
            subscriptions,
            services: services.to_vec(),
        };
        self.install(node, entry)
    }

    /// Puts `entry` in place of node `node`'s registration (or adds it), switching the routes
    /// of the topics it touches in one step.
    fn install(&self, node: &Arc<str>, entry: NodeEntry) -> Vec<Arc<Topic>> {
        let services = entry.services.clone();
        let mut registry = self.registry.lock();
        for topic in registry.topics.values() {
            let routes = topic.routes.load();
            let had_route = routes.iter().any(|r| r.node == *node);
            let new_route = entry.route_for(node, &topic.name);
            if !had_route && new_route.is_none() {
                continue;
            }
            let mut updated: Vec<Route> =
                routes.iter().filter(|r| r.node != *node).cloned().collect();
            updated.extend(new_route);
            topic.routes.store(Arc::new(updated));
        }
        match registry.nodes.iter_mut().find(|(name, _)| name == node) {
            Some((_, existing)) => *existing = entry,
            None => registry.nodes.push((node.clone(), entry)),
        }
        let topics = services.iter().map(|s| registry.topic(s)).collect();
        registry.forget_unoffered_topics();
        topics
    }

    /// Removes node `node`: its subscriptions stop receiving, and topics nobody offers any more
    /// are forgotten. Messages already queued for it stay in its queue.
    pub fn leave(&self, node: &str) {
        let mut registry = self.registry.lock();
        registry.nodes.retain(|(name, _)| &**name != node);
        for topic in registry.topics.values() {
            let routes = topic.routes.load();
            if routes.iter().any(|r| &*r.node == node) {
                let kept: Vec<Route> = routes
                    .iter()
                    .filter(|r| &*r.node != node)
                    .cloned()
                    .collect();
                topic.routes.store(Arc::new(kept));
            }
        }
        registry.forget_unoffered_topics();
    }

    /// Publishes `payload` on `service` as node `from`, whether or not a node offers that
    /// service (the HTTP API uses this).
    pub fn publish(&self, service: &str, from: &Arc<str>, payload: &str) {
        let topic = {
            let registry = self.registry.lock();
            match registry.topics.get(service) {
                Some(topic) => topic.clone(),
                None => Arc::new(Topic {
                    name: service.into(),
                    routes: ArcSwap::from_pointee(registry.routes_for(service)),
                    outlet: registry.outlet.clone(),
                }),
            }
        };
        topic.publish(from, payload);
    }

    /// Delivers a message that node `node` of another host `host` sent on `service` to the
    /// matching subscriptions of this host (never to the outlet): [`Bus::inject_all`] with one
    /// message.
    pub fn inject(&self, service: &str, node: &str, host: Arc<str>, payload: &str) {
        self.inject_all(
            &host,
            [Incoming {
                service,
                node,
                payload,
            }],
        );
    }

    /// Delivers messages that nodes of another host `host` sent, in their order, to the
    /// matching subscriptions of this host (never to the outlet). The routing table is locked
    /// once for all of them, to find each service's topic (one lookup per run of messages of
    /// the same service); they are queued after it is released. Topics are kept until the next
    /// membership change, so a stream of them costs one lookup each; when [`MAX_KEPT_TOPICS`]
    /// are kept, those no local node offers are dropped first.
    pub fn inject_all<'a>(
        &self,
        host: &Arc<str>,
        messages: impl IntoIterator<Item = Incoming<'a>>,
    ) {
        let routed: Vec<(Arc<Topic>, Incoming<'a>)> = {
            let mut registry = self.registry.lock();
            let mut last: Option<Arc<Topic>> = None;
            messages
                .into_iter()
                .map(|incoming| {
                    let topic = match &last {
                        Some(topic) if *topic.name == *incoming.service => topic.clone(),
                        _ => {
                            // Other hosts name services freely: the topics kept for them are
                            // bounded.
                            if registry.topics.len() >= MAX_KEPT_TOPICS
                                && !registry.topics.contains_key(incoming.service)
                            {
                                registry.forget_unoffered_topics();
                            }
                            let topic = registry.topic(incoming.service);
                            last = Some(topic.clone());
                            topic
                        }
                    };
                    (topic, incoming)
                })
                .collect()
        };
        for (topic, incoming) in routed {
            topic.deliver_here(Message::new(
                &topic.name,
                incoming.node,
                incoming.payload,
                Some(host.clone()),
            ));
        }
    }

    /// Sets (or with `None`, removes) where messages sent on this host also go.
    pub fn set_outlet(&self, outlet: Option<Box<dyn Outlet>>) {
        let registry = self.registry.lock();
        let cell = &registry.outlet;
        match outlet {
            Some(outlet) => {
                cell.slot.store(Some(Arc::new(outlet)));
                cell.present.store(true, Ordering::Release);
            }
            None => {
                cell.present.store(false, Ordering::Release);
                cell.slot.store(None);
            }
        }
    }

    /// Every offered service with its publishers and subscribers, sorted by name.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let registry = self.registry.lock();
        let mut publishers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, entry) in &registry.nodes {
            for service in &entry.services {
                publishers
                    .entry(service)
                    .or_default()
                    .push(name.to_string());
            }
        }
        publishers
            .into_iter()
            .map(|(service, publishers)| TopicInfo {
                service: service.to_owned(),
                publishers,
                subscribers: registry
                    .routes_for(service)
                    .iter()
                    .filter(|r| !r.node.starts_with(TAP_PREFIX))
                    .map(|r| r.node.to_string())
                    .collect(),
            })
            .collect()
    }
}

/// Taps are named `tap#<n>`: `#` is never in a node's name, so they cannot clash, and the
/// topic listing leaves them out.
const TAP_PREFIX: &str = "tap#";

/// A subscription for a reader outside the hive (a WebSocket client, a test): every message
/// whose service matches its pattern, in order, through a bounded queue. Leaves on drop.
pub struct Tap {
    bus: std::sync::Weak<Bus>,
    name: Arc<str>,
    /// The messages, as they are published.
    pub inbox: Inbox,
    /// Messages dropped because the reader fell `capacity` behind.
    pub stats: Arc<SubscriptionStats>,
}

impl Bus {
    /// Starts a [`Tap`] on `pattern` with room for `capacity` unread messages.
    pub fn tap(self: &Arc<Self>, pattern: Pattern, capacity: usize) -> Tap {
        self.tap_waking(pattern, capacity, None)
    }

    /// [`Bus::tap`], calling `wake` (on the publisher's thread: it must be quick and must not
    /// block) after each message it queues for the tap.
    pub fn tap_waking(
        self: &Arc<Self>,
        pattern: Pattern,
        capacity: usize,
        wake: Option<Wake>,
    ) -> Tap {
        static TAPS: AtomicU64 = AtomicU64::new(0);
        let name: Arc<str> = format!("{TAP_PREFIX}{}", TAPS.fetch_add(1, Ordering::Relaxed)).into();
        let (sender, inbox) = queue(capacity);
        let stats = Arc::new(SubscriptionStats::default());
        let subscription = Subscription {
            index: 0,
            pattern,
            stats: stats.clone(),
        };
        let entry = NodeEntry {
            generation: 0,
            overflow: Overflow::Drop,
            drop_report: self.drop_report.clone(),
            wake,
            sender,
            subscriptions: vec![subscription],
            services: Vec::new(),
        };
        // Tap names are unique (a counter), so this adds and never replaces.
        self.install(&name, entry);
        Tap {
            bus: Arc::downgrade(self),
            name,
            inbox,
            stats,
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.leave(&self.name);
        }
    }
}

/// Why a node could not join the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Two running nodes cannot share a name.
    #[error("a node named `{0}` is already running")]
    AlreadyJoined(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriptions(patterns: &[&str]) -> Vec<Subscription> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Subscription {
                index: i as u32,
                pattern: Pattern::new(p).unwrap(),
                stats: Arc::default(),
            })
            .collect()
    }

    fn join(
        bus: &Bus,
        node: &str,
        patterns: &[&str],
        services: &[&str],
    ) -> (Vec<Arc<Topic>>, Inbox) {
        let (sender, inbox) = queue(16);
        let services: Vec<Arc<str>> = services.iter().map(|s| Arc::from(*s)).collect();
        let topics = bus
            .join(&Arc::from(node), sender, subscriptions(patterns), &services)
            .unwrap();
        (topics, inbox)
    }

    fn drain(inbox: &Inbox) -> Vec<(String, Vec<u32>)> {
        inbox
            .try_iter()
            .map(|d| {
                (
                    d.message.payload().to_string(),
                    d.subscriptions.get().unwrap().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn a_message_reaches_each_matching_subscription_once_in_order() {
        let bus = Bus::new();
        let (_, batman) = join(&bus, "batman", &["bat-signal-*", "*-main", "cat-*"], &[]);
        let (_, robin) = join(&bus, "robin", &["bat-signal-main"], &[]);
        let (topics, _) = join(&bus, "batsignal", &[], &["bat-signal-main"]);
        let from: Arc<str> = "batsignal".into();
        for n in 0..3 {
            topics[0].publish(&from, &n.to_string());
        }
        assert_eq!(
            drain(&batman),
            vec![
                ("0".into(), vec![0, 1]),
                ("1".into(), vec![0, 1]),
                ("2".into(), vec![0, 1])
            ]
        );
        assert_eq!(drain(&robin).len(), 3);
    }

    #[test]
    fn routes_follow_nodes_joining_and_leaving() {
        let bus = Bus::new();
        let (topics, _) = join(&bus, "batsignal", &[], &["bat-signal-main"]);
        let from: Arc<str> = "batsignal".into();
        topics[0].publish(&from, "before");
        let (_, batman) = join(&bus, "batman", &["bat-*"], &[]);
        topics[0].publish(&from, "during");
        bus.leave("batman");
        topics[0].publish(&from, "after");
        assert_eq!(drain(&batman), vec![("during".into(), vec![0])]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let bus = Bus::new();
        let (sender, inbox) = queue(2);
        let subs = subscriptions(&["*"]);
        let stats = subs[0].stats.clone();
        bus.join(&"slow".into(), sender, subs, &[]).unwrap();
        let (_, fast) = join(&bus, "fast", &["*"], &[]);
        for n in 0..5 {
            bus.publish("tick", &"api".into(), &n.to_string());
        }
        assert_eq!(inbox.len(), 2);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(drain(&fast).len(), 5);
    }

    #[test]
    fn publishing_on_an_unoffered_service_still_reaches_subscribers() {
        let bus = Bus::new();
        let (_, batman) = join(&bus, "batman", &["bat-signal-*"], &[]);
        bus.publish("bat-signal-test", &"api".into(), "\"hi\"");
        bus.publish("cat-signal", &"api".into(), "\"no\"");
        assert_eq!(drain(&batman), vec![("\"hi\"".into(), vec![0])]);
    }

    #[test]
    fn topics_list_publishers_and_subscribers() {
        let bus = Bus::new();
        join(&bus, "batsignal", &[], &["bat-signal-main"]);
        join(&bus, "batman", &["bat-signal-*"], &[]);
        assert_eq!(
            bus.topics(),
            vec![TopicInfo {
                service: "bat-signal-main".into(),
                publishers: vec!["batsignal".into()],
                subscribers: vec!["batman".into()],
            }]
        );
        bus.leave("batsignal");
        assert!(bus.topics().is_empty());
    }

    #[test]
    fn a_tap_sees_matching_messages_until_dropped() {
        let bus = Arc::new(Bus::new());
        let tap = bus.tap(Pattern::new("bat-*").unwrap(), 8);
        bus.publish("bat-signal", &"api".into(), "1");
        bus.publish("cat-signal", &"api".into(), "2");
        let got: Vec<String> = tap
            .inbox
            .try_iter()
            .map(|d| d.message.payload().to_string())
            .collect();
        assert_eq!(got, vec!["1"]);
        drop(tap);
        assert!(bus.registry.lock().nodes.is_empty(), "the tap left the bus");
    }

    #[test]
    fn a_tap_is_woken_for_each_message_it_queues_not_for_drops() {
        let bus = Arc::new(Bus::new());
        let wakes = Arc::new(AtomicU64::new(0));
        let counting = wakes.clone();
        let wake: Wake = Arc::new(move || {
            counting.fetch_add(1, Ordering::Relaxed);
        });
        let tap = bus.tap_waking(Pattern::new("*").unwrap(), 2, Some(wake));
        for n in 0..5 {
            bus.publish("bat-signal", &"api".into(), &n.to_string());
        }
        assert_eq!(wakes.load(Ordering::Relaxed), 2, "two fit in the queue");
        assert_eq!(tap.stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(tap.inbox.len(), 2);
    }

    #[test]
    fn re_registering_switches_routes_at_once_and_keeps_the_queue() {
        let bus = Bus::new();
        let (topics, _) = join(&bus, "city", &[], &["bat-signal", "cat-signal"]);
        let (sender, inbox) = queue(16);
        let node: Arc<str> = "batman".into();
        bus.register(
            &node,
            sender.clone(),
            subscriptions(&["bat-*"]),
            &[],
            1,
            Overflow::Drop,
        );
        let from: Arc<str> = "city".into();
        topics[0].publish(&from, "1");
        topics[1].publish(&from, "no");
        bus.register(
            &node,
            sender,
            subscriptions(&["cat-*", "bat-*"]),
            &[],
            2,
            Overflow::Drop,
        );
        topics[0].publish(&from, "2");
        topics[1].publish(&from, "3");
        let got: Vec<(String, Vec<u32>, u64)> = inbox
            .try_iter()
            .map(|d| {
                (
                    d.message.payload().to_string(),
                    d.subscriptions.get().unwrap().to_vec(),
                    d.generation,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("1".into(), vec![0], 1),
                ("2".into(), vec![1], 2),
                ("3".into(), vec![0], 2)
            ]
        );
        assert_eq!(bus.topics().len(), 2);
    }

    #[test]
    fn more_matches_than_fit_inline_say_so() {
        let few: Indices = [1, 2].into_iter().collect();
        assert_eq!(few.get(), Some(&[1, 2][..]));
        let full: Indices = (0..Indices::INLINE as u32).collect();
        assert_eq!(full.get().map(<[u32]>::len), Some(Indices::INLINE));
        let many: Indices = (0..9).collect();
        assert_eq!(many.get(), None);
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    impl Outlet for Arc<Collect> {
        fn forward(&self, message: &Message) {
            assert!(message.host().is_none(), "only this host's messages go out");
            self.0.lock().push(message.payload().to_string());
        }
    }

    #[test]
    fn the_outlet_gets_local_messages_once_and_injected_ones_never() {
        let bus = Bus::new();
        let collect = Arc::new(Collect::default());
        bus.set_outlet(Some(Box::new(collect.clone())));
        let (topics, _) = join(&bus, "city", &[], &["bat-signal"]);
        let (_, batman) = join(&bus, "batman", &["bat-*"], &[]);
        topics[0].publish(&"city".into(), "1");
        bus.publish("nobody-listens", &"api".into(), "2");
        bus.inject("bat-remote", "robin", "manor".into(), "3");
        let got: Vec<(String, Option<String>)> = batman
            .try_iter()
            .map(|d| {
                (
                    d.message.payload().to_string(),
                    d.message.host().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![("1".into(), None), ("3".into(), Some("manor".into()))]
        );
        assert_eq!(*collect.0.lock(), vec!["1", "2"]);
        bus.set_outlet(None);
        topics[0].publish(&"city".into(), "4");
        assert_eq!(collect.0.lock().len(), 2);
    }

    #[test]
    fn injected_topics_follow_membership_changes() {
        let bus = Bus::new();
        bus.inject("bat-remote", "robin", "manor".into(), "1");
        let (_, batman) = join(&bus, "batman", &["bat-*"], &[]);
        bus.inject("bat-remote", "robin", "manor".into(), "2");
        bus.leave("batman");
        bus.inject("bat-remote", "robin", "manor".into(), "3");
        assert_eq!(drain(&batman), vec![("2".into(), vec![0])]);
    }

    #[test]
    fn a_batch_from_another_host_arrives_in_order_on_each_service_and_never_goes_out() {
        let bus = Bus::new();
        let collect = Arc::new(Collect::default());
        bus.set_outlet(Some(Box::new(collect.clone())));
        let (_, batman) = join(&bus, "batman", &["bat-*"], &[]);
        let (_, robin) = join(&bus, "robin", &["bat-signal", "cat-*"], &[]);
        let message = |service: &'static str, payload: &'static str| Incoming {
            service,
            node: "gordon",
            payload,
        };
        bus.inject_all(
            &"manor".into(),
            [
                message("bat-signal", "1"),
                message("bat-signal", "2"),
                message("cat-signal", "3"),
                message("bat-cave", "4"),
                message("bat-signal", "5"),
            ],
        );
        let payloads = |inbox: &Inbox| -> Vec<(String, String)> {
            inbox
                .try_iter()
                .map(|d| {
                    (
                        d.message.service().to_string(),
                        d.message.payload().to_string(),
                    )
                })
                .collect()
        };
        let pair = |s: &str, p: &str| (s.to_owned(), p.to_owned());
        assert_eq!(
            payloads(&batman),
            vec![
                pair("bat-signal", "1"),
                pair("bat-signal", "2"),
                pair("bat-cave", "4"),
                pair("bat-signal", "5")
            ]
        );
        assert_eq!(
            payloads(&robin),
            vec![
                pair("bat-signal", "1"),
                pair("bat-signal", "2"),
                pair("cat-signal", "3"),
                pair("bat-signal", "5")
            ]
        );
        assert!(collect.0.lock().is_empty(), "nothing injected goes out");
    }

    #[test]
    fn topics_named_by_other_hosts_are_bounded() {
        let bus = Bus::new();
        let names: Vec<String> = (0..MAX_KEPT_TOPICS + 10)
            .map(|i| format!("junk-{i}"))
            .collect();
        bus.inject_all(
            &"manor".into(),
            names.iter().map(|service| Incoming {
                service,
                node: "n",
                payload: "1",
            }),
        );
        assert!(bus.registry.lock().topics.len() <= MAX_KEPT_TOPICS);
    }

    #[test]
    fn a_name_joins_once() {
        let bus = Bus::new();
        join(&bus, "batman", &[], &[]);
        let (sender, _inbox) = queue(1);
        let error = bus.join(&"batman".into(), sender, vec![], &[]).unwrap_err();
        assert_eq!(error, JoinError::AlreadyJoined("batman".into()));
    }
}
