//! `POST /api/request/{name}` and `GET /api/requests`: asking the hive's request router from the
//! web, and what `/metrics` says about requests.
//!
//! A request's answer is JSON. `200 {"name", "reply", "node", "host", "ms"}` for a reply
//! (`{"name", "replies": [...], "ms"}` with `?all=true`); otherwise `{"error", "kind", ...}`
//! with the status of [`status_of`]: `no_responder` 404, `timeout` 504, `handler_error` 502,
//! `panicked` 500, `restarted` 503, `busy` 503, `stopping` 503, `too_large` 413,
//! `invalid_args` 400 (also arguments nested deeper than [`MAX_JSON_DEPTH`] levels, refused
//! before any node sees them, as publishing does); a reply the host cannot read back as JSON
//! (nested deeper than that) is 502 `invalid_reply`, never a `null` reply; a body that is not
//! JSON or a `timeout_ms` out of bounds is 400 (`invalid_json`, `invalid_timeout`).
//! `timeout_ms` is 1 to 60000 (default 5000).

use super::reply::{MAX_JSON_DEPTH, error, json, json_depth, percent_decode, read_limited};
use super::state::Web;
use crate::requests::{
    Ask, DEFAULT_TIMEOUT, Failure, FailureKind, MAX_TIMEOUT, MIN_TIMEOUT, Part, kind_name,
};
use futures_util::Stream;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::names::{API as API_ASKER, CLI as CLI_ASKER};

/// The HTTP status of a failure kind.
pub(super) fn status_of(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::NoResponder => StatusCode::NOT_FOUND,
        FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FailureKind::HandlerError => StatusCode::BAD_GATEWAY,
        FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FailureKind::InvalidArgs | FailureKind::NotSerializable => StatusCode::BAD_REQUEST,
        FailureKind::Restarted | FailureKind::Busy | FailureKind::Stopping => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn failure(name: &str, failure: &Failure) -> Response {
    let mut body = json!({
        "name": name,
        "error": failure.message,
        "kind": kind_name(failure.kind),
    });
    if let Some(node) = &failure.node {
        body["node"] = node.as_str().into();
        body["host"] = failure.host.clone().unwrap_or_default().into();
    }
    json(status_of(failure.kind), &body)
}

fn refused(status: StatusCode, kind: &str, message: &str) -> Response {
    json(status, &json!({ "error": message, "kind": kind }))
}

/// The kind of a reply the host cannot read back (not one of the node API's kinds).
const INVALID_REPLY: &str = "invalid_reply";

/// A reply read back, or the sentence that says why it cannot be.
fn read_reply(json: &str, name: &str, node: &str) -> Result<Value, String> {
    serde_json::from_str::<Value>(json).map_err(|e| {
        format!(
            "the reply of node {node} to {name} cannot be read back as JSON ({e}); the hive reads replies nested at most {MAX_JSON_DEPTH} levels deep: make the handler's reply flatter"
        )
    })
}

fn part_value(name: &str, part: &Part) -> Value {
    match part {
        Ok(answer) => match read_reply(&answer.json, name, &answer.node) {
            Ok(reply) => json!({ "node": answer.node, "host": answer.host, "reply": reply }),
            Err(message) => json!({
                "node": answer.node,
                "host": answer.host,
                "error": message,
                "kind": INVALID_REPLY,
            }),
        },
        Err(failure) => json!({
            "node": failure.node,
            "host": failure.host,
            "error": failure.message,
            "kind": kind_name(failure.kind),
        }),
    }
}

/// `GET /api/requests`: every request name with its responders, help and counters.
pub(super) fn list(web: &Web) -> Response {
    json(StatusCode::OK, &web.controller.router().list())
}

/// `POST /api/request/{name}?timeout_ms=N&all=true`.
pub(super) async fn ask<S, B>(
    web: Web,
    name: String,
    query: HashMap<String, String>,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: warp::Buf,
{
    // The gate has checked the origin and the key (`access`), as for publishing.
    let Some(name) = percent_decode(&name) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "the request name in the path is not valid percent-encoded UTF-8",
        );
    };
    let timeout = match query.get("timeout_ms") {
        None => DEFAULT_TIMEOUT,
        Some(text) => match text.parse::<u64>().map(Duration::from_millis) {
            Ok(t) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&t) => t,
            _ => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_timeout",
                    &format!(
                        "timeout_ms={text} is out of bounds: give 1 to {} milliseconds",
                        MAX_TIMEOUT.as_millis()
                    ),
                );
            }
        },
    };
    let all = matches!(query.get("all").map(String::as_str), Some("true" | "1"));
    let router = web.controller.router().clone();
    let body = match read_limited(body, router.max_payload_bytes()).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let text = match String::from_utf8(body) {
        Ok(text) if text.trim().is_empty() => "null".to_owned(),
        Ok(text) => text,
        Err(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the arguments are not valid JSON: they are not UTF-8 text",
            );
        }
    };
    let depth = json_depth(&text);
    if depth > MAX_JSON_DEPTH {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_args",
            &format!(
                "the arguments nest {depth} levels deep; the hive takes at most {MAX_JSON_DEPTH} levels of arrays and objects (as for publishing): send flatter arguments"
            ),
        );
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            &format!("the arguments are not valid JSON: {e}"),
        );
    }
    let started = Instant::now();
    let (sender, outcome) = tokio::sync::oneshot::channel();
    router.ask(
        Ask {
            name: name.clone(),
            args: text,
            from_node: match query.get("client").map(String::as_str) {
                Some(CLI_ASKER) => CLI_ASKER.into(),
                _ => API_ASKER.into(),
            },
            from_host: router.host().clone(),
            timeout,
            all,
        },
        move |outcome| {
            let _ = sender.send(outcome);
        },
    );
    let outcome = match outcome.await {
        Ok(outcome) => outcome,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the request was lost"),
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    match outcome {
        Err(f) => failure(&name, &f),
        Ok(parts) if all => json(
            StatusCode::OK,
            &json!({ "name": name, "replies": parts.iter().map(|p| part_value(&name, p)).collect::<Vec<_>>(), "ms": ms }),
        ),
        Ok(parts) => match parts.into_iter().next() {
            Some(Ok(answer)) => match read_reply(&answer.json, &name, &answer.node) {
                Ok(reply) => json(
                    StatusCode::OK,
                    &json!({
                        "name": name,
                        "reply": reply,
                        "node": answer.node,
                        "host": answer.host,
                        "ms": ms,
                    }),
                ),
                Err(message) => json(
                    StatusCode::BAD_GATEWAY,
                    &json!({
                        "name": name,
                        "error": message,
                        "kind": INVALID_REPLY,
                        "node": answer.node,
                        "host": answer.host,
                    }),
                ),
            },
            Some(Err(f)) => failure(&name, &f),
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request got no outcome",
            ),
        },
    }
}

/// The Prometheus lines for requests: per name, asked, replies, failures by kind, latency.
pub(super) fn metrics(web: &Web) -> String {
    let stats = web.controller.router().stats();
    let mut out = String::new();
    out.push_str("# HELP hivemind_requests_total Requests asked from this host, by name.\n# TYPE hivemind_requests_total counter\n");
    for (name, s) in &stats {
        let _ = writeln!(
            out,
            "hivemind_requests_total{{name=\"{}\"}} {}",
            label(name),
            s.asked
        );
    }
    out.push_str("# HELP hivemind_request_replies_total Replies received, by name (one per responder for request_all).\n# TYPE hivemind_request_replies_total counter\n");
    for (name, s) in &stats {
        let _ = writeln!(
            out,
            "hivemind_request_replies_total{{name=\"{}\"}} {}",
            label(name),
            s.replies
        );
    }
    out.push_str("# HELP hivemind_request_errors_total Failed requests, by name and kind.\n# TYPE hivemind_request_errors_total counter\n");
    for (name, s) in &stats {
        for (kind, n) in &s.errors {
            let _ = writeln!(
                out,
                "hivemind_request_errors_total{{name=\"{}\",kind=\"{kind}\"}} {n}",
                label(name)
            );
        }
    }
    out.push_str("# HELP hivemind_request_duration_seconds Time from asking to the outcome, by name.\n# TYPE hivemind_request_duration_seconds histogram\n");
    for (name, s) in &stats {
        let name = label(name);
        for (bound, count) in &s.latency {
            let le = bound.map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "hivemind_request_duration_seconds_bucket{{name=\"{name}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "hivemind_request_duration_seconds_sum{{name=\"{name}\"}} {}",
            s.latency_sum_seconds
        );
        let _ = writeln!(
            out,
            "hivemind_request_duration_seconds_count{{name=\"{name}\"}} {}",
            s.asked
        );
    }
    out
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
