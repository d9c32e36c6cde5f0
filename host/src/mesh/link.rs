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

use super::envelope::{Batch, BatchError, BatchWriter, Seen, VERSION};
use super::keys::Keys;
use super::peers::{HostView, MAX_HOSTS, MAX_VIEW_BYTES, Peers, WireNode, WireRequest};
use super::requests::{MeshAsker, PendingAsks};
use super::{LocalView, MeshSettings, MeshSnapshot};
use crate::bus::{Bus, Doorbell, Incoming, Message, Outlet};
use crate::events::{EventKind, Events};
use crate::requests::Router;
use crate::runtime::NodeSnapshot;
use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zenoh::Wait;
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::query::{QueryTarget, Queryable};
use zenoh::sample::{Locality, Sample, SampleKind};

/// How often each host asks the others to describe themselves.
const VIEW_PERIOD: Duration = Duration::from_secs(1);
/// How long a view query waits for answers.
const VIEW_TIMEOUT: Duration = Duration::from_millis(800);
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

/// Room in Zenoh's largest message beside the payload: the key, the batch's envelope and the
/// message's service and node names (at most [`super::envelope::MAX_HEADER_BYTES`] and
/// 2 KiB + 262 bytes).
const MESSAGE_SLACK: usize = 64 * 1024;

/// The largest message Zenoh reassembles from a peer: the larger of a payload at the hive's
/// limit and a view at its limit, plus [`MESSAGE_SLACK`]. A bigger one is dropped by Zenoh as
/// its fragments arrive, so a peer cannot make this host buffer more.
fn max_message_size(max_payload_bytes: usize) -> usize {
    max_payload_bytes
        .max(MAX_VIEW_BYTES)
        .saturating_add(MESSAGE_SLACK)
}

/// The Zenoh configuration of `[mesh]`.
fn zenoh_config(settings: &MeshSettings) -> Result<zenoh::Config> {
    let mesh = &settings.config;
    let mut config = zenoh::Config::default();
    let mut set = |key: &str, value: String| {
        config
            .insert_json5(key, &value)
            .map_err(|e| anyhow!("[mesh] cannot set Zenoh's `{key}` to {value}: {e}"))
    };
    set("mode", json("peer"))?;
    let listen = if !mesh.listen.is_empty() {
        mesh.listen.clone()
    } else if mesh.tls.is_some() {
        vec!["quic/0.0.0.0:0".to_owned()]
    } else {
        // Zenoh's own default listens on every address: without TLS, this machine only.
        vec!["tcp/127.0.0.1:0".to_owned()]
    };
    set("listen/endpoints", json(&listen))?;
    set("connect/endpoints", json(&mesh.connect))?;
    set("scouting/multicast/enabled", json(mesh.multicast))?;
    set("transport/link/tx/lease", json(mesh.lease_ms))?;
    set(
        "transport/link/rx/max_message_size",
        json(max_message_size(settings.max_payload_bytes)),
    )?;
    // Other hosts, and a little room for ones that are reconnecting.
    set("transport/unicast/max_sessions", json(MAX_HOSTS + 16))?;
    if let Some(tls) = &mesh.tls {
        let path = |p: &std::path::Path| json(p.to_string_lossy());
        // QUIC only (TLS 1.3 over UDP): a plain TCP peer cannot even start a session. Not
        // Zenoh's `tls` link: it shares one rustls stream between its reading and writing
        // tasks and breaks under traffic both ways (eclipse-zenoh/zenoh#2557); QUIC's send
        // and receive streams are separate. Both links read `transport/link/tls/*`.
        set("transport/link/protocols", json(["quic"]))?;
        set("transport/link/tls/root_ca_certificate", path(&tls.ca))?;
        set("transport/link/tls/listen_certificate", path(&tls.cert))?;
        set("transport/link/tls/listen_private_key", path(&tls.key))?;
        set("transport/link/tls/connect_certificate", path(&tls.cert))?;
        set("transport/link/tls/connect_private_key", path(&tls.key))?;
        // Both ends show a certificate of the hive's CA; that is what makes a host a member
        // (host names are not DNS names, so they are not checked against addresses).
        set("transport/link/tls/enable_mtls", json(true))?;
        set("transport/link/tls/verify_name_on_connect", json(false))?;
    }
    // A host that comes back is found again within a second.
    set(
        "connect/retry",
        json(serde_json::json!({
            "period_init_ms": 250,
            "period_max_ms": 1000,
            "period_increase_factor": 2,
        })),
    )?;
    Ok(config)
}

/// Checks that the TLS files of `[mesh]` can be read, so a missing one is reported with its
/// key rather than as a Zenoh error.
fn check_tls_files(settings: &MeshSettings) -> Result<()> {
    let Some(tls) = &settings.config.tls else {
        return Ok(());
    };
    for (key, path) in [
        ("tls_ca", &tls.ca),
        ("tls_cert", &tls.cert),
        ("tls_key", &tls.key),
    ] {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read [mesh] {key} = {} (create the hive's certificates with `hm mesh certs HOST...`)",
                path.display()
            )
        })?;
        if !text.contains("-----BEGIN ") {
            anyhow::bail!(
                "[mesh] {key} = {} is not a PEM file (`hm mesh certs HOST...` writes them)",
                path.display()
            );
        }
    }
    Ok(())
}

/// A plain value as JSON text, for Zenoh's `insert_json5`.
fn json(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("plain values serialise")
}

/// The bus's outlet: queues this host's messages for the sending thread and rings its doorbell
/// (a system call only when that thread sleeps, never one per message).
struct Forwarder {
    /// `None` once dropped: the sending thread then drains what is left and ends.
    queue: Option<Sender<Message>>,
    outbox: Arc<Outbox>,
    shared: Arc<Shared>,
}

/// What the bus's outlet and the sending thread share besides the queue.
#[derive(Default)]
struct Outbox {
    bell: Doorbell,
    /// Set when the outlet is gone: nothing more will be queued.
    closed: AtomicBool,
}

impl Outlet for Forwarder {
    fn forward(&self, message: &Message) {
        let Some(queue) = &self.queue else { return };
        let counters = &self.shared.counters;
        match queue.try_send(message.clone()) {
            Ok(()) => {
                counters.queued.fetch_add(1, Ordering::Relaxed);
                self.outbox.bell.ring();
            }
            Err(TrySendError::Full(_)) => {
                let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        service = %message.service(),
                        dropped,
                        "dropped a message of `{}` for the other hosts because the mesh's outgoing queue is full ({dropped} so far; raise [mesh] queue_capacity in config/hive.toml if the network cannot keep up)",
                        message.service(),
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        drop(self.queue.take());
        self.outbox.closed.store(true, Ordering::Release);
        self.outbox.bell.ring();
    }
}

/// The size a batch is cut at, in bytes: it goes out in one of Zenoh's batches (64 KiB) without
/// being split. A message larger than this travels alone (its payload is at most
/// `[messages] max_payload_bytes`, which Zenoh's largest message leaves room for).
const BATCH_BYTES: usize = 60 * 1024;

/// The sending thread: puts every queued message on Zenoh, in order, until the outlet is gone.
/// Each wake-up drains everything queued, as batches of up to [`BATCH_BYTES`] (one Zenoh `put`
/// and one envelope per batch, sent at once: Zenoh's own batching would only wait for more);
/// with nothing queued it parks on the outbox's doorbell, without spinning.
fn send_all(
    session: &zenoh::Session,
    shared: &Shared,
    outgoing: &Receiver<Message>,
    outbox: &Outbox,
) {
    let mut publisher: Option<Publisher<'static>> = None;
    let mut next_seq = 1u64;
    // A message taken off the queue that did not fit in the last batch: the next one's first.
    let mut carried: Option<Message> = None;
    outbox.bell.attach();
    loop {
        let mut batch = BatchWriter::new(&shared.origin, &shared.host, next_seq, BATCH_BYTES);
        let filled = fill(&mut batch, &mut carried, outgoing, &shared.counters);
        if batch.count() > 0 {
            next_seq += batch.count() as u64;
            put(session, shared, &mut publisher, batch);
        }
        if filled.taken > 0 {
            shared
                .counters
                .queued
                .fetch_sub(filled.taken, Ordering::Relaxed);
        }
        if carried.is_some() || filled.taken > 0 {
            continue;
        }
        if filled.disconnected {
            return;
        }
        if outbox.closed.load(Ordering::Acquire) && outgoing.is_empty() {
            return;
        }
        outbox
            .bell
            .sleep_unless(|| !outgoing.is_empty() || outbox.closed.load(Ordering::Acquire));
    }
}

/// What one [`fill`] did.
#[derive(Debug, PartialEq, Eq)]
struct Filled {
    /// Messages taken off the queue.
    taken: u64,
    /// The queue is empty and its sender gone.
    disconnected: bool,
}

/// Adds queued messages to `batch` in order, `carried` first, until the queue is empty, the
/// batch is full or the next message would take it past [`BATCH_BYTES`] (that one is left in
/// `carried`; a batch always takes its first message, whatever its size). A message that
/// cannot travel is dropped for the other hosts and counted.
fn fill(
    batch: &mut BatchWriter,
    carried: &mut Option<Message>,
    outgoing: &Receiver<Message>,
    counters: &Counters,
) -> Filled {
    let mut taken = 0;
    loop {
        let message = match carried.take() {
            Some(message) => message,
            None => match outgoing.try_recv() {
                Ok(message) => {
                    taken += 1;
                    message
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    return Filled {
                        taken,
                        disconnected: false,
                    };
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Filled {
                        taken,
                        disconnected: true,
                    };
                }
            },
        };
        let size = BatchWriter::size_of(message.service(), message.node(), message.payload());
        if batch.count() > 0 && (batch.is_full() || batch.len() + size > BATCH_BYTES) {
            *carried = Some(message);
            return Filled {
                taken,
                disconnected: false,
            };
        }
        if let Err(why) = batch.push(message.service(), message.node(), message.payload()) {
            refuse_out(counters, 1, message.service(), &why.to_string());
        }
    }
}

/// Puts one batch on Zenoh under this host's key, declaring its publisher the first time.
fn put(
    session: &zenoh::Session,
    shared: &Shared,
    publisher: &mut Option<Publisher<'static>>,
    batch: BatchWriter,
) {
    let count = batch.count() as u64;
    if publisher.is_none() {
        let declared = session
            .declare_publisher(shared.keys.batch(&shared.host))
            .congestion_control(CongestionControl::Block)
            .express(true)
            .wait();
        match declared {
            Ok(declared) => *publisher = Some(declared),
            Err(error) => {
                return refuse_out(&shared.counters, count, "any service", &error.to_string());
            }
        }
    }
    let Some(publisher) = publisher else { return };
    match publisher.put(batch.finish()).wait() {
        Ok(()) => {
            shared.counters.sent.fetch_add(count, Ordering::Relaxed);
        }
        Err(error) => refuse_out(&shared.counters, count, "any service", &error.to_string()),
    }
}

/// Counts `count` messages (of `service`) that could not be sent to the other hosts.
fn refuse_out(counters: &Counters, count: u64, service: &str, error: &str) {
    let before = counters.dropped.fetch_add(count, Ordering::Relaxed);
    let dropped = before + count;
    // Logged when the count passes a power of two (1st, 2nd, 4th... drop).
    if (before + 1..=dropped).any(u64::is_power_of_two) {
        tracing::warn!(
            "could not send {count} message(s) of `{service}` to the other hosts ({dropped} dropped so far): {error}",
        );
    }
}

/// A batch from another host: check its envelope, let each batch in once, check each message
/// like a local one and hand those that pass to the bus in one go. Every check costs at most
/// one pass over what arrived; nothing is kept for a refused batch or message.
fn receive(shared: &Shared, bus: &Bus, sample: &Sample) {
    if sample.kind() != SampleKind::Put {
        return;
    }
    let key = sample.key_expr().as_str();
    // Zenoh refuses samples beyond `max_message_size` (see `zenoh_config`); each payload is
    // then held to the hive's own, smaller limit below.
    let Some(key_host) = shared.keys.batch_host_of(key) else {
        return refuse_in(shared, key, "its key is not an encoded host name");
    };
    let bytes = sample.payload().to_bytes();
    let batch = match Batch::parse(&bytes) {
        Ok(batch) => batch,
        Err(error) => return refuse_in(shared, key, &error.to_string()),
    };
    if batch.origin == shared.origin {
        return;
    }
    if batch.host != key_host {
        return refuse_in(shared, key, "its envelope names another host than its key");
    }
    if batch.host == shared.host && !shared.warned_same_name.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "another hm on the mesh is also named `{}`: give each host its own [mesh] host in config/hive.toml",
            shared.host
        );
    }
    let count = batch.messages.len() as u64;
    {
        let mut seen = shared.seen.lock();
        let id = seen.identity(&bytes);
        if !seen.admit(batch.origin, batch.host, id) {
            shared
                .counters
                .duplicates
                .fetch_add(count, Ordering::Relaxed);
            return;
        }
    }
    let host: Arc<str> = batch.host.into();
    let mut incoming = Vec::with_capacity(batch.messages.len());
    for (i, entry) in batch.messages.iter().enumerate() {
        // Within u64: `Batch::parse` checked the batch's last number.
        let seq = batch.first_seq.wrapping_add(i as u64);
        let message = match entry.check(shared.max_payload_bytes) {
            Ok(message) => message,
            Err(error) => {
                refuse_in(shared, key, &format!("its message number {seq}: {error}"));
                continue;
            }
        };
        incoming.push(Incoming {
            service: message.service,
            node: message.node,
            payload: message.payload,
        });
    }
    shared
        .counters
        .received
        .fetch_add(incoming.len() as u64, Ordering::Relaxed);
    bus.inject_all(&host, incoming);
}

/// A sample on mesh format 1's keys: an older hm (or a peer imitating one), refused.
fn refuse_format_1(shared: &Shared, sample: &Sample) {
    if sample.kind() == SampleKind::Put {
        refuse_in(
            shared,
            sample.key_expr().as_str(),
            &BatchError::Version(1).to_string(),
        );
    }
}

fn refuse_in(shared: &Shared, key: &str, reason: &str) {
    let refused = shared.counters.rejected.fetch_add(1, Ordering::Relaxed) + 1;
    if refused.is_power_of_two() {
        // The key came from the wire: written escaped, it cannot forge a line.
        tracing::warn!(
            "refused a message on {:?} from the mesh ({refused} so far): {reason}",
            cut_for_log(key)
        );
    }
}

/// At most 200 bytes of a text from the wire, for a log line.
fn cut_for_log(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A host's token appeared or went away.
fn presence(shared: &Shared, wake: &Sender<()>, sample: &Sample) {
    let Some(host) = shared.keys.host_of(sample.key_expr().as_str()) else {
        return;
    };
    match sample.kind() {
        SampleKind::Put => {
            if shared.peers.lock().up(&host) {
                let message = format!("host `{host}` joined the mesh");
                tracing::info!("{message}");
                shared.events.emit(EventKind::Hive, None, message);
                let _ = wake.try_send(());
            }
        }
        SampleKind::Delete => {
            if shared.peers.lock().gone(&host) {
                shared.seen.lock().forget_host(&host);
                shared.asks.host_left(&host);
                let message = format!("host `{host}` left the mesh or stopped answering");
                tracing::warn!("{message}");
                shared.events.emit(EventKind::Hive, None, message);
            }
        }
    }
}

/// Describes this host for the view queryable.
fn refresh_own_view(shared: &Shared, local_view: &LocalView) {
    let view = HostView {
        v: VERSION,
        host: shared.host.clone(),
        origin: shared.origin.clone(),
        nodes: local_view().into_iter().map(WireNode::from).collect(),
        requests: shared
            .router
            .upgrade()
            .map(|router| WireRequest::offer(router.local_responders()))
            .unwrap_or_default(),
    };
    let bytes = serde_json::to_vec(&view).expect("a view always serialises");
    *shared.own_view.lock() = Arc::new(bytes);
}

/// The view thread: keeps this host's description fresh and asks the others for theirs.
fn watch_views(
    session: &zenoh::Session,
    shared: &Shared,
    local_view: &LocalView,
    woken: &Receiver<()>,
) {
    while !shared.stopping.load(Ordering::Acquire) {
        refresh_own_view(shared, local_view);
        ask_views(session, shared);
        let forgotten = shared.peers.lock().forget_gone(shared.forget_after);
        for host in forgotten {
            let message = format!(
                "host `{host}` is forgotten: it has been gone for {} s ([mesh] forget_after_s)",
                shared.forget_after.as_secs()
            );
            tracing::info!("{message}");
            shared.events.emit(EventKind::Hive, None, message);
        }
        match woken.recv_timeout(VIEW_PERIOD) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn ask_views(session: &zenoh::Session, shared: &Shared) {
    let replies = session
        .get(shared.keys.all_views())
        .target(QueryTarget::All)
        .allowed_destination(Locality::Remote)
        .timeout(VIEW_TIMEOUT)
        .wait();
    let replies = match replies {
        Ok(replies) => replies,
        Err(error) => {
            tracing::debug!("could not ask the other hosts for their views: {error}");
            return;
        }
    };
    while let Ok(reply) = replies.recv() {
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let Ok(sample) = reply.result() else { continue };
        let Some(key_host) = shared.keys.view_host_of(sample.key_expr().as_str()) else {
            continue;
        };
        if sample.payload().len() > MAX_VIEW_BYTES {
            tracing::debug!(
                "a view of {} bytes from the mesh is over {MAX_VIEW_BYTES}; ignored",
                sample.payload().len()
            );
            continue;
        }
        match serde_json::from_slice::<HostView>(&sample.payload().to_bytes()) {
            Ok(view) if view.v == VERSION => shared.peers.lock().describe(view, &key_host),
            Ok(view) => tracing::debug!(
                "host {:?} speaks mesh format {} (this hm: {VERSION}); its view is ignored",
                cut_for_log(&view.host),
                view.v
            ),
            Err(error) => tracing::debug!("a view from the mesh does not parse: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::envelope::{MAX_HEADER_BYTES, MAX_SERVICE_BYTES};

    fn message(service: &str, payload: String) -> Message {
        Message::new(service, "batsignal", &payload, None)
    }

    /// The batches the sending thread makes of what `messages` queue, as (service, payload).
    fn batches_of(messages: Vec<Message>) -> (Vec<Vec<(String, String)>>, Counters) {
        let (queue, outgoing) = crossbeam_channel::unbounded();
        for m in messages {
            queue.send(m).unwrap();
        }
        drop(queue);
        let counters = Counters::default();
        let (mut carried, mut batches, mut seq) = (None, Vec::new(), 1);
        loop {
            let mut batch = BatchWriter::new("4f2a", "manor", seq, 0);
            let filled = fill(&mut batch, &mut carried, &outgoing, &counters);
            if batch.count() > 0 {
                seq += batch.count() as u64;
                assert!(batch.count() == 1 || batch.len() <= BATCH_BYTES);
                let bytes = batch.finish();
                let read = Batch::parse(&bytes).unwrap();
                batches.push(
                    read.messages
                        .iter()
                        .map(|e| {
                            let m = e.check(usize::MAX).unwrap();
                            (m.service.to_owned(), m.payload.to_owned())
                        })
                        .collect(),
                );
            }
            if filled.disconnected && carried.is_none() {
                return (batches, counters);
            }
        }
    }

    #[test]
    fn queued_messages_go_out_in_batches_in_order_cut_at_the_batch_size() {
        let small: Vec<Message> = (0..5000)
            .map(|i| message("flood", format!("{{\"seq\":{i}}}")))
            .collect();
        let (batches, counters) = batches_of(small);
        assert!(batches.len() > 1, "5,000 messages fill more than a batch");
        let all: Vec<String> = batches.into_iter().flatten().map(|(_, p)| p).collect();
        let expected: Vec<String> = (0..5000).map(|i| format!("{{\"seq\":{i}}}")).collect();
        assert_eq!(all, expected);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_message_larger_than_a_batch_travels_alone_and_one_that_cannot_is_counted() {
        let big = format!("\"{}\"", "x".repeat(BATCH_BYTES * 2));
        let (batches, counters) = batches_of(vec![
            message("a", "1".into()),
            message("b", big.clone()),
            message(&"s".repeat(MAX_SERVICE_BYTES + 1), "2".into()),
            message("c", "3".into()),
        ]);
        let pair = |s: &str, p: &str| (s.to_owned(), p.to_owned());
        assert_eq!(
            batches,
            vec![
                vec![pair("a", "1")],
                vec![pair("b", &big)],
                vec![pair("c", "3")]
            ]
        );
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_message_at_the_payload_limit_fits_in_zenohs_largest_message() {
        let largest_batch_of_one = MAX_HEADER_BYTES + 7 + MAX_SERVICE_BYTES + 255;
        assert!(largest_batch_of_one + 1024 <= MESSAGE_SLACK);
        assert!(BATCH_BYTES <= max_message_size(0));
    }

    #[test]
    fn zenoh_errors_lose_their_source_locations() {
        let error = "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98) at /root/.cargo/registry/src/x/zenoh-link-commons-1.10.2/src/tcp.rs:61.] at /root/.cargo/registry/src/x/zenoh-link-tcp-1.10.2/src/unicast.rs:338.";
        assert_eq!(
            super::plain(error),
            "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98)]"
        );
    }
}
