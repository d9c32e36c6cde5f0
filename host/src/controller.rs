//! The controller: the hive's registry of nodes and owner of its pub/sub core.
//!
//! It makes the running hive match what is asked of it: the config (which nodes are enabled,
//! with which settings), the libraries in `nodes/`, and direct requests (reload, enable,
//! disable). Every change goes through one lock, one node at a time, and touches only the
//! nodes it concerns:
//!
//! - **Start** (a node is enabled, or its library appears): build the instance, register it on
//!   the bus, start it. At hive start every node registers before any service runs, so no early
//!   message is lost.
//! - **Reload** (new library, new settings, or asked): build the new instance while the old one
//!   runs; if that fails, the old one stays and the error is reported. Otherwise the old one
//!   stops its services and saves its state, the bus switches the node's routes to the new
//!   registration in one step, and the new one restores the state and drains the node's queue,
//!   which held every message sent meanwhile.
//! - **Unload** (disabled, or its library removed): leave the bus, stop, close the library.
//!
//! With `[mesh]` enabled it also joins the other hosts of the hive ([`Controller::start_mesh`]):
//! its snapshot then lists their nodes too, each with its host.

use crate::bus::TopicInfo;
use crate::bus::{Bus, Overflow};
use crate::config::{self, HiveConfig, NodeConfig};
use crate::events::{EventKind, Events};
use crate::loader::{self, Libraries};
use crate::logging::Logs;
use crate::mesh::{Mesh, MeshSettings, MeshSnapshot};
use crate::runtime::{Environment, NodeQueue, NodeRuntime, NodeSnapshot, NodeSpec, NodeStatus};
use anyhow::{Result, bail};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long the whole hive gets to stop.
pub const STOP_DEADLINE: Duration = Duration::from_millis(900);

/// How often [`Controller::check_health`] should run.
pub const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(200);

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
    /// This host's name (on the mesh, if it is on one).
    pub host: String,
    /// Every node in the config, and any named with `-n`; then the nodes of the other hosts
    /// of the mesh, by host.
    pub nodes: Vec<NodeSnapshot>,
    /// Every offered service with its publishers and subscribers.
    pub topics: Vec<TopicInfo>,
    /// The mesh, when this host is on one.
    pub mesh: Option<MeshSnapshot>,
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

/// Which nodes should run.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Those enabled in the config.
    Enabled,
    /// Exactly these (`hm dev -n`), enabled or not.
    Only(Vec<String>),
}

/// One node's place in the hive: its queue outlives its instances.
struct Slot {
    queue: NodeQueue,
    queue_capacity: usize,
    generation: u64,
    runtime: Option<NodeRuntime>,
    loads: u64,
    loaded_at: Option<String>,
    last_error: Option<String>,
    reported_stuck: bool,
    /// Crashes of an isolated node's process already reported.
    reported_crashes: u64,
}

struct State {
    config: HiveConfig,
    selection: Selection,
    slots: BTreeMap<String, Slot>,
    stopping: bool,
}

/// The hive's registry of nodes.
pub struct Controller {
    root: PathBuf,
    name: String,
    host: Arc<str>,
    max_payload_bytes: usize,
    bus: Arc<Bus>,
    events: Arc<Events>,
    env: Arc<Environment>,
    state: Mutex<State>,
    mesh: Mutex<Option<Mesh>>,
    _scratch: tempfile::TempDir,
}

impl Controller {
    /// A controller for `config`, with nothing started yet.
    pub fn new(config: HiveConfig, selection: Selection, logs: Logs) -> Result<Self> {
        let scratch = crate::isolate::scratch_folder()?;
        let env = Arc::new(Environment {
            logs,
            libraries: Libraries::new(scratch.path().to_path_buf()),
            max_payload_bytes: config.messages.max_payload_bytes,
            scratch: scratch.path().to_path_buf(),
            // The running program itself, even if its file was replaced since it started.
            child_exe: PathBuf::from("/proc/self/exe"),
        });
        let events = Arc::new(Events::default());
        let reporting = events.clone();
        Ok(Self {
            root: config.root.clone(),
            name: config.name.clone(),
            host: config.mesh.host_name(config.port).into(),
            max_payload_bytes: config.messages.max_payload_bytes,
            bus: Arc::new(Bus::with_drop_report(Arc::new(
                move |node, service, dropped| {
                    reporting.emit(
                    EventKind::Dropped,
                    Some(node),
                    format!("{dropped} message(s) from `{service}` dropped so far: its queue is full"),
                );
                },
            ))),
            events,
            env,
            state: Mutex::new(State {
                config,
                selection,
                slots: BTreeMap::new(),
                stopping: false,
            }),
            mesh: Mutex::new(None),
            _scratch: scratch,
        })
    }

    /// The hive's routing table.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// The hive's event feed.
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// The config the hive runs on (the last good one read).
    pub fn config(&self) -> HiveConfig {
        self.state.lock().config.clone()
    }

    /// The hive's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Names this host (`hm dev` passes the machine's name and the port it really bound).
    pub fn with_host(mut self, host: String) -> Self {
        self.host = host.into();
        self
    }

    /// This host's name: `[mesh] host`, or the machine's name and the port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Joins the mesh if `[mesh]` enables it (else does nothing): from then on messages sent
    /// here also go to the other hosts, theirs come in, and the snapshot lists their nodes.
    pub fn start_mesh(self: &Arc<Self>) -> Result<()> {
        let config = self.config();
        if !config.mesh.enabled {
            return Ok(());
        }
        let settings = MeshSettings {
            hive: self.name.clone(),
            host: self.host.to_string(),
            config: config.mesh,
            max_payload_bytes: self.max_payload_bytes,
        };
        let controller = Arc::downgrade(self);
        let local_view = Box::new(move || {
            controller
                .upgrade()
                .map(|c| c.local_nodes())
                .unwrap_or_default()
        });
        // Joining twice leaves first: only one mesh may feed on the bus.
        let mut slot = self.mesh.lock();
        if let Some(old) = slot.take() {
            old.stop();
        }
        *slot = Some(Mesh::start(
            settings,
            self.bus.clone(),
            local_view,
            self.events.clone(),
        )?);
        Ok(())
    }

    /// Starts every node that should run; a node that fails is reported and left out.
    pub fn start(&self) {
        let mut state = self.state.lock();
        let names: Vec<String> = wanted_nodes(&state);
        let up = self.launch(&mut state, &names);
        let failed: Vec<&str> = names
            .iter()
            .filter(|n| !up.contains(*n))
            .map(String::as_str)
            .collect();
        if failed.is_empty() {
            tracing::info!("{} node(s) up: {}", up.len(), names.join(", "));
        } else {
            tracing::warn!(
                "{} of {} node(s) up; failed: {} (see above; the rest of the hive runs)",
                up.len(),
                names.len(),
                failed.join(", ")
            );
        }
    }

    /// Builds `names`, registers those that built on the bus, then starts them; returns the
    /// names that started.
    fn launch(&self, state: &mut State, names: &[String]) -> Vec<String> {
        let mut building = Vec::new();
        for name in names {
            let spec = self.spec(state, name);
            building.push((
                name.clone(),
                spec.generation,
                NodeRuntime::spawn(spec, self.env.clone()),
            ));
        }
        let mut ready = Vec::new();
        for (name, generation, runtime) in building {
            match runtime.wait_built() {
                Ok(built) => {
                    let slot = state.slots.get_mut(&name).expect("spec made the slot");
                    let node: Arc<str> = name.as_str().into();
                    let topics = self.bus.register(
                        &node,
                        slot.queue.sender.clone(),
                        built.subscriptions,
                        &built.services,
                        generation,
                        node_overflow(&state.config, &name),
                    );
                    slot.generation = generation;
                    ready.push((name, runtime, topics, built.took, built.library.hash));
                }
                Err(error) => self.failed(state, &name, &error),
            }
        }
        let mut started = Vec::new();
        for (name, runtime, topics, took, hash) in ready {
            runtime.start(topics, None, Vec::new());
            let slot = state.slots.get_mut(&name).expect("spec made the slot");
            slot.runtime = Some(runtime);
            slot.loads += 1;
            slot.loaded_at = now();
            slot.last_error = None;
            self.events.emit(
                EventKind::Loaded,
                Some(&name),
                format!("loaded ({hash}) in {:.1} ms", took.as_secs_f64() * 1e3),
            );
            started.push(name);
        }
        started
    }

    fn failed(&self, state: &mut State, name: &str, error: &str) {
        if let Some(slot) = state.slots.get_mut(name) {
            slot.last_error = Some(error.to_owned());
        }
        self.events.emit(EventKind::Failed, Some(name), error);
    }

    /// The spec of `name`'s next instance; makes its slot if it has none.
    fn spec(&self, state: &mut State, name: &str) -> NodeSpec {
        let config = state.config.nodes.get(name);
        let library = library_path(&self.root, config.map_or(name, |c| c.library.as_str()));
        let settings_json = config.map_or_else(|| "{}".to_owned(), |c| c.settings.to_string());
        let capacity = config
            .and_then(|c| c.queue_capacity)
            .unwrap_or(state.config.messages.queue_capacity);
        let spin_us = config
            .and_then(|c| c.spin_us)
            .unwrap_or(state.config.messages.spin_us);
        let slot = state.slots.entry(name.to_owned()).or_insert_with(|| Slot {
            queue: NodeQueue::new(capacity),
            queue_capacity: capacity,
            generation: 0,
            runtime: None,
            loads: 0,
            loaded_at: None,
            last_error: None,
            reported_stuck: false,
            reported_crashes: 0,
        });
        NodeSpec {
            name: name.into(),
            library,
            settings_json,
            queue: slot.queue.clone(),
            generation: slot.generation + 1,
            spin: Duration::from_micros(spin_us),
            faults: config.map(|c| c.faults).unwrap_or_default(),
            host: self.host.clone(),
            isolate: config.is_some_and(|c| c.isolate),
            processed: None,
        }
    }

    /// Reloads node `name` (new code or settings): swaps in a new instance if it runs, starts
    /// it if it should run but does not.
    pub fn reload(&self, name: &str) -> Result<()> {
        let mut state = self.state.lock();
        self.reload_locked(&mut state, name, "asked")
    }

    fn reload_locked(&self, state: &mut State, name: &str, why: &str) -> Result<()> {
        let running = state.slots.get(name).is_some_and(|s| s.runtime.is_some());
        if running {
            return self.swap(state, name, why);
        }
        if !is_wanted(state, name) {
            bail!(
                "node `{name}` is not enabled; enable it first (config/hive.toml, or `hm enable {name}`)"
            );
        }
        if self.launch(state, &[name.to_owned()]).is_empty() {
            let error = state.slots.get(name).and_then(|s| s.last_error.clone());
            bail!("node `{name}` did not start: {}", error.unwrap_or_default());
        }
        Ok(())
    }

    /// Replaces the running instance of `name` with a new one; the old one keeps running if
    /// the new one cannot be built.
    fn swap(&self, state: &mut State, name: &str, why: &str) -> Result<()> {
        let started = Instant::now();
        let capacity = node_capacity(&state.config, name);
        let overflow = node_overflow(&state.config, name);
        let mut spec = self.spec(state, name);
        let slot = state.slots.get_mut(name).expect("spec made the slot");
        let old_queue = (capacity != slot.queue_capacity).then(|| {
            let old = std::mem::replace(&mut slot.queue, NodeQueue::new(capacity));
            slot.queue_capacity = capacity;
            spec.queue = slot.queue.clone();
            old
        });
        let candidate = NodeRuntime::spawn(spec.clone(), self.env.clone());
        let built = match candidate.wait_built() {
            Ok(built) => built,
            Err(error) => {
                if let Some(old) = old_queue {
                    slot.queue_capacity = old.inbox.capacity().unwrap_or(slot.queue_capacity);
                    slot.queue = old;
                }
                let message = format!("reload failed; the running version stays: {error}");
                tracing::error!("node `{name}`: {message}");
                self.failed(state, name, &message);
                bail!("{message}");
            }
        };
        let slot = state.slots.get_mut(name).expect("spec made the slot");
        let mut old = slot.runtime.take().expect("swap needs a running instance");
        let saved = old.hand_over();
        let node: Arc<str> = name.into();
        let topics = self.bus.register(
            &node,
            slot.queue.sender.clone(),
            built.subscriptions,
            &built.services,
            spec.generation,
            overflow,
        );
        // Messages routed into a replaced queue precede everything routed into the new one.
        let backlog = old_queue
            .map(|q| q.inbox.try_iter().collect())
            .unwrap_or_default();
        candidate.start(topics, saved, backlog);
        slot.generation = spec.generation;
        slot.runtime = Some(candidate);
        slot.loads += 1;
        slot.loaded_at = now();
        slot.last_error = None;
        let took = started.elapsed();
        tracing::info!(
            "reloaded node `{name}` ({why}; {}) in {:.1} ms",
            built.library.hash,
            took.as_secs_f64() * 1e3
        );
        self.events.emit(
            EventKind::Reloaded,
            Some(name),
            format!(
                "reloaded ({why}; {}) in {:.1} ms",
                built.library.hash,
                took.as_secs_f64() * 1e3
            ),
        );
        // The old instance closes its library on its own thread; don't wait for it here.
        std::thread::spawn(move || old.join(Instant::now() + STOP_DEADLINE));
        Ok(())
    }

    /// Stops node `name` and closes its library.
    fn unload(&self, state: &mut State, name: &str, why: &str) {
        let Some(slot) = state.slots.get_mut(name) else {
            return;
        };
        let Some(mut runtime) = slot.runtime.take() else {
            return;
        };
        self.bus.leave(name);
        runtime.request_stop();
        let stopped = runtime.join(Instant::now() + STOP_DEADLINE);
        let how = if stopped {
            ""
        } else {
            " (a service did not stop in time; its library stays loaded)"
        };
        tracing::info!("unloaded node `{name}` ({why}){how}");
        self.events.emit(
            EventKind::Unloaded,
            Some(name),
            format!("unloaded ({why}){how}"),
        );
    }

    /// Sets `enabled` for `name` in config/hive.toml (comments kept) and applies it at once.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        config::set_enabled(&self.root, name, enabled)?;
        let new = config::load(&self.root)?;
        self.apply_config(new);
        Ok(())
    }

    /// Makes the hive match `new`: nodes switched on start, switched off stop, nodes whose
    /// settings or library changed restart with them; the other nodes are not touched.
    /// Hive-level changes that cannot apply live are reported as needing a restart.
    pub fn apply_config(&self, new: HiveConfig) {
        let mut state = self.state.lock();
        let old = std::mem::replace(&mut state.config, new);
        self.report_restart_needed(&old, &state.config);
        let names: BTreeSet<String> = old
            .nodes
            .keys()
            .chain(state.config.nodes.keys())
            .cloned()
            .collect();
        let mut to_start = Vec::new();
        for name in names {
            let running = state.slots.get(&name).is_some_and(|s| s.runtime.is_some());
            let wanted = is_wanted(&state, &name);
            let before = old.nodes.get(&name);
            let after = state.config.nodes.get(&name);
            match (running, wanted) {
                (false, true) => {
                    if before.is_none_or(|b| !b.enabled) {
                        self.events.emit(
                            EventKind::Enabled,
                            Some(&name),
                            "enabled in config/hive.toml",
                        );
                    }
                    to_start.push(name);
                }
                (true, false) => {
                    self.events.emit(
                        EventKind::Disabled,
                        Some(&name),
                        "disabled in config/hive.toml",
                    );
                    self.unload(&mut state, &name, "disabled in config/hive.toml");
                }
                (true, true) if settings_changed(before, after) => {
                    let _ = self.swap(&mut state, &name, "its settings changed");
                }
                _ => {}
            }
        }
        if !to_start.is_empty() {
            self.launch(&mut state, &to_start);
        }
    }

    fn report_restart_needed(&self, old: &HiveConfig, new: &HiveConfig) {
        let mut changed = Vec::new();
        if old.bind != new.bind || old.port != new.port {
            changed.push("the address ([hive] bind, port)");
        }
        if old.name != new.name {
            changed.push("the hive's name");
        }
        if old.log != new.log {
            changed.push("[log]");
        }
        if old.messages.max_payload_bytes != new.messages.max_payload_bytes {
            changed.push("[messages] max_payload_bytes");
        }
        if old.mesh != new.mesh {
            changed.push("[mesh]");
        }
        if !changed.is_empty() {
            let message = format!(
                "config/hive.toml changed {}: restart hm to apply (the rest of the change is applied)",
                changed.join(", ")
            );
            tracing::warn!("{message}");
            self.events.emit(EventKind::Hive, None, message);
        }
    }

    /// A node library in `nodes/` appeared or changed: start or reload the nodes that use it
    /// (if its content really changed).
    pub fn library_changed(&self, path: &Path) {
        let mut state = self.state.lock();
        let hash = match std::fs::read(path) {
            Ok(bytes) => loader::content_hash(&bytes),
            Err(_) => return,
        };
        for name in nodes_using(&state, &self.root, path) {
            if !is_wanted(&state, &name) {
                continue;
            }
            let running_hash = state
                .slots
                .get(&name)
                .and_then(|s| s.runtime.as_ref())
                .and_then(|r| r.snapshot().library.map(|l| l.hash));
            match running_hash {
                Some(current) if current == hash => {}
                Some(_) => {
                    let _ = self.swap(&mut state, &name, "its library changed");
                }
                None => {
                    self.launch(&mut state, std::slice::from_ref(&name));
                }
            }
        }
    }

    /// A node library in `nodes/` was removed: unload the nodes that run it.
    pub fn library_removed(&self, path: &Path) {
        let mut state = self.state.lock();
        for name in nodes_using(&state, &self.root, path) {
            let why = format!("its library {} was removed", path.display());
            if state.slots.get(&name).is_some_and(|s| s.runtime.is_some()) {
                self.unload(&mut state, &name, &why);
                if let Some(slot) = state.slots.get_mut(&name) {
                    slot.last_error = Some(why);
                }
            }
        }
    }

    /// Looks at every running node once: one that failed on its own (too many panics) is
    /// taken off the bus and unloaded; one stuck in a callback is reported, and reported again
    /// when it runs on. Call it every fraction of a second ([`HEALTH_CHECK_EVERY`]).
    pub fn check_health(&self) {
        let mut state = self.state.lock();
        if state.stopping {
            return;
        }
        let names: Vec<String> = state.slots.keys().cloned().collect();
        for name in names {
            let Some(slot) = state.slots.get_mut(&name) else {
                continue;
            };
            let Some(runtime) = slot.runtime.as_mut() else {
                continue;
            };
            let snapshot = runtime.snapshot();
            // Crashes can come faster than the checks: each one is reported.
            while slot.reported_crashes < snapshot.crashes {
                slot.reported_crashes += 1;
                let how = snapshot.last_crash.clone().unwrap_or_default();
                tracing::error!("isolated node `{name}` crashed: {how}");
                self.events.emit(EventKind::Crashed, Some(&name), how);
            }
            match snapshot.status {
                NodeStatus::Failed => {
                    let reason = snapshot.error.unwrap_or_default();
                    self.bus.leave(&name);
                    runtime.join(Instant::now() + STOP_DEADLINE);
                    slot.runtime = None;
                    slot.last_error = Some(reason.clone());
                    tracing::error!("{reason}");
                    self.events.emit(EventKind::Failed, Some(&name), reason);
                }
                NodeStatus::Stuck if !slot.reported_stuck => {
                    slot.reported_stuck = true;
                    let what = snapshot.error.unwrap_or_default();
                    tracing::warn!("node `{name}` is stuck: {what}");
                    self.events.emit(EventKind::Stuck, Some(&name), what);
                }
                NodeStatus::Running if slot.reported_stuck => {
                    slot.reported_stuck = false;
                    tracing::info!("node `{name}` runs again");
                    self.events
                        .emit(EventKind::Stuck, Some(&name), "runs again");
                }
                _ => {}
            }
        }
    }

    /// Stops every node: all services are told at once, then each node is joined; then leaves
    /// the mesh. Returns the names of nodes that did not stop within [`STOP_DEADLINE`].
    pub fn stop(&self) -> Vec<String> {
        let stuck = self.stop_nodes();
        let mesh = self.mesh.lock().take();
        if let Some(mesh) = mesh {
            mesh.stop();
        }
        stuck
    }

    fn stop_nodes(&self) -> Vec<String> {
        let mut state = self.state.lock();
        state.stopping = true;
        for (name, slot) in &state.slots {
            if let Some(runtime) = &slot.runtime {
                self.bus.leave(name);
                runtime.request_stop();
            }
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        state
            .slots
            .iter_mut()
            .filter_map(|(name, slot)| {
                let runtime = slot.runtime.as_mut()?;
                (!runtime.join(deadline)).then(|| name.clone())
            })
            .collect()
    }

    /// Publishes `payload` (JSON text) on `service` as if a service of that name had sent it;
    /// the message's sending node is [`API_NODE`].
    pub fn publish(&self, service: &str, payload: &str) -> Result<(), PublishError> {
        if service.is_empty() || service.chars().any(char::is_control) {
            return Err(PublishError::InvalidService(service.to_owned()));
        }
        let limit = self.max_payload_bytes;
        if payload.len() > limit {
            return Err(PublishError::TooLarge {
                size: payload.len(),
                limit,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| PublishError::InvalidJson(e.to_string()))?;
        let from: Arc<str> = API_NODE.into();
        self.bus.publish(service, &from, &value.to_string());
        Ok(())
    }

    /// The hive as it is now: this host's nodes, then those of the other hosts of the mesh.
    pub fn snapshot(&self) -> HiveSnapshot {
        let mut nodes = self.local_nodes();
        let mesh = self
            .mesh
            .lock()
            .as_ref()
            .map(|mesh| (mesh.remote_nodes(), mesh.snapshot()));
        let mesh = mesh.map(|(remote, mesh)| {
            nodes.extend(remote);
            mesh
        });
        HiveSnapshot {
            name: self.name.clone(),
            host: self.host.to_string(),
            nodes,
            topics: self.bus.topics(),
            mesh,
        }
    }

    /// This host's nodes: every node in the config, and any named with `-n`.
    pub fn local_nodes(&self) -> Vec<NodeSnapshot> {
        let state = self.state.lock();
        let names: BTreeSet<&String> = state
            .config
            .nodes
            .keys()
            .chain(state.slots.keys())
            .collect();
        names
            .into_iter()
            .map(|name| {
                let mut node = node_snapshot(&state, name);
                node.host = self.host.to_string();
                node
            })
            .collect()
    }
}

fn node_snapshot(state: &State, name: &str) -> NodeSnapshot {
    let slot = state.slots.get(name);
    let wanted = is_wanted(state, name);
    let mut snapshot = match slot.and_then(|s| s.runtime.as_ref()) {
        Some(runtime) => runtime.snapshot(),
        None => NodeSnapshot::idle(
            name,
            match (wanted, slot.and_then(|s| s.last_error.as_ref())) {
                (false, _) => NodeStatus::Disabled,
                (true, Some(_)) => NodeStatus::Failed,
                (true, None) => NodeStatus::Stopped,
            },
        ),
    };
    snapshot.enabled = state.config.nodes.get(name).is_some_and(|c| c.enabled);
    if let Some(slot) = slot {
        snapshot.loads = slot.loads;
        snapshot.loaded_at = slot.loaded_at.clone();
        snapshot.last_error = slot.last_error.clone();
        if snapshot.error.is_none() && snapshot.status == NodeStatus::Failed {
            snapshot.error = slot.last_error.clone();
        }
    }
    snapshot
}

fn wanted_nodes(state: &State) -> Vec<String> {
    match &state.selection {
        Selection::Only(names) => names.clone(),
        Selection::Enabled => state
            .config
            .nodes
            .iter()
            .filter(|(_, node)| node.enabled)
            .map(|(name, _)| name.clone())
            .collect(),
    }
}

fn is_wanted(state: &State, name: &str) -> bool {
    match &state.selection {
        Selection::Only(names) => names.iter().any(|n| n == name),
        Selection::Enabled => state.config.nodes.get(name).is_some_and(|n| n.enabled),
    }
}

fn node_capacity(config: &HiveConfig, name: &str) -> usize {
    config
        .nodes
        .get(name)
        .and_then(|c| c.queue_capacity)
        .unwrap_or(config.messages.queue_capacity)
}

fn node_overflow(config: &HiveConfig, name: &str) -> Overflow {
    config
        .nodes
        .get(name)
        .map(|c| c.overflow)
        .unwrap_or_default()
}

/// Whether a node's restart-worthy settings differ (everything but `enabled`).
fn settings_changed(before: Option<&NodeConfig>, after: Option<&NodeConfig>) -> bool {
    let strip = |config: Option<&NodeConfig>| {
        config.map(|c| {
            let mut settings = c.settings.clone();
            if let Some(table) = settings.as_object_mut() {
                table.remove("enabled");
            }
            (
                c.library.clone(),
                c.queue_capacity,
                c.spin_us,
                c.overflow,
                settings,
            )
        })
    };
    strip(before) != strip(after)
}

/// The nodes (configured or running) whose library file is `path`.
fn nodes_using(state: &State, root: &Path, path: &Path) -> Vec<String> {
    let configured = state
        .config
        .nodes
        .iter()
        .map(|(name, c)| (name.clone(), c.library.clone()));
    let extra = state
        .slots
        .keys()
        .filter(|name| !state.config.nodes.contains_key(*name))
        .map(|name| (name.clone(), name.clone()));
    configured
        .chain(extra)
        .filter(|(_, library)| library_path(root, library) == path)
        .map(|(name, _)| name)
        .collect()
}

fn now() -> Option<String> {
    OffsetDateTime::now_utc().format(&Rfc3339).ok()
}
