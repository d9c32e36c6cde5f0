//! One `[nodes.<name>]` table: the host's keys read and checked, the rest handed to the node.
//!
//! Contract: [`node_config`] checks the host's keys of a node's table (numbers against
//! [`BOUNDS`](super::bounds::BOUNDS), the failure and overflow policies against their choices, the
//! library's name as a node name) and refuses a wrong one naming the table and the choices;
//! every other key is the node's own setting, passed on untouched. The whole table, the host's
//! keys included, is the JSON the node is handed when it starts.

use super::bounds::bounded;
use crate::bus::Overflow;
use crate::names::check_node_name;
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// One `[nodes.<name>]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Whether `hm dev` runs the node.
    pub enabled: bool,
    /// The library to load, `nodes/lib<library>.so`; defaults to the node's name.
    pub library: String,
    /// Overrides `[messages] queue_capacity` for this node.
    pub queue_capacity: Option<usize>,
    /// Overrides `[messages] spin_us` for this node.
    pub spin_us: Option<u64>,
    /// What the host does when a service callback fails.
    pub faults: FaultPolicy,
    /// What happens to a message for this node when its queue is full (`overflow = "drop"`,
    /// the default, or `"block"` with `overflow_wait_ms`, default 1,000).
    pub overflow: Overflow,
    /// Run the node in a process of its own (`isolate = true`): a crash in its code
    /// (segfault, `abort()`, out of memory) then takes down only that process, which the host
    /// restarts with backoff. Costs a socket hop per message.
    pub isolate: bool,
    /// The whole table as JSON, handed to the node when it starts.
    pub settings: serde_json::Value,
}

/// A `[nodes.<name>]` table as written.
#[derive(Deserialize)]
pub(super) struct RawNode {
    #[serde(default)]
    enabled: bool,
    library: Option<String>,
    queue_capacity: Option<usize>,
    spin_us: Option<u64>,
    on_service_failure: Option<String>,
    overflow: Option<String>,
    overflow_wait_ms: Option<u64>,
    max_subscription_panics: Option<u64>,
    stuck_after_ms: Option<u64>,
    isolate: Option<bool>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// What the host does when a node's code fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPolicy {
    /// A service that returns an error or panics is restarted with backoff (`true`, the
    /// default: `on_service_failure = "restart"`) or stays stopped (`"stop"`).
    pub restart_services: bool,
    /// After this many panics in its subscription callbacks the node is marked failed and
    /// unloaded (`max_subscription_panics`, default 100; 0 never).
    pub max_subscription_panics: u64,
    /// A callback running longer than this marks the node stuck (`stuck_after_ms`, default
    /// 10,000).
    pub stuck_after: std::time::Duration,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        Self {
            restart_services: true,
            max_subscription_panics: 100,
            stuck_after: std::time::Duration::from_secs(10),
        }
    }
}

/// Checks the table of node `name`.
pub(super) fn node_config(name: &str, raw: RawNode) -> Result<NodeConfig> {
    let table_name = format!("[nodes.{name}]");
    for (key, value) in [
        ("queue_capacity", raw.queue_capacity.map(|v| v as u64)),
        ("spin_us", raw.spin_us),
        ("stuck_after_ms", raw.stuck_after_ms),
        ("overflow_wait_ms", raw.overflow_wait_ms),
        ("max_subscription_panics", raw.max_subscription_panics),
    ] {
        if let Some(value) = value {
            bounded(&table_name, key, value)?;
        }
    }
    let defaults = FaultPolicy::default();
    let faults = FaultPolicy {
        restart_services: match raw.on_service_failure.as_deref() {
            None | Some("restart") => true,
            Some("stop") => false,
            Some(other) => bail!(
                "[nodes.{name}] on_service_failure = {other:?}: use \"restart\" (with backoff) or \"stop\""
            ),
        },
        max_subscription_panics: raw
            .max_subscription_panics
            .unwrap_or(defaults.max_subscription_panics),
        stuck_after: raw
            .stuck_after_ms
            .map_or(defaults.stuck_after, std::time::Duration::from_millis),
    };
    let overflow = match raw.overflow.as_deref() {
        None | Some("drop") => Overflow::Drop,
        Some("block") => Overflow::Block(std::time::Duration::from_millis(
            raw.overflow_wait_ms.unwrap_or(1000),
        )),
        Some(other) => {
            bail!("[nodes.{name}] overflow = {other:?}: use \"drop\" (the default) or \"block\"")
        }
    };

    let mut table = raw.rest;
    table.insert("enabled".into(), toml::Value::Boolean(raw.enabled));
    if let Some(library) = &raw.library {
        table.insert("library".into(), toml::Value::String(library.clone()));
    }
    let library = raw.library.unwrap_or_else(|| name.to_owned());
    check_node_name(&library).with_context(|| format!("[nodes.{name}] library"))?;
    if let Some(capacity) = raw.queue_capacity {
        table.insert(
            "queue_capacity".into(),
            toml::Value::Integer(capacity as i64),
        );
    }
    if let Some(spin) = raw.spin_us {
        table.insert("spin_us".into(), toml::Value::Integer(spin as i64));
    }
    if let Some(policy) = &raw.on_service_failure {
        table.insert(
            "on_service_failure".into(),
            toml::Value::String(policy.clone()),
        );
    }
    if let Some(panics) = raw.max_subscription_panics {
        table.insert(
            "max_subscription_panics".into(),
            toml::Value::Integer(panics as i64),
        );
    }
    if let Some(ms) = raw.stuck_after_ms {
        table.insert("stuck_after_ms".into(), toml::Value::Integer(ms as i64));
    }
    if let Some(overflow) = &raw.overflow {
        table.insert("overflow".into(), toml::Value::String(overflow.clone()));
    }
    if let Some(ms) = raw.overflow_wait_ms {
        table.insert("overflow_wait_ms".into(), toml::Value::Integer(ms as i64));
    }
    if let Some(isolate) = raw.isolate {
        table.insert("isolate".into(), toml::Value::Boolean(isolate));
    }
    let settings = serde_json::to_value(&table)
        .with_context(|| format!("[nodes.{name}] cannot be handed to the node as JSON"))?;
    Ok(NodeConfig {
        enabled: raw.enabled,
        library,
        queue_capacity: raw.queue_capacity,
        spin_us: raw.spin_us,
        isolate: raw.isolate.unwrap_or(false),
        faults,
        overflow,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Overflow;
    use crate::config::{parse_err, parse_ok};

    #[test]
    fn node_tables_carry_enabled_and_their_own_settings() {
        let config = parse_ok(
            "[nodes.batsignal]\nenabled = true\ninterval_secs = 5\n\n[nodes.batman]\nenabled = false\n",
        );
        let signal = &config.nodes["batsignal"];
        assert!(signal.enabled);
        assert_eq!(signal.library, "batsignal");
        assert_eq!(
            signal.settings,
            serde_json::json!({"enabled": true, "interval_secs": 5})
        );
        assert!(!config.nodes["batman"].enabled);
    }

    #[test]
    fn a_node_may_name_another_library() {
        let config = parse_ok("[nodes.robin]\nenabled = true\nlibrary = \"sidekick\"\n");
        assert_eq!(config.nodes["robin"].library, "sidekick");
    }

    #[test]
    fn unsafe_node_names_are_refused() {
        let message = parse_err("[nodes.\"../etc\"]\nenabled = true\n");
        assert!(message.contains("not a valid node name"), "{message}");
    }

    #[test]
    fn fault_policies_have_defaults_and_are_checked() {
        let config = parse_ok(
            "[nodes.a]\n[nodes.b]\non_service_failure = \"stop\"\nmax_subscription_panics = 3\nstuck_after_ms = 250\n",
        );
        assert_eq!(config.nodes["a"].faults, FaultPolicy::default());
        let b = config.nodes["b"].faults;
        assert!(!b.restart_services);
        assert_eq!(b.max_subscription_panics, 3);
        assert_eq!(b.stuck_after, std::time::Duration::from_millis(250));
        assert_eq!(config.nodes["a"].overflow, Overflow::Drop);
        let blocking = parse_ok("[nodes.d]\noverflow = \"block\"\noverflow_wait_ms = 50\n");
        assert_eq!(
            blocking.nodes["d"].overflow,
            Overflow::Block(std::time::Duration::from_millis(50))
        );
        assert!(parse_err("[nodes.e]\noverflow = \"spill\"\n").contains("\"block\""));
        let message = parse_err("[nodes.c]\non_service_failure = \"retry\"\n");
        assert!(
            message.contains("\"restart\"") && message.contains("[nodes.c]"),
            "{message}"
        );
    }
}
