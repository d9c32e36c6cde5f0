//! Joins this host to the other hosts of its hive over Zenoh, so that every service reaches
//! the matching subscriptions on every host.
//!
//! The bus stays the core of each host; the mesh only bridges buses. Each host is a Zenoh peer:
//! there is no broker and no central host, and any host can stop, restart or be cut off while
//! the others carry on. It is off unless `[mesh] enabled = true` (then nothing of it runs), and
//! a build without the `mesh` cargo feature has no Zenoh in it at all.
//!
//! ```toml
//! [mesh]
//! enabled = true
//! host = "manor"                    # default: the machine's name and the hive's port
//! listen = ["tcp/0.0.0.0:7447"]     # where other hosts connect to this one
//! connect = ["tcp/10.0.0.2:7447"]   # hosts to connect to (retried until they answer)
//! multicast = false                 # also find hosts by UDP multicast scouting
//! lease_ms = 3000                   # a silent host is gone after this long
//! queue_capacity = 65536            # messages waiting to go out before new ones are dropped
//! ```
//!
//! Hosts that are connected to one host learn of each other through Zenoh's gossip and connect
//! directly, so a host that the others first reached through can go away without splitting them.
//!
//! # What travels
//!
//! Keys are listed in [`keys`]. Every message sent on a host (by a node or through the API) is
//! queued for the host's sending thread, which puts what is queued as one Zenoh sample on
//! `hivemind/<hive>/batch/<host>`: a batch of up to 60 KiB (a larger message goes alone), with
//! one compact binary envelope (the sending host and process, the first message's sequence
//! number) and per message only its service, node and payload (JSON text) ([`envelope`]). A
//! lone message goes out at once; when messages are sent faster than one put takes, each
//! wake-up of the sending thread takes all of them, so the cost per message falls as the load
//! rises, whatever thread runs when. Each host subscribes to all its hive's batches and
//! injects those of other hosts into its bus in one go (one lock of the routing table per
//! batch), where they follow the same glob routes as local ones; subscriptions see the
//! sender's node and host (`Message::node()`, `Message::host()`).
//!
//! # Guarantees
//!
//! - **Once per subscription, never echoed.** A host does not receive its own messages back
//!   (its Zenoh subscriber only takes remote ones), a message that came from the mesh is never
//!   sent out again (the bus keeps injected messages off the outlet), and a copy of a batch
//!   that arrives by a second path is dropped: the duplicate filter knows it by a hash of all
//!   its bytes, so a forged batch can only hide an identical copy of itself.
//! - **Per-service order.** A host sends its messages out from one thread in the order they
//!   were sent, a batch keeps that order, Zenoh carries one key's samples reliably and in
//!   order, and the receiving host injects a batch's messages in order. So one service's
//!   messages reach each subscription on every host in order.
//! - **Bounded, counted.** Messages wait to go out in a queue of `queue_capacity`; when the
//!   network cannot keep up, it fills and new messages are dropped for the other hosts only
//!   (local subscribers still get them), counted and logged, as the bus does for a slow node.
//!   Messages from other hosts are checked one by one like local ones (a bad one is refused
//!   and counted, the rest of its batch gets in) and go through the receiving nodes' own
//!   queues, with their rules. A batch of another mesh format is refused and counted.
//! - **No persistence.** Like the bus, the mesh carries what is sent while hosts are
//!   connected: a host that is down or not yet connected misses what is sent meanwhile.
//!
//! # Seeing the other hosts
//!
//! Each host holds a Zenoh liveliness token (it is up while the token lives) and answers a
//! query with the description of its nodes. Every host asks for the others' descriptions about
//! once a second and lists their nodes in its snapshot (`GET /api/nodes`, the page) with their
//! `host`; when a host's token goes, because it stopped or its links were silent for
//! `lease_ms`, its nodes are shown as `gone` until it comes back ([`peers`]).
//!
//! # Requests
//!
//! A host's view also lists the requests its nodes answer, and each host answers requests to
//! its nodes on a queryable of its own: while the mesh runs, this host's request router asks
//! the other hosts' nodes through it when no node here answers (and all of them for
//! `request_all`), with the asker's timeout; a host that dies with a request in hand gives the
//! asker a clear error at once, not a hang (`requests`, feature `mesh`).

// The wire formats and the peer table are plain code, built and unit-tested with or without the
// `mesh` feature; only the Zenoh side uses them, so without it they are unused.
#[cfg_attr(not(feature = "mesh"), allow(dead_code))]
pub(crate) mod envelope;
#[cfg_attr(not(feature = "mesh"), allow(dead_code))]
pub(crate) mod keys;
#[cfg_attr(not(feature = "mesh"), allow(dead_code))]
pub(crate) mod peers;

#[cfg(feature = "mesh")]
pub(crate) mod certs;
#[cfg(feature = "mesh")]
mod link;
#[cfg(feature = "mesh")]
mod requests;

pub(crate) use peers::PeerSnapshot;

use crate::bus::Bus;
use crate::config::MeshConfig;
use crate::events::Events;
use crate::requests::Router;
use crate::runtime::NodeSnapshot;
use anyhow::Result;
use serde::Serialize;
use std::sync::Arc;

/// What the mesh needs to know of its host.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "mesh"), allow(dead_code))]
pub(crate) struct MeshSettings {
    /// The hive's name: hosts join the mesh of their hive only.
    pub hive: String,
    /// This host's name.
    pub host: String,
    /// `[mesh]`.
    pub config: MeshConfig,
    /// The largest payload accepted from another host (`[messages] max_payload_bytes`).
    pub max_payload_bytes: usize,
}

/// Describes this host's own nodes, for the other hosts (called about once a second, on the
/// mesh's own thread).
pub(crate) type LocalView = Box<dyn Fn() -> Vec<NodeSnapshot> + Send + Sync>;

/// The mesh as this host sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MeshSnapshot {
    /// The hive whose mesh this is.
    pub hive: String,
    /// This host's name.
    pub host: String,
    /// This process's Zenoh session id.
    pub origin: String,
    /// The other hosts, up or gone.
    pub peers: Vec<PeerSnapshot>,
    /// Messages of this host put on the mesh.
    pub sent: u64,
    /// Messages of this host not put on the mesh (its queue was full, or Zenoh refused them).
    pub dropped: u64,
    /// Messages waiting to go out.
    pub queued: u64,
    /// Messages from other hosts let in.
    pub received: u64,
    /// Messages from other hosts dropped as second copies (of a batch seen already).
    pub duplicates: u64,
    /// Refused from the mesh: each message that fails its checks (name, size, not JSON), and
    /// each sample that is not a batch of this mesh format (counted once, whatever it holds).
    pub rejected: u64,
}

/// This host's place in the mesh; [`Mesh::stop`] leaves it.
pub(crate) struct Mesh(Inner);

#[cfg(feature = "mesh")]
type Inner = link::Link;

/// Without the `mesh` feature no mesh can exist.
#[cfg(not(feature = "mesh"))]
enum Inner {}

impl Mesh {
    /// Joins the mesh of `settings.hive` as `settings.host`: opens a Zenoh session with the
    /// configured endpoints, announces this host, and from then on sends every message sent on
    /// `bus` to the other hosts and injects theirs, offers `router`'s responders to the other
    /// hosts and becomes `router`'s way to theirs (until [`Mesh::stop`]). Host changes go to
    /// `events`.
    #[cfg(feature = "mesh")]
    pub(crate) fn start(
        settings: MeshSettings,
        bus: Arc<Bus>,
        router: Arc<Router>,
        local_view: LocalView,
        events: Arc<Events>,
    ) -> Result<Self> {
        link::Link::start(settings, bus, router, local_view, events).map(Mesh)
    }

    /// Without the `mesh` feature: says how to get it.
    #[cfg(not(feature = "mesh"))]
    pub(crate) fn start(
        _settings: MeshSettings,
        _bus: Arc<Bus>,
        _router: Arc<Router>,
        _local_view: LocalView,
        _events: Arc<Events>,
    ) -> Result<Self> {
        anyhow::bail!(
            "[mesh] is enabled in config/hive.toml, but this hm was built without its `mesh` feature: rebuild it with default features (`cargo install --path host`), or set [mesh] enabled = false"
        )
    }

    /// Every node of the other hosts, with its host; nodes of hosts that have gone are
    /// [`crate::runtime::NodeStatus::Gone`].
    pub(crate) fn remote_nodes(&self) -> Vec<NodeSnapshot> {
        #[cfg(feature = "mesh")]
        return self.0.remote_nodes();
        #[cfg(not(feature = "mesh"))]
        match self.0 {}
    }

    /// The mesh as this host sees it.
    pub(crate) fn snapshot(&self) -> MeshSnapshot {
        #[cfg(feature = "mesh")]
        return self.0.snapshot();
        #[cfg(not(feature = "mesh"))]
        match self.0 {}
    }

    /// Leaves the mesh: the other hosts see this one gone at once.
    pub(crate) fn stop(self) {
        #[cfg(feature = "mesh")]
        self.0.stop();
        #[cfg(not(feature = "mesh"))]
        match self.0 {}
    }
}
