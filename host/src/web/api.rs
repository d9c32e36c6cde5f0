//! The JSON API's handlers: reading the hive, publishing into it, and switching its nodes.
//!
//! Every error is JSON, `{"error": "a sentence saying what and what to do"}`, with its status.

use super::reply::{error, json, percent_decode, read_limited, unknown_node};
use super::state::Web;
use super::view;
use crate::controller::PublishError;
use futures_util::Stream;
use warp::http::StatusCode;
use warp::reply::Response;

/// `GET /api/hive`: everything the pages show, at once.
pub(super) fn hive(web: &Web) -> Response {
    json(StatusCode::OK, &view::hive(web))
}

/// `GET /api/nodes`.
pub(super) fn nodes(web: &Web) -> Response {
    json(StatusCode::OK, &web.controller.snapshot().nodes)
}

/// `GET /api/nodes/{name}`.
pub(super) fn node(web: &Web, name: &str) -> Response {
    let snapshot = web.controller.snapshot();
    match snapshot.nodes.into_iter().find(|n| n.name == name) {
        Some(node) => json(StatusCode::OK, &view::node(web, node, &snapshot.topics)),
        None => unknown_node(&web.controller, name),
    }
}

/// `GET /api/topics`.
pub(super) fn topics(web: &Web) -> Response {
    json(StatusCode::OK, &view::topics(web))
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
        return unknown_node(&web.controller, &name);
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
