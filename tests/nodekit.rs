//! The node author's kit in a real hive: a publisher (a service with no loop) and a timer on the
//! node's own thread, in process and isolated; a refused send reaching the node as a kind it can
//! match on; and a node made by `hm create_node` passing its own `cargo test` in a new hive.

use hivemind_tests::{
    Hive, built, cargo, eventually, hm_output, received_from, records, toml_path,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn ticks(record: &Path) -> Vec<Value> {
    records(record)
        .into_iter()
        .filter(|r| r["event"] == "tick")
        .collect()
}

/// `source` sends five numbers once `go` exists; `relay` re-sends each on its publisher and
/// ticks a timer that reads the count its subscription keeps; `sink` records what is relayed.
fn publisher_and_timer(isolate: bool) {
    let hive = Hive::new();
    let (relay, sink, go) = (
        hive.file("relay.jsonl"),
        hive.file("sink.jsonl"),
        hive.file("go"),
    );
    hive.configure(&format!(
        "[nodes.source]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"numbers\", count = 5, interval_ms = 40, start_file = {go} }}]\n\n\
         [nodes.relay]\nenabled = true\nlibrary = \"probe\"\nisolate = {isolate}\n\
         subscriptions = [\"numbers\"]\npublish_to = \"relayed\"\ntick_ms = 25\nrecord = {relay}\n\n\
         [nodes.sink]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"relayed\"]\nrecord = {sink}\n",
        go = toml_path(&go),
        relay = toml_path(&relay),
        sink = toml_path(&sink),
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || ["source", "relay", "sink"]
            .iter()
            .all(|n| running.node(n)["status"] == "running")),
        "{}",
        running.stderr()
    );
    std::fs::write(&go, "").unwrap();

    assert!(
        eventually(WAIT, || received_from(&sink, "relayed").len() == 5),
        "{:?}\n{}",
        records(&sink),
        running.stderr()
    );
    assert_eq!(
        received_from(&sink, "relayed"),
        (0..5).map(|seq| json!({ "seq": seq })).collect::<Vec<_>>(),
        "every message relayed once, in order"
    );
    // An isolated node's process reports its side (kinds, running) every 250 ms.
    let shown = || {
        let node = running.node("relay");
        let service = &node["services"][0];
        service["kind"] == "publisher" && service["running"] == true
    };
    assert!(eventually(WAIT, shown), "{}", running.node("relay"));
    let node = running.node("relay");
    let service = &node["services"][0];
    assert_eq!(service["name"], "relayed");
    assert_eq!(service["kind"], "publisher", "{node}");
    assert_eq!(
        service["running"], true,
        "a publisher runs while its node does: {node}"
    );
    assert_eq!(service["sent"], 5);

    // The timer reads what the subscription counted: both run on the node's thread, with
    // `&mut self`, so the ticks see the count grow to 5 and never go back.
    assert!(
        eventually(WAIT, || ticks(&relay).iter().any(|t| t["total"] == 5)),
        "{:?}",
        ticks(&relay)
    );
    let seen = ticks(&relay);
    assert!(seen.len() >= 3, "{seen:?}");
    let numbers: Vec<u64> = seen.iter().map(|t| t["tick"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=seen.len() as u64).collect::<Vec<_>>());
    let totals: Vec<u64> = seen.iter().map(|t| t["total"].as_u64().unwrap()).collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");

    // The timer is counted on /api/nodes like services and subscriptions (an isolated node's
    // process reports its own every 250 ms).
    assert!(
        eventually(WAIT, || running.node("relay")["timers"][0]["runs"]
            .as_u64()
            .is_some_and(|runs| runs >= seen.len() as u64)),
        "{}",
        running.node("relay")
    );
    let node = running.node("relay");
    let timer = &node["timers"][0];
    assert_eq!(timer["name"], "tick", "{node}");
    assert_eq!(timer["period_ms"], 25.0, "{node}");
    assert_eq!(
        (timer["failed"].as_u64(), timer["panicked"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(
        timer["last_run"].as_str().is_some_and(|t| t.ends_with('Z')),
        "an RFC 3339 time: {node}"
    );
    assert_eq!(
        running.node("sink")["timers"],
        json!([]),
        "no timers, an empty list"
    );

    let (status, _took, _running) = running.quit();
    assert!(status.success(), "exit status {status}");
    let after = ticks(&relay).len();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        ticks(&relay).len(),
        after,
        "the timer stopped with the node"
    );
}

#[test]
fn a_publisher_and_a_timer_work_in_process() {
    publisher_and_timer(false);
}

#[test]
fn a_publisher_and_a_timer_work_in_an_isolated_node() {
    publisher_and_timer(true);
}

#[test]
fn a_timer_that_panics_is_counted_and_keeps_ticking() {
    let hive = Hive::new();
    hive.configure(
        "[nodes.ticker]\nenabled = true\nlibrary = \"probe\"\ntick_ms = 20\ntick_panics = true\n",
    );
    hive.install("probe");
    let running = hive.run(&[]);
    let panics = || {
        running.node("ticker")["timers"][0]["panicked"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(
        eventually(WAIT, || panics() >= 3),
        "{}",
        running.node("ticker")
    );
    let node = running.node("ticker");
    let timer = &node["timers"][0];
    assert!(
        timer["runs"].as_u64().unwrap() >= timer["panicked"].as_u64().unwrap(),
        "{node}"
    );
    assert_eq!(
        node["status"], "running",
        "a panicking timer does not stop its node: {node}"
    );
    let log = std::fs::read_to_string(hive.path().join("logs/ticker.log")).unwrap();
    assert!(log.contains("timer `tick` panicked"), "{log}");
}

#[test]
fn a_refused_send_reaches_the_node_as_a_kind_it_can_match_on() {
    let hive = Hive::new();
    let record = hive.file("big.jsonl");
    hive.configure(&format!(
        "[messages]\nmax_payload_bytes = 64\n\n[nodes.big]\nenabled = true\nlibrary = \"probe\"\n\
         record = {}\nservices = [{{ name = \"huge\", payloads = [{}] }}]\n",
        toml_path(&record),
        Value::String("x".repeat(100))
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    let failed = || {
        records(&record)
            .into_iter()
            .find(|r| r["event"] == "send_failed")
    };
    assert!(
        eventually(WAIT, || failed().is_some()),
        "{}",
        running.stderr()
    );
    assert_eq!(failed().unwrap()["kind"], "TooLarge");
}

#[test]
fn a_node_made_by_create_node_passes_its_own_test_in_a_new_hive() {
    let dir = tempfile::Builder::new()
        .prefix("hm-nodekit-")
        .tempdir()
        .unwrap();
    let new = hm_output(dir.path(), &["new", "kit"]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let hive = dir.path().join("kit");
    let created = hm_output(&hive, &["create_node", "Thermostat"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    // The repository's lock file pins the same dependency versions (no registry look-ups for
    // new ones); cargo drops what the hive does not use.
    std::fs::copy(
        hivemind_tests::repo_root().join("Cargo.lock"),
        hive.join("Cargo.lock"),
    )
    .unwrap();
    // Kept inside this build's target so that re-runs are fast; not the repository's own, whose
    // crates have the same names.
    let target = built().parent().unwrap().join("nodekit-hive");
    let output = cargo()
        .current_dir(&hive)
        .env("CARGO_TARGET_DIR", &target)
        .args(["test", "-p", "thermostat"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("test tests::the_count_survives_a_reload ... ok"),
        "{stdout}"
    );
}

/// A hive whose nodes declare payload types: `sensor` publishes `Reading`s on `readings` (from
/// a process of its own: its declarations come through its build report);
/// `display` takes `RoomReading`s (the room required) from `read*`, which cannot accept every
/// `Reading`, and offers the untyped publisher `plain`; `tap` takes `Reading`s and records
/// every message on `readings`. `check_schemas` is left at its default when `None`.
fn typed_hive(check_schemas: Option<&str>) -> (Hive, hivemind_tests::Running) {
    let hive = Hive::new();
    configure_typed(&hive, check_schemas);
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || ["sensor", "display", "tap"]
            .iter()
            .all(|n| running.node(n)["status"] == "running")),
        "{}",
        running.stderr()
    );
    (hive, running)
}

/// Writes [`typed_hive`]'s config with `check_schemas` (its default when `None`).
fn configure_typed(hive: &Hive, check_schemas: Option<&str>) {
    let messages = check_schemas
        .map(|mode| format!("[messages]\ncheck_schemas = \"{mode}\"\n\n"))
        .unwrap_or_default();
    hive.configure(&format!(
        "{messages}[nodes.sensor]\nenabled = true\nlibrary = \"probe\"\n\
         isolate = true\npublish_to = \"readings\"\npublisher_type = \"reading\"\n\n\
         [nodes.display]\nenabled = true\nlibrary = \"probe\"\npublish_to = \"plain\"\n\
         typed_subscriptions = [{{ pattern = \"read*\", payload_type = \"room_reading\" }}]\n\n\
         [nodes.tap]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"readings\"]\n\
         typed_subscriptions = [{{ pattern = \"readings\", payload_type = \"reading\" }}]\n\
         record = {}\n",
        toml_path(&hive.file("tap.jsonl"))
    ));
}

fn root_log(hive: &Hive) -> String {
    std::fs::read_to_string(hive.path().join("logs/root.log")).unwrap_or_default()
}

/// `hm send SERVICE JSON` to the running hive: (success, stdout, stderr).
fn hm_send(
    hive: &Hive,
    running: &hivemind_tests::Running,
    service: &str,
    json: &str,
) -> (bool, String, String) {
    let output = hm_output(hive.path(), &["send", "--url", &running.url, service, json]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `{"event": "received"}` payloads the tap recorded from `readings`, waiting a moment for
/// stragglers.
fn tapped(hive: &Hive) -> Vec<Value> {
    received_from(&hive.file("tap.jsonl"), "readings")
}

#[test]
fn a_declared_type_is_served_as_its_json_schema_and_marked_on_the_topics() {
    let (_hive, running) = typed_hive(None);
    let (status, body) = running.get("/api/topics/readings/schema");
    assert_eq!(status, 200, "{body}");
    let schema: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(schema["type"], "object", "{schema}");
    assert_eq!(schema["title"], "Reading", "{schema}");
    assert_eq!(schema["required"], json!(["celsius"]), "{schema}");
    assert_eq!(
        schema["properties"]["celsius"]["type"], "number",
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["celsius"]["description"], "Degrees Celsius.",
        "the doc comments travel: {schema}"
    );

    // An untyped publisher and an unknown service: a JSON 404 naming the service.
    let (status, body) = running.get("/api/topics/plain/schema");
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(
        error.contains("`plain`") && error.contains("declares no payload type"),
        "{error}"
    );
    let (status, body) = running.get("/api/topics/nobody%2Fhere/schema");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("`nobody/here`") && body.contains("no running node offers it"),
        "{body}"
    );

    let (_, topics) = running.get("/api/topics");
    let topics: Value = serde_json::from_str(&topics).unwrap();
    let typed = |service: &str| {
        topics
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["service"] == service)
            .unwrap_or_else(|| panic!("no topic {service}: {topics}"))["schema"]
            .clone()
    };
    assert_eq!(typed("readings"), true);
    assert_eq!(typed("plain"), false);
}

#[test]
fn a_subscriber_that_cannot_accept_a_declared_type_is_warned_about_once_naming_both() {
    let (hive, running) = typed_hive(None);
    let warned = |log: &str| {
        log.lines()
            .filter(|line| {
                line.contains("node `display` subscribes to `read*`")
                    && line.contains("node `sensor` declares for service `readings`")
            })
            .count()
    };
    assert!(
        eventually(WAIT, || warned(&root_log(&hive)) == 1),
        "{}",
        root_log(&hive)
    );
    let log = root_log(&hive);
    let line = log.lines().find(|l| warned(l) == 1).unwrap();
    assert!(
        line.contains("requires property `room`, which the publisher may leave out")
            && line.contains("at `/room`: the publisher may send `null`"),
        "{line}"
    );
    assert!(
        !log.contains("node `tap` subscribes"),
        "tap's type accepts every Reading: {log}"
    );

    // The same pair after a reload of either side is not news.
    for node in ["display", "sensor"] {
        let (status, body) = running.post(&format!("/api/nodes/{node}/reload"), "", &[]);
        assert_eq!(status, 200, "{body}");
    }
    assert!(eventually(WAIT, || ["sensor", "display"]
        .iter()
        .all(|n| running.node(n)["status"] == "running")));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(warned(&root_log(&hive)), 1, "{}", root_log(&hive));

    // On the event feed too, as a `schema` event.
    let (sender, events) = std::sync::mpsc::channel();
    let url = running.url.clone();
    std::thread::spawn(move || {
        let response = hivemind_tests::http_agent()
            .get(format!("{url}/api/events"))
            .call()
            .unwrap();
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(response.into_body().into_reader()).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    let mut found = None;
    while let Ok(line) =
        events.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if line.starts_with("data:") && line.contains("\"kind\":\"schema\"") {
            found = Some(line);
            break;
        }
    }
    let found = found.expect("a schema event on the feed");
    assert!(
        found.contains("node `display`") && found.contains("node `sensor`"),
        "{found}"
    );
}

#[test]
fn check_schemas_warn_publishes_a_payload_of_the_wrong_type_with_a_warning() {
    let (hive, running) = typed_hive(None);
    let (status, body) = running.post(
        "/api/publish/readings",
        r#"{"celsius": 21.5, "room": "hall"}"#,
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("warning"), "{body}");

    let (status, body) = running.post("/api/publish/readings", r#"{"celsius": "warm"}"#, &[]);
    assert_eq!(status, 200, "the default is warn: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["path"], "/celsius", "{answer}");
    let warning = answer["warning"].as_str().unwrap();
    assert!(
        warning.contains("service `readings`")
            && warning.contains("node `sensor`")
            && warning.contains("at `/celsius`"),
        "{warning}"
    );
    assert!(
        eventually(WAIT, || root_log(&hive).contains(warning)),
        "the warning is in root.log too: {}",
        root_log(&hive)
    );

    let (ok, stdout, stderr) = hm_send(&hive, &running, "readings", r#"{"room": "attic"}"#);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("Published on `readings`"), "{stdout}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains("celsius")
            && stderr.contains("service `readings`"),
        "{stderr}"
    );

    assert!(
        eventually(WAIT, || tapped(&hive).len() == 3),
        "all three were published: {:?}",
        tapped(&hive)
    );
    // The tap's typed subscription decoded only the one that matches.
    let decoded: Vec<Value> = records(&hive.file("tap.jsonl"))
        .into_iter()
        .filter(|r| r["event"] == "decoded")
        .map(|r| r["value"].clone())
        .collect();
    assert_eq!(
        decoded,
        [json!({ "celsius": 21.5, "room": "hall", "faulty": false })]
    );
}

#[test]
fn check_schemas_refuse_answers_422_naming_the_service_the_path_and_the_reason() {
    let (hive, running) = typed_hive(Some("refuse"));
    let (status, body) = running.post(
        "/api/publish/readings",
        r#"{"celsius": 20, "faulty": "no"}"#,
        &[],
    );
    assert_eq!(status, 422, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["service"], "readings");
    assert_eq!(answer["path"], "/faulty");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("boolean"), "{reason}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("service `readings`")
            && error.contains("at `/faulty`")
            && error.contains("not published"),
        "{error}"
    );

    let (ok, _, stderr) = hm_send(&hive, &running, "readings", r#""hot""#);
    assert!(!ok, "hm send fails on a refusal");
    assert!(
        stderr.contains("422")
            && stderr.contains("service `readings`")
            && stderr.contains("the payload:"),
        "{stderr}"
    );

    // Other services, and payloads that match, go through.
    let (status, body) = running.post("/api/publish/readings", r#"{"celsius": 20}"#, &[]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = running.post("/api/publish/plain", r#""anything""#, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(eventually(WAIT, || tapped(&hive).len() == 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tapped(&hive),
        [json!({ "celsius": 20 })],
        "the refused ones never went out"
    );
}

#[test]
fn check_schemas_off_publishes_anything_without_a_word_and_applies_when_saved() {
    let (hive, running) = typed_hive(Some("refuse"));
    let bad = r#"{"celsius": "warm"}"#;
    assert_eq!(running.post("/api/publish/readings", bad, &[]).0, 422);
    // Saved while the hive runs: no restart needed.
    configure_typed(&hive, Some("off"));
    assert!(
        eventually(WAIT, || running
            .post("/api/publish/readings", "true", &[])
            .0
            == 200),
        "{}",
        running.stderr()
    );
    assert!(eventually(WAIT, || tapped(&hive).len() == 1));
    let said = |log: String| log.matches("does not match").count();
    let before = said(root_log(&hive));
    let (status, body) = running.post("/api/publish/readings", r#"{"celsius": "warm"}"#, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("warning"), "{body}");
    let (ok, _, stderr) = hm_send(&hive, &running, "readings", "[1, 2]");
    assert!(ok && !stderr.contains("warning"), "{stderr}");
    assert!(eventually(WAIT, || tapped(&hive).len() == 3));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(said(root_log(&hive)), before, "{}", root_log(&hive));
}
