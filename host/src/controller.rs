//! The controller: the hive's registry of nodes and owner of its pub/sub core.
//!
//! It turns the config into running nodes, starts them in an order that loses no early
//! message (every node registers its subscriptions before any service starts), answers what the
//! hive looks like, and stops everything within a deadline.

use crate::bus::{Bus, TopicInfo};
use crate::config::HiveConfig;
use crate::events::Events;
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

/// Why a payload published through the host was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The body is not JSON.
    #[error("the payload is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is over `[messages] max_payload_bytes`.
    #[error(
        "the payload is {size} bytes, over the hive's limit of {limit} bytes ([messages] max_payload_bytes in config/hive.toml)"
    )]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An empty or unprintable service name.
    #[error("{0:?} is not a service name: service names are non-empty and printable")]
    InvalidService(String),
}

/// The name published messages carry as their sending node.
pub const API_NODE: &str = "api";

/// The hive's registry of nodes.
pub struct Controller {
    config: HiveConfig,
    events: Arc<Events>,
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
            events: Arc::new(Events::default()),
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

    /// The hive's event feed.
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Publishes `payload` (JSON text) on `service` as if a service of that name had sent it;
    /// the message's sending node is [`API_NODE`].
    pub fn publish(&self, service: &str, payload: &str) -> Result<(), PublishError> {
        if service.is_empty() || service.chars().any(char::is_control) {
            return Err(PublishError::InvalidService(service.to_owned()));
        }
        let limit = self.config.messages.max_payload_bytes;
        if payload.len() > limit {
            return Err(PublishError::TooLarge {
                size: payload.len(),
                limit,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| PublishError::InvalidJson(e.to_string()))?;
        let from: Arc<str> = API_NODE.into();
        self.env
            .bus
            .publish(service, &from, value.to_string().into());
        Ok(())
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
