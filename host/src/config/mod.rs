//! Reads a hive's `config/hive.toml` into checked, typed settings.
//!
//! ```toml
//! [hive]
//! name = "gotham"
//! bind = "127.0.0.1"   # where the web page listens
//! port = 9476          # 0 picks any free port
//! key = "..."          # the hive key the HTTP API's mutating endpoints require
//! max_streams = 512    # live connections (WebSockets, server-sent events) served at once
//! write_timeout_ms = 10000  # a client that takes nothing sent to it for this long is cut off
//! hosts = ["gotham.local"]   # names the page answers to besides loopback and its address
//! header_timeout_ms = 10000  # the web server's limits per client: see `web`
//! idle_timeout_ms = 30000
//! max_connections = 1024
//! max_connections_per_address = 256
//! ws_max_message_bytes = 4096
//!
//! [log]
//! location = "logs"    # relative to the hive's folder
//! max_bytes = 5242880  # rotate a log file at this size
//! backups = 2          # rotated files kept per log
//!
//! [messages]
//! max_payload_bytes = 1048576  # largest payload a service may send
//! queue_capacity = 1024        # messages waiting per subscribing node
//! spin_us = 0                  # µs a node's thread polls before sleeping
//! check_schemas = "warn"       # payloads published from outside vs declared types: off/warn/refuse
//!
//! [mesh]               # off unless enabled: join other hosts of this hive over Zenoh
//! enabled = true
//! host = "gotham-1"    # this host's name on the mesh (default: machine name + port)
//! listen = ["tls/0.0.0.0:7447"]    # beyond loopback: TLS with the hive's certificates
//! connect = ["tls/10.0.0.2:7447"]
//! tls_ca = "config/mesh/ca.pem"     # `hm mesh certs HOST...` creates these
//! tls_cert = "config/mesh/gotham-1.pem"
//! tls_key = "config/mesh/gotham-1.key"
//! multicast = false    # find peers by UDP multicast scouting too (needs TLS)
//! forget_after_s = 600 # a host gone this long is no longer listed
//!
//! [nodes.batsignal]    # one table per node
//! enabled = true       # whether `hm dev` runs it
//! interval_secs = 5    # any other key is the node's own setting
//! ```
//!
//! Every section and key is optional except the node tables' meaning; a typo in a hive-level key
//! is refused with its line and column, so that a setting is never silently ignored.
//!
//! One module per job: this file reads the file and the `[hive]`, `[log]` and `[messages]`
//! tables into a [`HiveConfig`]; `mesh` checks `[mesh]`, `nodes` each `[nodes.<name>]`,
//! `web` the web server's guard keys, `bounds` every number's range, `keys` the warning for an
//! unknown key, `secrets` what is never shown, `explain` a node setting's error, `edit` the
//! one edit the host makes to the file (`enabled`).
//!
//! No error this module gives quotes a secret ([`secrets`]): the key and every setting whose name
//! says it is secret are redacted from the parser's messages.

mod bounds;
mod data;
mod edit;
mod explain;
mod keys;
mod mesh;
mod nodes;
pub(crate) mod secrets;
mod web;

pub(crate) use data::DataConfig;
pub(crate) use edit::set_enabled;
pub(crate) use explain::explain_setting_error;
pub(crate) use mesh::MeshConfig;
pub(crate) use nodes::{FaultPolicy, NodeConfig};
pub(crate) use secrets::{
    Secret, check_exposure, check_live_change, lowered_protection, redact_settings,
};
pub(crate) use web::{WebLimits, split_port};

use crate::names::check_node_name;
use anyhow::{Context as _, Result, bail};
use bounds::bounded;
use keys::unknown_key_warning;
use mesh::{RawMesh, mesh_config};
use nodes::{RawNode, node_config};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The hive's settings file, relative to the hive's root folder.
pub const CONFIG_FILE: &str = "config/hive.toml";

/// The port the original hivemind's documentation promised.
pub(crate) const DEFAULT_PORT: u16 = 9476;

/// Live web connections served at once unless `[hive] max_streams` says otherwise: each holds a
/// file descriptor, and this stays well under the usual limit of 1,024 open files.
pub(crate) const DEFAULT_MAX_STREAMS: usize = 512;

/// `[hive] write_timeout_ms` unless set: long enough for a slow link that is still reading.
pub(crate) const DEFAULT_WRITE_TIMEOUT_MS: u64 = 10_000;

/// `[hive] build_timeout_ms` unless set: how long a node's library load and constructor may take.
pub(crate) const DEFAULT_BUILD_TIMEOUT_MS: u64 = 10_000;

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
    /// The hive key: when set, the HTTP API's mutating endpoints require it, and beyond
    /// loopback every request but `/healthz` (see `web`). Never printed ([`Secret`]).
    pub key: Option<Secret>,
    /// Live connections (WebSockets and server-sent event streams) the web server keeps open
    /// at once; one more is refused with 503.
    pub max_streams: usize,
    /// How long a write to a web client may wait without the client taking any of it before
    /// the connection is closed (a client that stopped reading).
    pub write_timeout: std::time::Duration,
    /// The web server's guard: the names it answers to, its timeouts and connection caps.
    pub web: WebLimits,
    /// How long loading a node's library and running its constructor may take before the node
    /// is marked failed (`[hive] build_timeout_ms`).
    pub build_timeout: std::time::Duration,
    /// Log files.
    pub log: LogConfig,
    /// Message limits.
    pub messages: MessageLimits,
    /// Joining other hosts of this hive (`[mesh]`).
    pub mesh: MeshConfig,
    /// The nodes' stores (`[data]`).
    pub data: DataConfig,
    /// The node tables, by node name.
    pub nodes: BTreeMap<String, NodeConfig>,
    /// Keys the hive does not know, each with where it is and what was probably meant; they
    /// are ignored.
    pub warnings: Vec<String>,
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
    /// How long a node's thread polls for the next message before it sleeps, in µs (0: it
    /// sleeps at once). Polling trades CPU for latency: a sleeping thread takes tens of µs to wake.
    pub spin_us: u64,
    /// What publishing from outside (the HTTP API, `hm send`) does with a payload that does
    /// not match the service's declared payload type.
    pub check_schemas: CheckSchemas,
}

/// `[messages] check_schemas`: how a payload published through the HTTP API or `hm send` is
/// checked against the JSON Schema its service declared. Messages between nodes are never
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckSchemas {
    /// Not checked.
    Off,
    /// Checked; a payload that does not match is published all the same, with a warning in
    /// the response and in the log.
    #[default]
    Warn,
    /// Checked; a payload that does not match is refused (HTTP 422), naming the service, the
    /// failing path and the reason.
    Refuse,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    hive: RawHive,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    messages: RawMessages,
    #[serde(default)]
    mesh: RawMesh,
    #[serde(default)]
    data: data::RawData,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
}

#[derive(Deserialize, Default)]
struct RawHive {
    name: Option<String>,
    bind: Option<IpAddr>,
    port: Option<u16>,
    key: Option<String>,
    max_streams: Option<usize>,
    write_timeout_ms: Option<u64>,
    hosts: Option<Vec<String>>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_address: Option<u64>,
    max_requests_per_address: Option<u64>,
    ws_max_message_bytes: Option<u64>,
    build_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(default)]
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
#[serde(default)]
struct RawMessages {
    max_payload_bytes: usize,
    queue_capacity: usize,
    spin_us: u64,
    check_schemas: CheckSchemas,
}

impl Default for RawMessages {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1024 * 1024,
            queue_capacity: 1024,
            spin_us: 0,
            check_schemas: CheckSchemas::Warn,
        }
    }
}

/// Reads `config/hive.toml` under `root`.
pub fn load(root: &Path) -> Result<HiveConfig> {
    let path = root.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse(root, &text).with_context(|| format!("{} is not a valid hive config", path.display()))
}

/// Parses the text of a hive config whose hive lives at `root`. An error never quotes a secret
/// of `text` ([`secrets::redact_source_error`]).
pub fn parse(root: &Path, text: &str) -> Result<HiveConfig> {
    parse_text(root, text)
        .map_err(|e| anyhow::anyhow!("{}", secrets::redact_source_error(text, &format!("{e:#}"))))
}

fn parse_text(root: &Path, text: &str) -> Result<HiveConfig> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut unknown = Vec::new();
    let raw: RawConfig =
        serde_ignored::deserialize(deserializer, |path| unknown.push(path.to_string()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let warnings = unknown
        .iter()
        .map(|key| unknown_key_warning(text, key))
        .collect();
    let name = raw.hive.name.unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "hive".to_owned())
    });
    bounded(
        "[messages]",
        "queue_capacity",
        raw.messages.queue_capacity as u64,
    )?;
    bounded("[messages]", "spin_us", raw.messages.spin_us)?;
    bounded(
        "",
        "[messages] max_payload_bytes",
        raw.messages.max_payload_bytes as u64,
    )?;
    bounded("", "[log] max_bytes", raw.log.max_bytes)?;
    if (1..4096).contains(&raw.log.max_bytes) {
        bail!(
            "[log] max_bytes = {} is out of bounds: it must be 0 (never rotate) or from 4096 to {} (each rotation renames every backup); fix it in {CONFIG_FILE}",
            raw.log.max_bytes,
            1u64 << 30
        );
    }
    bounded("", "[log] backups", u64::from(raw.log.backups))?;
    let max_streams = raw.hive.max_streams.unwrap_or(DEFAULT_MAX_STREAMS);
    bounded("", "[hive] max_streams", max_streams as u64)?;
    let write_timeout_ms = raw
        .hive
        .write_timeout_ms
        .unwrap_or(DEFAULT_WRITE_TIMEOUT_MS);
    bounded("", "[hive] write_timeout_ms", write_timeout_ms)?;
    let build_timeout_ms = raw
        .hive
        .build_timeout_ms
        .unwrap_or(DEFAULT_BUILD_TIMEOUT_MS);
    bounded("", "[hive] build_timeout_ms", build_timeout_ms)?;
    let web = web::web_limits(web::RawWeb {
        hosts: raw.hive.hosts,
        header_timeout_ms: raw.hive.header_timeout_ms,
        idle_timeout_ms: raw.hive.idle_timeout_ms,
        max_connections: raw.hive.max_connections,
        max_connections_per_address: raw.hive.max_connections_per_address,
        max_requests_per_address: raw.hive.max_requests_per_address,
        ws_max_message_bytes: raw.hive.ws_max_message_bytes,
    })?;
    let mesh = mesh_config(root, raw.mesh)?;
    let data = data::data_config(root, raw.data)?;
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
        key: raw.hive.key.map(Secret::new),
        max_streams,
        write_timeout: std::time::Duration::from_millis(write_timeout_ms),
        web,
        build_timeout: std::time::Duration::from_millis(build_timeout_ms),
        log: LogConfig {
            location: root.join(raw.log.location),
            max_bytes: raw.log.max_bytes,
            backups: raw.log.backups,
        },
        warnings,
        messages: MessageLimits {
            max_payload_bytes: raw.messages.max_payload_bytes,
            queue_capacity: raw.messages.queue_capacity,
            spin_us: raw.messages.spin_us,
            check_schemas: raw.messages.check_schemas,
        },
        mesh,
        data,
        nodes,
    })
}

#[cfg(test)]
fn parse_ok(text: &str) -> HiveConfig {
    parse(Path::new("/hives/gotham"), text).unwrap()
}

#[cfg(test)]
fn parse_err(text: &str) -> String {
    format!("{:#}", parse(Path::new("/hives/gotham"), text).unwrap_err())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(config.max_streams, DEFAULT_MAX_STREAMS);
        assert_eq!(config.write_timeout.as_millis(), 10_000);
    }

    #[test]
    fn web_limits_are_read_and_checked() {
        let config = parse_ok("[hive]\nmax_streams = 5\nwrite_timeout_ms = 2000\n");
        assert_eq!(config.max_streams, 5);
        assert_eq!(config.write_timeout.as_millis(), 2000);
        assert!(parse_err("[hive]\nmax_streams = 0\n").contains("must be from 1 to 65536"));
        assert!(parse_err("[hive]\nmax_streams = -3\n").contains("max_streams"));
        assert!(
            parse_err("[hive]\nwrite_timeout_ms = 5\n")
                .contains("[hive] write_timeout_ms = 5 is out of bounds")
        );
        let config = parse_ok("[hive]\nmax_stream = 5\n");
        assert!(
            config.warnings[0].contains("did you mean `max_streams`"),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn the_hive_key_is_read_from_the_hive_table() {
        let config = parse_ok("[hive]\nbind = \"0.0.0.0\"\nkey = \"s3cret\"\n");
        assert_eq!(config.key.as_deref(), Some("s3cret"));
    }

    #[test]
    fn syntax_errors_name_the_line_and_column() {
        let message = parse_err("[hive]\nport = 94 76\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("column"), "{message}");
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
    fn check_schemas_defaults_to_warn_and_a_wrong_value_names_the_choices() {
        let config = parse_ok("");
        assert_eq!(config.messages.check_schemas, CheckSchemas::Warn);
        for (text, mode) in [
            ("off", CheckSchemas::Off),
            ("warn", CheckSchemas::Warn),
            ("refuse", CheckSchemas::Refuse),
        ] {
            let config = parse_ok(&format!("[messages]\ncheck_schemas = \"{text}\"\n"));
            assert_eq!(config.messages.check_schemas, mode);
        }
        let error = parse_err("[messages]\ncheck_schemas = \"strict\"\n");
        assert!(
            error.contains("check_schemas") && error.contains("refuse"),
            "{error}"
        );
    }

    #[test]
    fn a_zero_queue_is_refused() {
        assert!(parse_err("[messages]\nqueue_capacity = 0\n").contains("queue_capacity"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // The fuzz target's inputs stop at 4 KB; TOML's own depth limit (80) is what keeps a
        // config of 100,000 nested levels from overflowing a reload thread's 2 MB stack.
        let deep = 100_000;
        let texts = [
            format!("[nodes.a]\nv = {}{}\n", "[".repeat(deep), "]".repeat(deep)),
            format!(
                "[nodes.a]\nv = {}1{}\n",
                "{b = ".repeat(deep),
                "}".repeat(deep)
            ),
            format!("[nodes.a]\n{} = 1\n", vec!["k"; deep].join(".")),
            format!("[nodes.a.{}]\n", vec!["k"; deep].join(".")),
        ];
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for text in texts {
                    let message =
                        format!("{:#}", parse(Path::new("/hives/deep"), &text).unwrap_err());
                    assert!(message.contains("recurs"), "{message}");
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    proptest::proptest! {
        // Fuzzing, bounded: any text parses or is refused with a message, never panics.
        #[test]
        fn any_text_parses_or_is_refused(text in "(\\[[a-z.]{0,12}\\]\n|[a-z_]{1,8} = [0-9a-z\"\\[\\]{}., ]{0,12}\n|.{0,20}\n){0,8}") {
            if let Err(error) = parse(Path::new("/hives/fuzz"), &text) {
                let message = format!("{error:#}");
                proptest::prop_assert!(!message.is_empty());
            }
        }
    }
}
