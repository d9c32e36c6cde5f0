//! Each node's data store on the real `hm` with real node libraries (the `keeper` test node and
//! the example hive's `batman`): values of every JSON kind, SQL and transactions through the
//! node API, migrations (first run, one added by a hot reload, a failing one, a downgrade),
//! survival across reloads, restarts and a SIGKILL of the host (the file checked with
//! `PRAGMA integrity_check`), the HTTP and CLI surfaces, a backup taken while a node writes,
//! and the size limit.

use hivemind_tests::{Hive, Running, ask, eventually, hm, http_agent};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A hive with the keeper node (`settings` added to its table) and `rest` after it.
fn keeper_hive(settings: &str, rest: &str) -> Hive {
    let hive = Hive::new();
    hive.configure(&format!(
        "[nodes.keeper]\nenabled = true\nlibrary = \"keeper\"\n{settings}\n\n{rest}"
    ));
    hive.install("keeper");
    hive
}

/// The file the keeper's migrations are read from, in `hive`.
fn migrations_file(hive: &Hive) -> PathBuf {
    hive.file("migrations.json")
}

fn set_migrations(hive: &Hive, migrations: &[&str]) {
    std::fs::write(migrations_file(hive), json!(migrations).to_string()).unwrap();
}

/// Starts `hm run` on `hive` with the keeper reading its migrations from the hive's file, and
/// waits for the keeper to run.
fn start(hive: &Hive) -> Running {
    if !migrations_file(hive).exists() {
        set_migrations(hive, &[]);
    }
    let file = migrations_file(hive);
    let running = Running::start_with_env(
        hive.path(),
        &["run"],
        &[("KEEPER_MIGRATIONS", file.as_os_str())],
    );
    assert!(
        eventually(WAIT, || running.node("keeper")["status"] == "running"),
        "{}\n{}",
        running.node("keeper"),
        running.stderr()
    );
    running
}

/// One store call through the keeper's node API: its `{"ok": ...}` or `{"error": ...}`.
fn keeper(running: &Running, command: Value) -> Value {
    let (status, body) = ask(running, "keeper/do", &command, "");
    assert_eq!(status, 200, "{command}: {body}");
    body["reply"].clone()
}

fn ok(running: &Running, command: Value) -> Value {
    let answer = keeper(running, command.clone());
    assert!(answer.get("ok").is_some(), "{command}: {answer}");
    answer["ok"].clone()
}

fn http(running: &Running, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let agent = http_agent();
    let url = format!("{}{path}", running.url);
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).call(),
        ("DELETE", _) => agent.delete(&url).call(),
        ("PUT", Some(body)) => agent.put(&url).send(body),
        ("POST", body) => agent.post(&url).send(body.unwrap_or("")),
        _ => unreachable!(),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `PRAGMA integrity_check` on a store file, as SQLite reports it (`ok`).
fn integrity(path: &Path) -> String {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

fn hm_data(running: &Running, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(hm())
        .arg("data")
        .args(args)
        .args(["--url", &running.url])
        .output()
        .expect("hm data runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn every_kind() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-42),
        json!(u64::MAX),
        json!(2.5),
        json!(""),
        json!("蝙蝠 \"quoted\" \n newline"),
        json!([]),
        json!([1, "two", null, [3]]),
        json!({}),
        json!({ "nested": { "list": [true, { "deep": null }] } }),
    ]
}

#[test]
fn values_of_every_json_kind_round_trip_between_the_node_and_http() {
    let hive = keeper_hive("", "");
    let running = start(&hive);
    for (i, value) in every_kind().into_iter().enumerate() {
        // The node puts, HTTP reads.
        let key = format!("node-{i}");
        ok(&running, json!({ "put": [key, value] }));
        let (status, body) = http(
            &running,
            "GET",
            &format!("/api/nodes/keeper/store/{key}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"], value, "{key}");
        // HTTP puts, the node reads (through its own types: here Value).
        let key = format!("http-{i}");
        let (status, body) = http(
            &running,
            "PUT",
            &format!("/api/nodes/keeper/store/{key}"),
            Some(&value.to_string()),
        );
        assert_eq!(status, 204, "{body}");
        assert_eq!(ok(&running, json!({ "get": key })), value, "{key}");
    }
    // A missing key is None to the node and 404 over HTTP; delete says whether it was there.
    assert_eq!(ok(&running, json!({ "get": "nothing" })), Value::Null);
    let (status, body) = http(&running, "GET", "/api/nodes/keeper/store/nothing", None);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("nothing"),
        "{body}"
    );
    assert_eq!(ok(&running, json!({ "delete": "node-0" })), json!(true));
    assert_eq!(ok(&running, json!({ "delete": "node-0" })), json!(false));
    let (status, _) = http(&running, "DELETE", "/api/nodes/keeper/store/http-0", None);
    assert_eq!(status, 204);
    let keys = ok(&running, json!({ "keys": "http-1" }));
    assert_eq!(keys, json!(["http-1", "http-10", "http-11", "http-12"]));
    // A key with a slash and a space, percent-encoded in the path.
    let (status, _) = http(
        &running,
        "PUT",
        "/api/nodes/keeper/store/a%2Fb%20c",
        Some("7"),
    );
    assert_eq!(status, 204);
    assert_eq!(ok(&running, json!({ "get": "a/b c" })), json!(7));
    assert_eq!(integrity(&hive.file("data/keeper.db")), "ok");
}

#[test]
fn sql_and_transactions_through_the_node_api() {
    let hive = keeper_hive("", "");
    set_migrations(
        &hive,
        &["CREATE TABLE saves (id INTEGER PRIMARY KEY, villain TEXT NOT NULL, at REAL)"],
    );
    let running = start(&hive);
    let done = ok(
        &running,
        json!({ "execute": ["INSERT INTO saves (villain, at) VALUES (?1, ?2)", ["joker", 1.5]] }),
    );
    assert_eq!(done, json!({ "changed": 1, "last_id": 1 }));
    ok(
        &running,
        json!({ "execute": ["INSERT INTO saves (villain) VALUES (?1)", ["bane"]] }),
    );
    let rows = ok(
        &running,
        json!({ "query": ["SELECT id, villain, at FROM saves WHERE id >= ?1 ORDER BY id", [1]] }),
    );
    assert_eq!(
        rows,
        json!([{ "id": 1, "villain": "joker", "at": 1.5 }, { "id": 2, "villain": "bane", "at": null }])
    );
    // A bad statement: the kind to match on, and a message naming the node and the statement.
    let bad = keeper(&running, json!({ "query": ["SELECT * FROM nowhere", []] }));
    assert_eq!(bad["error"]["kind"], "Sql", "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(message.contains("node `keeper`"), "{message}");
    assert!(message.contains("SELECT * FROM nowhere"), "{message}");
    // A transaction commits all or nothing.
    assert_eq!(
        ok(
            &running,
            json!({ "transaction": { "puts": [["t1", 1], ["t2", 2]], "fail": false } })
        ),
        json!(2)
    );
    assert_eq!(
        ok(
            &running,
            json!({ "transaction": { "puts": [["t3", 3], ["t1", 100]], "fail": true } })
        ),
        json!("rolled back")
    );
    assert_eq!(ok(&running, json!({ "get": "t1" })), json!(1));
    assert_eq!(ok(&running, json!({ "get": "t3" })), Value::Null);
    // The read-only endpoint reads and refuses to write.
    let (status, body) = http(
        &running,
        "GET",
        "/api/nodes/keeper/query?sql=SELECT%20count(*)%20AS%20n%20FROM%20saves",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([{ "n": 2 }]));
    let (status, body) = http(
        &running,
        "GET",
        "/api/nodes/keeper/query?sql=DELETE%20FROM%20saves",
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("only reads"),
        "{body}"
    );
    assert_eq!(
        ok(
            &running,
            json!({ "query": ["SELECT count(*) AS n FROM saves", []] })
        ),
        json!([{ "n": 2 }])
    );
}

#[test]
fn migrations_first_run_hot_reload_failure_and_downgrade() {
    let hive = keeper_hive("", "");
    let first = "CREATE TABLE a (x INTEGER)";
    let second = "CREATE TABLE b (y TEXT); INSERT INTO b VALUES ('seeded')";
    set_migrations(&hive, &[first]);
    let running = start(&hive);
    ok(
        &running,
        json!({ "execute": ["INSERT INTO a VALUES (1)", []] }),
    );
    let applied = |running: &Running| {
        ok(
            running,
            json!({ "query": ["SELECT idx, sql FROM hm_migrations ORDER BY idx", []] }),
        )
    };
    assert_eq!(applied(&running), json!([{ "idx": 0, "sql": first }]));

    // A new migration, added by a hot reload, runs once; the data of the first stays.
    set_migrations(&hive, &[first, second]);
    let (status, body) = http(&running, "POST", "/api/nodes/keeper/reload", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ok(&running, json!({ "query": ["SELECT y FROM b", []] })),
        json!([{ "y": "seeded" }])
    );
    assert_eq!(applied(&running).as_array().unwrap().len(), 2);
    assert_eq!(
        ok(&running, json!({ "query": ["SELECT x FROM a", []] })),
        json!([{ "x": 1 }])
    );

    // A failing migration: the reload fails naming the statement, none of it is applied and
    // the running instance stays.
    let broken = "CREATE TABLE c (z); CREATE TABLE broken (";
    set_migrations(
        &hive,
        &[first, second, "CREATE TABLE ok_but_rolled_back (w)", broken],
    );
    let (status, body) = http(&running, "POST", "/api/nodes/keeper/reload", None);
    assert_eq!(status, 500, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("migration 4 of 4 failed"), "{error}");
    assert!(error.contains("CREATE TABLE broken ("), "{error}");
    assert!(error.contains("the running version stays"), "{error}");
    assert_eq!(running.node("keeper")["status"], "running");
    assert_eq!(applied(&running).as_array().unwrap().len(), 2);
    let gone = keeper(
        &running,
        json!({ "query": ["SELECT * FROM ok_but_rolled_back", []] }),
    );
    assert_eq!(gone["error"]["kind"], "Sql", "{gone}");

    // A library with fewer migrations than the file has applied is refused.
    set_migrations(&hive, &[first]);
    let (status, body) = http(&running, "POST", "/api/nodes/keeper/reload", None);
    assert_eq!(status, 500, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("declares 1 migration(s)"), "{error}");
    assert!(error.contains("already applied 2"), "{error}");
    assert_eq!(running.node("keeper")["status"], "running");
    // And at a start too: the node does not start, and says why.
    let (status, _, running) = running.quit();
    assert!(status.success());
    drop(running);
    let file = migrations_file(&hive);
    let again = Running::start_with_env(
        hive.path(),
        &["run"],
        &[("KEEPER_MIGRATIONS", file.as_os_str())],
    );
    assert!(
        eventually(WAIT, || again.node("keeper")["status"] == "failed"),
        "{}",
        again.node("keeper")
    );
    let node = again.node("keeper");
    assert!(node.to_string().contains("already applied 2"), "{node}");
}

#[test]
fn what_a_node_stored_survives_reload_restart_and_a_sigkill_of_the_host() {
    let hive = keeper_hive("count_ms = 1", "");
    let running = start(&hive);
    ok(
        &running,
        json!({ "put": ["kept", { "across": "everything" }] }),
    );
    let counter = |running: &Running| {
        ok(running, json!({ "get": "counter" }))
            .as_u64()
            .unwrap_or(0)
    };
    assert!(eventually(WAIT, || counter(&running) > 20));
    let (status, body) = http(&running, "POST", "/api/nodes/keeper/reload", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ok(&running, json!({ "get": "kept" })),
        json!({ "across": "everything" })
    );

    // A clean stop and a start.
    let before = counter(&running);
    let (status, _, running) = running.quit();
    assert!(status.success());
    drop(running);
    let running = start(&hive);
    assert_eq!(
        ok(&running, json!({ "get": "kept" })),
        json!({ "across": "everything" })
    );
    assert!(
        counter(&running) >= before,
        "the count goes on from {before}"
    );

    // SIGKILL of the host while the counter writes a put every millisecond.
    assert!(eventually(WAIT, || counter(&running) > before + 50));
    let last_seen = counter(&running);
    let killed = Command::new("kill")
        .args(["-KILL", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(200));
    drop(running);
    let file = hive.file("data/keeper.db");
    assert_eq!(integrity(&file), "ok");
    let running = start(&hive);
    assert_eq!(
        ok(&running, json!({ "get": "kept" })),
        json!({ "across": "everything" })
    );
    // Every put answered before the kill was committed: the count never goes back.
    let after = counter(&running);
    assert!(after >= last_seen, "{after} < {last_seen}");
    assert_eq!(integrity(&file), "ok");
}

#[test]
fn http_pages_keys_and_changes_follow_the_key_rules() {
    let hive = keeper_hive("", "");
    // With a hive key, changes need it; reads on loopback do not.
    let config = std::fs::read_to_string(hive.file("config/hive.toml")).unwrap();
    std::fs::write(
        hive.file("config/hive.toml"),
        config.replace("port = 0\n", "port = 0\nkey = \"sesame\"\n"),
    )
    .unwrap();
    let running = start(&hive);
    let put_with_key = |key: &str, body: &str| {
        http_agent()
            .put(format!("{}/api/nodes/keeper/store/{key}", running.url))
            .header("x-hive-key", "sesame")
            .send(body)
            .unwrap()
    };
    for i in 0..25 {
        let response = put_with_key(&format!("k{i:02}"), &i.to_string());
        assert_eq!(response.status().as_u16(), 204);
    }
    let value = |key: &str| {
        http(
            &running,
            "GET",
            &format!("/api/nodes/keeper/store/{key}"),
            None,
        )
        .1["value"]
            .clone()
    };
    let (status, page) = http(&running, "GET", "/api/nodes/keeper/store?limit=10", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["entries"].as_array().unwrap().len(), 10);
    assert_eq!(page["entries"][0], json!({ "key": "k00", "value": 0 }));
    assert_eq!(page["next"], "k09");
    assert_eq!(page["store"]["keys"], 25);
    let (_, last) = http(
        &running,
        "GET",
        "/api/nodes/keeper/store?limit=10&after=k19",
        None,
    );
    assert_eq!(last["entries"].as_array().unwrap().len(), 5);
    assert_eq!(last["next"], Value::Null);
    let (status, body) = http(&running, "GET", "/api/nodes/keeper/store?limit=1001", None);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("1 to 1000"),
        "{body}"
    );
    let (status, _) = http(&running, "GET", "/api/nodes/nobody/store", None);
    assert_eq!(status, 404);

    // A write without the key is refused; with it, it goes through.
    let (status, _) = http(
        &running,
        "PUT",
        "/api/nodes/keeper/store/k00",
        Some("\"x\""),
    );
    assert!(status == 401 || status == 403, "{status}");
    let (status, _) = http(&running, "DELETE", "/api/nodes/keeper/store/k00", None);
    assert!(status == 401 || status == 403, "{status}");
    assert_eq!(value("k00"), json!(0));
    assert_eq!(put_with_key("k00", "\"x\"").status().as_u16(), 204);
    assert_eq!(value("k00"), json!("x"));
    // A body that is not JSON is refused, saying why.
    let mut response = put_with_key("k00", "not json");
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        response
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("not JSON")
    );
}

#[test]
fn the_cli_gets_puts_queries_and_backs_up_while_a_node_writes() {
    let hive = keeper_hive("count_ms = 1", "");
    let running = start(&hive);
    let (done, out, err) = hm_data(&running, &["put", "keeper", "villain", "\"joker\""]);
    assert!(done, "{out}{err}");
    assert_eq!(ok(&running, json!({ "get": "villain" })), json!("joker"));
    let (done, out, err) = hm_data(&running, &["get", "keeper", "villain"]);
    assert!(done, "{err}");
    assert_eq!(out.trim(), "\"joker\"");
    let (done, out, err) = hm_data(&running, &["get", "keeper"]);
    assert!(done, "{err}");
    assert!(out.lines().any(|l| l == "villain \"joker\""), "{out}");
    let (done, out, err) = hm_data(
        &running,
        &[
            "query",
            "keeper",
            "SELECT key FROM hm_kv WHERE key = 'villain'",
        ],
    );
    assert!(done, "{err}");
    assert_eq!(out.trim(), r#"{"key":"villain"}"#);
    let (done, _, err) = hm_data(&running, &["put", "keeper", "villain", "joker"]);
    assert!(!done);
    assert!(err.contains("not valid JSON"), "{err}");
    let (done, _, err) = hm_data(&running, &["get", "keeper", "nobody-here"]);
    assert!(!done);
    assert!(err.contains("404"), "{err}");

    // A backup while the counter writes: a consistent copy, its count within what was seen.
    let counter = || {
        ok(&running, json!({ "get": "counter" }))
            .as_u64()
            .unwrap_or(0)
    };
    assert!(eventually(WAIT, || counter() > 20));
    let low = counter();
    let dir = hive.file("backups");
    let (done, out, err) = hm_data(&running, &["backup", dir.to_str().unwrap()]);
    assert!(done, "{out}{err}");
    let high = counter();
    assert!(out.contains("keeper"), "{out}");
    let copy = dir.join("keeper.db");
    assert_eq!(integrity(&copy), "ok");
    let connection = rusqlite::Connection::open(&copy).unwrap();
    let copied: String = connection
        .query_row("SELECT value FROM hm_kv WHERE key = 'counter'", [], |row| {
            row.get(0)
        })
        .unwrap();
    let copied: u64 = copied.parse().unwrap();
    assert!(
        (low..=high).contains(&copied),
        "{low} <= {copied} <= {high}"
    );
    let villain: String = connection
        .query_row("SELECT value FROM hm_kv WHERE key = 'villain'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(villain, "\"joker\"");
}

#[test]
fn the_size_limit_refuses_a_write_and_the_node_runs_on() {
    let hive = keeper_hive("", "[data]\nmax_bytes = 65536\n");
    let running = start(&hive);
    let big = "x".repeat(8000);
    let mut refused = None;
    for i in 0..40 {
        let answer = keeper(&running, json!({ "put": [format!("big{i}"), big] }));
        if answer.get("error").is_some() {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("64 KiB cannot hold 40 values of 8 KB");
    assert_eq!(refused["error"]["kind"], "Full", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("[data] max_bytes"), "{message}");
    assert!(message.contains("65536"), "{message}");
    assert!(
        std::fs::metadata(hive.file("data/keeper.db"))
            .unwrap()
            .len()
            <= 65536
    );
    // Deleting makes room again; the node never stopped.
    ok(&running, json!({ "delete": "big0" }));
    ok(&running, json!({ "put": ["small", 1] }));
    assert_eq!(running.node("keeper")["status"], "running");
    // Over HTTP the same refusal is 507.
    let (status, body) = http(
        &running,
        "PUT",
        "/api/nodes/keeper/store/huge",
        Some(&json!("y".repeat(200_000)).to_string()),
    );
    assert_eq!(status, 507, "{body}");
    // An out-of-bounds limit is refused at start, naming the key and the fix.
    let other = Hive::new();
    other.configure("[data]\nmax_bytes = 1024\n");
    let output = Command::new(hm())
        .args(["run"])
        .current_dir(other.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("[data] max_bytes = 1024 is out of bounds"),
        "{stderr}"
    );
    assert!(stderr.contains("fix it in config/hive.toml"), "{stderr}");
}

#[test]
fn batmans_count_of_saves_survives_a_restart_and_shows_over_http() {
    let hive = Hive::new();
    hive.configure(
        "[nodes.batsignal]\nenabled = true\ninterval_secs = 0.05\n\n[nodes.batman]\nenabled = true\n",
    );
    hive.install("batsignal");
    hive.install("batman");
    let saves = |running: &Running| {
        let (status, body) = http(running, "GET", "/api/nodes/batman/store/saves", None);
        if status == 200 {
            body["value"].as_u64().unwrap()
        } else {
            0
        }
    };
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || saves(&running) >= 3),
        "{}",
        running.stderr()
    );
    let (status, page) = http(&running, "GET", "/api/nodes/batman/store", None);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["entries"][0]["key"], "saves", "{page}");
    let (status, _, running) = running.quit();
    assert!(status.success());
    let before = {
        let connection = rusqlite::Connection::open(hive.file("data/batman.db")).unwrap();
        let text: String = connection
            .query_row("SELECT value FROM hm_kv WHERE key = 'saves'", [], |row| {
                row.get(0)
            })
            .unwrap();
        text.parse::<u64>().unwrap()
    };
    assert!(before >= 3);
    drop(running);
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || saves(&running) > before),
        "batman counts on from {before}: {}",
        saves(&running)
    );
    // A SIGKILL of hm loses no committed save either.
    let seen = saves(&running);
    Command::new("kill")
        .args(["-KILL", &running.pid().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(running);
    assert_eq!(integrity(&hive.file("data/batman.db")), "ok");
    let running = hive.run(&[]);
    assert!(saves(&running) >= seen);
}
