//! The pieces every handler answers with: a JSON body with its status, the JSON error
//! `{"error": "a sentence saying what and what to do"}`, the 404 for an unknown node, and the
//! two ways a request's input is read (a percent-encoded path part, a body of bounded size).
//!
//! Handlers import this module; it imports nothing else of the web server.

use crate::controller::Controller;
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
pub(super) fn unknown_node(controller: &Controller, name: &str) -> Response {
    let known: Vec<String> = controller
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
