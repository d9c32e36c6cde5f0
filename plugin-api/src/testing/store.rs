//! The in-memory store a [`TestNode`](super::TestNode) runs on: the host's key-value
//! semantics (JSON values by key, keys in order, `begin`/`commit`/`rollback` around them), kept
//! across [`TestNode::reload`](super::TestNode::reload) as a hive keeps a node's file. SQL
//! (`execute`, `query`) answers `unavailable`: node libraries never link SQLite, so only a hive
//! runs it. Migrations are accepted (and remembered) without being run.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

#[derive(Default)]
struct Inner {
    values: BTreeMap<String, Value>,
    /// The values as they were at `begin`, while a transaction is open.
    before: Option<BTreeMap<String, Value>>,
    migrations: usize,
}

/// One test node's store, shared by its instances across reloads.
#[derive(Default)]
pub(super) struct MemoryStore(Mutex<Inner>);

fn error(kind: &str, message: &str) -> String {
    json!({ "error": { "kind": kind, "message": message } }).to_string()
}

fn ok(value: Value) -> String {
    json!({ "ok": value }).to_string()
}

impl MemoryStore {
    /// Answers one call of the host's store language.
    pub(super) fn call(&self, text: &str) -> String {
        let Ok(call) = serde_json::from_str::<Value>(text) else {
            return error("invalid", "the store call is not JSON");
        };
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = call["key"].as_str().unwrap_or_default().to_owned();
        match call["op"].as_str().unwrap_or_default() {
            "get" => ok(match inner.values.get(&key) {
                Some(value) => json!({ "found": true, "value": value }),
                None => json!({ "found": false, "value": null }),
            }),
            "put" => {
                inner.values.insert(key, call["value"].clone());
                ok(Value::Null)
            }
            "delete" => ok(json!({ "found": inner.values.remove(&key).is_some() })),
            "keys" => {
                let prefix = call["prefix"].as_str().unwrap_or_default();
                let keys: Vec<&String> = inner
                    .values
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .collect();
                ok(json!(keys))
            }
            "begin" if inner.before.is_some() => error(
                "transaction",
                "begin: a transaction is already open (no nesting)",
            ),
            "begin" => {
                inner.before = Some(inner.values.clone());
                ok(Value::Null)
            }
            "commit" | "rollback" => match inner.before.take() {
                None => error("transaction", "commit or rollback without begin"),
                Some(before) => {
                    if call["op"] == "rollback" {
                        inner.values = before;
                    }
                    ok(Value::Null)
                }
            },
            "migrate" => {
                let total = call["migrations"].as_array().map_or(0, Vec::len);
                if total < inner.migrations {
                    return error(
                        "migration",
                        &format!(
                            "the library declares {total} migration(s), but this test's store has seen {}",
                            inner.migrations
                        ),
                    );
                }
                inner.migrations = total;
                ok(json!({ "applied": 0, "total": total }))
            }
            "execute" | "query" => error(
                "unavailable",
                "TestNode's store keeps keys and values in memory; SQL (execute, query) runs only in a hive, where the host owns SQLite: test it end to end with hm",
            ),
            other => error("invalid", &format!("unknown store call `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::{Store, StoreError, StoreErrorKind};
    use std::sync::Arc;

    fn store() -> (Arc<MemoryStore>, Store) {
        let memory = Arc::new(MemoryStore::default());
        let host = crate::abi::HostBox::from_value(
            super::super::host::TestHost(Arc::new(super::super::host::Recorder::new(
                memory.clone(),
            ))),
            abi_stable::sabi_trait::TD_Opaque,
        );
        (memory, Store::new(host))
    }

    #[test]
    fn key_values_and_transactions_keep_the_hosts_semantics() {
        let (_, store) = store();
        store.put("a", &[1, 2]).unwrap();
        store.put("b/1", "x").unwrap();
        assert_eq!(store.get::<Vec<u8>>("a").unwrap(), Some(vec![1, 2]));
        assert_eq!(store.get::<u8>("none").unwrap(), None);
        let wrong = store.get::<String>("a").unwrap_err();
        assert_eq!(wrong.kind(), StoreErrorKind::Decode);
        assert!(wrong.message().contains("`a`"), "{wrong}");
        assert_eq!(store.keys_with_prefix("b/").unwrap(), ["b/1"]);
        let failed: Result<(), StoreError> = store.transaction(|tx| {
            tx.put("a", &0)?;
            tx.delete("b/1")?;
            Err(StoreError::new(StoreErrorKind::Sql, "no"))
        });
        assert!(failed.is_err());
        assert_eq!(store.get::<Vec<u8>>("a").unwrap(), Some(vec![1, 2]));
        assert_eq!(store.keys().unwrap(), ["a", "b/1"]);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.transaction(|tx| -> Result<(), StoreError> {
                tx.put("a", &9)?;
                panic!("in the middle")
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(store.get::<Vec<u8>>("a").unwrap(), Some(vec![1, 2]));
        store.transaction(|tx| tx.put("c", &true)).unwrap();
        assert_eq!(store.get::<bool>("c").unwrap(), Some(true));
        assert!(store.delete("c").unwrap());
        assert!(!store.delete("c").unwrap());
    }

    #[test]
    fn sql_is_unavailable_and_says_why_and_migrations_only_grow() {
        let (_, store) = store();
        let error = store.execute("CREATE TABLE t (x)", ()).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Unavailable);
        assert!(error.message().contains("only in a hive"), "{error}");
        store.migrate(&["one", "two"]).unwrap();
        let down = store.migrate(&["one"]).unwrap_err();
        assert_eq!(down.kind(), StoreErrorKind::Migration);
    }
}
