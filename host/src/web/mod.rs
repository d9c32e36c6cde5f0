//! The hive's web server: the live dashboard, the JSON API, and the streams that feed them.
//!
//! | route                              | answer                                                     |
//! |------------------------------------|------------------------------------------------------------|
//! | `GET /`, `/nodes`, `/nodes/{name}`, `/topics`, `/publish`, `/requests` | the dashboard's pages (live, no reload) |
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
//! | `GET /api/requests`                | every request name: responders, help, counts, errors, latency |
//! | `POST /api/request/{name}`         | asks it with the JSON body; the reply, or a JSON error ([`request`]) (key) |
//! | `POST /api/nodes/{name}/enable`, `/disable`, `/reload` | what the page's buttons do (key) |
//! | `POST /api/session`, `DELETE`      | a browser session (cookie) for the key sent in `X-Hive-Key` |
//! | `GET /healthz`, `GET /metrics`     | `ok`; Prometheus counters                                  |
//!
//! Everything the pages need is built into `hm` ([`assets`]): nothing comes from the network.
//! Every request passes [`access`] first ([`gate`]): only the names the hive answers to (no DNS
//! rebinding), only its own pages' origin, the key for changes, and beyond loopback the key for
//! everything but `/healthz`; an address that keeps sending wrong keys is locked out for a
//! while ([`guesses`]). Every answer carries a content security policy and anti-framing
//! headers. Node settings whose names say they are secret are shown redacted.
//!
//! Clients cannot exhaust the host ([`server`]): connections are capped in all and per client
//! address, slow headers and idle connections are cut off, at most `[hive] max_streams` live
//! connections (WebSockets and event streams) are open at once, one more gets 503 ([`live`]);
//! each WebSocket client has a bounded queue and may send only small messages; and a client
//! that stops reading is cut off after `[hive] write_timeout_ms`.

mod access;
mod api;
mod assets;
mod connections;
mod gate;
mod guesses;
mod in_hand;
mod live;
mod metrics;
mod pages;
mod rates;
mod reply;
mod request;
mod routes;
mod server;
mod state;
mod store;
mod streams;
pub(crate) mod tail;
mod view;

pub(crate) use access::KEY_HEADER;

use crate::controller::Controller;
use anyhow::{Context as _, Result};
use state::Web;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Refuses to serve beyond loopback without a hive key; says how to set one.
pub(crate) fn check_exposure(config: &crate::config::HiveConfig) -> Result<()> {
    crate::config::check_exposure(config).map_err(anyhow::Error::msg)
}

/// Binds the hive's address, or says clearly why it cannot.
pub(crate) async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address}: is another hive running there? Stop it, or change [hive] port in config/hive.toml (0 picks a free port)"
        )
    })
}

/// Serves the dashboard and the API on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    controller: Arc<Controller>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let state = Web::new(controller);
    server::run(listener, routes::all(state.clone()), state, shutdown).await;
}
