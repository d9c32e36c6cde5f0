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
//! No error this module gives quotes a secret ([`secrets`]): the key and every setting whose name
//! says it is secret are redacted from the parser's messages.

mod data;
mod edit;
mod explain;
pub(crate) use explain::explain_setting_error;
pub(crate) mod secrets;
mod web;

pub(crate) use data::DataConfig;
pub(crate) use edit::set_enabled;
pub(crate) use secrets::{Secret, check_exposure, check_live_change, redact_settings};
pub(crate) use web::{WebLimits, split_port};

use crate::bus::Overflow;
use crate::names::{check_node_name, is_host_char, is_host_name};
use anyhow::{Context as _, Result, bail};
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

/// The bounds of every number `config/hive.toml` may hold, as `(key, least, most, why)`. A value
/// outside them is refused with the key, the bound and the reason, before anything is applied:
/// each number sizes something the host allocates or waits on.
pub(crate) const BOUNDS: &[(&str, u64, u64, &str)] = &[
    (
        "[hive] max_streams",
        1,
        65_536,
        "each live connection holds a file descriptor",
    ),
    (
        "[hive] write_timeout_ms",
        100,
        600_000,
        "a web client is cut off after at most 10 minutes of not reading",
    ),
    (
        "[hive] build_timeout_ms",
        100,
        600_000,
        "a node's constructor gets at most 10 minutes",
    ),
    (
        "[log] max_bytes",
        0,
        1 << 30,
        "0: never rotate; else at least 4096, at most 1 GiB",
    ),
    (
        "[log] backups",
        0,
        100,
        "each rotation renames every backup",
    ),
    (
        "[messages] max_payload_bytes",
        1,
        64 << 20,
        "every payload is held in memory, at most 64 MiB",
    ),
    (
        "[data] max_bytes",
        64 << 10,
        1 << 40,
        "a node's store file: at least 64 KiB (16 pages), at most 1 TiB",
    ),
    (
        "[data] call_timeout_ms",
        1,
        600_000,
        "one store call waits at most 10 minutes",
    ),
    (
        "queue_capacity",
        1,
        1 << 20,
        "a queue's room is allocated when it is made",
    ),
    (
        "spin_us",
        0,
        10_000,
        "a node's thread polls a core for at most 10 ms before it sleeps",
    ),
    ("stuck_after_ms", 1, 86_400_000, "at most a day"),
    (
        "overflow_wait_ms",
        0,
        60_000,
        "a publisher waits at most a minute for room",
    ),
    ("max_subscription_panics", 0, u32::MAX as u64, "a count"),
    (
        "[hive] header_timeout_ms",
        100,
        300_000,
        "a request's head arrives within 5 minutes at most",
    ),
    (
        "[hive] idle_timeout_ms",
        1_000,
        3_600_000,
        "an idle connection is closed within an hour at most",
    ),
    (
        "[hive] max_connections",
        1,
        65_536,
        "each connection holds a file descriptor",
    ),
    (
        "[hive] max_connections_per_address",
        1,
        65_536,
        "each connection holds a file descriptor",
    ),
    (
        "[hive] ws_max_message_bytes",
        125,
        1 << 20,
        "a close frame needs 125 bytes; clients send nothing larger",
    ),
    (
        "[mesh] lease_ms",
        100,
        600_000,
        "a silent host is shown gone within 10 minutes at most",
    ),
    (
        "[mesh] queue_capacity",
        1,
        1 << 20,
        "the mesh's outgoing queue is allocated when it is made",
    ),
    (
        "[mesh] forget_after_s",
        1,
        604_800,
        "a gone host is listed for at most a week",
    ),
];

/// Checks `value` of `key` (`where_` is the table, for the message) against [`BOUNDS`].
fn bounded(where_: &str, key: &str, value: u64) -> Result<u64> {
    let (name, least, most, why) = BOUNDS
        .iter()
        .find(|(name, ..)| *name == key)
        .copied()
        .unwrap_or((key, 0, u64::MAX, ""));
    if value < least || value > most {
        let shown = if name.starts_with('[') {
            name.to_owned()
        } else {
            format!("{where_} {name}")
        };
        bail!(
            "{shown} = {value} is out of bounds: it must be from {least} to {most} ({why}); fix it in {CONFIG_FILE}"
        );
    }
    Ok(value)
}

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

/// `[mesh]`: how this host joins the other hosts of its hive over Zenoh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// Whether the host joins a mesh at all (off: nothing of it runs).
    pub enabled: bool,
    /// This host's name on the mesh; `None`: the machine's name and the hive's port.
    pub host: Option<String>,
    /// Zenoh endpoints to listen on (`tcp/0.0.0.0:7447`).
    pub listen: Vec<String>,
    /// Zenoh endpoints of other hosts to connect to (retried until they answer).
    pub connect: Vec<String>,
    /// Whether to find other hosts by UDP multicast scouting too.
    pub multicast: bool,
    /// How long a silent link stays up before its host is declared gone, in ms.
    pub lease_ms: u64,
    /// Messages waiting to go out to the mesh before new ones are dropped.
    pub queue_capacity: usize,
    /// Mutual TLS between hosts: `None` keeps the mesh on this machine (loopback only).
    pub tls: Option<MeshTls>,
    /// How long a host that has gone stays listed (its nodes as `gone`) before it is
    /// forgotten, in seconds (1 to 604,800; default 600).
    pub forget_after_s: u64,
}

/// `[mesh] tls_*`: the files of this host's place in the hive's private certificate
/// authority, as absolute paths (relative ones are taken from the hive's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshTls {
    /// The hive's CA certificate (PEM): a peer must present a certificate it signed.
    pub ca: PathBuf,
    /// This host's certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// This host's private key (PEM).
    pub key: PathBuf,
}

/// `[mesh] forget_after_s` unless set.
pub(crate) const DEFAULT_FORGET_AFTER_S: u64 = 600;

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            listen: Vec::new(),
            connect: Vec::new(),
            multicast: false,
            lease_ms: 3000,
            queue_capacity: 65536,
            tls: None,
            forget_after_s: DEFAULT_FORGET_AFTER_S,
        }
    }
}

impl MeshConfig {
    /// This host's name: `[mesh] host`, or the machine's name and `port` (`gotham-9476`),
    /// which tells apart hosts on one machine as long as their ports differ.
    pub fn host_name(&self, port: u16) -> String {
        if let Some(host) = &self.host {
            return host.clone();
        }
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let machine: String = machine
            .trim()
            .chars()
            .map(|c| if is_host_char(c) { c } else { '-' })
            .collect();
        let machine = if machine.is_empty() {
            "host".to_owned()
        } else {
            machine
        };
        format!("{machine}-{port}")
    }
}

/// Whether a Zenoh endpoint (`tcp/127.0.0.1:7447`) stays on this machine: its address is a
/// loopback address or `localhost`.
pub(crate) fn is_loopback_endpoint(endpoint: &str) -> bool {
    let address = endpoint
        .split_once('/')
        .map_or(endpoint, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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

#[derive(Deserialize, Default)]
struct RawMesh {
    #[serde(default)]
    enabled: bool,
    host: Option<String>,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
    #[serde(default)]
    multicast: bool,
    lease_ms: Option<u64>,
    queue_capacity: Option<usize>,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    forget_after_s: Option<u64>,
}

#[derive(Deserialize)]
struct RawNode {
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

fn mesh_config(root: &Path, raw: RawMesh) -> Result<MeshConfig> {
    let defaults = MeshConfig::default();
    let tls = match (raw.tls_ca, raw.tls_cert, raw.tls_key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => Some(MeshTls {
            ca: root.join(ca),
            cert: root.join(cert),
            key: root.join(key),
        }),
        _ => bail!(
            "[mesh] needs all three of tls_ca, tls_cert and tls_key, or none: `hm mesh certs HOST...` creates them and prints the lines to add"
        ),
    };
    let mesh = MeshConfig {
        enabled: raw.enabled,
        host: raw.host,
        listen: raw.listen,
        connect: raw.connect,
        multicast: raw.multicast,
        lease_ms: raw.lease_ms.unwrap_or(defaults.lease_ms),
        queue_capacity: raw.queue_capacity.unwrap_or(defaults.queue_capacity),
        tls,
        forget_after_s: raw.forget_after_s.unwrap_or(defaults.forget_after_s),
    };
    if let Some(host) = &mesh.host
        && !is_host_name(host)
    {
        bail!(
            "[mesh] host = {host:?} is not a valid host name: use 1 to 64 letters, digits, `-`, `_` and `.`"
        );
    }
    // With TLS, every link is Zenoh's QUIC link (TLS 1.3 over UDP, the same certificates):
    // Zenoh 1.10's TLS-over-TCP link reads and writes one rustls stream from two tasks at once
    // and breaks under traffic both ways (eclipse-zenoh/zenoh#2557), losing what is in flight.
    let scheme = if mesh.tls.is_some() { "quic" } else { "tcp" };
    for (key, endpoints) in [("listen", &mesh.listen), ("connect", &mesh.connect)] {
        for endpoint in endpoints {
            if mesh.tls.is_some()
                && let Some(address) = endpoint.strip_prefix("tls/")
            {
                bail!(
                    "[mesh] {key} has {endpoint:?}: write it \"quic/{address}\" (a UDP port). hm carries the mesh's mutual TLS over Zenoh's QUIC link, \
                     because Zenoh's TLS-over-TCP link can lose messages under traffic both ways (eclipse-zenoh/zenoh#2557)"
                );
            }
            let address = endpoint
                .strip_prefix(scheme)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or_default();
            if address.is_empty() || address.contains(char::is_whitespace) {
                let why = if mesh.tls.is_some() {
                    "with tls_* set, endpoints are written `quic/ADDRESS:PORT` (e.g. \"quic/0.0.0.0:7447\", a UDP port): every link is mutual TLS over QUIC"
                } else {
                    "endpoints are written `tcp/ADDRESS:PORT` (e.g. \"tcp/127.0.0.1:7447\"), or `quic/ADDRESS:PORT` once tls_ca, tls_cert and tls_key are set; without TLS, hm's mesh carries TCP only"
                };
                bail!("[mesh] {key} has {endpoint:?}: {why}");
            }
            if mesh.enabled && mesh.tls.is_none() && !is_loopback_endpoint(endpoint) {
                bail!(
                    "[mesh] {key} has {endpoint:?}, which reaches beyond this machine, but the mesh has no TLS: anyone who can reach the port could read and send the hive's messages. \
                     Run `hm mesh certs HOST...` (one name per host) and add the tls_ca, tls_cert and tls_key lines it prints to [mesh], with endpoints written `quic/ADDRESS:PORT`; \
                     or keep the mesh on this machine (tcp/127.0.0.1:PORT)"
                );
            }
        }
    }
    if mesh.enabled && mesh.multicast && mesh.tls.is_none() {
        bail!(
            "[mesh] multicast = true finds hosts beyond this machine, but the mesh has no TLS: run `hm mesh certs HOST...` and add the tls_ca, tls_cert and tls_key lines it prints to [mesh], or set multicast = false"
        );
    }
    bounded("", "[mesh] lease_ms", mesh.lease_ms)?;
    bounded("", "[mesh] queue_capacity", mesh.queue_capacity as u64)?;
    bounded("", "[mesh] forget_after_s", mesh.forget_after_s)?;
    if mesh.enabled && mesh.listen.is_empty() && mesh.connect.is_empty() && !mesh.multicast {
        bail!(
            "[mesh] is enabled but can meet no other host: give it `listen` endpoints (others connect here), `connect` endpoints (it connects there), or `multicast = true`"
        );
    }
    Ok(mesh)
}

fn node_config(name: &str, raw: RawNode) -> Result<NodeConfig> {
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

/// The hive-level keys, by section, for "did you mean" hints.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["hive", "log", "messages", "mesh", "nodes"]),
    (
        "mesh",
        &[
            "enabled",
            "host",
            "listen",
            "connect",
            "multicast",
            "lease_ms",
            "queue_capacity",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "forget_after_s",
        ],
    ),
    (
        "hive",
        &[
            "name",
            "bind",
            "port",
            "key",
            "max_streams",
            "write_timeout_ms",
            "hosts",
            "header_timeout_ms",
            "idle_timeout_ms",
            "max_connections",
            "max_connections_per_address",
            "ws_max_message_bytes",
            "build_timeout_ms",
        ],
    ),
    ("log", &["location", "max_bytes", "backups"]),
    (
        "messages",
        &[
            "max_payload_bytes",
            "queue_capacity",
            "spin_us",
            "check_schemas",
        ],
    ),
];

/// `config/hive.toml line 3: unknown key `hive.prot` is ignored (did you mean `port`?)`.
fn unknown_key_warning(text: &str, path: &str) -> String {
    let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
    let header = format!("[{path}");
    let line = text
        .lines()
        .map(str::trim_start)
        .position(|line| {
            let assignment = line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            let table = line
                .strip_prefix(&header)
                .is_some_and(|rest| rest.starts_with(']') || rest.starts_with('.'));
            assignment || table
        })
        .map(|n| format!(" line {}", n + 1))
        .unwrap_or_default();
    let known = KNOWN_KEYS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[][..], |(_, keys)| *keys);
    let hint = known
        .iter()
        .map(|candidate| (strsim::levenshtein(candidate, key), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, candidate)| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default();
    format!("{CONFIG_FILE}{line}: unknown key `{path}` is ignored{hint}")
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
    fn a_misspelled_key_is_ignored_with_a_warning_that_says_where() {
        let config = parse_ok("[hive]\nname = \"x\"\nprot = 9000\n\n[logs]\nlocation = \"x\"\n");
        assert_eq!(
            config.port, DEFAULT_PORT,
            "the misspelled key changes nothing"
        );
        assert_eq!(
            config.warnings,
            vec![
                "config/hive.toml line 3: unknown key `hive.prot` is ignored (did you mean `port`?)",
                "config/hive.toml line 5: unknown key `logs` is ignored (did you mean `log`?)",
            ]
        );
        assert!(
            parse_ok("[nodes.a]\nanything = 1\n").warnings.is_empty(),
            "node settings are free"
        );
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

    #[test]
    fn the_mesh_is_off_unless_enabled() {
        let config = parse_ok("");
        assert_eq!(config.mesh, MeshConfig::default());
        assert!(!config.mesh.enabled);
        let config = parse_ok(
            "[mesh]\nenabled = true\nhost = \"wayne-manor\"\nlisten = [\"quic/0.0.0.0:7447\"]\nconnect = [\"quic/10.0.0.2:7447\"]\n\
             tls_ca = \"config/mesh/ca.pem\"\ntls_cert = \"config/mesh/wayne-manor.pem\"\ntls_key = \"/keys/wayne-manor.key\"\n",
        );
        assert!(config.mesh.enabled);
        assert_eq!(config.mesh.host_name(9476), "wayne-manor");
        assert_eq!(config.mesh.listen, ["quic/0.0.0.0:7447"]);
        assert_eq!(config.mesh.connect, ["quic/10.0.0.2:7447"]);
        let tls = config.mesh.tls.unwrap();
        assert_eq!(tls.ca, Path::new("/hives/gotham/config/mesh/ca.pem"));
        assert_eq!(tls.key, Path::new("/keys/wayne-manor.key"));
        let local = parse_ok(
            "[mesh]\nenabled = true\nlisten = [\"tcp/127.0.0.1:7447\"]\nconnect = [\"tcp/[::1]:7448\", \"tcp/localhost:7449\"]\n",
        );
        assert!(
            local.mesh.tls.is_none(),
            "on this machine alone, TLS is not needed"
        );
    }

    #[test]
    fn the_default_host_name_is_the_machine_and_the_port() {
        let name = MeshConfig::default().host_name(9476);
        assert!(name.ends_with("-9476"), "{name}");
        assert!(name.chars().all(is_host_char), "{name}");
    }

    #[test]
    fn mesh_mistakes_are_refused_with_the_fix() {
        let message = parse_err("[mesh]\nenabled = true\nlisten = [\"udp/0.0.0.0:7447\"]\n");
        assert!(message.contains("tcp/ADDRESS:PORT"), "{message}");
        let message = parse_err("[mesh]\nenabled = true\n");
        assert!(message.contains("can meet no other host"), "{message}");
        let message = parse_err("[mesh]\nhost = \"bat cave\"\nmulticast = true\n");
        assert!(message.contains("not a valid host name"), "{message}");
        let message = parse_err("[mesh]\nhost = \"manor\\n\"\nmulticast = true\n");
        assert!(message.contains("not a valid host name"), "{message}");
        for beyond in [
            "listen = [\"tcp/0.0.0.0:7447\"]",
            "connect = [\"tcp/10.0.0.2:7447\"]",
            "listen = [\"tcp/[::]:7447\"]",
        ] {
            let message = parse_err(&format!("[mesh]\nenabled = true\n{beyond}\n"));
            assert!(message.contains("has no TLS"), "{message}");
            assert!(message.contains("hm mesh certs HOST..."), "{message}");
            assert!(
                message.contains("tls_ca, tls_cert and tls_key"),
                "{message}"
            );
        }
        let message = parse_err("[mesh]\nenabled = true\nmulticast = true\n");
        assert!(message.contains("has no TLS"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"ca.pem\"\nlisten = [\"quic/0.0.0.0:1\"]\n",
        );
        assert!(message.contains("all three"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\nlisten = [\"tcp/0.0.0.0:1\"]\n",
        );
        assert!(message.contains("quic/ADDRESS:PORT"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\nconnect = [\"tls/10.0.0.2:7447\"]\n",
        );
        assert!(message.contains("\"quic/10.0.0.2:7447\""), "{message}");
        assert!(message.contains("zenoh#2557"), "{message}");
        let message = parse_err("[mesh]\nforget_after_s = 0\n");
        assert!(message.contains("forget_after_s"), "{message}");
        let config = parse_ok("[mesh]\nlisen = []\n");
        assert_eq!(
            config.warnings,
            [
                "config/hive.toml line 2: unknown key `mesh.lisen` is ignored (did you mean `listen`?)"
            ]
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
    fn every_number_has_an_upper_bound_named_in_the_error() {
        let cases = [
            (
                "[messages]\nqueue_capacity = 1000000000000\n",
                "[messages] queue_capacity",
            ),
            (
                "[messages]\nqueue_capacity = 4611686018427387904\n",
                "[messages] queue_capacity",
            ),
            (
                "[nodes.a]\nqueue_capacity = 1000000000000\n",
                "[nodes.a] queue_capacity",
            ),
            (
                "[messages]\nmax_payload_bytes = 1000000000000\n",
                "[messages] max_payload_bytes",
            ),
            ("[messages]\nspin_us = 100000000\n", "[messages] spin_us"),
            ("[nodes.a]\nspin_us = 100000000\n", "[nodes.a] spin_us"),
            ("[log]\nbackups = 4294967295\n", "[log] backups"),
            ("[log]\nmax_bytes = 100\n", "[log] max_bytes"),
            ("[log]\nmax_bytes = 1000000000000\n", "[log] max_bytes"),
            (
                "[nodes.a]\nstuck_after_ms = 100000000000\n",
                "[nodes.a] stuck_after_ms",
            ),
            (
                "[nodes.a]\noverflow = \"block\"\noverflow_wait_ms = 100000000\n",
                "overflow_wait_ms",
            ),
            ("[mesh]\nlease_ms = 100000000000\n", "[mesh] lease_ms"),
            (
                "[mesh]\nqueue_capacity = 100000000000\n",
                "[mesh] queue_capacity",
            ),
            ("[hive]\nmax_streams = 100000000\n", "[hive] max_streams"),
            (
                "[hive]\nwrite_timeout_ms = 100000000000\n",
                "[hive] write_timeout_ms",
            ),
            (
                "[hive]\nbuild_timeout_ms = 100000000000\n",
                "[hive] build_timeout_ms",
            ),
            ("[hive]\nbuild_timeout_ms = 1\n", "[hive] build_timeout_ms"),
        ];
        for (text, key) in cases {
            let error = parse_err(text);
            assert!(
                error.contains(key) && error.contains("out of bounds") && error.contains(" to "),
                "{text:?} gave {error}"
            );
        }
        // The bounds themselves are accepted.
        let config = parse_ok(
            "[hive]\nbuild_timeout_ms = 600000\n[log]\nbackups = 100\nmax_bytes = 0\n[messages]\nqueue_capacity = 1048576\n",
        );
        assert_eq!(config.build_timeout.as_secs(), 600);
        assert_eq!(parse_ok("").build_timeout.as_millis(), 10_000);
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

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        // Fuzzing, bounded: any text parses or is refused with a message, never panics.
        #[test]
        fn any_text_parses_or_is_refused(text in "(\\[[a-z.]{0,12}\\]\n|[a-z_]{1,8} = [0-9a-z\"\\[\\]{}., ]{0,12}\n|.{0,20}\n){0,8}") {
            if let Err(error) = parse(Path::new("/hives/fuzz"), &text) {
                let message = format!("{error:#}");
                proptest::prop_assert!(!message.is_empty());
            }
        }

        // Any number under any numeric key: refused, or accepted within its bounds.
        #[test]
        fn any_number_is_refused_or_within_bounds(
            table in proptest::sample::select(vec!["hive", "log", "messages", "mesh", "nodes.a"]),
            key in proptest::sample::select(vec![
                "max_streams", "write_timeout_ms", "build_timeout_ms", "max_bytes", "backups",
                "max_payload_bytes", "queue_capacity", "spin_us", "stuck_after_ms",
                "overflow_wait_ms", "max_subscription_panics", "lease_ms",
            ]),
            value in proptest::prop_oneof![0u64..200_000, proptest::num::u64::ANY.prop_map(|v| v >> 1)],
        ) {
            let text = format!("[{table}]\n{key} = {value}\n");
            if let Ok(config) = parse(Path::new("/hives/fuzz"), &text) {
                check_bounds(&config);
            }
        }
    }

    /// The upper bounds every accepted config keeps (the fuzz target checks the same).
    fn check_bounds(config: &HiveConfig) {
        assert!((1..=1 << 20).contains(&config.messages.queue_capacity));
        assert!(config.messages.spin_us <= 10_000);
        assert!((1..=64 << 20).contains(&config.messages.max_payload_bytes));
        assert!(config.log.backups <= 100 && config.log.max_bytes <= 1 << 30);
        assert!((1..=65_536).contains(&config.max_streams));
        assert!(config.write_timeout.as_millis() <= 600_000);
        assert!(config.build_timeout.as_millis() <= 600_000);
        assert!(config.mesh.lease_ms <= 600_000 && config.mesh.queue_capacity <= 1 << 20);
        for node in config.nodes.values() {
            assert!(
                node.queue_capacity
                    .is_none_or(|c| (1..=1 << 20).contains(&c))
            );
            assert!(node.spin_us.is_none_or(|s| s <= 10_000));
            assert!(node.faults.stuck_after.as_millis() <= 86_400_000);
        }
    }
}
