//! What a node looks like from outside: its status and counters as plain data, for the page, the
//! API, `/metrics` and the other hosts of the mesh. Values only: nothing here is shared or
//! updated in place (the live counters are in [`super::stats`]).

use crate::loader::LibraryInfo;
use serde::{Deserialize, Serialize};

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// In the config but not enabled (and not named with `-n`).
    Disabled,
    /// Its library is being loaded and the node built.
    Loading,
    /// Built and registered; services run.
    Running,
    /// Could not be loaded or built, or failed while running; `error` says why.
    Failed,
    /// A callback has run for longer than `stuck_after_ms`; `error` says which.
    Stuck,
    /// Stopped with the hive.
    Stopped,
    /// Isolated (`isolate = true`) and its process died; it is restarted with backoff, and its
    /// messages wait in its queue meanwhile. `error` says how it died.
    Crashed,
    /// On another host of the mesh that has stopped answering (it stopped, crashed or was cut
    /// off); shown as it was last seen.
    Gone,
}

/// A node's state and counters, for the page and the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The node's name.
    pub name: String,
    /// The host it runs on (its name on the mesh; this host's own name for local nodes).
    pub host: String,
    /// Where it is in its life.
    pub status: NodeStatus,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The library it runs.
    pub library: Option<LibraryInfo>,
    /// Its services.
    pub services: Vec<ServiceSnapshot>,
    /// Its subscriptions.
    pub subscriptions: Vec<SubscriptionSnapshot>,
    /// Its timers (none for another host's node).
    #[serde(default)]
    pub timers: Vec<TimerSnapshot>,
    /// Whether the config enables it.
    pub enabled: bool,
    /// How many times an instance of it was loaded (the first start counts).
    pub loads: u64,
    /// When the running instance was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    /// The last load, build or reload error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Whether it runs in a process of its own (`isolate = true`).
    #[serde(default)]
    pub isolated: bool,
    /// How many times its process died (isolated nodes only).
    #[serde(default)]
    pub crashes: u64,
    /// How its process died the last time (isolated nodes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crash: Option<String>,
    /// Its crate's last build failed (`hm dev`): the compiler's errors. The node runs its last
    /// good library meanwhile, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<crate::builds::BuildFailure>,
    /// The settings its running instance was started with (none when it does not run; the
    /// page then shows those of the config). Never serialized: the web layer adds `settings`
    /// to what it sends (its own rules), and other hosts of the mesh never get them.
    #[serde(skip)]
    pub settings: Option<serde_json::Value>,
}

impl NodeSnapshot {
    /// A node with no instance.
    pub fn idle(name: &str, status: NodeStatus) -> Self {
        Self {
            name: name.to_owned(),
            host: String::new(),
            status,
            error: None,
            library: None,
            services: Vec::new(),
            subscriptions: Vec::new(),
            timers: Vec::new(),
            enabled: false,
            loads: 0,
            loaded_at: None,
            last_error: None,
            isolated: false,
            crashes: 0,
            last_crash: None,
            build_error: None,
            settings: None,
        }
    }
}

/// What a service is: a loop on its own thread, or a publisher the node sends on from its
/// other callbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// `add_service`: a callback the host runs in a loop.
    #[default]
    Loop,
    /// `add_publisher`: no loop; `running` means the node runs.
    Publisher,
}

/// One service's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    /// The service's name.
    pub name: String,
    /// A loop or a publisher (`"loop"`, `"publisher"`).
    #[serde(default)]
    pub kind: ServiceKind,
    /// Messages it sent.
    pub sent: u64,
    /// Whether its loop is running.
    pub running: bool,
    /// How many times it was restarted after failing.
    pub restarts: u64,
    /// The payload it sent last (for a busy service: one of its last 256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_payload: Option<serde_json::Value>,
    /// Payloads the host refused to send for it: over `[messages] max_payload_bytes`, or,
    /// from an isolated node's process, not JSON.
    #[serde(default)]
    pub refused: u64,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
}

/// One subscription's counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    /// The pattern.
    pub pattern: String,
    /// Messages handled without error.
    pub delivered: u64,
    /// Messages dropped (queue full, or the node stopped).
    pub dropped: u64,
    /// Callbacks that returned an error.
    pub failed: u64,
    /// Callbacks that panicked.
    pub panicked: u64,
}

/// One timer's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimerSnapshot {
    /// The timer's name.
    pub name: String,
    /// Milliseconds between two ticks.
    pub period_ms: f64,
    /// Ticks run (failed and panicked ones included).
    pub runs: u64,
    /// Ticks that returned an error.
    pub failed: u64,
    /// Ticks that panicked.
    pub panicked: u64,
    /// When the last tick ended (RFC 3339), if one has run.
    pub last_run: Option<String>,
}
