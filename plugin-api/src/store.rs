//! The node's own data store, kept by the host: values by key, and SQL tables the node declares
//! with [`Node::migrations`](crate::Node::migrations). It survives hot reloads, restarts of the
//! hive and crashes (of the node's process or of `hm` itself): the host owns the file
//! (`data/<node>.db`, SQLite in WAL mode) and commits each call before it answers.
//!
//! A [`Store`] comes from [`Context::store`](crate::Context::store) (keep it in the node for
//! its callbacks) or [`Service::store`](crate::Service::store); it is cheap to clone and may be
//! used from any of the node's threads.
//!
//! - Key-value: [`Store::put`], [`Store::get`], [`Store::delete`], [`Store::keys`], with any
//!   [`Serialize`] / [`Deserialize`] value (stored as JSON). Each call is atomic.
//! - SQL: [`Store::execute`] and [`Store::query`] with parameters (a tuple, an array or a
//!   `Vec` of JSON-able values; `()` for none), rows decoded into the node's own types (one
//!   field per column); [`Store::transaction`] runs a closure in one transaction.
//! - Every call blocks for at most the hive's `[data] call_timeout_ms` and fails with a
//!   [`StoreError`] whose [`kind`](StoreError::kind) says why.
//!
//! Under [`testing::TestNode`](crate::testing::TestNode) the key-value part and transactions
//! work in memory with the same semantics; SQL calls fail with [`StoreErrorKind::Unavailable`]
//! (there is no SQLite in a node's own tests: node libraries never link it) and migrations are
//! accepted without being run.
//!
//! ```
//! use hivemind::prelude::*;
//! use hivemind::testing::TestNode;
//!
//! pub struct Counter {
//!     store: Store,
//! }
//!
//! impl Node for Counter {
//!     fn new(context: &Context) -> Result<Self> {
//!         Ok(Counter { store: context.store() })
//!     }
//!
//!     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
//!         hive.add_subscription("button", |node: &mut Self, _: &Message| {
//!             let presses: u64 = node.store.get("presses")?.unwrap_or(0);
//!             node.store.put("presses", &(presses + 1))?;
//!             Ok(())
//!         });
//!     }
//! }
//! hivemind::export_node!(Counter);
//!
//! let mut node = TestNode::<Counter>::new().unwrap();
//! node.deliver("button", "press").unwrap();
//! node.deliver("button", "press").unwrap();
//! assert_eq!(node.store().get::<u64>("presses").unwrap(), Some(2));
//! let sql = node.store().query::<Value>("SELECT 1", ()).unwrap_err();
//! assert_eq!(sql.kind(), StoreErrorKind::Unavailable);
//! ```

use crate::abi::HostBox;
use abi_stable::std_types::RStr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// A handle on the node's store. See the [module](self).
#[derive(Clone)]
pub struct Store {
    host: HostBox,
}

/// What [`Store::execute`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Executed {
    /// Rows the statement inserted, changed or deleted.
    pub changed: u64,
    /// The row id of the last row inserted on the node's connection.
    pub last_id: i64,
}

/// Why a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The call could not be read by the host (a bug in this crate or a mismatched host).
    Invalid,
    /// A SQL statement failed: its syntax, a constraint, a missing table.
    Sql,
    /// The store is at its size limit (`[data] max_bytes`).
    Full,
    /// The call ran past `[data] call_timeout_ms` and was interrupted.
    Timeout,
    /// Another caller's transaction held the store past the call timeout.
    Busy,
    /// `begin` twice, or `commit`/`rollback` without `begin` (not with [`Store::transaction`]).
    Transaction,
    /// A migration failed, or the library declares fewer migrations than the store applied.
    Migration,
    /// There is no store here (a host without one, or SQL under `TestNode`); the message says.
    Unavailable,
    /// A value could not be turned into JSON.
    Encode,
    /// What was stored does not decode into the type asked for.
    Decode,
}

/// A failed store call: its [`kind`](Self::kind) and a message that names the node, the
/// statement or key, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why it failed.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// What the host said.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Value),
    Error(StoreError),
}

#[derive(Deserialize)]
struct Found {
    found: bool,
    #[serde(default)]
    value: Value,
}

impl Store {
    pub(crate) fn new(host: HostBox) -> Self {
        Self { host }
    }

    /// Sends one call in the host's store language; its `ok` value.
    fn call(&self, call: &Value) -> Result<Value, StoreError> {
        let text = call.to_string();
        let answer = self.host.store(RStr::from_str(&text));
        match serde_json::from_str::<Answer>(answer.as_str()) {
            Ok(Answer::Ok(value)) => Ok(value),
            Ok(Answer::Error(error)) => Err(error),
            Err(e) => Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "the host's store answer could not be read ({e}): is hm the version this node was built against?"
                ),
            )),
        }
    }

    /// The value stored under `key`, decoded into `T`; `None` if there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let found: Found = decode(key, self.call(&json!({ "op": "get", "key": key }))?)?;
        if !found.found {
            return Ok(None);
        }
        decode(key, found.value).map(Some)
    }

    /// Stores `value` (as JSON) under `key`, replacing what was there.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let value = encode(key, value)?;
        self.call(&json!({ "op": "put", "key": key, "value": value }))
            .map(drop)
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let found: Found = decode(key, self.call(&json!({ "op": "delete", "key": key }))?)?;
        Ok(found.found)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Result<Vec<String>, StoreError> {
        decode("keys", self.call(&json!({ "op": "keys" }))?)
    }

    /// The keys that start with `prefix`, in order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        decode(
            "keys",
            self.call(&json!({ "op": "keys", "prefix": prefix }))?,
        )
    }

    /// Runs one SQL statement that returns no rows (`INSERT`, `UPDATE`, `CREATE` ...) with
    /// `params` for its `?1`, `?2` ... (a tuple, an array, a `Vec`; `()` for none).
    pub fn execute(&self, sql: &str, params: impl Serialize) -> Result<Executed, StoreError> {
        let params = parameters(sql, params)?;
        decode(
            sql,
            self.call(&json!({ "op": "execute", "sql": sql, "params": params }))?,
        )
    }

    /// Runs a SQL query with `params`; each row, an object of its columns by name, decoded
    /// into `T` (a struct with one field per column, or [`Value`]).
    pub fn query<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Serialize,
    ) -> Result<Vec<T>, StoreError> {
        let params = parameters(sql, params)?;
        decode(
            sql,
            self.call(&json!({ "op": "query", "sql": sql, "params": params }))?,
        )
    }

    /// Runs `work` in one transaction: committed if it returns `Ok`, rolled back if it returns
    /// an error or panics. Other callers of this node's store (its other threads, the HTTP
    /// API) wait until it ends, so keep it short; other nodes never wait.
    pub fn transaction<R, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Store) -> Result<R, E>,
    ) -> Result<R, E> {
        self.call(&json!({ "op": "begin" }))?;
        match catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(Ok(value)) => {
                self.call(&json!({ "op": "commit" }))?;
                Ok(value)
            }
            Ok(Err(error)) => {
                self.call(&json!({ "op": "rollback" }))?;
                Err(error)
            }
            Err(panic) => {
                let _ = self.call(&json!({ "op": "rollback" }));
                resume_unwind(panic)
            }
        }
    }

    /// Applies `migrations` the store has not seen (the glue calls it before `Node::new`).
    pub(crate) fn migrate(&self, migrations: &[&str]) -> Result<(), StoreError> {
        self.call(&json!({ "op": "migrate", "migrations": migrations }))
            .map(drop)
    }
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Encode,
            format!("the value for `{key}` cannot be stored as JSON: {e}"),
        )
    })
}

fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Decode,
            format!(
                "what the store holds for `{what}` does not decode into {}: {e}",
                std::any::type_name::<T>()
            ),
        )
    })
}

fn parameters(sql: &str, params: impl Serialize) -> Result<Vec<Value>, StoreError> {
    match encode(sql, &params)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(values) => Ok(values),
        one => Ok(vec![one]),
    }
}
