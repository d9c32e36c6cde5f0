//! The request router: which node answers which request name, and the carrying of each request
//! to its responder's desk (a queue the responder's delivery thread drains between messages)
//! and of its outcome back to the asker.
//!
//! # The contract
//!
//! - **Exactly one outcome per request, by its deadline.** Every [`Router::ask`] calls its
//!   `done` exactly once: with the replies, or with a [`Failure`]. A deadline thread fails
//!   whatever is unanswered at the request's timeout ([`FailureKind::Timeout`]); a [`Job`]
//!   dropped unanswered (its node stopped, crashed or was disabled with it queued or in hand)
//!   fails it at once ([`FailureKind::Restarted`]). Nobody waits past a timeout.
//! - **Known at once.** No responder, arguments over `[messages] max_payload_bytes`, a full
//!   desk: `done` runs before `ask` returns.
//! - **This host first.** A plain request goes to one responder: the first node of this host
//!   that registered the name; a responder elsewhere (through [`Remote`]) only when none here
//!   does. [`Ask::all`] asks every responder, here and elsewhere. The mesh is the [`Remote`]
//!   (installed while it runs, see `crate::mesh`); a request another host sends here goes to
//!   the node it names only ([`Router::route_to`]), never on to a third host.
//! - **Desks outlive instances.** A node's [`Desk`] belongs to the node, like its message queue:
//!   requests queued while it is reloaded wait there and reach the new instance; a request in
//!   hand is finished by the old one before it hands over.
//! - Timeouts are bounded: at most [`MAX_TIMEOUT`] (60 s), at least 1 ms.
//!
//! # Modules
//!
//! - `mod.rs`: the [`Router`] (registering responders, listing them, routing each request)
//!   and what it routes ([`Ask`], [`Remote`], [`Upstream`]).
//! - `outcome.rs`: what a request comes to ([`Answer`], [`Failure`], their kinds' names).
//! - `gather.rs`: one outcome per request by its deadline ([`Job`], the gathering, the
//!   deadline thread).
//! - `desk.rs`: a node's [`Desk`] and [`Mailbox`].
//! - `stats.rs`: each request name's counts and latencies.

mod desk;
mod gather;
mod outcome;
mod stats;

pub(crate) use desk::{Desk, Mailbox};
use gather::{Deadlines, Gather, Slot, timeout};
pub(crate) use gather::{Done, Job};
pub(crate) use outcome::{
    ALL_KINDS, Answer, Failure, FailureKind, Outcome, Part, kind_from_name, kind_name,
};
use stats::NameStats;

use crossbeam_channel::TrySendError;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest timeout a request may have (60 s): longer ones are shortened to it.
pub(crate) const MAX_TIMEOUT: Duration = hivemind::request::MAX_TIMEOUT;
/// The timeout of a request that names none (5 s).
pub(crate) const DEFAULT_TIMEOUT: Duration = hivemind::request::DEFAULT_TIMEOUT;
/// The shortest timeout (1 ms): shorter ones are raised to it.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// How many requests may wait on one node's desk (beyond that: [`FailureKind::Busy`]).
pub(crate) const DESK_CAPACITY: usize = 1024;

/// A request to route.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    /// The request's name.
    pub(crate) name: String,
    /// The arguments, as JSON text (already checked to be JSON).
    pub(crate) args: String,
    /// Who asks: a node's name, `api` or `cli`.
    pub(crate) from_node: Arc<str>,
    /// The asker's host.
    pub(crate) from_host: Arc<str>,
    /// How long to wait at most (bounded to [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`]).
    pub(crate) timeout: Duration,
    /// Ask every responder, not one.
    pub(crate) all: bool,
}

/// One node of this host that answers a name.
#[derive(Clone)]
struct Responder {
    node: Arc<str>,
    generation: u64,
    help: Arc<str>,
    desk: Desk,
}

/// One responder on another host, as the mesh last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteResponder {
    /// The request name.
    pub(crate) name: String,
    /// The node that answers it.
    pub(crate) node: String,
    /// Its host.
    pub(crate) host: String,
    /// Its help line.
    pub(crate) help: String,
}

/// Responders on other hosts: the mesh. The router asks it when no node here answers (or, for
/// [`Ask::all`], as well as those here).
pub(crate) trait Remote: Send + Sync {
    /// The responders elsewhere for `name`: (node, host) pairs.
    fn responders(&self, name: &str) -> Vec<(String, String)>;
    /// Every responder elsewhere, for the page and `GET /api/requests`.
    fn listed(&self) -> Vec<RemoteResponder>;
    /// Asks `host`'s node `node`; must call `done` exactly once, by `ask`'s deadline or after.
    fn ask(&self, ask: &Ask, node: &str, host: &str, done: Box<dyn FnOnce(Part) + Send>);
}

/// Where every request goes when this router is not the hive's own: an isolated node's
/// process hands its node's asks to its host. Must call `done` exactly once.
pub(crate) trait Upstream: Send + Sync {
    /// Asks `ask` of the host.
    fn ask(&self, ask: Ask, done: Done);
}

/// One responder as the page and the API list it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResponderInfo {
    /// The node.
    pub(crate) node: String,
    /// Its host.
    pub(crate) host: String,
}

/// One request name as the page and the API list it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestInfo {
    /// The name.
    pub(crate) name: String,
    /// Its help line (the first responder's).
    pub(crate) help: String,
    /// Who answers it, this host's nodes first.
    pub(crate) responders: Vec<ResponderInfo>,
    /// Its counters, as asked from this host.
    #[serde(flatten)]
    pub(crate) stats: stats::StatsSnapshot,
}

/// The hive's request router (one per host).
pub(crate) struct Router {
    host: Arc<str>,
    max_payload_bytes: usize,
    responders: RwLock<BTreeMap<String, Vec<Responder>>>,
    stats: Mutex<BTreeMap<String, Arc<NameStats>>>,
    deadlines: Arc<Deadlines>,
    remote: RwLock<Option<Arc<dyn Remote>>>,
    upstream: RwLock<Option<Arc<dyn Upstream>>>,
    tokens: AtomicU64,
}

impl Router {
    /// A router for host `host`, refusing arguments and replies over `max_payload_bytes`.
    pub(crate) fn new(host: Arc<str>, max_payload_bytes: usize) -> Self {
        Self {
            host,
            max_payload_bytes,
            responders: RwLock::new(BTreeMap::new()),
            stats: Mutex::new(BTreeMap::new()),
            deadlines: Deadlines::start(),
            remote: RwLock::new(None),
            upstream: RwLock::new(None),
            tokens: AtomicU64::new(0),
        }
    }

    /// This host's name.
    pub(crate) fn host(&self) -> Arc<str> {
        self.host.clone()
    }

    /// The largest arguments or reply, in bytes.
    pub(crate) fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// Sends every ask to `upstream` from now on (an isolated node's process).
    pub(crate) fn set_upstream(&self, upstream: Arc<dyn Upstream>) {
        *self.upstream.write() = Some(upstream);
    }

    /// Sets (or clears) the responders elsewhere: the mesh, while it runs.
    #[cfg_attr(not(any(test, feature = "mesh")), allow(dead_code))]
    pub(crate) fn set_remote(&self, remote: Option<Arc<dyn Remote>>) {
        *self.remote.write() = remote;
    }

    /// A fresh token for a node's non-blocking ask.
    pub(crate) fn token(&self) -> u64 {
        self.tokens.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes instance `generation` of `node` the responder of `names` (name, help), replacing
    /// what any instance of it registered before.
    pub(crate) fn register(
        &self,
        node: &Arc<str>,
        generation: u64,
        names: &[(String, String)],
        desk: &Desk,
    ) {
        let mut responders = self.responders.write();
        // A new desk (the node's queue was replaced): what waits on the old one moves over, in
        // order, under the write lock, so no ask puts anything on the old one meanwhile.
        let old = responders
            .values()
            .flatten()
            .find(|r| r.node == *node)
            .map(|r| r.desk.clone());
        if let Some(old) = old.filter(|old| !old.sender.same_channel(&desk.sender)) {
            for job in old.inbox.try_iter() {
                // Full: the job is dropped, which fails it (`busy` would be a lie: `restarted`).
                let _ = desk.sender.try_send(job);
            }
            desk.bell.ring();
        }
        for list in responders.values_mut() {
            list.retain(|r| r.node != *node);
        }
        for (name, help) in names {
            responders.entry(name.clone()).or_default().push(Responder {
                node: node.clone(),
                generation,
                help: help.as_str().into(),
                desk: desk.clone(),
            });
        }
        responders.retain(|_, list| !list.is_empty());
    }

    /// Instance `generation` of `node` stopped for good: it answers nothing any more. (A later
    /// instance's registration stays.)
    pub(crate) fn withdraw(&self, node: &str, generation: u64) {
        let mut responders = self.responders.write();
        for list in responders.values_mut() {
            list.retain(|r| !(&*r.node == node && r.generation == generation));
        }
        responders.retain(|_, list| !list.is_empty());
    }

    /// The request names a node of this host answers.
    #[cfg(test)]
    pub(crate) fn names_of(&self, node: &str) -> Vec<String> {
        self.responders
            .read()
            .iter()
            .filter(|(_, list)| list.iter().any(|r| &*r.node == node))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// What this host's own nodes answer: (name, node, help), by name, for the other hosts.
    #[cfg_attr(not(feature = "mesh"), allow(dead_code))]
    pub(crate) fn local_responders(&self) -> Vec<(String, String, String)> {
        self.responders
            .read()
            .iter()
            .flat_map(|(name, list)| {
                list.iter()
                    .map(|r| (name.clone(), r.node.to_string(), r.help.to_string()))
            })
            .collect()
    }

    /// Every request name known here (answered here, answered elsewhere, or asked), with its
    /// responders (this host's first) and counters.
    pub(crate) fn list(&self) -> Vec<RequestInfo> {
        let elsewhere = self
            .remote
            .read()
            .clone()
            .map(|remote| remote.listed())
            .unwrap_or_default();
        let host = self.host();
        let responders = self.responders.read();
        let stats = self.stats.lock();
        let mut names: Vec<&String> = responders
            .keys()
            .chain(stats.keys())
            .chain(elsewhere.iter().map(|r| &r.name))
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let here = responders.get(name).map(Vec::as_slice).unwrap_or_default();
                let far: Vec<&RemoteResponder> =
                    elsewhere.iter().filter(|r| &r.name == name).collect();
                let list: Vec<ResponderInfo> = here
                    .iter()
                    .map(|r| ResponderInfo {
                        node: r.node.to_string(),
                        host: host.to_string(),
                    })
                    .chain(far.iter().map(|r| ResponderInfo {
                        node: r.node.clone(),
                        host: r.host.clone(),
                    }))
                    .collect();
                let help = match here.first() {
                    Some(r) => r.help.to_string(),
                    None => far.first().map(|r| r.help.clone()).unwrap_or_default(),
                };
                RequestInfo {
                    name: name.clone(),
                    help,
                    responders: list,
                    stats: stats.get(name).map(|s| s.snapshot()).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Every name's counters, for `/metrics`.
    pub(crate) fn stats(&self) -> Vec<(String, stats::StatsSnapshot)> {
        self.stats
            .lock()
            .iter()
            .map(|(name, s)| (name.clone(), s.snapshot()))
            .collect()
    }

    fn stats_for(&self, name: &str) -> Arc<NameStats> {
        self.stats
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Routes `ask` (upstream, if there is one); `done` gets its outcome exactly once (see the
    /// module's contract).
    pub(crate) fn ask(&self, ask: Ask, done: impl FnOnce(Outcome) + Send + 'static) {
        let upstream = self.upstream.read().clone();
        match upstream {
            Some(upstream) => upstream.ask(ask, Box::new(done)),
            None => self.route(ask, done),
        }
    }

    /// Routes `ask` to this router's own responders (and the mesh's).
    pub(crate) fn route(&self, ask: Ask, done: impl FnOnce(Outcome) + Send + 'static) {
        self.route_with(ask, None, done);
    }

    /// Routes `ask` to this host's node `node` only (another host asked it of that node): never
    /// to another node, never over the mesh. Not counted in this host's request counters
    /// (they count what is asked from here); the asking host counts it.
    #[cfg_attr(not(any(test, feature = "mesh")), allow(dead_code))]
    pub(crate) fn route_to(
        &self,
        ask: Ask,
        node: &str,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) {
        self.route_with(ask, Some(node), done);
    }

    fn route_with(
        &self,
        mut ask: Ask,
        only: Option<&str>,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) {
        ask.timeout = ask.timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT);
        let started = Instant::now();
        let deadline = started + ask.timeout;
        if ask.name.is_empty() || ask.name.chars().any(char::is_control) {
            done(Err(Failure::new(
                FailureKind::NoResponder,
                format!(
                    "{:?} is not a request name: request names are non-empty and printable",
                    ask.name
                ),
            )));
            return;
        }
        let stats = only.is_none().then(|| self.stats_for(&ask.name));
        let done = move |outcome: Outcome| {
            if let Some(stats) = stats {
                stats.record(&outcome, started.elapsed());
            }
            done(outcome);
        };
        if ask.args.len() > self.max_payload_bytes {
            done(Err(Failure::new(
                FailureKind::TooLarge,
                format!(
                    "the arguments of request `{}` are {} bytes, over the hive's limit of {} bytes ([messages] max_payload_bytes in config/hive.toml)",
                    ask.name,
                    ask.args.len(),
                    self.max_payload_bytes
                ),
            )));
            return;
        }
        let name: Arc<str> = ask.name.as_str().into();
        let args: Arc<str> = ask.args.as_str().into();
        let host = self.host();
        let remote = self.remote.read().clone();
        let responders = self.responders.read();
        let here: Vec<Responder> = match (responders.get(&ask.name), only) {
            (Some(list), Some(node)) => list
                .iter()
                .filter(|r| &*r.node == node)
                .take(1)
                .cloned()
                .collect(),
            (Some(list), None) if ask.all => list.clone(),
            (Some(list), None) => list.iter().take(1).cloned().collect(),
            (None, _) => Vec::new(),
        };
        let elsewhere: Vec<(String, String)> = match &remote {
            Some(remote) if only.is_none() && (ask.all || here.is_empty()) => {
                let mut list = remote.responders(&ask.name);
                if !ask.all {
                    list.truncate(1);
                }
                list
            }
            _ => Vec::new(),
        };
        if here.is_empty() && elsewhere.is_empty() {
            drop(responders);
            let message = match only {
                Some(node) => format!(
                    "node `{node}` of host `{host}` does not answer request `{}` (any more): it was disabled, stopped or no longer registers it; ask again",
                    ask.name
                ),
                None => format!(
                    "no node answers request `{}`: enable a node that registers it with add_request (GET /api/requests lists the names answered)",
                    ask.name
                ),
            };
            done(Err(Failure::new(FailureKind::NoResponder, message)));
            return;
        }
        let who: Vec<(Arc<str>, Arc<str>)> = here
            .iter()
            .map(|r| (r.node.clone(), host.clone()))
            .chain(
                elsewhere
                    .iter()
                    .map(|(node, host)| (node.as_str().into(), host.as_str().into())),
            )
            .collect();
        let gather = Gather::new(name.clone(), who.len(), Box::new(done));
        self.deadlines.add(deadline, &gather, who.clone());
        for (index, responder) in here.iter().enumerate() {
            let job = Job {
                name: name.clone(),
                args: args.clone(),
                from_node: ask.from_node.clone(),
                from_host: ask.from_host.clone(),
                node: responder.node.clone(),
                host: host.clone(),
                deadline,
                slot: Some(Arc::new(Slot {
                    gather: gather.clone(),
                    index,
                })),
            };
            match responder.desk.sender.try_send(job) {
                Ok(()) => responder.desk.bell.ring(),
                Err(TrySendError::Full(mut job)) => {
                    let slot = job.slot.take();
                    if let Some(slot) = slot {
                        slot.fill(Err(Failure::new(
                            FailureKind::Busy,
                            format!(
                                "node `{}` has {DESK_CAPACITY} requests waiting already; it is far behind",
                                responder.node
                            ),
                        )
                        .of(&responder.node, &host)));
                    }
                }
                // The receiver lives in the desk we hold: never disconnected; a dropped job
                // fails itself.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        drop(responders);
        if let Some(remote) = remote.filter(|_| !elsewhere.is_empty()) {
            for (offset, (node, host)) in elsewhere.iter().enumerate() {
                let gather = gather.clone();
                let index = here.len() + offset;
                remote.ask(
                    &ask,
                    node,
                    host,
                    Box::new(move |part| gather.fill(index, part)),
                );
            }
        }
    }

    /// [`Router::ask`], waiting for the outcome.
    pub(crate) fn ask_blocking(&self, ask: Ask) -> Outcome {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let name = ask.name.clone();
        let limit = ask.timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT) + Duration::from_secs(1);
        self.ask(ask, move |outcome| {
            let _ = sender.send(outcome);
        });
        // The deadline thread answers by the timeout; the extra second only guards against a
        // bug there turning into a hang.
        receiver
            .recv_timeout(limit)
            .unwrap_or_else(|_| Err(timeout(&name, Instant::now())))
    }
}

#[cfg(test)]
mod tests;
