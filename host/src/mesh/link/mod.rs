//! The Zenoh side of the mesh: opens the session, sends this host's messages out, lets other
//! hosts' messages in, and keeps the view of the other hosts current.
//!
//! Requests to and from the other hosts' nodes are [`super::requests`]'s; this module declares
//! their queryable and installs the router's [`super::requests::MeshAsker`].
//!
//! Threads: `hm-mesh-out` puts this host's messages on Zenoh in the order they were sent, in
//! batches (woken through a doorbell only when it sleeps, draining everything queued per
//! wake-up into as few batches as fit);
//! `hm-mesh-view` refreshes this host's own description and asks the others for theirs about
//! once a second. Batches from other hosts and liveliness changes arrive in Zenoh's callbacks,
//! which only decode, filter and hand to the bus (which never blocks).
//!
//! # Modules
//!
//! - `mod.rs`: the [`Link`] (joining, declaring the subscribers, queryables and token,
//!   starting the threads, the snapshot, leaving) and what its threads and callbacks share.
//! - `session.rs`: the Zenoh configuration of `[mesh]` and its TLS files' check.
//! - `outgoing.rs`: the bus's outlet and the sending thread, which batches this host's messages.
//! - `incoming.rs`: the batches of other hosts, checked and handed to the bus.
//! - `views.rs`: the other hosts' presence and descriptions, and this host's own.

mod incoming;
mod outgoing;
mod session;
mod views;

use super::envelope::Seen;
use super::keys::Keys;
use super::peers::Peers;
use super::requests::{MeshAsker, PendingAsks};
use super::{LocalView, MeshSettings, MeshSnapshot};
use crate::bus::Bus;
use crate::events::Events;
use crate::requests::Router;
use crate::runtime::NodeSnapshot;
use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, Sender};
use incoming::{receive, refuse_format_1};
use outgoing::{Forwarder, Outbox, send_all};
use parking_lot::Mutex;
use session::{check_tls_files, zenoh_config};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use views::{presence, refresh_own_view, watch_views};
use zenoh::Wait;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::query::Queryable;
use zenoh::sample::Locality;

/// How long stopping waits for queued messages to go out.
const DRAIN_DEADLINE: Duration = Duration::from_millis(300);
/// How long stopping waits for the session to close.
const CLOSE_DEADLINE: Duration = Duration::from_millis(400);

/// The mesh's counters (see [`MeshSnapshot`]).
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    received: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// What the threads and callbacks share.
struct Shared {
    keys: Keys,
    hive: String,
    host: String,
    origin: String,
    max_payload_bytes: usize,
    counters: Counters,
    peers: Arc<Mutex<Peers>>,
    /// The requests this host has out to other hosts.
    asks: Arc<PendingAsks>,
    /// This host's request router (its responders go in the view; it answers the queries).
    router: Weak<Router>,
    seen: Mutex<Seen>,
    /// This host's own description, as the view queryable answers it.
    own_view: Mutex<Arc<Vec<u8>>>,
    events: Arc<Events>,
    stopping: AtomicBool,
    warned_same_name: AtomicBool,
    /// `[mesh] forget_after_s`.
    forget_after: Duration,
}

/// A joined mesh.
pub(super) struct Link {
    session: zenoh::Session,
    bus: Arc<Bus>,
    shared: Arc<Shared>,
    token: Option<LivelinessToken>,
    subscribers: Vec<Subscriber<()>>,
    queryable: Option<Queryable<()>>,
    ask_queryable: Option<Queryable<()>>,
    router: Arc<Router>,
    out: Option<JoinHandle<()>>,
    view: Option<JoinHandle<()>>,
    wake: Sender<()>,
}

impl Link {
    /// Opens the session and joins: see [`super::Mesh::start`].
    pub(super) fn start(
        settings: MeshSettings,
        bus: Arc<Bus>,
        router: Arc<Router>,
        local_view: LocalView,
        events: Arc<Events>,
    ) -> Result<Self> {
        check_tls_files(&settings)?;
        let config = zenoh_config(&settings)?;
        let session = zenoh::open(config).wait().map_err(|e| {
            anyhow!(
                "cannot join the mesh: {} (check [mesh] listen in config/hive.toml: is the port free and the address this machine's?)",
                plain(&e.to_string())
            )
        })?;
        let shared = Arc::new(Shared {
            keys: Keys::new(&settings.hive),
            hive: settings.hive.clone(),
            host: settings.host.clone(),
            origin: session.zid().to_string(),
            max_payload_bytes: settings.max_payload_bytes,
            counters: Counters::default(),
            peers: Arc::new(Mutex::new(Peers::new(&settings.host))),
            asks: Arc::new(PendingAsks::default()),
            router: Arc::downgrade(&router),
            seen: Mutex::new(Seen::default()),
            own_view: Mutex::new(Arc::new(Vec::new())),
            events,
            stopping: AtomicBool::new(false),
            warned_same_name: AtomicBool::new(false),
            forget_after: Duration::from_secs(settings.config.forget_after_s),
        });
        let (wake, woken) = crossbeam_channel::bounded(1);
        let mut link = Link {
            session,
            bus,
            shared,
            token: None,
            subscribers: Vec::new(),
            queryable: None,
            ask_queryable: None,
            router,
            out: None,
            view: None,
            wake,
        };
        // If any step fails, dropping `link` undeclares what was declared and closes the session.
        link.declare(&local_view)?;
        link.spawn_threads(local_view, woken, settings.config.queue_capacity)?;
        link.router.set_remote(Some(Arc::new(MeshAsker {
            session: link.session.clone(),
            keys: link.shared.keys.clone(),
            max_payload_bytes: link.shared.max_payload_bytes,
            peers: link.shared.peers.clone(),
            asks: link.shared.asks.clone(),
        })));
        let mesh = &settings.config;
        tracing::info!(
            "joined the mesh of hive `{}` as host `{}` (listen: {}; connect: {}; multicast {}; {})",
            link.shared.hive,
            link.shared.host,
            list_or(&mesh.listen, "any port"),
            list_or(&mesh.connect, "none"),
            if mesh.multicast { "on" } else { "off" },
            if mesh.tls.is_some() {
                "mutual TLS with the hive's certificates"
            } else {
                "this machine only, no TLS"
            }
        );
        Ok(link)
    }

    fn declare(&mut self, local_view: &LocalView) -> Result<()> {
        let keys = &self.shared.keys;
        let inbound = (self.shared.clone(), self.bus.clone());
        let messages = self
            .session
            .declare_subscriber(keys.all_batches())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| receive(&inbound.0, &inbound.1, &sample))
            .wait()
            .map_err(|e| anyhow!("cannot subscribe to the mesh's messages: {e}"))?;
        self.subscribers.push(messages);
        let shared = self.shared.clone();
        let format_1 = self
            .session
            .declare_subscriber(keys.format_1_messages())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| refuse_format_1(&shared, &sample))
            .wait()
            .map_err(|e| anyhow!("cannot subscribe to the mesh's messages: {e}"))?;
        self.subscribers.push(format_1);
        let (shared, wake) = (self.shared.clone(), self.wake.clone());
        let hosts = self
            .session
            .liveliness()
            .declare_subscriber(keys.all_hosts())
            .history(true)
            .callback(move |sample| presence(&shared, &wake, &sample))
            .wait()
            .map_err(|e| anyhow!("cannot watch the mesh's hosts: {e}"))?;
        self.subscribers.push(hosts);
        refresh_own_view(&self.shared, local_view);
        let shared = self.shared.clone();
        let own_key = keys.view(&self.shared.host);
        let queryable = self
            .session
            .declare_queryable(own_key.clone())
            .callback(move |query| {
                let view = shared.own_view.lock().clone();
                // Answered under this host's own key (not the asker's `view/*`): the asker
                // checks that a view is the one of the host whose key it came under.
                if let Err(error) = query.reply(own_key.clone(), view.to_vec()).wait() {
                    tracing::debug!("could not answer a view query: {error}");
                }
            })
            .wait()
            .map_err(|e| anyhow!("cannot offer this host's view on the mesh: {e}"))?;
        self.queryable = Some(queryable);
        let (router, host) = (self.shared.router.clone(), self.shared.host.clone());
        let asks = self
            .session
            .declare_queryable(keys.ask(&self.shared.host))
            .allowed_origin(Locality::Remote)
            .callback(move |query| super::requests::answer(&router, &host, query))
            .wait()
            .map_err(|e| anyhow!("cannot answer requests on the mesh: {e}"))?;
        self.ask_queryable = Some(asks);
        let token = self
            .session
            .liveliness()
            .declare_token(keys.host(&self.shared.host))
            .wait()
            .map_err(|e| anyhow!("cannot announce this host on the mesh: {e}"))?;
        self.token = Some(token);
        Ok(())
    }

    fn spawn_threads(
        &mut self,
        local_view: LocalView,
        woken: Receiver<()>,
        capacity: usize,
    ) -> Result<()> {
        let (queue, outgoing) = crossbeam_channel::bounded(capacity);
        let outbox = Arc::new(Outbox::default());
        let (session, shared, out) = (self.session.clone(), self.shared.clone(), outbox.clone());
        self.out = Some(
            std::thread::Builder::new()
                .name("hm-mesh-out".into())
                .spawn(move || send_all(&session, &shared, &outgoing, &out))
                .context("cannot start the mesh's sending thread")?,
        );
        let (session, shared) = (self.session.clone(), self.shared.clone());
        self.view = Some(
            std::thread::Builder::new()
                .name("hm-mesh-view".into())
                .spawn(move || watch_views(&session, &shared, &local_view, &woken))
                .context("cannot start the mesh's view thread")?,
        );
        self.bus.set_outlet(Some(Box::new(Forwarder {
            queue: Some(queue),
            outbox,
            shared: self.shared.clone(),
        })));
        Ok(())
    }

    /// Every node of the other hosts.
    pub(super) fn remote_nodes(&self) -> Vec<NodeSnapshot> {
        self.shared.peers.lock().nodes()
    }

    /// The mesh as this host sees it.
    pub(super) fn snapshot(&self) -> MeshSnapshot {
        let counters = &self.shared.counters;
        MeshSnapshot {
            hive: self.shared.hive.clone(),
            host: self.shared.host.clone(),
            origin: self.shared.origin.clone(),
            peers: self.shared.peers.lock().snapshot(),
            sent: counters.sent.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            duplicates: counters.duplicates.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
            queued: counters.queued.load(Ordering::Relaxed),
        }
    }

    /// Leaves the mesh: sends what is queued (briefly), withdraws this host, closes the session.
    pub(super) fn stop(mut self) {
        self.bus.set_outlet(None);
        if let Some(out) = self.out.take() {
            join_until(out, Instant::now() + DRAIN_DEADLINE);
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        self.bus.set_outlet(None);
        self.router.set_remote(None);
        drop(self.token.take());
        drop(self.queryable.take());
        drop(self.ask_queryable.take());
        self.shared.asks.stop();
        self.subscribers.clear();
        let session = self.session.clone();
        let closing = std::thread::Builder::new()
            .name("hm-mesh-close".into())
            .spawn(move || {
                if let Err(error) = session.close().wait() {
                    tracing::debug!("closing the mesh session: {error}");
                }
            });
        if let Ok(closing) = closing {
            join_until(closing, Instant::now() + CLOSE_DEADLINE);
        }
        // The view thread ends at its next wake-up; it holds nothing the process needs.
        drop(self.view.take());
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.shared.stopping.load(Ordering::Acquire) {
            self.shutdown();
        }
    }
}

/// A Zenoh error without the source locations it carries (` at /path/file.rs:61.`).
fn plain(error: &str) -> String {
    static LOCATION: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let location = LOCATION
        .get_or_init(|| regex::Regex::new(r"\s+at \S+\.rs:\d+\.?").expect("a valid pattern"));
    location
        .replace_all(error, "")
        .trim_end_matches('.')
        .to_owned()
}

fn list_or(endpoints: &[String], none: &str) -> String {
    if endpoints.is_empty() {
        none.to_owned()
    } else {
        endpoints.join(", ")
    }
}

/// Waits for `thread` until `deadline`; leaves it running past that.
fn join_until(thread: JoinHandle<()>, deadline: Instant) {
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if thread.is_finished() {
        let _ = thread.join();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zenoh_errors_lose_their_source_locations() {
        let error = "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98) at /root/.cargo/registry/src/x/zenoh-link-commons-1.10.2/src/tcp.rs:61.] at /root/.cargo/registry/src/x/zenoh-link-tcp-1.10.2/src/unicast.rs:338.";
        assert_eq!(
            super::plain(error),
            "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98)]"
        );
    }
}
