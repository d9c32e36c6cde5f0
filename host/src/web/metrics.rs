//! `GET /metrics`: the hive's counters in the Prometheus text format.
//!
//! Message counters come from the controller's snapshot; reloads and load errors are counted
//! here from the event feed ([`EventCounters`]), from the events still in the feed when the
//! server starts onwards.

use crate::controller::HiveSnapshot;
use crate::events::{EventKind, Events, HiveEvent};
use crate::runtime::NodeStatus;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Reloads and load failures per node, counted from the event feed.
#[derive(Default)]
pub(super) struct EventCounters {
    by_node: Mutex<BTreeMap<String, NodeEvents>>,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NodeEvents {
    pub reloads: u64,
    pub load_errors: u64,
}

impl EventCounters {
    /// Counts the events already in `events`, then follows new ones on a task of its own.
    /// Must be called inside the tokio runtime.
    pub(super) fn follow(events: &Arc<Events>) -> Arc<Self> {
        let counters = Arc::new(Self::default());
        let mut live = events.subscribe();
        // Events emitted between `subscribe` and `recent` show up in both: skip them once.
        let mut seen = events.recent();
        for event in &seen {
            counters.count(event);
        }
        let weak = Arc::downgrade(&counters);
        tokio::spawn(async move {
            loop {
                let event = match live.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let Some(counters) = weak.upgrade() else {
                    return;
                };
                if let Some(at) = seen.iter().position(|e| *e == event) {
                    seen.remove(at);
                    continue;
                }
                seen.clear();
                counters.count(&event);
            }
        });
        counters
    }

    fn count(&self, event: &HiveEvent) {
        let Some(node) = &event.node else {
            return;
        };
        let mut by_node = self.by_node.lock();
        let entry = by_node.entry(node.clone()).or_default();
        match event.kind {
            EventKind::Reloaded => entry.reloads += 1,
            EventKind::Failed => entry.load_errors += 1,
            _ => {}
        }
    }

    fn get(&self, node: &str) -> NodeEvents {
        self.by_node.lock().get(node).copied().unwrap_or_default()
    }
}

/// The Prometheus text for `hive`.
pub(super) fn render(hive: &HiveSnapshot, counters: &EventCounters) -> String {
    // Each host exports its own nodes: the other hosts of a mesh are scraped on their own.
    let local: Vec<&crate::runtime::NodeSnapshot> =
        hive.nodes.iter().filter(|n| n.host == hive.host).collect();
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let per_node = |f: &dyn Fn(&crate::runtime::NodeSnapshot) -> u64| {
        local
            .iter()
            .copied()
            .map(|n| (format!("node=\"{}\"", label(&n.name)), f(n)))
            .collect::<Vec<_>>()
    };
    family(
        "hivemind_node_up",
        "gauge",
        "1 when the node is running, else 0.",
        per_node(&|n| u64::from(n.status == NodeStatus::Running)),
    );
    family(
        "hivemind_node_status",
        "gauge",
        "1 for the node's current status.",
        local
            .iter()
            .copied()
            .map(|n| {
                let status = serde_json::to_value(n.status).unwrap_or_default();
                (
                    format!(
                        "node=\"{}\",status=\"{}\"",
                        label(&n.name),
                        label(status.as_str().unwrap_or("unknown"))
                    ),
                    1,
                )
            })
            .collect(),
    );
    family(
        "hivemind_messages_sent_total",
        "counter",
        "Messages the node's services sent.",
        per_node(&|n| n.services.iter().map(|s| s.sent).sum()),
    );
    family(
        "hivemind_messages_delivered_total",
        "counter",
        "Messages the node's subscriptions handled without error.",
        per_node(&|n| n.subscriptions.iter().map(|s| s.delivered).sum()),
    );
    family(
        "hivemind_messages_dropped_total",
        "counter",
        "Messages dropped for the node (its queue was full, or it stopped).",
        per_node(&|n| n.subscriptions.iter().map(|s| s.dropped).sum()),
    );
    family(
        "hivemind_callback_errors_total",
        "counter",
        "Subscription callbacks that returned an error.",
        per_node(&|n| n.subscriptions.iter().map(|s| s.failed).sum()),
    );
    family(
        "hivemind_callback_panics_total",
        "counter",
        "Subscription callbacks that panicked.",
        per_node(&|n| n.subscriptions.iter().map(|s| s.panicked).sum()),
    );
    family(
        "hivemind_node_reloads_total",
        "counter",
        "Times the node was reloaded while the hive ran.",
        per_node(&|n| counters.get(&n.name).reloads),
    );
    family(
        "hivemind_node_load_errors_total",
        "counter",
        "Times the node failed to load, build or reload.",
        per_node(&|n| counters.get(&n.name).load_errors),
    );
    family(
        "hivemind_service_messages_sent_total",
        "counter",
        "Messages sent, per service.",
        local
            .iter()
            .copied()
            .flat_map(|n| {
                n.services.iter().map(|s| {
                    (
                        format!("node=\"{}\",service=\"{}\"", label(&n.name), label(&s.name)),
                        s.sent,
                    )
                })
            })
            .collect(),
    );
    let per_subscription = |f: &dyn Fn(&crate::runtime::SubscriptionSnapshot) -> u64| {
        local
            .iter()
            .copied()
            .flat_map(|n| {
                n.subscriptions.iter().map(|s| {
                    (
                        format!(
                            "node=\"{}\",pattern=\"{}\"",
                            label(&n.name),
                            label(&s.pattern)
                        ),
                        f(s),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        "hivemind_subscription_delivered_total",
        "counter",
        "Messages handled without error, per subscription.",
        per_subscription(&|s| s.delivered),
    );
    family(
        "hivemind_subscription_dropped_total",
        "counter",
        "Messages dropped, per subscription.",
        per_subscription(&|s| s.dropped),
    );
    out
}

/// Escapes a label value: backslash, double quote and newline.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{NodeSnapshot, ServiceSnapshot, SubscriptionSnapshot};

    fn event(kind: EventKind, node: &str, time: &str) -> HiveEvent {
        HiveEvent {
            time: time.into(),
            kind,
            node: Some(node.into()),
            message: String::new(),
        }
    }

    #[test]
    fn counts_reloads_and_failures_per_node() {
        let counters = EventCounters::default();
        counters.count(&event(EventKind::Reloaded, "batman", "1"));
        counters.count(&event(EventKind::Reloaded, "batman", "2"));
        counters.count(&event(EventKind::Failed, "batman", "3"));
        counters.count(&event(EventKind::Loaded, "batsignal", "4"));
        assert_eq!(
            counters.get("batman"),
            NodeEvents {
                reloads: 2,
                load_errors: 1
            }
        );
        assert_eq!(counters.get("batsignal"), NodeEvents::default());
    }

    #[tokio::test]
    async fn follows_the_feed_without_counting_an_event_twice() {
        let events = Arc::new(Events::default());
        events.emit(EventKind::Failed, Some("batman"), "before");
        let counters = EventCounters::follow(&events);
        events.emit(EventKind::Reloaded, Some("batman"), "after");
        for _ in 0..100 {
            if counters.get("batman").reloads == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            counters.get("batman"),
            NodeEvents {
                reloads: 1,
                load_errors: 1
            }
        );
    }

    #[test]
    fn renders_per_node_counters_with_escaped_labels() {
        let hive = HiveSnapshot {
            name: "gotham".into(),
            host: "gotham-9476".into(),
            mesh: None,
            problems: Vec::new(),
            nodes: vec![
                NodeSnapshot {
                    services: vec![ServiceSnapshot {
                        kind: Default::default(),
                        name: "a".into(),
                        sent: 3,
                        running: true,
                        restarts: 0,
                        refused: 0,
                        last_payload: None,
                        error: None,
                    }],
                    subscriptions: vec![SubscriptionSnapshot {
                        pattern: "bat-*".into(),
                        delivered: 5,
                        dropped: 2,
                        failed: 0,
                        panicked: 1,
                    }],
                    host: "gotham-9476".into(),
                    ..NodeSnapshot::idle("bat\"man", NodeStatus::Running)
                },
                NodeSnapshot {
                    host: "manor".into(),
                    ..NodeSnapshot::idle("robin", NodeStatus::Running)
                },
            ],
            topics: vec![],
        };
        let text = render(&hive, &EventCounters::default());
        for line in [
            "# TYPE hivemind_messages_sent_total counter",
            "hivemind_node_up{node=\"bat\\\"man\"} 1",
            "hivemind_messages_sent_total{node=\"bat\\\"man\"} 3",
            "hivemind_messages_delivered_total{node=\"bat\\\"man\"} 5",
            "hivemind_messages_dropped_total{node=\"bat\\\"man\"} 2",
            "hivemind_callback_panics_total{node=\"bat\\\"man\"} 1",
            "hivemind_node_reloads_total{node=\"bat\\\"man\"} 0",
            "hivemind_node_status{node=\"bat\\\"man\",status=\"running\"} 1",
            "hivemind_subscription_dropped_total{node=\"bat\\\"man\",pattern=\"bat-*\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(
            !text.contains("robin"),
            "another host's node is that host's to export:\n{text}"
        );
    }
}
