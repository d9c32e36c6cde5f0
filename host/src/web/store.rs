//! The nodes' stores over HTTP: `GET /api/nodes/{name}/store` (a page of keys with their
//! values, and what the file holds), `GET`/`PUT`/`DELETE /api/nodes/{name}/store/{key}`, the
//! read-only `GET /api/nodes/{name}/query?sql=...`, and `POST /api/backup?dir=...`.
//!
//! Reads follow the read rules and writes the rules for changes (the gate applies both by
//! method). Each call runs on tokio's blocking pool: SQLite blocks, the server's threads
//! must not. Errors are the JSON errors of every handler, with a status per failure kind.

use super::reply::{error, json, percent_decode, read_limited, unknown_node};
use super::state::Web;
use crate::store::Caller;
use crate::store::call::{Failure, Kind};
use futures_util::Stream;
use serde_json::{Value, json};
use std::collections::HashMap;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// Entries one page of `GET /api/nodes/{name}/store` holds unless `limit` says otherwise.
pub(super) const DEFAULT_PAGE: usize = 100;
/// The most `limit` may ask for.
pub(super) const MAX_PAGE: usize = 1000;

/// The status a failure answers with.
fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid | Kind::Sql => StatusCode::BAD_REQUEST,
        Kind::Full => StatusCode::INSUFFICIENT_STORAGE,
        Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Kind::Busy | Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Transaction | Kind::Migration => StatusCode::CONFLICT,
    }
}

/// `{"error": message, "kind": kind}` with the kind's status.
fn failed(failure: &Failure) -> Response {
    let body = json!({ "error": failure.message, "kind": failure.kind });
    json(status(failure.kind), &body)
}

/// Runs `work` on the blocking pool once the node is known to the hive.
async fn blocking(
    web: &Web,
    name: &str,
    work: impl FnOnce(&Web) -> Response + Send + 'static,
) -> Response {
    if !web
        .controller
        .snapshot()
        .nodes
        .iter()
        .any(|n| n.name == name)
    {
        return unknown_node(&web.controller, name);
    }
    let web = web.clone();
    tokio::task::spawn_blocking(move || work(&web))
        .await
        .unwrap_or_else(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the store call failed inside the host: {e}"),
            )
        })
}

/// `GET /api/nodes/{name}/store?after=KEY&limit=N`.
pub(super) async fn list(web: Web, name: String, query: HashMap<String, String>) -> Response {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_PAGE,
        Some(Ok(limit)) if (1..=MAX_PAGE).contains(&limit) => limit,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("limit must be a number from 1 to {MAX_PAGE} (default {DEFAULT_PAGE})"),
            );
        }
    };
    let after = query.get("after").cloned();
    let node = name.clone();
    blocking(&web, &name, move |web| {
        let stores = web.controller.stores();
        let page = stores.entries(&node, after.as_deref(), limit);
        let summary = stores.summary(&node);
        match (page, summary) {
            (Ok(mut page), Ok(summary)) => {
                page["node"] = json!(node);
                page["store"] = summary;
                json(StatusCode::OK, &page)
            }
            (Err(failure), _) | (_, Err(failure)) => failed(&failure),
        }
    })
    .await
}

/// The key from its percent-encoded path segment; `None` if empty or malformed.
fn key_of(segment: &str) -> Option<String> {
    percent_decode(segment).filter(|key| !key.is_empty())
}

fn bad_key() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "the key in the path is empty or not valid percent-encoded UTF-8",
    )
}

fn run(web: &Web, node: &str, call: &Value) -> Result<Value, Failure> {
    web.controller
        .stores()
        .run(node, Caller::this_thread(), &call.to_string())
}

/// `GET /api/nodes/{name}/store/{key}`: `{"key", "value"}`, or 404.
pub(super) async fn get(web: Web, name: String, key: String) -> Response {
    let Some(key) = key_of(&key) else {
        return bad_key();
    };
    let node = name.clone();
    blocking(&web, &name, move |web| {
        match run(web, &node, &json!({ "op": "get", "key": key })) {
            Ok(found) if found["found"] == true => json(
                StatusCode::OK,
                &json!({ "key": key, "value": found["value"] }),
            ),
            Ok(_) => error(
                StatusCode::NOT_FOUND,
                &format!("node `{node}`'s store has no key `{key}`"),
            ),
            Err(failure) => failed(&failure),
        }
    })
    .await
}

/// `PUT /api/nodes/{name}/store/{key}` with a JSON body: stores it; 204.
pub(super) async fn put<S, B>(web: Web, name: String, key: String, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: warp::Buf,
{
    let Some(key) = key_of(&key) else {
        return bad_key();
    };
    let limit = web.controller.config().messages.max_payload_bytes;
    let bytes = match read_limited(body, limit).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body is not JSON ({e}): a value is stored as JSON, so a string needs quotes"
                ),
            );
        }
    };
    let node = name.clone();
    blocking(&web, &name, move |web| {
        match run(
            web,
            &node,
            &json!({ "op": "put", "key": key, "value": value }),
        ) {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(failure) => failed(&failure),
        }
    })
    .await
}

/// `DELETE /api/nodes/{name}/store/{key}`: 204, or 404 if there was no such key.
pub(super) async fn delete(web: Web, name: String, key: String) -> Response {
    let Some(key) = key_of(&key) else {
        return bad_key();
    };
    let node = name.clone();
    blocking(&web, &name, move |web| {
        match run(web, &node, &json!({ "op": "delete", "key": key })) {
            Ok(found) if found["found"] == true => StatusCode::NO_CONTENT.into_response(),
            Ok(_) => error(
                StatusCode::NOT_FOUND,
                &format!("node `{node}`'s store has no key `{key}`"),
            ),
            Err(failure) => failed(&failure),
        }
    })
    .await
}

/// `GET /api/nodes/{name}/query?sql=...`: the rows of a read-only statement (at most 10,000).
pub(super) async fn query(web: Web, name: String, query: HashMap<String, String>) -> Response {
    let Some(sql) = query.get("sql").cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the statement as ?sql=... (percent-encoded), like ?sql=SELECT%20*%20FROM%20hm_kv",
        );
    };
    let node = name.clone();
    blocking(&web, &name, move |web| {
        match web.controller.stores().read_query(&node, &sql) {
            Ok(rows) => json(StatusCode::OK, &json!({ "rows": rows })),
            Err(failure) => failed(&failure),
        }
    })
    .await
}

/// `POST /api/backup?dir=PATH`: copies every node's store into PATH (a folder on the hive's
/// machine; relative to the hive's root), consistent while the nodes go on writing.
pub(super) async fn backup(web: Web, query: HashMap<String, String>) -> Response {
    let Some(dir) = query.get("dir").cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the folder as ?dir=PATH (on the hive's machine; relative paths start at the hive's root)",
        );
    };
    tokio::task::spawn_blocking(move || {
        let dir = web.controller.root().join(dir);
        match web.controller.stores().backup(&dir) {
            Ok(nodes) => json(StatusCode::OK, &json!({ "dir": dir, "nodes": nodes })),
            Err(failure) => failed(&failure),
        }
    })
    .await
    .unwrap_or_else(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the backup failed inside the host: {e}"),
        )
    })
}
