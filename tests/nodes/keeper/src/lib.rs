//! The store tests' node: every store call of the node API as a request, a service that counts
//! into the store, and migrations read from a file so that a test can add one and reload.
//!
//! ```toml
//! [nodes.keeper]
//! enabled = true
//! library = "keeper"
//! count_ms = 1        # a service "<name>-count" puts 1, 2, 3 ... under key "counter"
//!                     # (going on from what is stored), one put every count_ms
//! ```
//!
//! Requests (`<name>/do`), each answered `{"ok": ...}` or `{"error": {"kind", "message"}}`:
//! `{"put": [key, value]}`, `{"get": key}`, `{"delete": key}`, `{"keys": null}`,
//! `{"execute": [sql, params]}`, `{"query": [sql, params]}`, and
//! `{"transaction": {"puts": [[key, value], ...], "fail": bool}}` (all puts in one
//! transaction, rolled back if `fail`).
//!
//! Migrations: the JSON array of SQL text in the file named by the environment variable
//! `KEEPER_MIGRATIONS` (none if it is unset), read each time the node is built.

use hivemind::prelude::*;
use std::time::Duration;

/// The node.
pub struct Keeper {
    store: Store,
    prefix: String,
    count_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Command {
    Put(String, Value),
    Get(String),
    Delete(String),
    Keys(Option<String>),
    Execute(String, Vec<Value>),
    Query(String, Vec<Value>),
    Transaction {
        puts: Vec<(String, Value)>,
        fail: bool,
    },
}

fn answer(result: std::result::Result<Value, StoreError>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(error) => json!({
            "error": { "kind": format!("{:?}", error.kind()), "message": error.message() }
        }),
    }
}

impl Keeper {
    fn run(&self, command: Command) -> std::result::Result<Value, StoreError> {
        let store = &self.store;
        Ok(match command {
            Command::Put(key, value) => {
                store.put(&key, &value)?;
                Value::Null
            }
            Command::Get(key) => json!(store.get::<Value>(&key)?),
            Command::Delete(key) => json!(store.delete(&key)?),
            Command::Keys(None) => json!(store.keys()?),
            Command::Keys(Some(prefix)) => json!(store.keys_with_prefix(&prefix)?),
            Command::Execute(sql, params) => {
                let done = store.execute(&sql, &params)?;
                json!({ "changed": done.changed, "last_id": done.last_id })
            }
            Command::Query(sql, params) => json!(store.query::<Value>(&sql, &params)?),
            Command::Transaction { puts, fail } => {
                let outcome = store.transaction(|tx| {
                    for (key, value) in &puts {
                        tx.put(key, value)?;
                    }
                    if fail {
                        return Err(TxError::Told);
                    }
                    Ok(json!(puts.len()))
                });
                match outcome {
                    Ok(value) => value,
                    Err(TxError::Told) => json!("rolled back"),
                    Err(TxError::Store(e)) => return Err(e),
                }
            }
        })
    }
}

/// Why a test's transaction ended without committing.
enum TxError {
    Store(StoreError),
    /// The test said to fail it.
    Told,
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

impl Node for Keeper {
    fn new(context: &Context) -> Result<Self> {
        Ok(Keeper {
            store: context.store(),
            prefix: context.name().to_owned(),
            count_ms: context.settings()["count_ms"].as_u64(),
        })
    }

    fn migrations() -> Vec<&'static str> {
        let Some(path) = std::env::var_os("KEEPER_MIGRATIONS") else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_else(|_| "[]".to_owned());
        let list: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
        list.into_iter()
            .map(|sql| &*Box::leak(sql.into_boxed_str()))
            .collect()
    }

    fn services(&mut self, hive: &mut Services) {
        let Some(every) = self.count_ms else { return };
        let name = format!("{}-count", self.prefix);
        hive.add_service(name, move |service: &Service| {
            let store = service.store();
            let next = store.get::<u64>("counter")?.unwrap_or(0) + 1;
            store.put("counter", &next)?;
            service.sleep_for(Duration::from_millis(every));
            Ok(Flow::Continue)
        });
    }

    fn requests(&mut self, hive: &mut Requests<Self>) {
        hive.add_typed_request(
            format!("{}/do", self.prefix),
            "one store call: {\"put\": [key, value]}, {\"get\": key} ...",
            |node: &mut Self, command: Command, _: &Request| Ok(answer(node.run(command))),
        );
    }
}

hivemind::export_node!(Keeper);
