//! The store's call language: the JSON a node sends through `Host::store` (and the web server
//! and CLI through [`super::Stores`]) and the JSON that comes back. One module, so that the
//! node API (plugin-api/src/store.rs), the engine and the isolated node's forwarding all speak
//! exactly this.
//!
//! A call is an object with `op`:
//!
//! | op | fields | answer's `ok` |
//! |---|---|---|
//! | `get` | `key` | `{"found": bool, "value": any}` |
//! | `put` | `key`, `value` (any JSON) | `null` |
//! | `delete` | `key` | `{"found": bool}` (whether it was there) |
//! | `keys` | `prefix` (optional) | `["key", ...]` in order |
//! | `execute` | `sql`, `params` (optional array) | `{"changed": n, "last_id": n}` |
//! | `query` | `sql`, `params` (optional array) | `[{"column": value, ...}, ...]` |
//! | `begin` / `commit` / `rollback` | none | `null` |
//! | `migrate` | `migrations` (array of SQL text, in order) | `{"applied": n, "total": n}` |
//!
//! The answer is `{"ok": ...}` or `{"error": {"kind": "...", "message": "..."}}`, the kind one
//! of [`Kind`]'s names in snake case.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One call, as the node (or the web server, or the CLI) sends it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Call {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: Value,
    },
    Delete {
        key: String,
    },
    Keys {
        #[serde(default)]
        prefix: Option<String>,
    },
    Execute {
        sql: String,
        #[serde(default)]
        params: Vec<Value>,
    },
    Query {
        sql: String,
        #[serde(default)]
        params: Vec<Value>,
    },
    Begin,
    Commit,
    Rollback,
    Migrate {
        migrations: Vec<String>,
    },
}

impl Call {
    /// Reads a call; an error answer says what was wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, Failure> {
        serde_json::from_str(text).map_err(|e| {
            Failure::new(
                Kind::Invalid,
                format!("the store call could not be read ({e}); it is JSON with `op` one of get, put, delete, keys, execute, query, begin, commit, rollback, migrate"),
            )
        })
    }
}

/// What kind of failure a call met; the node API's `StoreErrorKind` mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The call itself was malformed.
    Invalid,
    /// A SQL statement failed (syntax, constraint, missing table...).
    Sql,
    /// The store reached `[data] max_bytes`.
    Full,
    /// The call ran past `[data] call_timeout_ms`.
    Timeout,
    /// Another caller holds a transaction open on this node's store past the call timeout.
    Busy,
    /// `commit` or `rollback` without `begin`, or `begin` twice.
    Transaction,
    /// A migration failed, or the library has fewer migrations than the file has applied.
    Migration,
    /// The host has no store (built without the `store` feature), or cannot open the file.
    Unavailable,
}

/// A failed call: its kind and a sentence naming the node, the statement and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The JSON text of an answer.
pub(crate) fn answer(result: Result<Value, Failure>) -> String {
    match result {
        Ok(value) => serde_json::json!({ "ok": value }).to_string(),
        Err(failure) => serde_json::json!({ "error": failure }).to_string(),
    }
}

/// Reads an answer back (the tests' check of the language).
#[cfg(test)]
fn read_answer(text: &str) -> Result<Value, Failure> {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Answer {
        Ok(Value),
        Error(Failure),
    }
    match serde_json::from_str::<Answer>(text) {
        Ok(Answer::Ok(value)) => Ok(value),
        Ok(Answer::Error(failure)) => Err(failure),
        Err(e) => Err(Failure::new(
            Kind::Invalid,
            format!("the store's answer could not be read: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_read_as_documented() {
        assert_eq!(
            Call::parse(r#"{"op":"put","key":"k","value":[1,{"a":null}]}"#).unwrap(),
            Call::Put {
                key: "k".into(),
                value: json!([1, { "a": null }])
            }
        );
        assert_eq!(
            Call::parse(r#"{"op":"query","sql":"SELECT 1"}"#).unwrap(),
            Call::Query {
                sql: "SELECT 1".into(),
                params: vec![]
            }
        );
        assert_eq!(Call::parse(r#"{"op":"begin"}"#).unwrap(), Call::Begin);
        let bad = Call::parse(r#"{"op":"drop"}"#).unwrap_err();
        assert_eq!(bad.kind, Kind::Invalid);
        assert!(bad.message.contains("get, put"), "{}", bad.message);
        assert_eq!(
            Call::parse(r#"{"op":"get","key":"k","extra":1}"#)
                .unwrap_err()
                .kind,
            Kind::Invalid
        );
    }

    #[test]
    fn answers_round_trip() {
        let ok = answer(Ok(json!({"found": true, "value": 3})));
        assert_eq!(
            read_answer(&ok).unwrap(),
            json!({"found": true, "value": 3})
        );
        let failed = answer(Err(Failure::new(Kind::Full, "full")));
        assert_eq!(failed, r#"{"error":{"kind":"full","message":"full"}}"#);
        assert_eq!(read_answer(&failed).unwrap_err().kind, Kind::Full);
    }
}
