//! The control thread: the one place where the hive changes. It owns every node's [`Slot`] and
//! takes [`Command`]s one at a time, in the order they were sent.
//!
//! Guarantees: it holds no lock that a reader needs (readers read what it publishes after each
//! step); every wait on node code is bounded (`[hive] build_timeout_ms` for a build and a state
//! hand-over, [`STOP_DEADLINE`] for a stop) and a build wait ends at once when the hive stops; a
//! panic in a step is caught, reported as an event, and the thread goes on with the next command.

use super::plan::{self, Selection, Step};
use super::slot::{Phase, Slot};
use super::{Control, Core, NodeView, Published, STOP_DEADLINE};
use crate::bus::Overflow;
use crate::config::{self, HiveConfig};
use crate::events::EventKind;
use crate::loader::{LibraryFile, library_path};
use crate::runtime::{BuildError, BuildOutcome, Built, NodeQueue, NodeRuntime, NodeSpec};
use anyhow::{Result, bail};
use crossbeam_channel::{Receiver, Sender};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the control thread is asked to do. Those with a `Sender` are answered when done.
pub(crate) enum Command {
    /// Start every node that should run.
    Start(Sender<()>),
    /// Make the hive match this config.
    Apply(Box<HiveConfig>, Option<Sender<()>>),
    /// This library file has this content now.
    LibraryChanged(PathBuf, Arc<LibraryFile>, Sender<()>),
    /// This library file could not be used (why); the running versions stay.
    BadLibrary(PathBuf, String, Sender<()>),
    /// This library file is gone.
    LibraryRemoved(PathBuf, Sender<()>),
    /// Reload (or start) this node.
    Reload(String, Sender<Result<()>>),
    /// Look at the running nodes; the flag is cleared when done.
    Health(Arc<AtomicBool>),
    /// Stop every node; answered with those that did not stop in time.
    Stop(Sender<Vec<String>>),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Start(_) => "start",
            Command::Apply(..) => "apply the config",
            Command::LibraryChanged(..) => "load a changed library",
            Command::BadLibrary(..) => "report a bad library",
            Command::LibraryRemoved(..) => "unload a removed library",
            Command::Reload(..) => "reload",
            Command::Health(_) => "check health",
            Command::Stop(_) => "stop",
        }
    }
}

/// A node instance that passed its build deadline, still in the node's code.
pub(super) struct Late {
    pub(super) name: String,
    pub(super) since: Instant,
    pub(super) runtime: NodeRuntime,
}

/// What the control thread owns.
pub(super) struct Actor {
    pub(super) core: Arc<Core>,
    /// The config in force (also published).
    pub(super) config: Arc<HiveConfig>,
    pub(super) selection: Selection,
    /// Invariant: a slot exists for every node that was ever started or asked for.
    pub(super) slots: BTreeMap<String, Slot>,
    pub(super) late: Vec<Late>,
    /// While a changed library is being applied: its path and the content read (see
    /// [`LibraryFile`]); the specs of nodes built from that path carry it. `None` otherwise.
    incoming: Option<(PathBuf, Arc<LibraryFile>)>,
    wake: Receiver<()>,
    stopped: bool,
}

/// Starts the control thread.
pub(super) fn spawn(core: Arc<Core>, selection: Selection) -> Control {
    let (commands, inbox) = crossbeam_channel::unbounded();
    let (wake, woken) = crossbeam_channel::bounded(1);
    let config = core.published.load().config.clone();
    let mut actor = Actor {
        core,
        config,
        selection,
        slots: BTreeMap::new(),
        late: Vec::new(),
        incoming: None,
        wake: woken,
        stopped: false,
    };
    let thread = std::thread::Builder::new()
        .name("hm-control".into())
        .spawn(move || actor.run(&inbox))
        .expect("the OS refused to start the control thread");
    Control {
        commands,
        wake,
        thread,
    }
}

impl Actor {
    fn run(&mut self, inbox: &Receiver<Command>) {
        self.publish();
        while let Ok(command) = inbox.recv() {
            if self.core.stopping.load(Ordering::Acquire) && !matches!(command, Command::Stop(_)) {
                // Dropping the command drops its reply: the caller hears that the hive stops.
                if let Command::Health(pending) = command {
                    pending.store(false, Ordering::Release);
                }
                continue;
            }
            let what = command.name();
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.handle(command);
            }));
            if let Err(panic) = step {
                let message = format!(
                    "the controller's step `{what}` panicked ({}); the hive goes on, but that change may be incomplete: check the nodes and apply it again",
                    panic_text(&panic)
                );
                tracing::error!("{message}");
                self.core.events.emit(EventKind::Hive, None, message);
            }
            self.publish();
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Start(reply) => {
                self.start();
                let _ = reply.send(());
            }
            Command::Apply(config, reply) => {
                self.apply_config(*config);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            Command::LibraryChanged(path, file, reply) => {
                self.library_changed(&path, &file);
                let _ = reply.send(());
            }
            Command::BadLibrary(path, why, reply) => {
                self.bad_library(&path, &why);
                let _ = reply.send(());
            }
            Command::LibraryRemoved(path, reply) => {
                self.library_removed(&path);
                let _ = reply.send(());
            }
            Command::Reload(name, reply) => {
                let _ = reply.send(self.reload(&name, "asked"));
            }
            Command::Health(pending) => {
                self.check_health();
                pending.store(false, Ordering::Release);
            }
            Command::Stop(reply) => {
                let stuck = self.stop();
                let _ = reply.send(stuck);
            }
        }
    }

    /// Replaces the published state with what the slots say now.
    pub(super) fn publish(&self) {
        let config = &self.config;
        let names: BTreeSet<&String> = config.nodes.keys().chain(self.slots.keys()).collect();
        let nodes = names
            .into_iter()
            .map(|name| {
                let slot = self.slots.get(name);
                NodeView {
                    name: name.clone(),
                    wanted: self.selection.wants(config, name),
                    enabled: config.nodes.get(name).is_some_and(|c| c.enabled),
                    building: slot.is_some_and(|s| matches!(s.phase, Phase::Building)),
                    instance: slot
                        .and_then(|s| s.phase.runtime())
                        .map(NodeRuntime::shared),
                    loads: slot.map_or(0, |s| s.loads),
                    loaded_at: slot.and_then(|s| s.loaded_at.clone()),
                    last_error: slot.and_then(|s| s.last_error.clone()),
                    settings: slot.and_then(|s| s.settings.clone()),
                }
            })
            .collect();
        self.core.published.store(Arc::new(Published {
            config: config.clone(),
            nodes,
        }));
    }

    fn start(&mut self) {
        // A config applied before the start may have started some already.
        let names: Vec<String> = self
            .selection
            .wanted(&self.config)
            .into_iter()
            .filter(|name| !self.slots.get(name).is_some_and(Slot::is_running))
            .collect();
        let up = self.launch(&names);
        let failed: Vec<&str> = names
            .iter()
            .filter(|n| !up.contains(*n))
            .map(String::as_str)
            .collect();
        if names.is_empty() && up.is_empty() && !self.slots.values().any(Slot::is_running) {
            tracing::info!("{}", nothing_to_run(&self.config));
        } else if failed.is_empty() {
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

    /// How long a build or a state hand-over may take.
    fn build_deadline(&self) -> Instant {
        Instant::now() + self.config.build_timeout
    }

    /// Starts an instance of a node (in its own process when its config says `isolate = true`,
    /// in this one otherwise: the seam picks the driver).
    fn instance(&self, spec: NodeSpec) -> NodeRuntime {
        NodeRuntime::spawn(spec, self.core.env.clone())
    }

    /// Waits for `runtime` to be built, until `deadline` or the hive stops.
    fn wait_built(&mut self, name: &str, runtime: NodeRuntime, deadline: Instant) -> Waited {
        match runtime.wait_built_until(deadline, &self.wake) {
            BuildOutcome::Built(built) => Waited::Built(runtime, built),
            BuildOutcome::Failed(error) => Waited::Failed(error),
            BuildOutcome::TimedOut => {
                // It stops by itself once the node's code returns, closing its library then.
                runtime.request_stop();
                let error = BuildError::TimedOut {
                    node: name.into(),
                    after: self.config.build_timeout,
                };
                self.late.push(Late {
                    name: name.to_owned(),
                    since: Instant::now(),
                    runtime,
                });
                Waited::Failed(error)
            }
            BuildOutcome::Interrupted => {
                runtime.request_stop();
                self.late.push(Late {
                    name: name.to_owned(),
                    since: Instant::now(),
                    runtime,
                });
                Waited::Interrupted
            }
        }
    }

    /// Builds `names`, registers those that built on the bus, then starts them; returns the
    /// names that started.
    fn launch(&mut self, names: &[String]) -> Vec<String> {
        let mut building = Vec::new();
        for name in names {
            let spec = self.spec(name);
            let slot = self.slots.get_mut(name).expect("spec made the slot");
            if !slot.is_running() {
                slot.phase = Phase::Building;
            }
            building.push((name.clone(), spec.generation, self.instance(spec)));
        }
        self.publish();
        let deadline = self.build_deadline();
        let mut ready = Vec::new();
        for (name, generation, runtime) in building {
            match self.wait_built(&name, runtime, deadline) {
                Waited::Built(runtime, built) => {
                    let overflow = node_overflow(&self.config, &name);
                    let slot = self.slots.get_mut(&name).expect("spec made the slot");
                    let node: Arc<str> = name.as_str().into();
                    let patterns = patterns_of(&built);
                    let topics = self.core.bus.register(
                        &node,
                        slot.queue.sender.clone(),
                        built.subscriptions,
                        &built.services,
                        generation,
                        overflow,
                    );
                    self.core
                        .declare_types(&name, &built.services, &patterns, &built.types);
                    slot.generation = generation;
                    ready.push((name, runtime, topics, built.took, built.library.hash));
                }
                Waited::Failed(error) => {
                    let error = error.to_string();
                    let error = match config::explain_setting_error(&self.core.root, &name, &error)
                    {
                        Some(setting) => format!("{setting}; fix it and save"),
                        None => error,
                    };
                    tracing::error!("{error}");
                    self.failed(&name, &error);
                    if let Some(slot) = self.slots.get_mut(&name) {
                        slot.phase = Phase::Failed;
                    }
                }
                Waited::Interrupted => {
                    if let Some(slot) = self.slots.get_mut(&name) {
                        slot.phase = Phase::Idle;
                    }
                }
            }
        }
        let mut started = Vec::new();
        for (name, runtime, topics, took, hash) in ready {
            runtime.start(topics, None, Vec::new());
            let settings = settings_of(&self.config, &name);
            let slot = self.slots.get_mut(&name).expect("spec made the slot");
            slot.settings = settings;
            slot.phase = Phase::Running(runtime);
            slot.loads += 1;
            slot.loaded_at = now();
            slot.last_error = None;
            let loaded = format!("loaded ({hash}) in {:.1} ms", took.as_secs_f64() * 1e3);
            tracing::info!("node `{name}` {loaded}");
            self.core
                .events
                .emit(EventKind::Loaded, Some(&name), loaded);
            started.push(name);
        }
        started
    }

    fn failed(&mut self, name: &str, error: &str) {
        if let Some(slot) = self.slots.get_mut(name) {
            slot.last_error = Some(error.to_owned());
        }
        self.core.events.emit(EventKind::Failed, Some(name), error);
    }

    /// The spec of `name`'s next instance; makes its slot if it has none.
    fn spec(&mut self, name: &str) -> NodeSpec {
        let config = self.config.nodes.get(name);
        let library = library_path(&self.core.root, config.map_or(name, |c| c.library.as_str()));
        let settings_json = config.map_or_else(|| "{}".to_owned(), |c| c.settings.to_string());
        let capacity = node_capacity(&self.config, name);
        let spin_us = config
            .and_then(|c| c.spin_us)
            .unwrap_or(self.config.messages.spin_us);
        let slot = self
            .slots
            .entry(name.to_owned())
            .or_insert_with(|| Slot::new(capacity));
        let read = self
            .incoming
            .as_ref()
            .filter(|(path, _)| *path == library)
            .map(|(_, file)| file.clone());
        NodeSpec {
            name: name.into(),
            library,
            settings_json,
            queue: slot.queue.clone(),
            generation: slot.generation + 1,
            spin: Duration::from_micros(spin_us),
            faults: config.map(|c| c.faults).unwrap_or_default(),
            host: self.core.host.clone(),
            isolate: config.is_some_and(|c| c.isolate),
            processed: None,
            read,
        }
    }

    fn reload(&mut self, name: &str, why: &str) -> Result<()> {
        if self.slots.get(name).is_some_and(Slot::is_running) {
            return self.swap(name, why);
        }
        if !self.selection.wants(&self.config, name) {
            bail!(
                "node `{name}` is not enabled; enable it first (config/hive.toml, or `hm enable {name}`)"
            );
        }
        if self.launch(&[name.to_owned()]).is_empty() {
            let error = self.slots.get(name).and_then(|s| s.last_error.clone());
            bail!("node `{name}` did not start: {}", error.unwrap_or_default());
        }
        Ok(())
    }

    /// Replaces the running instance of `name` with a new one; the old one keeps running if
    /// the new one cannot be built in time.
    fn swap(&mut self, name: &str, why: &str) -> Result<()> {
        let started = Instant::now();
        let capacity = node_capacity(&self.config, name);
        let overflow = node_overflow(&self.config, name);
        let mut spec = self.spec(name);
        let slot = self.slots.get_mut(name).expect("spec made the slot");
        let old_queue = (capacity != slot.queue_capacity).then(|| {
            let old = std::mem::replace(&mut slot.queue, NodeQueue::new(capacity));
            slot.queue_capacity = capacity;
            spec.queue = slot.queue.clone();
            old
        });
        let candidate = self.instance(spec.clone());
        let deadline = self.build_deadline();
        let (candidate, built) = match self.wait_built(name, candidate, deadline) {
            Waited::Built(candidate, built) => (candidate, *built),
            waited => {
                let slot = self.slots.get_mut(name).expect("spec made the slot");
                if let Some(old) = old_queue {
                    slot.queue_capacity = old.inbox.capacity().unwrap_or(slot.queue_capacity);
                    slot.queue = old;
                }
                let Waited::Failed(error) = waited else {
                    bail!("the hive is stopping");
                };
                let error = error.to_string();
                let message = match config::explain_setting_error(&self.core.root, name, &error) {
                    Some(setting) => format!(
                        "{setting}. The previous instance keeps running, with the settings it had; fix the value and save"
                    ),
                    None => format!("reload failed; the running version stays: {error}"),
                };
                tracing::error!("node `{name}`: {message}");
                self.failed(name, &message);
                bail!("{message}");
            }
        };
        let hand_over_by = self.build_deadline();
        let slot = self.slots.get_mut(name).expect("spec made the slot");
        let Phase::Running(mut old) = std::mem::replace(&mut slot.phase, Phase::Building) else {
            unreachable!("swap is only called for a running node");
        };
        let saved = match old.hand_over_until(hand_over_by) {
            Ok(saved) => saved,
            Err(_) => {
                let message = format!(
                    "node `{name}`: the running instance did not hand its state over within {} ms (a callback is stuck, or save_state); the new instance starts without it",
                    self.config.build_timeout.as_millis()
                );
                tracing::warn!("{message}");
                self.core
                    .events
                    .emit(EventKind::Reloaded, Some(name), message);
                None
            }
        };
        let node: Arc<str> = name.into();
        let patterns = patterns_of(&built);
        let topics = self.core.bus.register(
            &node,
            slot.queue.sender.clone(),
            built.subscriptions,
            &built.services,
            spec.generation,
            overflow,
        );
        self.core
            .declare_types(name, &built.services, &patterns, &built.types);
        // Messages routed into a replaced queue precede everything routed into the new one.
        let backlog = old_queue
            .map(|q| q.inbox.try_iter().collect())
            .unwrap_or_default();
        candidate.start(topics, saved, backlog);
        slot.settings = settings_of(&self.config, name);
        slot.generation = spec.generation;
        slot.phase = Phase::Running(candidate);
        slot.loads += 1;
        slot.loaded_at = now();
        slot.last_error = None;
        let took = started.elapsed();
        tracing::info!(
            "reloaded node `{name}` ({why}; {}) in {:.1} ms",
            built.library.hash,
            took.as_secs_f64() * 1e3
        );
        self.core.events.emit(
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

    /// Stops node `name` and closes its library (waits at most [`STOP_DEADLINE`]).
    fn unload(&mut self, name: &str, why: &str) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Phase::Running(mut runtime) = std::mem::replace(&mut slot.phase, Phase::Idle) else {
            return;
        };
        self.core.bus.leave(name);
        self.core.schemas.forget(name);
        runtime.request_stop();
        let stopped = runtime.join(Instant::now() + STOP_DEADLINE);
        let how = if stopped {
            ""
        } else {
            " (a service did not stop in time; its library stays loaded)"
        };
        tracing::info!("unloaded node `{name}` ({why}){how}");
        self.core.events.emit(
            EventKind::Unloaded,
            Some(name),
            format!("unloaded ({why}){how}"),
        );
    }

    fn apply_config(&mut self, new: HiveConfig) {
        crate::inject::maybe_panic("control", &new);
        let new = Arc::new(new);
        let old = std::mem::replace(&mut self.config, new.clone());
        let changed = plan::restart_needed(&old, &new);
        if !changed.is_empty() {
            let message = format!(
                "config/hive.toml changed {}: restart hm to apply (the rest of the change is applied)",
                changed.join(", ")
            );
            tracing::warn!("{message}");
            self.core.events.emit(EventKind::Hive, None, message);
        }
        let running: BTreeSet<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.is_running())
            .map(|(name, _)| name.clone())
            .collect();
        let mut to_start = Vec::new();
        for step in plan::plan(&old, &new, &self.selection, &running) {
            match step {
                Step::Start { name, enabled } => {
                    if enabled {
                        tracing::info!("node `{name}` enabled in config/hive.toml: starting it");
                        self.core.events.emit(
                            EventKind::Enabled,
                            Some(&name),
                            "enabled in config/hive.toml",
                        );
                    }
                    to_start.push(name);
                }
                Step::Stop { name, why } => {
                    self.core
                        .events
                        .emit(EventKind::Disabled, Some(&name), why.clone());
                    self.unload(&name, &why);
                }
                Step::Restart { name, why } => {
                    let _ = self.swap(&name, &why);
                }
            }
        }
        self.publish();
        if !to_start.is_empty() {
            self.launch(&to_start);
        }
    }

    fn library_changed(&mut self, path: &Path, file: &Arc<LibraryFile>) {
        let hash = file.hash.as_str();
        // The builds below load the bytes read by whoever saw the change.
        self.incoming = Some((path.to_path_buf(), file.clone()));
        for name in self.nodes_using(path) {
            if !self.selection.wants(&self.config, &name) {
                continue;
            }
            let running_hash = self
                .slots
                .get(&name)
                .and_then(|s| s.phase.runtime())
                .and_then(|r| r.snapshot().library.map(|l| l.hash));
            match running_hash {
                Some(current) if current == hash => {}
                Some(_) => {
                    let _ = self.swap(&name, "its library changed");
                }
                None => {
                    self.launch(std::slice::from_ref(&name));
                }
            }
        }
        self.incoming = None;
    }

    fn bad_library(&mut self, path: &Path, why: &str) {
        for name in self.nodes_using(path) {
            if !self.selection.wants(&self.config, &name) {
                continue;
            }
            let running = self.slots.get(&name).is_some_and(Slot::is_running);
            let message = if running {
                format!("{why}; the running version stays")
            } else {
                why.to_owned()
            };
            tracing::error!("node `{name}`: {message}");
            self.failed(&name, &message);
        }
    }

    fn library_removed(&mut self, path: &Path) {
        for name in self.nodes_using(path) {
            let why = format!("its library {} was removed", path.display());
            if self.slots.get(&name).is_some_and(Slot::is_running) {
                self.unload(&name, &why);
                if let Some(slot) = self.slots.get_mut(&name) {
                    slot.last_error = Some(why);
                }
            }
        }
    }

    fn stop(&mut self) -> Vec<String> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        for (name, slot) in &self.slots {
            if let Some(runtime) = slot.phase.runtime() {
                self.core.bus.leave(name);
                self.core.schemas.forget(name);
                runtime.request_stop();
            }
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        let stuck = self
            .slots
            .iter_mut()
            .filter_map(|(name, slot)| {
                let Phase::Running(runtime) = &mut slot.phase else {
                    return None;
                };
                let stopped = runtime.join(deadline);
                slot.phase = Phase::Idle;
                (!stopped).then(|| name.clone())
            })
            .collect();
        self.publish();
        stuck
    }

    /// The nodes (configured or running) whose library file is `path`.
    fn nodes_using(&self, path: &Path) -> Vec<String> {
        let configured = self
            .config
            .nodes
            .iter()
            .map(|(name, c)| (name.clone(), c.library.clone()));
        let extra = self
            .slots
            .keys()
            .filter(|name| !self.config.nodes.contains_key(*name))
            .map(|name| (name.clone(), name.clone()));
        configured
            .chain(extra)
            .filter(|(_, library)| library_path(&self.core.root, library) == path)
            .map(|(name, _)| name)
            .collect()
    }
}

/// How a wait for a build ended, for the control thread.
enum Waited {
    Built(NodeRuntime, Box<Built>),
    Failed(BuildError),
    Interrupted,
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

fn now() -> Option<String> {
    OffsetDateTime::now_utc().format(&Rfc3339).ok()
}

/// The text of a caught panic.
pub(super) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The settings `name` gets from `config` (its table, as the node receives it).
fn settings_of(config: &HiveConfig, name: &str) -> Option<serde_json::Value> {
    config.nodes.get(name).map(|c| c.settings.clone())
}

/// What `hm dev` / `hm run` says when no node is to run: which are disabled, and how to
/// enable them.
fn nothing_to_run(config: &HiveConfig) -> String {
    let disabled: Vec<&str> = config.nodes.keys().map(String::as_str).collect();
    match disabled.as_slice() {
        [] => "no node is running: this hive has no nodes yet (add one with `hm create_node NAME`)"
            .to_owned(),
        [one] => format!(
            "no node is running: `{one}` is disabled. Enable it with `hm enable {one}` (or enabled = true under [nodes.{one}] in config/hive.toml); it starts at once"
        ),
        several => format!(
            "no node is running: {} are disabled. Enable one with `hm enable NAME` (or enabled = true under [nodes.NAME] in config/hive.toml); it starts at once",
            several
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The patterns of an instance's subscriptions, by id (what its declared types are matched by).
fn patterns_of(built: &crate::runtime::Built) -> Vec<crate::bus::Pattern> {
    built
        .subscriptions
        .iter()
        .map(|s| s.pattern.clone())
        .collect()
}
