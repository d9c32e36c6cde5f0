//! The live connections open now (WebSockets and event streams), counted against
//! `[hive] max_streams`: each holds a [`Place`] while it is open, given back when it ends; when
//! none is left the request gets 503 with a JSON error naming the limit ([`Full`]).

use super::reply;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use warp::http::StatusCode;
use warp::reply::Response;

/// The live connections open now, counted against `[hive] max_streams`.
#[derive(Default)]
pub(super) struct Streams {
    /// Places taken and not yet given back (a refused take gives its place back at once).
    open: AtomicUsize,
    refused: AtomicU64,
}

/// One open live connection's place; given back when dropped.
pub(super) struct Place(Arc<Streams>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// No place is left: `[hive] max_streams` (the number) live connections are open.
pub(super) struct Full(usize);

impl Full {
    /// The 503 that says so, and how to raise the limit.
    pub(super) fn response(self) -> Response {
        let limit = self.0;
        let message = format!(
            "this hive already has {limit} live connections open (WebSockets and event streams), its limit: close pages or clients you no longer use, or raise [hive] max_streams in config/hive.toml (it applies to new connections at once)"
        );
        let body = serde_json::json!({ "error": message, "max_streams": limit });
        let mut response = reply::json(StatusCode::SERVICE_UNAVAILABLE, &body);
        response.headers_mut().insert(
            warp::http::header::RETRY_AFTER,
            warp::http::HeaderValue::from_static("5"),
        );
        response
    }
}

impl Streams {
    /// Takes a place for a new live connection, unless `limit` (`[hive] max_streams`, read
    /// from the config for each new connection) are taken.
    pub(super) fn take(self: &Arc<Self>, limit: usize) -> Result<Place, Full> {
        let before = self.open.fetch_add(1, Ordering::SeqCst);
        let place = Place(self.clone());
        if before < limit {
            return Ok(place);
        }
        drop(place);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(
                refused,
                "refused a live connection: {limit} are open, the [hive] max_streams limit"
            );
        }
        Err(Full(limit))
    }

    /// The `/metrics` lines about live connections.
    pub(super) fn metrics(&self) -> String {
        format!(
            "# HELP hivemind_web_streams Live connections (WebSockets, event streams) open now.\n\
             # TYPE hivemind_web_streams gauge\n\
             hivemind_web_streams {}\n\
             # HELP hivemind_web_streams_refused_total Live connections refused with 503 because [hive] max_streams were open.\n\
             # TYPE hivemind_web_streams_refused_total counter\n\
             hivemind_web_streams_refused_total {}\n",
            self.open.load(Ordering::SeqCst),
            self.refused.load(Ordering::Relaxed)
        )
    }
}
