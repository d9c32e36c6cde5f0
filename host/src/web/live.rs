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

use super::Web;
use super::api::{self, error};
use super::metrics::same_event;
use super::tail::LogTail;
use crate::bus::Pattern;
use crate::events::HiveEvent;
use futures_util::{SinkExt as _, StreamExt as _, stream};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
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

fn sse<S>(events: S) -> Response
where
    S: futures_util::Stream<Item = Result<Event, Infallible>> + Send + Sync + 'static,
{
    warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response()
}

fn hive_event(event: &HiveEvent) -> Event {
    Event::default()
        .event("hive-event")
        .data(serde_json::to_string(event).unwrap_or_default())
}

/// `GET /api/events`.
pub(super) fn events(web: &Web) -> Response {
    let feed = web.controller.events();
    let live = feed.subscribe();
    let recent = feed.recent();
    let first: Vec<Result<Event, Infallible>> = recent.iter().map(|e| Ok(hive_event(e))).collect();
    let after = stream::unfold((live, recent), |(mut live, mut seen)| async move {
        loop {
            match live.recv().await {
                Ok(event) => {
                    // Events emitted while the stream started are in both `recent` and `live`.
                    if let Some(at) = seen.iter().position(|e| same_event(e, &event)) {
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
    sse(stream::iter(first).chain(after))
}

/// `GET /api/stream`.
pub(super) fn snapshots(web: &Web) -> Response {
    let ticks = tokio::time::interval(SNAPSHOT_EVERY);
    let frames = stream::unfold((ticks, web.clone()), |(mut ticks, web)| async move {
        ticks.tick().await;
        let hive = Event::default()
            .event("hive")
            .data(api::hive_value(&web).to_string());
        Some((Ok(hive), (ticks, web)))
    });
    sse(frames)
}

/// `GET /api/nodes/{name}/log`.
pub(super) fn log(web: &Web, name: &str, query: &HashMap<String, String>) -> Response {
    let known = web
        .controller
        .snapshot()
        .nodes
        .iter()
        .any(|n| n.name == name);
    // Node names are plain (checked by the config), so the path stays in the log folder.
    if !known || crate::config::check_node_name(name).is_err() {
        return api::unknown_node(web, name);
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
    sse(stream::once(async { Ok(first) }).chain(after))
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
    let bus = web.controller.bus().clone();
    ws.on_upgrade(move |socket| async move {
        let tap = bus.tap(pattern, TAP_CAPACITY);
        stream_messages(socket, tap).await;
    })
    .into_response()
}

/// Forwards the tap's messages to the socket until either side closes.
async fn stream_messages(socket: WebSocket, tap: crate::bus::Tap) {
    let (frames, mut outbox) = mpsc::channel::<String>(256);
    // The tap's inbox blocks; read it on a thread of its own, which owns (and so ends) the tap.
    tokio::task::spawn_blocking(move || {
        let mut dropped = 0;
        while !frames.is_closed() {
            let now_dropped = tap.stats.dropped.load(Ordering::Relaxed);
            if now_dropped != dropped {
                dropped = now_dropped;
                if frames
                    .blocking_send(format!("{{\"dropped\":{dropped}}}"))
                    .is_err()
                {
                    return;
                }
            }
            let Ok(delivery) = tap.inbox.recv_timeout(Duration::from_millis(250)) else {
                continue;
            };
            let message = &delivery.message;
            let time = OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default();
            let frame = format!(
                "{{\"service\":{},\"node\":{},\"time\":{},\"payload\":{}}}",
                quoted(&message.service),
                quoted(&message.node),
                quoted(&time),
                message.payload
            );
            if frames.blocking_send(frame).is_err() {
                return;
            }
        }
    });
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            frame = outbox.recv() => {
                let Some(frame) = frame else { break };
                if sink.send(Message::text(frame)).await.is_err() {
                    break;
                }
            }
            received = incoming.next() => match received {
                Some(Ok(message)) if !message.is_close() => {}
                _ => break,
            },
        }
    }
    let _ = sink.close().await;
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
