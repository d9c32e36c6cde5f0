//! Each node's own data store, owned by the host: a key-value part and a SQL part with
//! migrations, in one SQLite file per node (`[data] location`/`<node>.db`, see `engine`). Node
//! code reaches it through the ABI's `Host::store` with JSON in and out (`call` holds that
//! language); the web server and `hm data` reach it through [`Stores`].
//!
//! Contract: [`Access::call`] answers every call with the JSON of `call::answer`, never panics
//! and never blocks another node's store. Built without the `store` feature, every call but an
//! empty migration list answers `unavailable`, naming the feature.

pub(crate) mod call;
#[cfg(feature = "store")]
mod engine;

use serde_json::Value;
use std::path::Path;

/// Who makes a call, so that a transaction belongs to the caller that began it: a thread of
/// the host (a node's thread, a web worker), or a thread of an isolated node's process as the
/// host's connection to it numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Caller(pub u64);

impl Caller {
    /// The calling thread of this process.
    pub(crate) fn this_thread() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        Self(ID.with(|id| id * 2 + 1))
    }
}

/// How a node's code reaches its store: the host's stores themselves, or (in an isolated
/// node's process) the connection to the host that holds them.
pub(crate) trait Access: Send + Sync {
    /// Runs `call` (the JSON of `call::Call`) for `node` on behalf of `caller`; the answer's JSON.
    fn call(&self, node: &str, caller: Caller, call: &str) -> String;
}

/// Every node's store of the hive.
pub(crate) struct Stores {
    #[cfg(feature = "store")]
    engine: engine::Stores,
}

impl Stores {
    pub(crate) fn new(config: &crate::config::DataConfig) -> Self {
        #[cfg(not(feature = "store"))]
        let _ = config;
        Self {
            #[cfg(feature = "store")]
            engine: engine::Stores::new(config.clone()),
        }
    }

    /// Runs one call for `node`.
    pub(crate) fn run(
        &self,
        node: &str,
        caller: Caller,
        call: &str,
    ) -> Result<Value, call::Failure> {
        #[cfg(feature = "store")]
        {
            self.engine.call(node, caller, call)
        }
        #[cfg(not(feature = "store"))]
        {
            let _ = caller;
            match call::Call::parse(call)? {
                call::Call::Migrate { migrations } if migrations.is_empty() => {
                    Ok(serde_json::json!({ "applied": 0, "total": 0 }))
                }
                _ => Err(absent(node)),
            }
        }
    }

    /// One page of `node`'s keys with their values (at most `limit`, after key `after`).
    pub(crate) fn entries(
        &self,
        node: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Value, call::Failure> {
        #[cfg(feature = "store")]
        {
            self.engine.entries(node, after, limit)
        }
        #[cfg(not(feature = "store"))]
        {
            let _ = (after, limit);
            Err(absent(node))
        }
    }

    /// A read-only statement on `node`'s store; its rows.
    pub(crate) fn read_query(&self, node: &str, sql: &str) -> Result<Value, call::Failure> {
        #[cfg(feature = "store")]
        {
            self.engine.read_query(node, sql)
        }
        #[cfg(not(feature = "store"))]
        {
            let _ = sql;
            Err(absent(node))
        }
    }

    /// `node`'s store for its page: file size, key count, each table's rows.
    pub(crate) fn summary(&self, node: &str) -> Result<Value, call::Failure> {
        #[cfg(feature = "store")]
        {
            self.engine.summary(node)
        }
        #[cfg(not(feature = "store"))]
        {
            Err(absent(node))
        }
    }

    /// Copies every node's store into `dir` (consistent while the hive runs); the nodes copied.
    pub(crate) fn backup(&self, dir: &Path) -> Result<Vec<String>, call::Failure> {
        #[cfg(feature = "store")]
        {
            self.engine.backup(dir)
        }
        #[cfg(not(feature = "store"))]
        {
            let _ = dir;
            Err(absent("(any)"))
        }
    }
}

impl Access for Stores {
    fn call(&self, node: &str, caller: Caller, call: &str) -> String {
        call::answer(self.run(node, caller, call))
    }
}

/// Why there is no store in a host built without it.
#[cfg(not(feature = "store"))]
fn absent(node: &str) -> call::Failure {
    call::Failure::new(
        call::Kind::Unavailable,
        format!(
            "node `{node}` has no store: this hm was built without its `store` feature; build hm with default features"
        ),
    )
}

/// An isolated node's process has no stores of its own until it is connected.
pub(crate) struct Nowhere;

impl Access for Nowhere {
    fn call(&self, node: &str, _caller: Caller, call: &str) -> String {
        call::answer(match call::Call::parse(call) {
            Ok(call::Call::Migrate { migrations }) if migrations.is_empty() => {
                Ok(serde_json::json!({ "applied": 0, "total": 0 }))
            }
            Ok(_) => Err(call::Failure::new(
                call::Kind::Unavailable,
                format!(
                    "node `{node}`'s store is out of reach here: this process is not connected to the host"
                ),
            )),
            Err(failure) => Err(failure),
        })
    }
}
