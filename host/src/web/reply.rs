//! The pieces every handler answers with: a JSON body with its status, the JSON error
//! `{"error": "a sentence saying what and what to do"}`, the 404 for an unknown node, and the
//! ways a request's input is read (a percent-encoded path part, a body of bounded size, the
//! nesting depth of JSON text).
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

/// The deepest nesting of arrays and objects the hive reads in JSON it is given (request
/// arguments, replies): serde_json's own limit, which publishing already has (it refuses a
/// value nested 128 levels or more).
pub(super) const MAX_JSON_DEPTH: usize = 127;

/// How deep `text` nests arrays and objects (brackets inside strings not counted), read in one
/// pass without recursion, so any depth costs only its bytes.
pub(super) fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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

    #[test]
    fn json_depth_counts_nesting_not_brackets_in_strings() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth("[[{\"a\": [1]}]]"), 4);
        assert_eq!(json_depth("[\"[[[[\", \"\\\"[[\"]"), 1);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_depth(&deep), 100_000);
        // The limit is serde_json's: one level more and it refuses to parse.
        let at = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(serde_json::from_str::<serde_json::Value>(&at).is_ok());
        let over = format!("[{at}]");
        assert!(serde_json::from_str::<serde_json::Value>(&over).is_err());
    }
}
