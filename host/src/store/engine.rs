//! The SQLite engine behind every node's store: one file `<location>/<node>.db` per node, in WAL
//! mode with `synchronous = NORMAL`, opened on first use and kept open by the host. Each node
//! has one read-write connection (the node's calls and the HTTP writes, one at a time) and one
//! read-only connection (HTTP reads, the read-only query endpoint and backups), which WAL lets
//! run beside the writer without waiting for it.
//!
//! Contract: a call runs to the end or fails whole (a key-value call is one statement; a
//! migration list is one transaction); a call never runs past `[data] call_timeout_ms` (the
//! progress handler interrupts it); a transaction a caller opened with `begin` belongs to that
//! caller until it commits or rolls back, and anyone else's call on the same node waits for it
//! (at most the call timeout, then fails as busy), while other nodes never wait: each has its
//! own file. The file never grows past `[data] max_bytes` (`PRAGMA max_page_count`).

use super::Caller;
use super::call::{Call, Failure, Kind};
use crate::config::DataConfig;
use parking_lot::{Condvar, Mutex};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Number, Value, json};
use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many SQLite virtual-machine steps run between two looks at the call's deadline.
const PROGRESS_STEPS: i32 = 1000;
/// Most entries one page of `GET /api/nodes/{name}/store` holds.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most rows the read-only query endpoint returns.
pub(crate) const MAX_ROWS: usize = 10_000;

/// The tables every store has. `hm_` names are the host's; a node's own tables use others.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hm_kv (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hm_migrations (idx INTEGER PRIMARY KEY, sql TEXT NOT NULL, applied_at TEXT NOT NULL);
";

/// Every node's store of one hive, opened on first use.
pub(crate) struct Stores {
    config: DataConfig,
    open: Mutex<HashMap<String, Arc<NodeStore>>>,
}

impl Stores {
    pub(crate) fn new(config: DataConfig) -> Self {
        Self {
            config,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The file of `node`'s store.
    pub(crate) fn path(&self, node: &str) -> PathBuf {
        self.config.location.join(format!("{node}.db"))
    }

    /// Runs one call of `node`'s (from `caller`) and answers it.
    pub(crate) fn call(&self, node: &str, caller: Caller, call: &str) -> Result<Value, Failure> {
        let call = Call::parse(call)?;
        if let Call::Migrate { migrations } = &call
            && migrations.is_empty()
            && !self.is_open(node)
            && !self.path(node).exists()
        {
            // A node that never declared a migration and never stored anything gets no file.
            return Ok(json!({ "applied": 0, "total": 0 }));
        }
        self.store(node)?.run(caller, call)
    }

    fn is_open(&self, node: &str) -> bool {
        self.open.lock().contains_key(node)
    }

    /// `node`'s store, opened (and made) if it is not yet.
    fn store(&self, node: &str) -> Result<Arc<NodeStore>, Failure> {
        let mut open = self.open.lock();
        if let Some(store) = open.get(node) {
            return Ok(store.clone());
        }
        let store = Arc::new(NodeStore::open(node, &self.path(node), &self.config)?);
        open.insert(node.to_owned(), store.clone());
        Ok(store)
    }

    /// `node`'s store if its file exists (reads never make one).
    fn existing(&self, node: &str) -> Result<Option<Arc<NodeStore>>, Failure> {
        if self.is_open(node) || self.path(node).exists() {
            self.store(node).map(Some)
        } else {
            Ok(None)
        }
    }

    /// One page of `node`'s keys with their values, in key order, after `after`.
    pub(crate) fn entries(
        &self,
        node: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Value, Failure> {
        let Some(store) = self.existing(node)? else {
            return Ok(json!({ "entries": [], "next": null }));
        };
        store.entries(after, limit.min(MAX_PAGE))
    }

    /// Runs a read-only statement on `node`'s store.
    pub(crate) fn read_query(&self, node: &str, sql: &str) -> Result<Value, Failure> {
        match self.existing(node)? {
            Some(store) => store.read_query(sql),
            None => Err(Failure::new(
                Kind::Sql,
                format!(
                    "node `{node}` has no store yet: it has stored nothing and declared no migration"
                ),
            )),
        }
    }

    /// What `node`'s store holds, for its page: the file's size and each table's row count.
    pub(crate) fn summary(&self, node: &str) -> Result<Value, Failure> {
        match self.existing(node)? {
            Some(store) => store.summary(),
            None => Ok(json!({ "exists": false, "keys": 0, "tables": [] })),
        }
    }

    /// Copies every node's store to `dir/<node>.db` with SQLite's online backup (each copy a
    /// consistent snapshot, taken while the nodes go on writing); returns the nodes copied.
    pub(crate) fn backup(&self, dir: &Path) -> Result<Vec<String>, Failure> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::new(
                Kind::Unavailable,
                format!("cannot make the backup folder {}: {e}", dir.display()),
            )
        })?;
        let mut nodes: Vec<String> = self.open.lock().keys().cloned().collect();
        if let Ok(files) = std::fs::read_dir(&self.config.location) {
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "db")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && crate::names::check_node_name(stem).is_ok()
                {
                    nodes.push(stem.to_owned());
                }
            }
        }
        nodes.sort();
        nodes.dedup();
        for node in &nodes {
            let store = self.store(node)?;
            store.backup(&dir.join(format!("{node}.db")))?;
        }
        Ok(nodes)
    }
}

/// One node's open store.
struct NodeStore {
    node: String,
    path: PathBuf,
    max_bytes: u64,
    timeout: Duration,
    writer: Mutex<Writer>,
    /// Signalled when a transaction ends.
    free: Condvar,
    reader: Mutex<Guarded>,
}

/// A connection whose calls the progress handler stops at their deadline.
struct Guarded {
    connection: Connection,
    /// The running call's deadline, in microseconds after `epoch`.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
}

impl Guarded {
    fn new(connection: Connection) -> rusqlite::Result<Self> {
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let watched = deadline.clone();
        connection.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                now > watched.load(Ordering::Relaxed)
            }),
        )?;
        Ok(Self {
            connection,
            deadline,
            epoch,
        })
    }

    /// Lets the next statements run until `deadline`.
    fn arm(&self, deadline: Instant) {
        let micros = deadline.saturating_duration_since(self.epoch).as_micros();
        self.deadline
            .store(u64::try_from(micros).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

struct Writer {
    guarded: Guarded,
    /// Who opened the transaction in progress, if anyone did.
    owner: Option<Caller>,
}

impl NodeStore {
    fn open(node: &str, path: &Path, config: &DataConfig) -> Result<Self, Failure> {
        let unavailable = |e: &dyn std::fmt::Display| {
            Failure::new(
                Kind::Unavailable,
                format!(
                    "node `{node}`'s store {} cannot be opened: {e}; check that [data] location in config/hive.toml is a folder the host may write",
                    path.display()
                ),
            )
        };
        std::fs::create_dir_all(&config.location).map_err(|e| unavailable(&e))?;
        let connection = Connection::open(path).map_err(|e| unavailable(&e))?;
        connection
            .busy_timeout(config.call_timeout)
            .and_then(|()| connection.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.execute_batch(SCHEMA))
            .map_err(|e| unavailable(&e))?;
        let page_size: i64 = connection
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(|e| unavailable(&e))?;
        let pages = (config.max_bytes / u64::try_from(page_size).unwrap_or(4096).max(512)).max(1);
        // `PRAGMA max_page_count = N` answers with the limit it set (a row), so it is a query.
        connection
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(|e| unavailable(&e))?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|reader| {
            reader.busy_timeout(config.call_timeout)?;
            Ok(reader)
        })
        .map_err(|e| unavailable(&e))?;
        Ok(Self {
            node: node.to_owned(),
            path: path.to_owned(),
            max_bytes: config.max_bytes,
            timeout: config.call_timeout,
            writer: Mutex::new(Writer {
                guarded: Guarded::new(connection).map_err(|e| unavailable(&e))?,
                owner: None,
            }),
            free: Condvar::new(),
            reader: Mutex::new(Guarded::new(reader).map_err(|e| unavailable(&e))?),
        })
    }

    /// Runs `call` for `caller` on the writer, after any other caller's transaction ends.
    fn run(&self, caller: Caller, call: Call) -> Result<Value, Failure> {
        let deadline = Instant::now() + self.timeout;
        let mut writer = self.writer.lock();
        while writer.owner.is_some_and(|owner| owner != caller) {
            if self.free.wait_until(&mut writer, deadline).timed_out() {
                return Err(Failure::new(
                    Kind::Busy,
                    format!(
                        "node `{}`'s store is held by a transaction that has not ended within {} ms ([data] call_timeout_ms in config/hive.toml); end transactions promptly (the node API's transaction() does)",
                        self.node,
                        self.timeout.as_millis()
                    ),
                ));
            }
        }
        writer.guarded.arm(deadline);
        let connection = &writer.guarded.connection;
        let answer = match call {
            Call::Get { key } => connection
                .query_row(
                    "SELECT value FROM hm_kv WHERE key = ?1",
                    [&key],
                    |row| row.get::<_, String>(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(|e| self.failure("get", &key, &e))
                .map(|text| match text {
                    Some(text) => json!({
                        "found": true,
                        "value": serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                    }),
                    None => json!({ "found": false, "value": null }),
                }),
            Call::Put { key, value } => connection
                .execute(
                    "INSERT INTO hm_kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [&key, &value.to_string()],
                )
                .map(|_| Value::Null)
                .map_err(|e| self.failure("put", &key, &e)),
            Call::Delete { key } => connection
                .execute("DELETE FROM hm_kv WHERE key = ?1", [&key])
                .map(|n| json!({ "found": n > 0 }))
                .map_err(|e| self.failure("delete", &key, &e)),
            Call::Keys { prefix } => keys(connection, prefix.as_deref())
                .map_err(|e| self.failure("keys", prefix.as_deref().unwrap_or(""), &e)),
            Call::Execute { sql, params } => execute(connection, &sql, &params)
                .map_err(|e| self.failure("execute", &sql, &e)),
            Call::Query { sql, params } => query(connection, &sql, &params, usize::MAX)
                .map_err(|e| self.failure("query", &sql, &e)),
            Call::Begin => {
                if writer.owner.is_some() {
                    return Err(self.misuse("begin: a transaction is already open (no nesting)"));
                }
                let begun = writer
                    .guarded
                    .connection
                    .execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| self.failure("begin", "BEGIN IMMEDIATE", &e));
                if begun.is_ok() {
                    writer.owner = Some(caller);
                }
                begun.map(|()| Value::Null)
            }
            Call::Commit | Call::Rollback => {
                let (op, sql) = if matches!(call, Call::Commit) {
                    ("commit", "COMMIT")
                } else {
                    ("rollback", "ROLLBACK")
                };
                if writer.owner.is_none() {
                    return Err(self.misuse(&format!("{op} without begin")));
                }
                let ended = writer.guarded.connection.execute_batch(sql);
                // A failed COMMIT (the file full, say) leaves the transaction open: roll back,
                // so that the store is never left held.
                if ended.is_err() && !writer.guarded.connection.is_autocommit() {
                    let _ = writer.guarded.connection.execute_batch("ROLLBACK");
                }
                writer.owner = None;
                self.free.notify_all();
                ended
                    .map(|()| Value::Null)
                    .map_err(|e| self.failure(op, sql, &e))
            }
            Call::Migrate { migrations } => {
                if writer.owner.is_some() {
                    return Err(self.misuse("migrate inside a transaction"));
                }
                self.migrate(&writer.guarded.connection, &migrations)
            }
        };
        writer
            .guarded
            .arm(Instant::now() + Duration::from_secs(365 * 24 * 3600));
        answer
    }

    fn misuse(&self, what: &str) -> Failure {
        Failure::new(
            Kind::Transaction,
            format!(
                "node `{}`'s store: {what}; pair every begin with one commit or rollback (the node API's transaction() does)",
                self.node
            ),
        )
    }

    /// Applies the migrations the file has not seen, in one transaction.
    fn migrate(&self, connection: &Connection, migrations: &[String]) -> Result<Value, Failure> {
        let seen: Vec<(i64, String)> = connection
            .prepare("SELECT idx, sql FROM hm_migrations ORDER BY idx")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.failure("migrate", "SELECT FROM hm_migrations", &e))?;
        if migrations.len() < seen.len() {
            return Err(Failure::new(
                Kind::Migration,
                format!(
                    "node `{}`'s library declares {} migration(s), but its store {} has already applied {}: a library older than its data is refused; build the node with all {} migrations in Node::migrations() (never remove one), or restore an older backup of the store",
                    self.node,
                    migrations.len(),
                    self.path.display(),
                    seen.len(),
                    seen.len()
                ),
            ));
        }
        for ((index, applied), declared) in seen.iter().zip(migrations) {
            if applied.trim() != declared.trim() {
                return Err(Failure::new(
                    Kind::Migration,
                    format!(
                        "node `{}`'s migration {} is not the one its store {} applied (`{}` then, `{}` now): an applied migration never changes; undo the edit and add a new migration at the end instead",
                        self.node,
                        index + 1,
                        self.path.display(),
                        short(applied),
                        short(declared)
                    ),
                ));
            }
        }
        let total = migrations.len();
        let new = &migrations[seen.len()..];
        if new.is_empty() {
            return Ok(json!({ "applied": 0, "total": total }));
        }
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.failure("migrate", "BEGIN IMMEDIATE", &e))?;
        for (offset, sql) in new.iter().enumerate() {
            let index = seen.len() + offset;
            let applied = connection.execute_batch(sql).and_then(|()| {
                connection.execute(
                    "INSERT INTO hm_migrations (idx, sql, applied_at) VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    rusqlite::params![index as i64, sql],
                )
            });
            if let Err(e) = applied {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(Failure::new(
                    Kind::Migration,
                    format!(
                        "node `{}`'s migration {} of {} failed: `{}`: {}; none of its {} new migration(s) was applied. Fix that migration in Node::migrations() and reload",
                        self.node,
                        index + 1,
                        total,
                        short(sql),
                        e,
                        new.len()
                    ),
                ));
            }
        }
        connection
            .execute_batch("COMMIT")
            .map_err(|e| self.failure("migrate", "COMMIT", &e))?;
        Ok(json!({ "applied": new.len(), "total": total }))
    }

    fn failure(&self, op: &str, what: &str, error: &rusqlite::Error) -> Failure {
        let code = error.sqlite_error_code();
        let kind = match code {
            Some(rusqlite::ErrorCode::DiskFull) => Kind::Full,
            Some(rusqlite::ErrorCode::OperationInterrupted) => Kind::Timeout,
            _ => Kind::Sql,
        };
        let fix = match kind {
            Kind::Full => format!(
                "the store is at its limit of {} bytes ([data] max_bytes in config/hive.toml): delete what is no longer needed, or raise the limit",
                self.max_bytes
            ),
            Kind::Timeout => format!(
                "it ran past {} ms ([data] call_timeout_ms in config/hive.toml): make the statement cheaper (an index?), split the work, or raise the limit",
                self.timeout.as_millis()
            ),
            _ => "fix the statement or its parameters".to_owned(),
        };
        let subject = match op {
            "get" | "put" | "delete" => format!("{op} of key `{}`", short(what)),
            "keys" => "keys".to_owned(),
            _ => format!("{op} `{}`", short(what)),
        };
        Failure::new(
            kind,
            format!(
                "node `{}`'s store: {subject} failed: {error}; {fix}",
                self.node
            ),
        )
    }

    fn entries(&self, after: Option<&str>, limit: usize) -> Result<Value, Failure> {
        let reader = self.reader.lock();
        reader.arm(Instant::now() + self.timeout);
        let rows: Result<Vec<(String, String)>, rusqlite::Error> = reader
            .connection
            .prepare_cached("SELECT key, value FROM hm_kv WHERE key > ?1 ORDER BY key LIMIT ?2")
            .and_then(|mut statement| {
                statement
                    .query_map(
                        rusqlite::params![after.unwrap_or(""), (limit + 1) as i64],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?
                    .collect()
            });
        let mut rows = rows.map_err(|e| self.failure("keys", "", &e))?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        let entries: Vec<Value> = rows
            .into_iter()
            .map(|(key, text)| {
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                json!({ "key": key, "value": value })
            })
            .collect();
        Ok(json!({ "entries": entries, "next": next }))
    }

    fn read_query(&self, sql: &str) -> Result<Value, Failure> {
        let reader = self.reader.lock();
        reader.arm(Instant::now() + self.timeout);
        let statement = reader
            .connection
            .prepare(sql)
            .map_err(|e| self.failure("query", sql, &e))?;
        if !statement.readonly() {
            return Err(Failure::new(
                Kind::Sql,
                format!(
                    "node `{}`'s store: `{}` would change the store, and this endpoint only reads: change a node's data through the node, or PUT /api/nodes/{}/store/KEY",
                    self.node,
                    short(sql),
                    self.node
                ),
            ));
        }
        drop(statement);
        query(&reader.connection, sql, &[], MAX_ROWS).map_err(|e| self.failure("query", sql, &e))
    }

    fn summary(&self) -> Result<Value, Failure> {
        let reader = self.reader.lock();
        reader.arm(Instant::now() + self.timeout);
        let connection = &reader.connection;
        let names: Result<Vec<String>, rusqlite::Error> = connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect());
        let names = names.map_err(|e| self.failure("query", "sqlite_schema", &e))?;
        let mut tables = Vec::new();
        let mut keys = 0;
        for name in names {
            let rows: i64 = connection
                .query_row(
                    &format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")),
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| self.failure("query", &name, &e))?;
            if name == "hm_kv" {
                keys = rows;
            }
            tables.push(json!({ "name": name, "rows": rows }));
        }
        let bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(json!({
            "exists": true,
            "file": self.path,
            "bytes": bytes,
            "max_bytes": self.max_bytes,
            "keys": keys,
            "tables": tables,
        }))
    }

    fn backup(&self, to: &Path) -> Result<(), Failure> {
        let failed = |e: &dyn std::fmt::Display| {
            Failure::new(
                Kind::Unavailable,
                format!(
                    "node `{}`'s store could not be backed up to {}: {e}",
                    self.node,
                    to.display()
                ),
            )
        };
        // A backup never replaces a file (nor follows a link): the copy is a new file, private
        // to the hive's user, or nothing.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Failure::new(
                        Kind::Invalid,
                        format!(
                            "{} already exists: a backup never replaces a file; back up into a new or empty folder",
                            to.display()
                        ),
                    )
                } else {
                    failed(&e)
                }
            })?;
        let mut target = Connection::open(to).map_err(|e| failed(&e))?;
        let reader = self.reader.lock();
        reader.arm(Instant::now() + Duration::from_secs(24 * 3600));
        {
            let backup = rusqlite::backup::Backup::new(&reader.connection, &mut target)
                .map_err(|e| failed(&e))?;
            // All pages in one step: one read transaction, so one consistent snapshot, while
            // the writer goes on (WAL).
            loop {
                match backup.step(-1).map_err(|e| failed(&e))? {
                    rusqlite::backup::StepResult::Done => break,
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        reader.arm(Instant::now() + Duration::from_secs(365 * 24 * 3600));
        Ok(())
    }
}

/// The first line of a statement, cut to 120 characters, for messages.
fn short(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    let mut text: String = line.chars().take(120).collect();
    if text.len() < sql.trim().len() {
        text.push('…');
    }
    text
}

fn keys(connection: &Connection, prefix: Option<&str>) -> rusqlite::Result<Value> {
    let mut statement = connection.prepare_cached(
        "SELECT key FROM hm_kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
    )?;
    let keys: Vec<String> = statement
        .query_map([prefix.unwrap_or("")], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(json!(keys))
}

/// A JSON parameter as SQLite takes it: booleans as 0 and 1, arrays and objects as JSON text.
fn param(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// A column's value as JSON: blobs as arrays of bytes.
fn column(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(b.to_vec()),
    }
}

fn execute(connection: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Value> {
    let params: Vec<SqlValue> = params.iter().map(param).collect();
    let changed = connection.execute(sql, rusqlite::params_from_iter(params))?;
    Ok(json!({ "changed": changed, "last_id": connection.last_insert_rowid() }))
}

fn query(
    connection: &Connection,
    sql: &str,
    params: &[Value],
    limit: usize,
) -> rusqlite::Result<Value> {
    let mut statement = connection.prepare(sql)?;
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let params: Vec<SqlValue> = params.iter().map(param).collect();
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if out.len() == limit {
            break;
        }
        let mut object = Map::new();
        for (i, name) in names.iter().enumerate() {
            object.insert(name.clone(), column(row.get_ref(i)?));
        }
        out.push(Value::Object(object));
    }
    Ok(Value::Array(out))
}

/// SQLite's own checks, for tests: `PRAGMA integrity_check` says `ok`.
#[cfg(test)]
fn integrity(path: &Path) -> String {
    let connection = Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(dir: &Path, max_bytes: u64, timeout_ms: u64) -> Stores {
        Stores::new(DataConfig {
            location: dir.join("data"),
            max_bytes,
            call_timeout: Duration::from_millis(timeout_ms),
        })
    }

    fn call(stores: &Stores, text: &str) -> Result<Value, Failure> {
        stores.call("n", Caller(1), text)
    }

    #[test]
    fn key_values_of_every_kind_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 1 << 30, 5000);
        for value in [
            json!(null),
            json!(true),
            json!(-7),
            json!(1.5),
            json!("text"),
            json!([1, "a", null]),
            json!({"a": {"b": [false]}}),
        ] {
            let put = json!({"op": "put", "key": "k", "value": value}).to_string();
            call(&s, &put).unwrap();
            assert_eq!(
                call(&s, r#"{"op":"get","key":"k"}"#).unwrap(),
                json!({"found": true, "value": value})
            );
        }
        assert_eq!(
            call(&s, r#"{"op":"get","key":"none"}"#).unwrap()["found"],
            json!(false)
        );
        call(&s, r#"{"op":"put","key":"a/1","value":1}"#).unwrap();
        assert_eq!(
            call(&s, r#"{"op":"keys","prefix":"a/"}"#).unwrap(),
            json!(["a/1"])
        );
        assert_eq!(
            call(&s, r#"{"op":"delete","key":"a/1"}"#).unwrap(),
            json!({"found": true})
        );
        assert_eq!(call(&s, r#"{"op":"keys"}"#).unwrap(), json!(["k"]));
        assert!(s.path("n").exists());
        assert_eq!(integrity(&s.path("n")), "ok");
        let mode: String = Connection::open(s.path("n"))
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn sql_with_params_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 1 << 30, 5000);
        call(
            &s,
            r#"{"op":"execute","sql":"CREATE TABLE t (a INTEGER, b TEXT, c REAL)"}"#,
        )
        .unwrap();
        let done = call(
            &s,
            r#"{"op":"execute","sql":"INSERT INTO t VALUES (?1, ?2, ?3)","params":[3,"x",0.5]}"#,
        )
        .unwrap();
        assert_eq!(done, json!({"changed": 1, "last_id": 1}));
        assert_eq!(
            call(
                &s,
                r#"{"op":"query","sql":"SELECT * FROM t WHERE a = ?1","params":[3]}"#
            )
            .unwrap(),
            json!([{"a": 3, "b": "x", "c": 0.5}])
        );
        let bad = call(&s, r#"{"op":"query","sql":"SELECT * FROM nope"}"#).unwrap_err();
        assert_eq!(bad.kind, Kind::Sql);
        assert!(bad.message.contains("node `n`"), "{}", bad.message);
        assert!(
            bad.message.contains("SELECT * FROM nope"),
            "{}",
            bad.message
        );
        let write = s.read_query("n", "DELETE FROM t").unwrap_err();
        assert!(write.message.contains("only reads"), "{}", write.message);
        assert_eq!(
            s.read_query("n", "SELECT a FROM t").unwrap(),
            json!([{"a": 3}])
        );
    }

    #[test]
    fn transactions_belong_to_their_caller() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 1 << 30, 200);
        call(&s, r#"{"op":"begin"}"#).unwrap();
        call(&s, r#"{"op":"put","key":"k","value":1}"#).unwrap();
        let other = s
            .call("n", Caller(2), r#"{"op":"get","key":"k"}"#)
            .unwrap_err();
        assert_eq!(other.kind, Kind::Busy, "{}", other.message);
        // Another node's store never waits for this one.
        s.call("m", Caller(2), r#"{"op":"put","key":"k","value":2}"#)
            .unwrap();
        call(&s, r#"{"op":"rollback"}"#).unwrap();
        assert_eq!(
            s.call("n", Caller(2), r#"{"op":"get","key":"k"}"#).unwrap()["found"],
            json!(false)
        );
        assert_eq!(
            call(&s, r#"{"op":"commit"}"#).unwrap_err().kind,
            Kind::Transaction
        );
    }

    #[test]
    fn migrations_apply_once_refuse_downgrades_and_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 1 << 30, 5000);
        let none = call(&s, r#"{"op":"migrate","migrations":[]}"#).unwrap();
        assert_eq!(none["applied"], 0);
        assert!(
            !s.path("n").exists(),
            "no file for a node that stores nothing"
        );
        let one = r#"{"op":"migrate","migrations":["CREATE TABLE a (x)"]}"#;
        assert_eq!(call(&s, one).unwrap()["applied"], 1);
        assert_eq!(call(&s, one).unwrap()["applied"], 0);
        let failing = r#"{"op":"migrate","migrations":["CREATE TABLE a (x)","CREATE TABLE b (y)","CREATE TABLE oops ("]}"#;
        let failed = call(&s, failing).unwrap_err();
        assert_eq!(failed.kind, Kind::Migration);
        assert!(
            failed.message.contains("migration 3 of 3"),
            "{}",
            failed.message
        );
        assert!(
            failed.message.contains("CREATE TABLE oops ("),
            "{}",
            failed.message
        );
        // All or nothing: b was not made either.
        assert!(call(&s, r#"{"op":"query","sql":"SELECT * FROM b"}"#).is_err());
        let two = r#"{"op":"migrate","migrations":["CREATE TABLE a (x)","CREATE TABLE b (y)"]}"#;
        assert_eq!(call(&s, two).unwrap()["applied"], 1);
        let down = call(&s, one).unwrap_err();
        assert_eq!(down.kind, Kind::Migration);
        assert!(
            down.message.contains("declares 1 migration(s)"),
            "{}",
            down.message
        );
        assert!(
            down.message.contains("already applied 2"),
            "{}",
            down.message
        );
        let changed = call(
            &s,
            r#"{"op":"migrate","migrations":["CREATE TABLE z (x)","CREATE TABLE b (y)"]}"#,
        )
        .unwrap_err();
        assert!(
            changed.message.contains("migration 1 is not"),
            "{}",
            changed.message
        );
        let applied = s
            .read_query("n", "SELECT idx, sql FROM hm_migrations ORDER BY idx")
            .unwrap();
        assert_eq!(
            applied,
            json!([{"idx": 0, "sql": "CREATE TABLE a (x)"}, {"idx": 1, "sql": "CREATE TABLE b (y)"}])
        );
    }

    #[test]
    fn the_size_limit_and_the_timeout_hold() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 64 << 10, 100);
        let big = "x".repeat(4000);
        let mut full = None;
        for i in 0..100 {
            let put = json!({"op": "put", "key": format!("k{i}"), "value": big}).to_string();
            if let Err(e) = call(&s, &put) {
                full = Some(e);
                break;
            }
        }
        let full = full.expect("64 KiB holds fewer than 100 values of 4 KB");
        assert_eq!(full.kind, Kind::Full, "{}", full.message);
        assert!(
            full.message.contains("[data] max_bytes"),
            "{}",
            full.message
        );
        assert!(std::fs::metadata(s.path("n")).unwrap().len() <= 64 << 10);
        let slow = call(
            &s,
            r#"{"op":"query","sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"}"#,
        )
        .unwrap_err();
        assert_eq!(slow.kind, Kind::Timeout, "{}", slow.message);
        assert!(
            slow.message.contains("[data] call_timeout_ms"),
            "{}",
            slow.message
        );
        // The next call runs again.
        assert!(call(&s, r#"{"op":"keys"}"#).is_ok());
    }

    #[test]
    fn pages_summaries_and_backups() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path(), 1 << 30, 5000);
        for i in 0..5 {
            call(
                &s,
                &json!({"op": "put", "key": format!("k{i}"), "value": i}).to_string(),
            )
            .unwrap();
        }
        let first = s.entries("n", None, 2).unwrap();
        assert_eq!(first["entries"][1], json!({"key": "k1", "value": 1}));
        assert_eq!(first["next"], json!("k1"));
        let last = s.entries("n", Some("k3"), 2).unwrap();
        assert_eq!(last["entries"], json!([{"key": "k4", "value": 4}]));
        assert_eq!(last["next"], Value::Null);
        assert_eq!(s.summary("n").unwrap()["keys"], 5);
        assert_eq!(s.summary("other").unwrap()["exists"], false);
        let copies = dir.path().join("backup");
        assert_eq!(s.backup(&copies).unwrap(), vec!["n".to_owned()]);
        let copy = Connection::open(copies.join("n.db")).unwrap();
        let count: i64 = copy
            .query_row("SELECT count(*) FROM hm_kv", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 5);
        assert_eq!(integrity(&copies.join("n.db")), "ok");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(copies.join("n.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a backup is private to the hive's user"
        );
        // A second backup into the same folder replaces nothing: refused, the copy untouched.
        drop(copy);
        let refused = s.backup(&copies).unwrap_err();
        assert_eq!(refused.kind, Kind::Invalid);
        assert!(
            refused.message.contains("already exists"),
            "{}",
            refused.message
        );
        assert_eq!(integrity(&copies.join("n.db")), "ok");
    }
}
