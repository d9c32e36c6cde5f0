//! The JSON API's handlers: reading the hive, publishing into it, and switching its nodes.
//!
//! Every error is JSON, `{"error": "a sentence saying what and what to do"}`, with its status.

use super::Web;
use crate::config::HiveConfig;
use crate::controller::PublishError;
use futures_util::{Stream, StreamExt as _};
use serde::Serialize;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// A JSON body with a status.
pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// `{"error": message}` with a status.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// The 404 for a node name the hive does not have.
pub(super) fn unknown_node(web: &Web, name: &str) -> Response {
    let known: Vec<String> = web
        .controller
        .snapshot()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "there is no node named `{name}` in this hive (its nodes: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    )
}

/// `GET /api/hive`: everything the pages show, at once.
pub(super) fn hive(web: &Web) -> Response {
    json(StatusCode::OK, &hive_value(web))
}

/// The hive's snapshot plus whether changes need the key: what `/api/hive` and `/api/stream` send.
pub(super) fn hive_value(web: &Web) -> serde_json::Value {
    let snapshot = web.controller.snapshot();
    // The settings each running node of this host was started with.
    let in_force: std::collections::HashMap<String, serde_json::Value> = snapshot
        .nodes
        .iter()
        .filter(|n| n.host == snapshot.host)
        .filter_map(|n| Some((n.name.clone(), n.settings.clone()?)))
        .collect();
    let mut value = serde_json::to_value(&snapshot).unwrap_or_default();
    let config = web.controller.config();
    let host = value["host"].clone();
    if let Some(nodes) = value["nodes"].as_array_mut() {
        // Another host's node has its own host's settings, not this config's.
        for node in nodes.iter_mut().filter(|n| n["host"] == host) {
            let running = node["name"].as_str().and_then(|n| in_force.get(n)).cloned();
            add_settings(&config, node, running);
        }
    }
    if let Some(topics) = value["topics"].as_array_mut() {
        mark_typed(web, topics);
        for topic in topics {
            hide_taps(topic);
        }
    }
    value["key_required"] = web.has_key().into();
    value["requests"] = serde_json::to_value(web.controller.router().list()).unwrap_or_default();
    web.rates.annotate(&mut value);
    value
}

/// Outside readers (WebSocket clients) are not nodes: leave them out of a topic's subscribers.
fn hide_taps(topic: &mut serde_json::Value) {
    if let Some(subscribers) = topic["subscribers"].as_array_mut() {
        subscribers.retain(|s| !s.as_str().is_some_and(|s| s.starts_with(TAP_PREFIX)));
    }
}

/// Adds `"schema": true` to each topic whose service declared its payload type (its schema is
/// at `/api/topics/{service}/schema`), `false` to the others.
fn mark_typed(web: &Web, topics: &mut [serde_json::Value]) {
    let typed = web.controller.schemas().typed_services();
    for topic in topics {
        let has = topic["service"]
            .as_str()
            .is_some_and(|service| typed.contains(service));
        topic["schema"] = has.into();
    }
}

/// How the bus names a tap (`tap#N`); node names cannot contain `#`.
const TAP_PREFIX: &str = "tap#";

/// Adds the node's `[nodes.<name>]` table, as the node receives it, as `settings`: for a running
/// node `in_force`, the settings it was started with (a rejected edit is not shown as if in
/// force), else those of the config; either way with the values of secret names (`*key*`,
/// `*token*`, `*secret*`, `*password*`) redacted.
fn add_settings(
    config: &HiveConfig,
    node: &mut serde_json::Value,
    in_force: Option<serde_json::Value>,
) {
    let settings = in_force
        .or_else(|| {
            node["name"]
                .as_str()
                .and_then(|name| config.nodes.get(name))
                .map(|config| config.settings.clone())
        })
        .map(|settings| crate::config::redact_settings(&settings))
        .unwrap_or_default();
    node["settings"] = settings;
}

/// `GET /api/nodes`.
pub(super) fn nodes(web: &Web) -> Response {
    json(StatusCode::OK, &web.controller.snapshot().nodes)
}

/// `GET /api/nodes/{name}`.
pub(super) fn node(web: &Web, name: &str) -> Response {
    match web
        .controller
        .snapshot()
        .nodes
        .into_iter()
        .find(|n| n.name == name)
    {
        Some(node) => {
            let in_force = node.settings.clone();
            let mut value = serde_json::to_value(node).unwrap_or_default();
            add_settings(&web.controller.config(), &mut value, in_force);
            json(StatusCode::OK, &value)
        }
        None => unknown_node(web, name),
    }
}

/// `GET /api/topics`.
pub(super) fn topics(web: &Web) -> Response {
    let mut topics = serde_json::to_value(web.controller.snapshot().topics).unwrap_or_default();
    if let Some(list) = topics.as_array_mut() {
        mark_typed(web, list);
        for topic in list {
            hide_taps(topic);
        }
    }
    json(StatusCode::OK, &topics)
}

/// `GET /api/topics/{service}/schema` (`service` percent-encoded): the JSON Schema of the
/// payload type the service declared, exactly as its node sent it; 404 when it declared none.
pub(super) fn schema(web: &Web, service: &str) -> Response {
    let Some(service) = percent_decode(service) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the service name in the path is not valid percent-encoded UTF-8",
        );
    };
    match web.controller.schemas().schema(&service) {
        Some((node, text)) => {
            let mut response = Response::new(text.to_string().into());
            let headers = response.headers_mut();
            headers.insert(
                warp::http::header::CONTENT_TYPE,
                warp::http::HeaderValue::from_static("application/schema+json"),
            );
            if let Ok(node) = warp::http::HeaderValue::from_str(&node) {
                headers.insert("x-hive-node", node);
            }
            response
        }
        None => {
            let offered = web
                .controller
                .snapshot()
                .topics
                .iter()
                .any(|t| t.service == service);
            let why = if offered {
                "its node declares no payload type (declare one with add_typed_service or add_typed_publisher; see docs/NODES.md)"
            } else {
                "no running node offers it"
            };
            error(
                StatusCode::NOT_FOUND,
                &format!("service `{service}` has no schema: {why}"),
            )
        }
    }
}

/// `POST /api/publish/{service}`: the body, if it is JSON within the limit, goes to every
/// matching subscription as if a service of that name had sent it.
pub(super) async fn publish<S, B>(web: Web, service: String, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: warp::Buf,
{
    // The gate has checked the name, the origin and the key (`access`).
    let Some(service) = percent_decode(&service) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the service name in the path is not valid percent-encoded UTF-8",
        );
    };
    let limit = web.controller.config().messages.max_payload_bytes;
    let body = match read_limited(body, limit).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Ok(text) = String::from_utf8(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the payload is not valid JSON: it is not UTF-8 text",
        );
    };
    match web.controller.publish(&service, &text) {
        Ok(None) => json(
            StatusCode::OK,
            &serde_json::json!({ "published": service, "bytes": text.len() }),
        ),
        // `[messages] check_schemas = "warn"`: published, with what did not match.
        Ok(Some(violation)) => json(
            StatusCode::OK,
            &serde_json::json!({
                "published": service,
                "bytes": text.len(),
                "warning": violation.to_string(),
                "path": violation.path,
                "reason": violation.reason,
            }),
        ),
        Err(e @ PublishError::TooLarge { .. }) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        // `[messages] check_schemas = "refuse"`.
        Err(PublishError::Mismatch(violation)) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({
                "error": format!(
                    "{violation}; it was not published (fix the payload, or set [messages] check_schemas = \"warn\" in config/hive.toml)"
                ),
                "service": violation.service,
                "path": violation.path,
                "reason": violation.reason,
            }),
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// What the node page's buttons do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Set `enabled = true` in config/hive.toml and start the node.
    Enable,
    /// Set `enabled = false` in config/hive.toml and stop the node.
    Disable,
    /// Swap in a new instance (new code or settings), or start it if it should run.
    Reload,
}

impl std::str::FromStr for Action {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "enable" => Ok(Action::Enable),
            "disable" => Ok(Action::Disable),
            "reload" => Ok(Action::Reload),
            _ => Err(()),
        }
    }
}

/// `POST /api/nodes/{name}/enable|disable|reload`: answers with the node as it is afterwards.
pub(super) async fn act(web: Web, name: String, action: Action) -> Response {
    // The gate has checked the name, the origin and the key (`access`).
    let known = web
        .controller
        .snapshot()
        .nodes
        .iter()
        .any(|n| n.name == name);
    if !known {
        return unknown_node(&web, &name);
    }
    let controller = web.controller.clone();
    let target = name.clone();
    // These load or unload libraries: up to about a second, off the async threads.
    let done = tokio::task::spawn_blocking(move || match action {
        Action::Enable => controller.set_enabled(&target, true),
        Action::Disable => controller.set_enabled(&target, false),
        Action::Reload => controller.reload(&target),
    })
    .await;
    match done {
        Ok(Ok(())) => node(&web, &name),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot {} node `{name}`: {e:#}", action_verb(action)),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot {} node `{name}`: {e}", action_verb(action)),
        ),
    }
}

fn action_verb(action: Action) -> &'static str {
    match action {
        Action::Enable => "enable",
        Action::Disable => "disable",
        Action::Reload => "reload",
    }
}

/// Reads a request body of at most `limit` bytes; a longer one is a 413 without reading on.
pub(super) async fn read_limited<S, B>(mut body: S, limit: usize) -> Result<Vec<u8>, Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: warp::Buf,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            )
        })?;
        if bytes.len() + chunk.remaining() > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the payload is over the hive's limit of {limit} bytes ([messages] max_payload_bytes in config/hive.toml)"
                ),
            ));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("bat-signal-main").unwrap(),
            "bat-signal-main"
        );
        assert_eq!(percent_decode("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(percent_decode("%E8%9D%99").unwrap(), "蝙");
        assert_eq!(percent_decode("50%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
