//! The bus's membership: each node's registration (its queue, its subscriptions, the services
//! it offers) and the topics kept for service names.
//!
//! Contract: nodes are kept in registration order, which is the order a topic's routes list
//! them in; a topic is made once per service name, with the routes of every node whose
//! patterns match it; a topic no node offers is forgotten when asked
//! ([`Registry::forget_unoffered_topics`]). Callers hold the bus's lock around every change.

use super::queue::{QueueSender, Subscription};
use super::routes::{OutletSlot, Overflow, Route, Topic};
use super::{DropReport, Wake};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) struct NodeEntry {
    pub(super) generation: u64,
    pub(super) overflow: Overflow,
    pub(super) drop_report: Option<DropReport>,
    pub(super) wake: Option<Wake>,
    pub(super) sender: QueueSender,
    pub(super) subscriptions: Vec<Subscription>,
    pub(super) services: Vec<Arc<str>>,
}

impl NodeEntry {
    pub(super) fn route_for(&self, node: &Arc<str>, service: &str) -> Option<Route> {
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
pub(super) struct Registry {
    /// Nodes in registration order, which is the order routes list them in.
    pub(super) nodes: Vec<(Arc<str>, NodeEntry)>,
    pub(super) topics: HashMap<Arc<str>, Arc<Topic>>,
    pub(super) outlet: OutletSlot,
}

impl Registry {
    pub(super) fn routes_for(&self, service: &str) -> Vec<Route> {
        self.nodes
            .iter()
            .filter_map(|(name, entry)| entry.route_for(name, service))
            .collect()
    }

    pub(super) fn topic(&mut self, service: &str) -> Arc<Topic> {
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

    pub(super) fn forget_unoffered_topics(&mut self) {
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
