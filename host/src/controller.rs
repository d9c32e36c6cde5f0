//! The controller: the hive's registry of nodes and owner of its pub/sub core.
//!
//! It turns the config into running nodes, starts them in an order that loses no early
//! message (every node registers its subscriptions before any service starts), answers what the
//! hive looks like, and stops everything within a deadline.

use crate::bus::{Bus, TopicInfo};
use crate::config::HiveConfig;
use crate::logging::Logs;
use crate::runtime::{Environment, NodeRuntime, NodeSnapshot, NodeSpec, NodeStatus};
use anyhow::{Context as _, Result};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the whole hive gets to stop.
pub const STOP_DEADLINE: Duration = Duration::from_millis(900);

/// The library file of `library` in a hive's `nodes/` folder.
pub fn library_path(root: &Path, library: &str) -> PathBuf {
    root.join("nodes")
        .join(format!("lib{}.so", library.replace('-', "_")))
}

/// The hive as the page and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct HiveSnapshot {
    /// The hive's name.
    pub name: String,
    /// Every node in the config, and any named with `-n`.
    pub nodes: Vec<NodeSnapshot>,
    /// Every offered service with its publishers and subscribers.
    pub topics: Vec<TopicInfo>,
}

/// The hive's registry of nodes.
pub struct Controller {
    config: HiveConfig,
    env: Arc<Environment>,
    nodes: Mutex<BTreeMap<String, Option<NodeRuntime>>>,
    _scratch: tempfile::TempDir,
}

impl Controller {
    /// A controller for `config`, with nothing started yet.
    pub fn new(config: HiveConfig, logs: Logs) -> Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix("hm-libraries-")
            .tempdir()
            .context("cannot create a temporary folder for loading node libraries")?;
        let env = Arc::new(Environment {
            bus: Arc::new(Bus::new()),
            logs,
            scratch: scratch.path().to_path_buf(),
            max_payload_bytes: config.messages.max_payload_bytes,
        });
        let nodes = config
            .nodes
            .keys()
            .map(|name| (name.clone(), None))
            .collect();
        Ok(Self {
            config,
            env,
            nodes: Mutex::new(nodes),
            _scratch: scratch,
        })
    }

    /// The hive's routing table.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.env.bus
    }

    /// The hive's config.
    pub fn config(&self) -> &HiveConfig {
        &self.config
    }

    /// Loads and builds `names`, then starts their services once every one of them has
    /// registered. A node that fails is reported and left out; the others run.
    pub fn start(&self, names: &[String]) {
        let mut nodes = self.nodes.lock();
        let mut started = Vec::new();
        for name in names {
            let runtime = NodeRuntime::spawn(self.spec(name), self.env.clone());
            nodes.insert(name.clone(), Some(runtime));
            started.push(name);
        }
        let mut failed = Vec::new();
        for name in &started {
            let runtime = nodes[*name].as_ref().expect("just started");
            if runtime.wait_ready().is_err() {
                failed.push(name.as_str());
            }
        }
        let up = started.len() - failed.len();
        if failed.is_empty() {
            tracing::info!("{up} node(s) up: {}", list(&started));
        } else {
            tracing::warn!(
                "{up} of {} node(s) up; failed: {} (see above; the rest of the hive runs)",
                started.len(),
                failed.join(", ")
            );
        }
        for name in started {
            if let Some(runtime) = &nodes[name] {
                runtime.start_services();
            }
        }
    }

    fn spec(&self, name: &str) -> NodeSpec {
        let config = self.config.nodes.get(name);
        let library = config.map_or(name, |c| c.library.as_str());
        NodeSpec {
            name: name.into(),
            library: library_path(&self.config.root, library),
            settings_json: config
                .map(|c| c.settings.to_string())
                .unwrap_or_else(|| "{}".to_owned()),
            queue_capacity: config
                .and_then(|c| c.queue_capacity)
                .unwrap_or(self.config.messages.queue_capacity),
        }
    }

    /// Stops every node: all services are told at once, then each node is joined. Returns the
    /// names of nodes that did not stop within [`STOP_DEADLINE`].
    pub fn stop(&self) -> Vec<String> {
        let mut nodes = self.nodes.lock();
        for runtime in nodes.values().flatten() {
            runtime.request_stop();
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        nodes
            .iter_mut()
            .filter_map(|(name, runtime)| {
                let runtime = runtime.as_mut()?;
                (!runtime.join(deadline)).then(|| name.clone())
            })
            .collect()
    }

    /// The hive as it is now.
    pub fn snapshot(&self) -> HiveSnapshot {
        let nodes = self.nodes.lock();
        HiveSnapshot {
            name: self.config.name.clone(),
            nodes: nodes
                .iter()
                .map(|(name, runtime)| match runtime {
                    Some(runtime) => runtime.snapshot(),
                    None => NodeSnapshot {
                        name: name.clone(),
                        status: NodeStatus::Disabled,
                        error: None,
                        library: None,
                        services: Vec::new(),
                        subscriptions: Vec::new(),
                    },
                })
                .collect(),
            topics: self.env.bus.topics(),
        }
    }
}

fn list(names: &[&String]) -> String {
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    names.join(", ")
}
