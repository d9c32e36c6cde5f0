//! The Zenoh side of the mesh: opens the session, sends this host's messages out, lets other
//! hosts' messages in, and keeps the view of the other hosts current.
//!
//! Requests to and from the other hosts' nodes are [`super::requests`]'s; this module declares
//! their queryable and installs the router's [`super::requests::MeshAsker`].
//!
//! Threads: `hm-mesh-out` puts this host's messages on Zenoh in the order they were sent
//! (woken through a doorbell only when it sleeps, draining everything queued per wake-up);
//! `hm-mesh-view` refreshes this host's own description and asks the others for theirs about
//! once a second. Messages from other hosts and liveliness changes arrive in Zenoh's callbacks,
//! which only decode, filter and hand to the bus (which never blocks).

use super::envelope::{Envelope, Seen, VERSION, identity};
use super::keys::Keys;
use super::peers::{HostView, MAX_HOSTS, MAX_TEXT, MAX_VIEW_BYTES, Peers, WireNode, WireRequest};
use super::requests::{MeshAsker, PendingAsks};
use super::{LocalView, MeshSettings, MeshSnapshot};
use crate::bus::{Bus, Doorbell, Message, Outlet};
use crate::events::{EventKind, Events};
use crate::requests::Router;
use crate::runtime::NodeSnapshot;
use anyhow::{Context as _, Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
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
/// Publishers kept per host (one per service name seen); beyond this they are re-declared.
const MAX_PUBLISHERS: usize = 4096;

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
            .declare_subscriber(keys.all_messages())
            .allowed_origin(Locality::Remote)
            .callback(move |sample| receive(&inbound.0, &inbound.1, &sample))
            .wait()
            .map_err(|e| anyhow!("cannot subscribe to the mesh's messages: {e}"))?;
        self.subscribers.push(messages);
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

/// Room in Zenoh's largest message beside the payload: the key and the envelope.
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
                        service = %message.service,
                        dropped,
                        "dropped a message of `{}` for the other hosts because the mesh's outgoing queue is full ({dropped} so far; raise [mesh] queue_capacity in config/hive.toml if the network cannot keep up)",
                        message.service,
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

/// Messages the sending thread puts on Zenoh between two updates of the `queued` counter.
const SEND_BATCH: u64 = 256;

/// The sending thread: puts every queued message on Zenoh, in order, until the outlet is gone.
/// Each wake-up drains everything queued (one Zenoh `put` per message: Zenoh batches them on
/// the wire itself); with nothing queued it parks on the outbox's doorbell, without spinning.
fn send_all(
    session: &zenoh::Session,
    shared: &Shared,
    outgoing: &Receiver<Message>,
    outbox: &Outbox,
) {
    let mut publishers: HashMap<Arc<str>, Publisher<'static>> = HashMap::new();
    let mut seq = 0u64;
    outbox.bell.attach();
    loop {
        let mut sent = 0;
        while sent < SEND_BATCH {
            match outgoing.try_recv() {
                Ok(message) => {
                    put(session, shared, &mut publishers, &mut seq, &message);
                    sent += 1;
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            }
        }
        if sent > 0 {
            shared.counters.queued.fetch_sub(sent, Ordering::Relaxed);
            continue;
        }
        if outbox.closed.load(Ordering::Acquire) && outgoing.is_empty() {
            return;
        }
        outbox
            .bell
            .sleep_unless(|| !outgoing.is_empty() || outbox.closed.load(Ordering::Acquire));
    }
}

/// Puts one message on Zenoh with its envelope, declaring its service's publisher the first
/// time.
fn put(
    session: &zenoh::Session,
    shared: &Shared,
    publishers: &mut HashMap<Arc<str>, Publisher<'static>>,
    seq: &mut u64,
    message: &Message,
) {
    if publishers.len() >= MAX_PUBLISHERS && !publishers.contains_key(&message.service) {
        publishers.clear();
    }
    let publisher = match publishers.entry(message.service.clone()) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            let declared = session
                .declare_publisher(shared.keys.message(&message.service))
                .congestion_control(CongestionControl::Block)
                .wait();
            match declared {
                Ok(publisher) => entry.insert(publisher),
                Err(error) => return refuse_out(shared, message, &error.to_string()),
            }
        }
    };
    *seq += 1;
    let envelope = Envelope {
        v: VERSION,
        host: shared.host.clone(),
        node: message.node.to_string(),
        origin: shared.origin.clone(),
        seq: *seq,
    };
    let put = publisher
        .put(message.payload.as_bytes())
        .attachment(envelope.to_bytes())
        .wait();
    match put {
        Ok(()) => {
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => refuse_out(shared, message, &error.to_string()),
    }
}

fn refuse_out(shared: &Shared, message: &Message, error: &str) {
    let dropped = shared.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if dropped.is_power_of_two() {
        tracing::warn!(
            "could not send a message of `{}` to the other hosts ({dropped} dropped so far): {error}",
            message.service
        );
    }
}

/// The largest envelope accepted (a real one is about 150 bytes).
const MAX_ENVELOPE_BYTES: usize = 1024;

/// A message from another host: check it, let each one in once, hand it to the bus. Every
/// check costs at most one pass over what arrived; nothing is kept for a refused message.
fn receive(shared: &Shared, bus: &Bus, sample: &Sample) {
    if sample.kind() != SampleKind::Put {
        return;
    }
    let key = sample.key_expr().as_str();
    // Zenoh refuses messages beyond `max_message_size` (see `zenoh_config`); this is the
    // hive's own, smaller limit.
    let size = sample.payload().len();
    if size > shared.max_payload_bytes {
        return refuse_in(
            shared,
            key,
            &format!(
                "its payload is {size} bytes, over this hive's limit of {} ([messages] max_payload_bytes)",
                shared.max_payload_bytes
            ),
        );
    }
    let Some(service) = shared.keys.service_of(key) else {
        return refuse_in(shared, key, "its key is not an encoded service name");
    };
    if !is_service_name(&service) {
        return refuse_in(
            shared,
            key,
            "its service name is empty, too long or not printable",
        );
    }
    let envelope = match sample.attachment() {
        Some(attachment) if attachment.len() > MAX_ENVELOPE_BYTES => {
            Err(format!("its envelope is over {MAX_ENVELOPE_BYTES} bytes"))
        }
        Some(attachment) => Envelope::parse(&attachment.to_bytes()).and_then(checked),
        None => Err("it has no envelope (was it sent by hm?)".to_owned()),
    };
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(reason) => return refuse_in(shared, key, &reason),
    };
    if envelope.origin == shared.origin {
        return;
    }
    if envelope.host == shared.host && !shared.warned_same_name.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "another hm on the mesh is also named `{}`: give each host its own [mesh] host in config/hive.toml",
            shared.host
        );
    }
    let payload = sample.payload().to_bytes();
    let payload = match std::str::from_utf8(&payload) {
        Ok(text) => text,
        Err(_) => return refuse_in(shared, key, "its payload is not UTF-8 text"),
    };
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(payload) {
        return refuse_in(shared, key, &format!("its payload is not JSON ({error})"));
    }
    let id = identity(&envelope, &service, payload.as_bytes());
    if !shared
        .seen
        .lock()
        .admit(&envelope.origin, &envelope.host, id)
    {
        shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        return;
    }
    shared.counters.received.fetch_add(1, Ordering::Relaxed);
    bus.inject(
        &service,
        envelope.node.into(),
        envelope.host.into(),
        payload.into(),
    );
}

/// An envelope whose names are valid as local ones: a host name as in `[mesh] host`, a node
/// name as in `[nodes.NAME]` (or `api`), an origin of at most 64 letters and digits.
fn checked(envelope: Envelope) -> Result<Envelope, String> {
    if !crate::config::is_host_name(&envelope.host) {
        return Err("its envelope's host is not a valid host name".into());
    }
    if envelope.node != "api" && crate::config::check_node_name(&envelope.node).is_err() {
        return Err("its envelope's node is not a valid node name".into());
    }
    let origin = &envelope.origin;
    if origin.is_empty() || origin.len() > 64 || !origin.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err("its envelope's origin is not a session id".into());
    }
    Ok(envelope)
}

/// A service name as the host takes one from the API: non-empty and printable; and not
/// longer than a remote text may be.
fn is_service_name(service: &str) -> bool {
    !service.is_empty() && service.len() <= MAX_TEXT && !service.chars().any(char::is_control)
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
    #[test]
    fn zenoh_errors_lose_their_source_locations() {
        let error = "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98) at /root/.cargo/registry/src/x/zenoh-link-commons-1.10.2/src/tcp.rs:61.] at /root/.cargo/registry/src/x/zenoh-link-tcp-1.10.2/src/unicast.rs:338.";
        assert_eq!(
            super::plain(error),
            "Can not create a new TCP listener bound to tcp/127.0.0.1:17447: [127.0.0.1:17447: Address already in use (os error 98)]"
        );
    }
}
