//! The controller: the hive's registry of nodes and owner of its pub/sub core.
//!
//! It makes the running hive match what is asked of it: the config (which nodes are enabled,
//! with which settings), the libraries in `nodes/`, and direct requests (reload, enable,
//! disable). Its guarantees:
//!
//! - **One change at a time, on one thread.** Every change is a command to the control thread
//!   ([`actor`]), which owns the nodes' slots outright: no lock guards them, so nothing a node
//!   does can hold a lock that someone else needs.
//! - **Readers never wait.** The page, the API, `/metrics` and `/healthz` read state the control
//!   thread publishes after each step ([`Controller::snapshot`], [`Controller::config`]) and the
//!   counters each instance keeps itself; none of them waits for the control thread.
//! - **Node code is bounded in time.** Building a node (loading its library, its constructor) has
//!   a deadline, `[hive] build_timeout_ms`; a node past it is failed, and its late thread is
//!   reported when it returns, its library mapped until then. Handing state over has the same
//!   deadline. Stopping the hive interrupts any wait for a build.
//! - **Files are read by the caller, not the control thread**, and only after the checks of
//!   [`loader::read_library`]: a FIFO, a device or a bad link in `nodes/` is reported, and the
//!   running version stays.
//! - **Nothing is lost in a reload.** The new instance is built while the old one runs; if that
//!   fails, the old one stays. Otherwise the old one stops its services and saves its state, the
//!   bus switches the node's routes in one step, and the new one restores the state and drains
//!   the node's queue, which held every message sent meanwhile.
//!
//! With `[mesh]` enabled it also joins the other hosts of the hive ([`Controller::start_mesh`]):
//! its snapshot then lists their nodes too, each with its host.

mod actor;
mod health;
mod plan;
mod slot;

pub use plan::Selection;

use crate::builds::BuildResults;
use crate::bus::{Bus, TopicInfo};
use crate::config::{CheckSchemas, HiveConfig};
use crate::events::{EventKind, Events};
use crate::loader::{self, Libraries, LoadError};
use crate::logging::Logs;
use crate::mesh::{Mesh, MeshSettings, MeshSnapshot};
use crate::requests::Router;
use crate::runtime::{Environment, NodeShared, NodeSnapshot, NodeStatus};
use crate::schemas::{Schemas, Violation};
use crate::store::Stores;
use actor::Command;
use anyhow::{Result, anyhow};
use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the whole hive gets to stop.
pub(crate) const STOP_DEADLINE: Duration = Duration::from_millis(900);

/// How often [`Controller::check_health`] should run.
pub(crate) const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(200);

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
    /// Parts of the host itself that have stopped working (a dead watcher thread), for people.
    pub problems: Vec<String>,
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
    /// The payload does not match the service's declared type, and `[messages] check_schemas`
    /// is `"refuse"`.
    #[error("{0}")]
    Mismatch(Violation),
}

use crate::names::API as API_NODE;

/// What the control thread publishes after every step, for readers.
pub(crate) struct Published {
    /// The config in force (the last good one applied).
    pub(crate) config: Arc<HiveConfig>,
    /// Every node in the config or with a slot, by name.
    pub(crate) nodes: Vec<NodeView>,
}

/// One node as published: enough to draw it without asking the control thread.
#[derive(Clone)]
pub(crate) struct NodeView {
    pub(crate) name: String,
    pub(crate) wanted: bool,
    pub(crate) enabled: bool,
    pub(crate) building: bool,
    /// The running instance's counters (they move on their own).
    pub(crate) instance: Option<Arc<NodeShared>>,
    pub(crate) loads: u64,
    pub(crate) loaded_at: Option<String>,
    pub(crate) last_error: Option<String>,
    /// The settings the running instance was started with.
    pub(crate) settings: Option<serde_json::Value>,
}

impl NodeView {
    fn snapshot(&self, host: &str) -> NodeSnapshot {
        let mut snapshot = match &self.instance {
            Some(instance) => instance.snapshot(),
            None => NodeSnapshot::idle(
                &self.name,
                match (self.wanted, self.building, &self.last_error) {
                    (false, ..) => NodeStatus::Disabled,
                    (true, true, _) => NodeStatus::Loading,
                    (true, false, Some(_)) => NodeStatus::Failed,
                    (true, false, None) => NodeStatus::Stopped,
                },
            ),
        };
        snapshot.enabled = self.enabled;
        if self.instance.is_some() {
            snapshot.settings.clone_from(&self.settings);
        }
        snapshot.loads = self.loads;
        snapshot.loaded_at = self.loaded_at.clone();
        snapshot.last_error = self.last_error.clone();
        if snapshot.error.is_none() && snapshot.status == NodeStatus::Failed {
            snapshot.error = self.last_error.clone();
        }
        snapshot.host = host.to_owned();
        snapshot
    }
}

/// What the control thread and the controller's readers share.
pub(crate) struct Core {
    pub(crate) root: PathBuf,
    pub(crate) name: String,
    pub(crate) host: Arc<str>,
    pub(crate) bus: Arc<Bus>,
    pub(crate) events: Arc<Events>,
    /// What the last build of each node's crate said (`hm dev`).
    pub(crate) builds: BuildResults,
    pub(crate) env: Arc<Environment>,
    /// Replaced whole by the control thread after each step; read by anyone, never waited for.
    pub(crate) published: ArcSwap<Published>,
    /// Set once [`Controller::stop`] begins: the control thread drops other commands then.
    pub(crate) stopping: AtomicBool,
    /// Problems the health check found in the host's own threads.
    pub(crate) problems: Mutex<Vec<String>>,
    /// The payload types the running nodes declared.
    pub(crate) schemas: Schemas,
}

impl Core {
    /// Records what node `name`'s new instance declared (its services' names and its
    /// subscriptions' patterns by id, with their schemas), and reports, on the event feed and
    /// in root.log, the schemas ignored and the mismatches between subscribers and publishers
    /// not reported before.
    pub(crate) fn declare_types(
        &self,
        name: &str,
        services: &[Arc<str>],
        patterns: &[crate::bus::Pattern],
        types: &crate::schemas::DeclaredTypes,
    ) {
        let declaration = self.schemas.declare(name, services, patterns, types);
        for ignored in declaration.ignored {
            tracing::warn!("{ignored}");
            self.events.emit(EventKind::Schema, Some(name), ignored);
        }
        for mismatch in declaration.mismatches {
            let message = mismatch.to_string();
            tracing::warn!("{message}");
            self.events
                .emit(EventKind::Schema, Some(&mismatch.subscriber), message);
        }
    }
}

/// The control thread, once started.
struct Control {
    commands: Sender<Command>,
    /// Receives when the hive begins to stop, interrupting a wait for a build.
    wake: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The hive's registry of nodes.
pub struct Controller {
    core: Arc<Core>,
    max_payload_bytes: usize,
    /// Started with the controller, so that no command pays for starting it.
    control: Control,
    /// Set while a health check waits in the control thread's queue (they never pile up).
    health_pending: Arc<AtomicBool>,
    /// Other threads of the host, watched by the health check (name, handle).
    watched: Mutex<Vec<(&'static str, std::thread::JoinHandle<()>)>>,
    mesh: Mutex<Option<Mesh>>,
    /// Every node's store (`[data]`), which the nodes reach through `env.store`.
    stores: Arc<Stores>,
    _scratch: tempfile::TempDir,
}

impl Controller {
    /// A controller for `config`, with no node started yet, named as `[mesh] host` (or the
    /// machine's name and the configured port) says.
    pub fn new(config: HiveConfig, selection: Selection, logs: Logs) -> Result<Self> {
        let host = config.mesh.host_name(config.port);
        Self::for_host(config, selection, logs, host)
    }

    /// A controller for `config` on the host named `host` (`hm dev` passes the machine's name
    /// and the port it really bound). Its control thread starts here; no node does.
    pub fn for_host(
        config: HiveConfig,
        selection: Selection,
        logs: Logs,
        host: String,
    ) -> Result<Self> {
        let scratch = crate::runtime::scratch_folder()?;
        let host: Arc<str> = host.into();
        let router = Arc::new(Router::new(host.clone(), config.messages.max_payload_bytes));
        let stores = Arc::new(Stores::new(&config.data));
        let env = Arc::new(Environment {
            store: stores.clone(),
            logs,
            libraries: Libraries::new(scratch.path().to_path_buf()),
            max_payload_bytes: config.messages.max_payload_bytes,
            scratch: scratch.path().to_path_buf(),
            // The running program itself, even if its file was replaced since it started.
            child_exe: PathBuf::from("/proc/self/exe"),
            router,
        });
        let events = Arc::new(Events::default());
        let reporting = events.clone();
        let bus = Arc::new(Bus::with_drop_report(Arc::new(
            move |node, service, dropped| {
                reporting.emit(
                    EventKind::Dropped,
                    Some(node),
                    format!(
                        "{dropped} message(s) from `{service}` dropped so far: its queue is full"
                    ),
                );
            },
        )));
        let nodes = config
            .nodes
            .iter()
            .map(|(name, node)| NodeView {
                name: name.clone(),
                wanted: selection.wants(&config, name),
                enabled: node.enabled,
                building: false,
                instance: None,
                loads: 0,
                loaded_at: None,
                last_error: None,
                settings: None,
            })
            .collect();
        let core = Arc::new(Core {
            root: config.root.clone(),
            name: config.name.clone(),
            host,
            bus,
            events,
            builds: BuildResults::default(),
            env,
            published: ArcSwap::from_pointee(Published {
                config: Arc::new(config.clone()),
                nodes,
            }),
            stopping: AtomicBool::new(false),
            problems: Mutex::new(Vec::new()),
            schemas: Schemas::new(),
        });
        let control = actor::spawn(core.clone(), selection);
        Ok(Self {
            core,
            max_payload_bytes: config.messages.max_payload_bytes,
            control,
            health_pending: Arc::new(AtomicBool::new(false)),
            watched: Mutex::new(Vec::new()),
            mesh: Mutex::new(None),
            stores,
            _scratch: scratch,
        })
    }

    /// Every node's store (`[data]`): what the web server and `hm data` read and change.
    pub(crate) fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The hive's routing table.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.core.bus
    }

    /// The payload types the running nodes declared.
    pub(crate) fn schemas(&self) -> &Schemas {
        &self.core.schemas
    }

    /// The hive's event feed.
    pub fn events(&self) -> &Arc<Events> {
        &self.core.events
    }

    /// What the last build of each node's crate said (`hm dev`).
    pub fn builds(&self) -> &BuildResults {
        &self.core.builds
    }

    /// The config the hive runs on (the last good one applied). Never waits.
    pub fn config(&self) -> Arc<HiveConfig> {
        self.core.published.load().config.clone()
    }

    /// The hive's root folder.
    pub fn root(&self) -> &Path {
        &self.core.root
    }

    /// The hive's request router: who answers which request name; asks them.
    pub(crate) fn router(&self) -> &Arc<Router> {
        &self.core.env.router
    }

    /// This host's name: `[mesh] host`, or the machine's name and the port.
    pub fn host(&self) -> &str {
        &self.core.host
    }

    /// Sends `command` and waits for its answer on `reply`'s other end.
    fn ask<T>(&self, command: impl FnOnce(Sender<T>) -> Command) -> Result<T> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.control
            .commands
            .send(command(reply))
            .map_err(|_| anyhow!("the hive is stopping; nothing more is changed"))?;
        answer.recv().map_err(|_| {
            if self.core.stopping.load(Ordering::Acquire) {
                anyhow!("the hive is stopping; nothing more is changed")
            } else {
                anyhow!("the controller failed on this change (see the hive's events and root.log)")
            }
        })
    }

    /// Joins the mesh if `[mesh]` enables it (else does nothing): from then on messages sent
    /// here also go to the other hosts, theirs come in, and the snapshot lists their nodes.
    pub fn start_mesh(self: &Arc<Self>) -> Result<()> {
        let config = self.config();
        if !config.mesh.enabled {
            return Ok(());
        }
        let settings = MeshSettings {
            hive: self.core.name.clone(),
            host: self.core.host.to_string(),
            config: config.mesh.clone(),
            max_payload_bytes: self.max_payload_bytes,
        };
        let controller = Arc::downgrade(self);
        let local_view = Box::new(move || {
            controller
                .upgrade()
                .map(|c| c.local_nodes())
                .unwrap_or_default()
        });
        // Joining takes a while: the lock is taken only to put the mesh in place.
        let old = self.mesh.lock().take();
        if let Some(old) = old {
            old.stop();
        }
        let mesh = Mesh::start(
            settings,
            self.core.bus.clone(),
            self.core.env.router.clone(),
            local_view,
            self.core.events.clone(),
        )?;
        *self.mesh.lock() = Some(mesh);
        Ok(())
    }

    /// Starts every node that should run; a node that fails is reported and left out. Returns
    /// once each has started, failed, or passed its build deadline.
    pub fn start(&self) {
        let _ = self.ask(Command::Start);
    }

    /// Reloads node `name` (new code or settings): swaps in a new instance if it runs, starts
    /// it if it should run but does not.
    pub fn reload(&self, name: &str) -> Result<()> {
        self.ask(|reply| Command::Reload(name.to_owned(), reply))?
    }

    /// Sets `enabled` for `name` in config/hive.toml (comments kept) and applies it at once.
    /// The file is written and read here, on the caller's thread.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        crate::config::set_enabled(&self.core.root, name, enabled)?;
        let new = crate::config::load(&self.core.root)?;
        self.ask(|reply| Command::Apply(Box::new(new), Some(reply)))
    }

    /// Makes the hive match `new`: nodes switched on start, switched off stop, nodes whose
    /// settings or library changed restart with them; the other nodes are not touched.
    /// Hive-level changes that cannot apply live are reported as needing a restart.
    pub fn apply_config(&self, new: HiveConfig) {
        let _ = self.ask(|reply| Command::Apply(Box::new(new), Some(reply)));
    }

    /// A node library in `nodes/` appeared or changed: start or reload the nodes that use it
    /// (if its content really changed). The file is checked and read here, on the caller's
    /// thread; a bad file is reported (the running version stays) and returned, so that the
    /// caller can try a failed read again.
    pub fn library_changed(&self, path: &Path) -> Result<(), LoadError> {
        let file = match loader::LibraryFile::read(path) {
            Ok(file) => Arc::new(file),
            Err(error) => {
                let _ = self
                    .ask(|reply| Command::BadLibrary(path.to_path_buf(), error.to_string(), reply));
                return Err(error);
            }
        };
        let _ = self.ask(|reply| Command::LibraryChanged(path.to_path_buf(), file, reply));
        Ok(())
    }

    /// A node library in `nodes/` was removed: unload the nodes that run it.
    pub fn library_removed(&self, path: &Path) {
        let _ = self.ask(|reply| Command::LibraryRemoved(path.to_path_buf(), reply));
    }

    /// Watches `thread` (a thread of the host's own, by `name`): the health check reports it
    /// once if it ends while the hive runs.
    pub fn watch_thread(&self, name: &'static str, thread: std::thread::JoinHandle<()>) {
        self.watched.lock().push((name, thread));
    }

    /// Looks at every running node once: one that failed on its own (too many panics) is
    /// taken off the bus and unloaded; one stuck in a callback is reported, and reported again
    /// when it runs on; a late build that returned is reported. Also checks the host's own
    /// threads. Call it every fraction of a second ([`HEALTH_CHECK_EVERY`]); it never waits
    /// for the control thread (a check already queued is not queued twice).
    pub fn check_health(&self) {
        if self.core.stopping.load(Ordering::Acquire) {
            return;
        }
        health::check_threads(
            &self.core,
            &mut self.watched.lock(),
            Some(&self.control.thread),
        );
        if !self.health_pending.swap(true, Ordering::AcqRel) {
            let pending = self.health_pending.clone();
            if self
                .control
                .commands
                .send(Command::Health(pending))
                .is_err()
            {
                self.health_pending.store(false, Ordering::Release);
            }
        }
    }

    /// Stops every node: all services are told at once, then each node is joined; then leaves
    /// the mesh. A wait for a node being built is interrupted. Returns the names of nodes that
    /// did not stop within [`STOP_DEADLINE`].
    pub fn stop(&self) -> Vec<String> {
        self.core.stopping.store(true, Ordering::Release);
        let control = &self.control;
        let _ = control.wake.try_send(());
        let (reply, answer) = crossbeam_channel::bounded(1);
        let _ = control.commands.send(Command::Stop(reply));
        // The control thread may be inside a step that is itself bounded; never wait much
        // longer than the nodes get.
        let stuck = answer
            .recv_deadline(Instant::now() + STOP_DEADLINE + Duration::from_millis(500))
            .unwrap_or_else(|_| vec!["(the control thread did not answer in time)".to_owned()]);
        let mesh = self.mesh.lock().take();
        if let Some(mesh) = mesh {
            mesh.stop();
        }
        stuck
    }

    /// Publishes `payload` (JSON text) on `service` as if a service of that name had sent it;
    /// the message's sending node is [`API_NODE`].
    ///
    /// When the service declared a payload type, the payload is checked against its schema as
    /// `[messages] check_schemas` says: `warn` publishes it and returns what did not match
    /// (also logged), `refuse` returns [`PublishError::Mismatch`] and publishes nothing.
    pub fn publish(&self, service: &str, payload: &str) -> Result<Option<Violation>, PublishError> {
        if !hivemind::names::is_service_name(service) {
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
        let warning = match self.config().messages.check_schemas {
            CheckSchemas::Off => None,
            CheckSchemas::Warn => self.core.schemas.check(service, &value).err(),
            CheckSchemas::Refuse => {
                if let Err(violation) = self.core.schemas.check(service, &value) {
                    tracing::warn!("refused a payload published on `{service}`: {violation}");
                    return Err(PublishError::Mismatch(violation));
                }
                None
            }
        };
        if let Some(violation) = &warning {
            tracing::warn!(
                "published on `{service}` all the same ([messages] check_schemas = \"warn\"): {violation}"
            );
        }
        let from: Arc<str> = API_NODE.into();
        self.core.bus.publish(service, &from, &value.to_string());
        Ok(warning)
    }

    /// The hive as it is now: this host's nodes, then those of the other hosts of the mesh.
    /// Never waits for the control thread.
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
            name: self.core.name.clone(),
            host: self.core.host.to_string(),
            nodes,
            topics: self.core.bus.topics(),
            mesh,
            problems: self.core.problems.lock().clone(),
        }
    }

    /// This host's nodes: every node in the config, and any named with `-n`. Never waits for
    /// the control thread.
    pub fn local_nodes(&self) -> Vec<NodeSnapshot> {
        let published = self.core.published.load();
        published
            .nodes
            .iter()
            .map(|node| {
                let mut snapshot = node.snapshot(&self.core.host);
                snapshot.build_error = self.core.builds.failure(&node.name);
                snapshot
            })
            .collect()
    }
}
