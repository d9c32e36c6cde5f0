//! Reads a hive's `config/hive.toml` into checked, typed settings.
//!
//! ```toml
//! [hive]
//! name = "gotham"
//! bind = "127.0.0.1"   # where the web page listens
//! port = 9476          # 0 picks any free port
//! key = "..."          # the hive key the HTTP API's mutating endpoints require
//!
//! [log]
//! location = "logs"    # relative to the hive's folder
//! max_bytes = 5242880  # rotate a log file at this size
//! backups = 2          # rotated files kept per log
//!
//! [messages]
//! max_payload_bytes = 1048576  # largest payload a service may send
//! queue_capacity = 1024        # messages waiting per subscribing node
//!
//! [nodes.batsignal]    # one table per node
//! enabled = true       # whether `hm dev` runs it
//! interval_secs = 5    # any other key is the node's own setting
//! ```
//!
//! Every section and key is optional except the node tables' meaning; a typo in a hive-level key
//! is refused with its line and column, so that a setting is never silently ignored.

mod edit;

pub use edit::set_enabled;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The hive's settings file, relative to the hive's root folder.
pub const CONFIG_FILE: &str = "config/hive.toml";

/// The port the original hivemind's documentation promised.
pub const DEFAULT_PORT: u16 = 9476;

/// A hive's checked configuration.
#[derive(Debug, Clone)]
pub struct HiveConfig {
    /// The hive's root folder (the one holding `config/hive.toml`).
    pub root: PathBuf,
    /// The hive's name, shown on its page.
    pub name: String,
    /// Address the web page listens on.
    pub bind: IpAddr,
    /// Port the web page listens on (0: any free port).
    pub port: u16,
    /// The hive key: when set, the HTTP API's mutating endpoints require it (see `web`).
    pub key: Option<String>,
    /// Log files.
    pub log: LogConfig,
    /// Message limits.
    pub messages: MessageLimits,
    /// The node tables, by node name.
    pub nodes: BTreeMap<String, NodeConfig>,
}

/// Where and how logs are written.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// The log folder, resolved against the hive root.
    pub location: PathBuf,
    /// Rotate a file when it reaches this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept per log.
    pub backups: u32,
}

/// Limits on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest JSON payload a service may send, in bytes.
    pub max_payload_bytes: usize,
    /// Messages that may wait for one subscribing node before new ones are dropped.
    pub queue_capacity: usize,
}

/// One `[nodes.<name>]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Whether `hm dev` runs the node.
    pub enabled: bool,
    /// The library to load, `nodes/lib<library>.so`; defaults to the node's name.
    pub library: String,
    /// Overrides `[messages] queue_capacity` for this node.
    pub queue_capacity: Option<usize>,
    /// The whole table as JSON, handed to the node when it starts.
    pub settings: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    hive: RawHive,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    messages: RawMessages,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHive {
    name: Option<String>,
    bind: Option<IpAddr>,
    port: Option<u16>,
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    location: PathBuf,
    max_bytes: u64,
    backups: u32,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            location: PathBuf::from("logs"),
            max_bytes: 5 * 1024 * 1024,
            backups: 2,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMessages {
    max_payload_bytes: usize,
    queue_capacity: usize,
}

impl Default for RawMessages {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1024 * 1024,
            queue_capacity: 1024,
        }
    }
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    enabled: bool,
    library: Option<String>,
    queue_capacity: Option<usize>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// Reads `config/hive.toml` under `root`.
pub fn load(root: &Path) -> Result<HiveConfig> {
    let path = root.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse(root, &text).with_context(|| format!("{} is not a valid hive config", path.display()))
}

/// Parses the text of a hive config whose hive lives at `root`.
pub fn parse(root: &Path, text: &str) -> Result<HiveConfig> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = raw.hive.name.unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "hive".to_owned())
    });
    if raw.messages.queue_capacity == 0 {
        bail!("[messages] queue_capacity must be at least 1");
    }
    let mut nodes = BTreeMap::new();
    for (node_name, node) in raw.nodes {
        check_node_name(&node_name)?;
        nodes.insert(node_name.clone(), node_config(&node_name, node)?);
    }
    Ok(HiveConfig {
        root: root.to_path_buf(),
        name,
        bind: raw.hive.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: raw.hive.port.unwrap_or(DEFAULT_PORT),
        key: raw.hive.key,
        log: LogConfig {
            location: root.join(raw.log.location),
            max_bytes: raw.log.max_bytes,
            backups: raw.log.backups,
        },
        messages: MessageLimits {
            max_payload_bytes: raw.messages.max_payload_bytes,
            queue_capacity: raw.messages.queue_capacity,
        },
        nodes,
    })
}

fn node_config(name: &str, raw: RawNode) -> Result<NodeConfig> {
    if raw.queue_capacity == Some(0) {
        bail!("[nodes.{name}] queue_capacity must be at least 1");
    }
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
    let settings = serde_json::to_value(&table)
        .with_context(|| format!("[nodes.{name}] cannot be handed to the node as JSON"))?;
    Ok(NodeConfig {
        enabled: raw.enabled,
        library,
        queue_capacity: raw.queue_capacity,
        settings,
    })
}

/// Node names become file names (`<name>.log`, `lib<name>.so`), so they are kept plain.
pub fn check_node_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        bail!(
            "`{name}` is not a valid node name: use letters, digits, `_` and `-`, starting with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> HiveConfig {
        parse(Path::new("/hives/gotham"), text).unwrap()
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", parse(Path::new("/hives/gotham"), text).unwrap_err())
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = parse_ok("");
        assert_eq!(config.name, "gotham");
        assert_eq!(config.port, 9476);
        assert_eq!(config.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.log.location, Path::new("/hives/gotham/logs"));
        assert_eq!(config.log.max_bytes, 5 * 1024 * 1024);
        assert_eq!(config.log.backups, 2);
        assert_eq!(config.messages.queue_capacity, 1024);
        assert!(config.nodes.is_empty());
        assert_eq!(config.key, None);
    }

    #[test]
    fn the_hive_key_is_read_from_the_hive_table() {
        let config = parse_ok("[hive]\nbind = \"0.0.0.0\"\nkey = \"s3cret\"\n");
        assert_eq!(config.key.as_deref(), Some("s3cret"));
    }

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
    fn syntax_errors_name_the_line_and_column() {
        let message = parse_err("[hive]\nport = 94 76\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("column"), "{message}");
    }

    #[test]
    fn a_misspelled_hive_key_is_refused_with_its_place() {
        let message = parse_err("[hive]\nprot = 9476\n");
        assert!(message.contains("prot"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let message = parse_err("[hive]\nport = \"high\"\n");
        assert!(message.contains("line 2"), "{message}");
        let message = parse_err("[nodes.batman]\nenabled = \"yes\"\n");
        assert!(
            message.contains("enabled") || message.contains("bool"),
            "{message}"
        );
    }

    #[test]
    fn unsafe_node_names_are_refused() {
        let message = parse_err("[nodes.\"../etc\"]\nenabled = true\n");
        assert!(message.contains("not a valid node name"), "{message}");
    }

    #[test]
    fn a_zero_queue_is_refused() {
        assert!(parse_err("[messages]\nqueue_capacity = 0\n").contains("queue_capacity"));
    }
}
