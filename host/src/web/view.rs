//! What the pages and the JSON API show of the hive: the controller's snapshot as JSON, with
//! what the web adds to it.
//!
//! - each node of this host gets `settings`: its `[nodes.<name>]` table as the node receives
//!   it, the values of secret names (`*key*`, `*token*`, `*secret*`, `*password*`) redacted;
//! - each subscription gets `matches`: the offered services its pattern matches, in the
//!   topics' order, as the bus matches them ([`Pattern`]), so no page matches globs itself;
//! - each topic gets `schema` (whether its service declared a payload type) and loses the
//!   outside readers (WebSocket taps) from its subscribers;
//! - the hive gets `key_required`, `requests` and the message rates ([`super::rates`]).

use super::state::Web;
use crate::bus::{Pattern, TopicInfo};
use crate::config::HiveConfig;
use crate::runtime::NodeSnapshot;
use serde_json::Value;
use std::collections::HashMap;

/// The hive's snapshot as the pages show it: what `/api/hive` and `/api/stream` send.
pub(super) fn hive(web: &Web) -> Value {
    let snapshot = web.controller.snapshot();
    // The settings each running node of this host was started with.
    let in_force: HashMap<String, Value> = snapshot
        .nodes
        .iter()
        .filter(|n| n.host == snapshot.host)
        .filter_map(|n| Some((n.name.clone(), n.settings.clone()?)))
        .collect();
    let services: Vec<&str> = snapshot.topics.iter().map(|t| t.service.as_str()).collect();
    let mut value = serde_json::to_value(&snapshot).unwrap_or_default();
    let config = web.controller.config();
    let host = value["host"].clone();
    if let Some(nodes) = value["nodes"].as_array_mut() {
        for node in nodes.iter_mut() {
            add_matches(node, &services);
        }
        // Another host's node has its own host's settings, not this config's.
        for node in nodes.iter_mut().filter(|n| n["host"] == host) {
            let running = node["name"].as_str().and_then(|n| in_force.get(n)).cloned();
            add_settings(&config, node, running);
        }
    }
    if let Some(topics) = value["topics"].as_array_mut() {
        mark_typed(web, topics);
        for topic in topics {
            hide_taps(topic);
        }
    }
    value["key_required"] = web.has_key().into();
    value["requests"] = serde_json::to_value(web.controller.router().list()).unwrap_or_default();
    web.rates.annotate(&mut value);
    value
}

/// One node as `/api/nodes/{name}` shows it, with its settings and what its subscriptions
/// match of `topics` (the hive's, from the same snapshot).
pub(super) fn node(web: &Web, node: NodeSnapshot, topics: &[TopicInfo]) -> Value {
    let in_force = node.settings.clone();
    let mut value = serde_json::to_value(node).unwrap_or_default();
    let services: Vec<&str> = topics.iter().map(|t| t.service.as_str()).collect();
    add_matches(&mut value, &services);
    add_settings(&web.controller.config(), &mut value, in_force);
    value
}

/// Every topic as `/api/topics` shows it.
pub(super) fn topics(web: &Web) -> Value {
    let mut topics = serde_json::to_value(web.controller.snapshot().topics).unwrap_or_default();
    if let Some(list) = topics.as_array_mut() {
        mark_typed(web, list);
        for topic in list {
            hide_taps(topic);
        }
    }
    topics
}

/// Adds to each of `node`'s subscriptions the `services` its pattern matches, as `matches`
/// (none for a pattern the bus would refuse: such a subscription is never made).
fn add_matches(node: &mut Value, services: &[&str]) {
    let Some(subscriptions) = node["subscriptions"].as_array_mut() else {
        return;
    };
    for subscription in subscriptions {
        let pattern = subscription["pattern"].as_str().map(Pattern::new);
        let matches: Vec<&str> = match pattern {
            Some(Ok(pattern)) => services
                .iter()
                .copied()
                .filter(|service| pattern.matches(service))
                .collect(),
            _ => Vec::new(),
        };
        subscription["matches"] = matches.into();
    }
}

/// Outside readers (WebSocket clients) are not nodes: leave them out of a topic's subscribers.
fn hide_taps(topic: &mut Value) {
    if let Some(subscribers) = topic["subscribers"].as_array_mut() {
        subscribers.retain(|s| !s.as_str().is_some_and(|s| s.starts_with(TAP_PREFIX)));
    }
}

/// Adds `"schema": true` to each topic whose service declared its payload type (its schema is
/// at `/api/topics/{service}/schema`), `false` to the others.
fn mark_typed(web: &Web, topics: &mut [Value]) {
    let typed = web.controller.schemas().typed_services();
    for topic in topics {
        let has = topic["service"]
            .as_str()
            .is_some_and(|service| typed.contains(service));
        topic["schema"] = has.into();
    }
}

/// How the bus names a tap (`tap#N`); node names cannot contain `#`.
const TAP_PREFIX: &str = "tap#";

/// Adds the node's `[nodes.<name>]` table, as the node receives it, as `settings`: for a running
/// node `in_force`, the settings it was started with (a rejected edit is not shown as if in
/// force), else those of the config; either way with the values of secret names (`*key*`,
/// `*token*`, `*secret*`, `*password*`) redacted.
fn add_settings(config: &HiveConfig, node: &mut Value, in_force: Option<Value>) {
    let settings = in_force
        .or_else(|| {
            node["name"]
                .as_str()
                .and_then(|name| config.nodes.get(name))
                .map(|config| config.settings.clone())
        })
        .map(|settings| crate::config::redact_settings(&settings))
        .unwrap_or_default();
    node["settings"] = settings;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_lists_the_services_the_bus_matches() {
        let services = ["]x", "ab", "ba", "bz", "a]"];
        let mut node = serde_json::json!({
            "subscriptions": [
                { "pattern": "[!]a]*" },
                { "pattern": "[]]*" },
                { "pattern": "b?" },
                { "pattern": "[" },
            ]
        });
        add_matches(&mut node, &services);
        let matches: Vec<&Value> = node["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["matches"])
            .collect();
        assert_eq!(*matches[0], serde_json::json!(["ba", "bz"]));
        assert_eq!(*matches[1], serde_json::json!(["]x"]));
        assert_eq!(*matches[2], serde_json::json!(["ba", "bz"]));
        assert_eq!(*matches[3], serde_json::json!([]), "a refused pattern");
    }
}
