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

//!
//! One module per job: [`message`] is what the bus carries, [`queue`] a node's queue and its
//! subscriptions, [`routes`] the topics and their routes (delivery and drops), [`registry`]
//! the membership they are computed from, [`tap`] readers outside the hive, [`pattern`] the
//! glob matcher, [`doorbell`] the wake-up; this file is the [`Bus`] that changes them.

mod doorbell;
mod message;
mod pattern;
mod queue;
mod registry;
mod routes;
mod tap;

pub use doorbell::Doorbell;
pub use message::{Incoming, Message};
pub use pattern::Pattern;
pub use queue::{Delivery, QueueSender, Subscription, SubscriptionStats};
pub(crate) use queue::{Inbox, Indices, queue};
pub(crate) use routes::Outlet;
pub use routes::{Overflow, Topic};
use tap::TAP_PREFIX;
pub use tap::Tap;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use registry::{NodeEntry, Registry};
use routes::Route;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Called after a message was queued for a [`Tap`], so that an async reader can sleep
/// without a thread of its own blocked on the queue.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

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
    use std::sync::atomic::AtomicU64;

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
