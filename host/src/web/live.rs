//! The live streams: the event feed, the hive's snapshot and a node's log as server-sent
//! events, and the hive's messages over a WebSocket.
//!
//! - `GET /api/events`: every event still in the feed (oldest first), then each new one, as
//!   `event: hive-event` with the event's JSON. A reader that falls behind gets
//!   `event: lagged` with the number it missed.
//! - `GET /api/stream`: `event: hive` with the JSON of `GET /api/hive`, at once and every second.
//! - `GET /api/nodes/{name}/log?lines=N`: `event: lines` with a JSON array of log lines: the
//!   last N (default 200) at once, then new ones as they are written (checked 4 times a second).
//! - `GET /api/subscribe?pattern=GLOB` (WebSocket; `*` when no pattern): one text frame per
//!   matching message, `{"service", "node", "time", "payload"}`, where `node` is the sender
//!   (`api` for `POST /api/publish`) and `time` when the hive routed it. A client that reads
//!   too slowly loses messages past 1024 queued; it is told `{"dropped": total}`.
//!
//! Each of these holds one of `[hive] max_streams` places ([`super::streams`]) while it is open;
//! when none is left the request gets 503 with a JSON error naming the limit. A client that
//! stops reading is closed by the server's write deadline (`server.rs`), which frees its place.
//! Each sends a keep-alive (an SSE comment, a WebSocket ping) at least every third of
//! `[hive] idle_timeout_ms`, so a quiet stream is never taken for an idle connection. A
//! WebSocket client may send messages and frames of at most `[hive] ws_max_message_bytes`
//! (it only ever needs close, ping and pong); a larger one ends the connection before its
//! payload is read.

use super::reply::{error, unknown_node};
use super::state::Web;
use super::streams::{Full, Place};
use super::tail::LogTail;
use super::view;
use crate::bus::Pattern;
use crate::events::HiveEvent;
use futures_util::{SinkExt as _, StreamExt as _, stream};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::sse::Event;
use warp::ws::{Message, WebSocket, Ws};

/// How often the snapshot stream sends the hive.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How often a followed log is checked for new lines.
const LOG_POLL_EVERY: Duration = Duration::from_millis(250);
/// Lines a log stream starts with when the request does not say.
const DEFAULT_LOG_LINES: usize = 200;
/// Messages a WebSocket subscriber may fall behind before new ones are dropped.
const TAP_CAPACITY: usize = 1024;
/// Frames written to a WebSocket before they are flushed together.
const BATCH: usize = 64;
/// How long closing a WebSocket may take (a client that stopped reading never answers).
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// A place for a new live connection, unless all `[hive] max_streams` are taken.
fn place(web: &Web) -> Result<Place, Full> {
    web.streams.take(web.controller.config().max_streams)
}

/// How often a live stream sends a keep-alive: at most every 15 s, and three times per
/// `[hive] idle_timeout_ms`.
fn keep_alive_every(web: &Web) -> Duration {
    (web.controller.config().web.idle_timeout / 3).min(Duration::from_secs(15))
}

/// An event stream holding `place` until the client goes.
fn sse<S>(web: &Web, place: Place, events: S) -> Response
where
    S: futures_util::Stream<Item = Result<Event, Infallible>> + Send + Sync + 'static,
{
    // The place lives in the stream, so it is given back when hyper drops the stream.
    let held = events.map(move |event| {
        let _ = &place;
        event
    });
    let keep_alive = warp::sse::keep_alive().interval(keep_alive_every(web));
    warp::sse::reply(keep_alive.stream(held)).into_response()
}

fn hive_event(event: &HiveEvent) -> Event {
    Event::default()
        .event("hive-event")
        .data(serde_json::to_string(event).unwrap_or_default())
}

/// `GET /api/events`.
pub(super) fn events(web: &Web) -> Response {
    let place = match place(web) {
        Ok(place) => place,
        Err(full) => return full.response(),
    };
    let feed = web.controller.events();
    let live = feed.subscribe();
    let recent = feed.recent();
    let first: Vec<Result<Event, Infallible>> = recent.iter().map(|e| Ok(hive_event(e))).collect();
    let after = stream::unfold((live, recent), |(mut live, mut seen)| async move {
        loop {
            match live.recv().await {
                Ok(event) => {
                    // Events emitted while the stream started are in both `recent` and `live`.
                    if let Some(at) = seen.iter().position(|e| *e == event) {
                        seen.remove(at);
                        continue;
                    }
                    seen.clear();
                    return Some((Ok(hive_event(&event)), (live, seen)));
                }
                Err(RecvError::Lagged(missed)) => {
                    let lagged = Event::default().event("lagged").data(missed.to_string());
                    return Some((Ok(lagged), (live, seen)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    sse(web, place, stream::iter(first).chain(after))
}

/// `GET /api/stream`.
pub(super) fn snapshots(web: &Web) -> Response {
    let place = match place(web) {
        Ok(place) => place,
        Err(full) => return full.response(),
    };
    let ticks = tokio::time::interval(SNAPSHOT_EVERY);
    let frames = stream::unfold((ticks, web.clone()), |(mut ticks, web)| async move {
        ticks.tick().await;
        let hive = Event::default()
            .event("hive")
            .data(view::hive(&web).to_string());
        Some((Ok(hive), (ticks, web)))
    });
    sse(web, place, frames)
}

/// `GET /api/nodes/{name}/log`.
pub(super) fn log(web: &Web, name: &str, query: &HashMap<String, String>) -> Response {
    // Only this host's nodes have logs here: a node of another host named `root` (or like a
    // local one) must not stream this host's file.
    let hive = web.controller.snapshot();
    let known = hive
        .nodes
        .iter()
        .any(|n| n.name == name && n.host == hive.host);
    // Node names are plain (checked by the config), so the path stays in the log folder.
    if !known || crate::names::check_node_name(name).is_err() {
        return unknown_node(&web.controller, name);
    }
    let count = match query.get("lines").map(|n| n.parse::<usize>()) {
        None => DEFAULT_LOG_LINES,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "lines must be a whole number of lines, like ?lines=100",
            );
        }
    };
    let place = match place(web) {
        Ok(place) => place,
        Err(full) => return full.response(),
    };
    let path = web
        .controller
        .config()
        .log
        .location
        .join(format!("{name}.log"));
    let (tail, last) = LogTail::start(path, count);
    let first = Event::default()
        .event("lines")
        .data(serde_json::to_string(&last).unwrap_or_default());
    let mut ticks = tokio::time::interval(LOG_POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let after = stream::unfold((tail, ticks), |(mut tail, mut ticks)| async move {
        loop {
            ticks.tick().await;
            let lines = tail.poll();
            if !lines.is_empty() {
                let event = Event::default()
                    .event("lines")
                    .data(serde_json::to_string(&lines).unwrap_or_default());
                return Some((Ok(event), (tail, ticks)));
            }
        }
    });
    sse(web, place, stream::once(async { Ok(first) }).chain(after))
}

/// `GET /api/subscribe?pattern=GLOB`.
pub(super) fn subscribe(web: &Web, query: &HashMap<String, String>, ws: Option<Ws>) -> Response {
    let text = query.get("pattern").map_or("*", String::as_str);
    let pattern = match Pattern::new(text) {
        Ok(pattern) => pattern,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some(ws) = ws else {
        return error(
            StatusCode::BAD_REQUEST,
            "this is a WebSocket endpoint: connect to it with a WebSocket client (ws://.../api/subscribe?pattern=GLOB)",
        );
    };
    let place = match place(web) {
        Ok(place) => place,
        Err(full) => return full.response(),
    };
    // The tap starts before the handshake is answered: a client that has its socket open gets
    // every message published from then on (a failed upgrade drops it with the closure).
    let wake = Arc::new(Notify::new());
    let waking = wake.clone();
    let tap = web.controller.bus().tap_waking(
        pattern,
        TAP_CAPACITY,
        Some(Arc::new(move || waking.notify_one())),
    );
    let limit = web.controller.config().web.ws_max_message_bytes;
    let ping_every = keep_alive_every(web);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            stream_messages(socket, &tap, &wake, ping_every).await;
            drop(place);
        })
        .into_response()
}

/// Forwards the tap's messages to the socket until either side closes, or a write fails (the
/// server's write deadline ends a client that stopped reading). No thread waits on the tap:
/// the bus wakes this task when it queues a message.
async fn stream_messages(
    socket: WebSocket,
    tap: &crate::bus::Tap,
    wake: &Notify,
    ping_every: Duration,
) {
    let (mut sink, mut incoming) = socket.split();
    let mut told_dropped = 0;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'serving: loop {
        let mut batch = 0;
        while batch < BATCH {
            let Ok(delivery) = tap.inbox.try_recv() else {
                break;
            };
            batch += 1;
            if sink
                .feed(Message::text(frame(&delivery.message)))
                .await
                .is_err()
            {
                break 'serving;
            }
        }
        let dropped = tap.stats.dropped.load(Ordering::Relaxed);
        if dropped != told_dropped {
            told_dropped = dropped;
            let notice = Message::text(format!("{{\"dropped\":{dropped}}}"));
            if sink.feed(notice).await.is_err() {
                break;
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
        if !tap.inbox.is_empty() {
            continue;
        }
        // A message queued after the check above left a permit: `notified` returns at once.
        tokio::select! {
            () = wake.notified() => {}
            _ = pings.tick() => {
                if sink.feed(Message::ping(Vec::new())).await.is_err() {
                    break;
                }
            }
            received = incoming.next() => match received {
                Some(Ok(message)) if !message.is_close() => {}
                _ => break,
            },
        }
    }
    let _ = tokio::time::timeout(CLOSE_WITHIN, sink.close()).await;
}

/// The text frame for one message.
fn frame(message: &crate::bus::Message) -> String {
    let time = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    format!(
        "{{\"service\":{},\"node\":{},\"time\":{},\"payload\":{}}}",
        quoted(message.service()),
        quoted(message.node()),
        quoted(&time),
        message.payload()
    )
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
