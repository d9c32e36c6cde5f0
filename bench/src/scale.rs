//! Scale: a hive of many idle nodes with many subscriptions. How long it takes to start, how
//! long the routes take to update when one more node joins, and the memory each idle node costs.

use crate::messages::BenchHive;
use crate::system;
use anyhow::Result;
use hivemind_host::NodeQueue;
use hivemind_host::{Overflow, Pattern, Subscription, SubscriptionStats};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the scale benchmark measured.
pub struct Report {
    /// Nodes started.
    pub nodes: usize,
    /// Subscriptions in the hive.
    pub subscriptions: usize,
    /// Seconds to start them all (load, build, register, start).
    pub start_s: f64,
    /// Milliseconds for the bus to take one more node with its subscriptions and service.
    pub route_recompute_ms: f64,
    /// Anonymous resident memory per idle node (heap, stacks, queues), in kB; the libraries'
    /// own mapped code is not counted.
    pub rss_per_idle_node_kb: f64,
}

/// Starts `nodes` idle nodes with `per_node` subscriptions and one service each.
pub fn run(libraries: &Path, nodes: usize, per_node: usize) -> Result<Report> {
    let mut config = String::new();
    for n in 0..nodes {
        let _ = write!(
            config,
            "[nodes.idle{n}]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"idle\"\nsubscriptions = {per_node}\nservice = \"scale-{n}\"\nqueue_capacity = 64\n\n"
        );
    }
    let anon_before = system::rss_anon_kb();
    let started = Instant::now();
    let hive = BenchHive::start(libraries, &config)?;
    let start_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let anon_after = system::rss_anon_kb();

    // One more node, straight onto the bus: ten patterns that each match one of the idle
    // nodes' services, and a service of its own that every idle pattern is tested against.
    let subscriptions: Vec<Subscription> = (0..per_node)
        .map(|i| Subscription {
            index: i as u32,
            pattern: Pattern::new(&format!("scale-{i}*")).expect("a valid pattern"),
            stats: Arc::new(SubscriptionStats::default()),
        })
        .collect();
    let queue = NodeQueue::new(64);
    let newcomer: Arc<str> = "newcomer".into();
    let services: Vec<Arc<str>> = vec!["scale-newcomer".into()];
    let joining = Instant::now();
    hive.controller.bus().register(
        &newcomer,
        queue.sender.clone(),
        subscriptions,
        &services,
        1,
        Overflow::Drop,
    );
    let route_recompute_ms = joining.elapsed().as_secs_f64() * 1e3;
    hive.controller.bus().leave(&newcomer);

    Ok(Report {
        nodes,
        subscriptions: nodes * per_node,
        start_s,
        route_recompute_ms,
        rss_per_idle_node_kb: anon_after.saturating_sub(anon_before) as f64 / nodes as f64,
    })
}
