//! The hive's web server: the live dashboard, the JSON API, and the streams that feed them.
//!
//! | route                              | answer                                                     |
//! |------------------------------------|------------------------------------------------------------|
//! | `GET /`, `/nodes`, `/nodes/{name}`, `/topics`, `/publish` | the dashboard's pages (live, no reload) |
//! | `GET /static/{path}`               | the hive's `static/` files, then the built-in assets       |
//! | `GET /api/hive`                    | the hive at once: name, nodes, topics, whether a key is required |
//! | `GET /api/nodes`, `/api/nodes/{name}` | every node, one node (404 with a JSON error)           |
//! | `GET /api/topics`                  | every service with its senders and subscribers             |
//! | `GET /api/mesh`                    | this host's mesh: the other hosts and its counters (`null` when off) |
//! | `GET /api/events`                  | server-sent events: the recent event feed, then live ones  |
//! | `GET /api/stream`                  | server-sent events: the hive's snapshot, every second      |
//! | `GET /api/nodes/{name}/log`        | server-sent events: the node's log, its last lines then new ones |
//! | `GET /api/subscribe?pattern=GLOB`  | a WebSocket streaming every matching message               |
//! | `POST /api/publish/{service}`      | publishes the JSON body on that service (key)              |
//! | `POST /api/nodes/{name}/enable`, `/disable`, `/reload` | what the page's buttons do (key) |
//! | `GET /healthz`, `GET /metrics`     | `ok`; Prometheus counters                                  |
//!
//! Everything the pages need is built into `hm` ([`assets`]): nothing comes from the network.
//! Mutating endpoints ("key" above) follow [`access`]: the hive key when one is configured,
//! and never a request from another web origin.
//!
//! Clients cannot exhaust the host: at most `[hive] max_streams` live connections (WebSockets
//! and event streams) are open at once, one more gets 503 ([`live`]); each WebSocket client
//! has a bounded queue; and a client that stops reading is cut off after `[hive]
//! write_timeout_ms` ([`server`]).

mod access;
mod api;
mod assets;
mod live;
mod metrics;
mod pages;
mod routes;
mod server;
pub(crate) mod tail;

pub use access::{KEY_HEADER, check_exposure};

use crate::controller::Controller;
use anyhow::{Context as _, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Binds the hive's address, or says clearly why it cannot.
pub async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address}: is another hive running there? Stop it, or change [hive] port in config/hive.toml (0 picks a free port)"
        )
    })
}

/// Serves the dashboard and the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<Controller>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let state = Web::new(controller.clone());
    let write_timeout = move || controller.config().write_timeout;
    server::run(listener, routes::all(state), write_timeout, shutdown).await;
}

/// What every handler shares: the controller, and counters the web layer keeps itself.
#[derive(Clone)]
struct Web {
    controller: Arc<Controller>,
    counters: Arc<metrics::EventCounters>,
    streams: Arc<live::Streams>,
}

impl Web {
    fn new(controller: Arc<Controller>) -> Self {
        let counters = metrics::EventCounters::follow(controller.events());
        Self {
            controller,
            counters,
            streams: Arc::default(),
        }
    }

    /// The hive's own `static/` folder.
    fn static_dir(&self) -> std::path::PathBuf {
        self.controller.root().join("static")
    }

    /// The hive key mutating requests must carry, if the hive has one.
    fn key(&self) -> Option<String> {
        self.controller.config().key.clone()
    }
}
