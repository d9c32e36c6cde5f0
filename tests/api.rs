//! The HTTP API, its streams and the CLI built on it, against the real `hm` with real nodes:
//! every endpoint, every refusal, the WebSocket, `hm send`, `hm list` and `hm logs`.

use hivemind_tests::{
    Hive, Running, eventually, free_port, hm, hm_output, received_from, records, toml_path,
};
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A hive with a `sender` node (service `ticks`, one tick each 50 ms) and a `receiver` node
/// subscribed to `tick*` and `manual-*`, recording into `receiver.jsonl`.
fn ticking_hive(extra_hive: &str, more: &str) -> Hive {
    let hive = Hive::new();
    let record = hive.file("receiver.jsonl");
    let config = format!(
        "{extra_hive}\n\n[messages]\nmax_payload_bytes = 256\n\n\
         # the sender: one tick every 50 ms\n\
         [nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"ticks\", count = 100000, interval_ms = 50 }}]\n\n\
         [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\n\
         subscriptions = [\"tick*\", \"manual-*\"]\nrecord = {}\n\n{more}",
        toml_path(&record)
    );
    // `configure` writes [hive] first: `extra_hive` lands in that table.
    hive.configure(&config);
    hive.install("probe");
    hive
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn reads_describe_the_hive() {
    let hive = ticking_hive("", "");
    let running = hive.run(&[]);
    assert!(eventually(
        WAIT,
        || running.node("receiver")["subscriptions"][0]["delivered"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    ));

    let (status, body) = running.get("/api/nodes");
    assert_eq!(status, 200);
    let nodes = json_of(&body);
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["receiver", "sender"]);
    for node in nodes.as_array().unwrap() {
        assert_eq!(node["status"], "running");
        assert!(node["services"].is_array() && node["subscriptions"].is_array());
    }
    let sender = running.node("sender");
    assert_eq!(sender["services"][0]["name"], "ticks");
    assert_eq!(sender["settings"]["library"], "probe");

    let (status, body) = running.get("/api/nodes/joker");
    assert_eq!(status, 404);
    let error = json_of(&body)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("joker") && error.contains("receiver, sender"),
        "{error}"
    );

    let (status, body) = running.get("/api/topics");
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        json!([{"service": "ticks", "publishers": ["sender"], "subscribers": ["receiver"]}])
    );

    let (status, body) = running.get("/api/hive");
    assert_eq!(status, 200);
    let whole = json_of(&body);
    assert_eq!(whole["name"], "test-hive");
    assert_eq!(whole["key_required"], false);

    assert_eq!(running.get("/healthz"), (200, "ok".to_owned()));

    let (status, metrics) = running.get("/metrics");
    assert_eq!(status, 200);
    let value = |line_start: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line_start))
            .unwrap_or_else(|| panic!("{line_start} missing from\n{metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("hivemind_messages_sent_total{node=\"sender\"}") >= 2);
    assert!(value("hivemind_messages_delivered_total{node=\"receiver\"}") >= 2);
    assert_eq!(
        value("hivemind_messages_dropped_total{node=\"receiver\"}"),
        0
    );
    assert_eq!(value("hivemind_node_reloads_total{node=\"sender\"}"), 0);
    assert_eq!(value("hivemind_node_load_errors_total{node=\"sender\"}"), 0);
    assert!(metrics.contains("# TYPE hivemind_messages_sent_total counter"));

    let (status, body) = running.get("/api/nowhere");
    assert_eq!(status, 404);
    assert!(json_of(&body)["error"].is_string());
}

#[test]
fn pages_are_served_with_their_assets() {
    let hive = ticking_hive("", "");
    let running = hive.run(&[]);
    for path in ["/", "/nodes", "/nodes/sender", "/topics", "/publish"] {
        let (status, body) = running.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(
            body.contains("<title>") && body.contains("/static/app.js"),
            "{path}"
        );
        assert!(body.contains("test-hive"), "{path}");
    }
    assert_eq!(running.get("/nodes/joker").0, 404);
    let (status, script) = running.get("/static/app.js");
    assert_eq!(status, 200);
    assert!(script.contains("EventSource"));
    assert_eq!(running.get("/static/style.css").0, 200);
    assert_eq!(running.get("/static/favicon.svg").0, 200);
}

#[test]
fn publish_reaches_every_matching_subscription_and_refuses_bad_bodies() {
    let hive = ticking_hive("", "");
    let record = hive.file("receiver.jsonl");
    let running = hive.run(&[]);

    let (status, body) = running.post(
        "/api/publish/manual-signal",
        r#"{"from": "curl", "n": [1, 2]}"#,
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(WAIT, || !received_from(&record, "manual-signal").is_empty()),
        "{:?}",
        records(&record)
    );
    assert_eq!(
        received_from(&record, "manual-signal"),
        [json!({"from": "curl", "n": [1, 2]})]
    );
    let sender = records(&record)
        .into_iter()
        .find(|r| r["service"] == "manual-signal")
        .unwrap();
    assert_eq!(sender["node"], "api");

    let (status, body) = running.post("/api/publish/manual-signal", r#"{"open": "#, &[]);
    assert_eq!(status, 400);
    let error = json_of(&body)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("not valid JSON") && error.contains("EOF while parsing"),
        "{error}"
    );

    let big = format!("\"{}\"", "x".repeat(300));
    let (status, body) = running.post("/api/publish/manual-signal", &big, &[]);
    assert_eq!(status, 413, "{body}");
    assert!(json_of(&body)["error"].as_str().unwrap().contains("256"));

    // A page on another site cannot use a visitor's browser to publish.
    let (status, body) = running.post(
        "/api/publish/manual-signal",
        "1",
        &[("origin", "https://evil.example")],
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(received_from(&record, "manual-signal").len(), 1);
}

#[test]
fn changes_require_the_hive_key_when_one_is_set() {
    let hive = ticking_hive("key = \"s3cret-key\"", "");
    let running = hive.run(&[]);
    let publish = |headers: &[(&str, &str)]| running.post("/api/publish/manual-x", "1", headers).0;
    assert_eq!(publish(&[]), 401);
    assert_eq!(publish(&[("x-hive-key", "nope")]), 401);
    assert_eq!(publish(&[("x-hive-key", "s3cret-key")]), 200);
    assert_eq!(publish(&[("authorization", "Bearer s3cret-key")]), 200);
    assert_eq!(
        running.post("/api/nodes/sender/disable", "", &[]).0,
        401,
        "node switches need the key too"
    );
    // Reading never does.
    assert_eq!(running.get("/api/nodes").0, 200);
    assert_eq!(json_of(&running.get("/api/hive").1)["key_required"], true);
}

#[test]
fn a_hive_bound_beyond_loopback_without_a_key_refuses_to_start() {
    let hive = Hive::new();
    hive.configure("");
    let config = std::fs::read_to_string(hive.path().join("config/hive.toml")).unwrap();
    std::fs::write(
        hive.path().join("config/hive.toml"),
        config.replace("[hive]\n", "[hive]\nbind = \"0.0.0.0\"\n"),
    )
    .unwrap();
    let output = hm_output(hive.path(), &["run"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0.0.0.0") && stderr.contains("key = \"") && stderr.contains("[hive]"),
        "{stderr}"
    );
}

#[test]
fn enable_disable_and_reload_do_what_the_buttons_do() {
    let hive = ticking_hive("", "");
    let running = hive.run(&[]);
    let config_path = hive.path().join("config/hive.toml");

    let (status, body) = running.post("/api/nodes/sender/disable", "", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["status"], "disabled");
    assert_eq!(running.node("sender")["status"], "disabled");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        config.contains("[nodes.sender]\nenabled = false"),
        "{config}"
    );
    assert!(
        config.contains("# the sender: one tick every 50 ms"),
        "comments are kept:\n{config}"
    );

    let (status, body) = running.post("/api/nodes/sender/enable", "", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(eventually(WAIT, || running.node("sender")["status"] == "running"));
    assert!(
        std::fs::read_to_string(&config_path)
            .unwrap()
            .contains("[nodes.sender]\nenabled = true")
    );

    let loads = running.node("receiver")["loads"].as_u64().unwrap();
    let (status, body) = running.post("/api/nodes/receiver/reload", "", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        running.node("receiver")["loads"].as_u64().unwrap(),
        loads + 1
    );
    assert!(eventually(WAIT, || running
        .get("/metrics")
        .1
        .contains("hivemind_node_reloads_total{node=\"receiver\"} 1")));

    let (status, body) = running.post("/api/nodes/joker/reload", "", &[]);
    assert_eq!(status, 404);
    assert!(json_of(&body)["error"].as_str().unwrap().contains("joker"));
    assert_eq!(running.post("/api/nodes/sender/explode", "", &[]).0, 404);
}

/// Reads text frames from a WebSocket until `want` accepts one (or `WAIT` passes).
fn websocket_frames(running: &Running, query: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    let url = format!("ws://{}/api/subscribe?{query}", running.address());
    let (mut socket, _) = tungstenite::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    let mut frames = Vec::new();
    loop {
        let message = socket.read().expect("a frame before the deadline");
        if let tungstenite::Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            let done = want(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}

#[test]
fn a_websocket_client_receives_the_messages_of_a_nodes_service() {
    let hive = ticking_hive("", "");
    let running = hive.run(&[]);
    let frames = websocket_frames(&running, "pattern=tick*", |f| {
        f["payload"]["seq"].as_u64().is_some()
    });
    let frame = frames.last().unwrap();
    assert_eq!(frame["service"], "ticks");
    assert_eq!(frame["node"], "sender");
    assert!(frame["time"].as_str().unwrap().ends_with('Z'), "{frame}");

    // Published messages reach external clients too, and the pattern is honoured.
    let published = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            websocket_frames(&running, "pattern=manual-%3F", |f| {
                f["service"] == "manual-q"
            })
        });
        std::thread::sleep(Duration::from_millis(500));
        running.post("/api/publish/manual-q", r#""hello""#, &[]);
        reader.join().unwrap()
    });
    assert!(
        published.iter().all(|f| f["service"] == "manual-q"),
        "{published:?}"
    );
    assert_eq!(published.last().unwrap()["payload"], "hello");
    assert_eq!(published.last().unwrap()["node"], "api");

    let (status, body) = running.get("/api/subscribe?pattern=bat-%5Bsignal");
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("bat-[signal")
    );
    let (status, body) = running.get("/api/subscribe?pattern=*");
    assert_eq!(status, 400);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("WebSocket")
    );
}

#[test]
fn the_event_feed_and_a_nodes_log_stream_as_server_sent_events() {
    let hive = Hive::new();
    hive.configure("[nodes.batsignal]\nenabled = true\ninterval_secs = 0.2\n");
    hive.install("batsignal");
    let running = hive.run(&[]);

    let mut feed = running.sse_lines("/api/events");
    let loaded = feed
        .find(|line| line.starts_with("data:") && line.contains("\"kind\":\"loaded\""))
        .expect("a loaded event");
    assert!(loaded.contains("\"node\":\"batsignal\""), "{loaded}");

    let mut log = running
        .sse_lines("/api/nodes/batsignal/log?lines=1")
        .filter_map(|line| line.strip_prefix("data:").map(str::to_owned))
        .map(|data| serde_json::from_str::<Vec<String>>(&data).unwrap());
    let first = log.next().unwrap();
    assert!(first.len() <= 1, "{first:?}");
    let fresh = log.find(|lines| !lines.is_empty()).unwrap();
    assert!(
        fresh
            .iter()
            .any(|l| l.contains("the bat signal is shining")),
        "{fresh:?}"
    );

    assert_eq!(running.get("/api/nodes/joker/log").0, 404);
    assert_eq!(running.get("/api/nodes/batsignal/log?lines=many").0, 400);
}

#[test]
fn static_files_override_the_built_in_ones_and_cannot_leave_static() {
    let hive = ticking_hive("", "");
    let static_dir = hive.path().join("static");
    std::fs::create_dir_all(static_dir.join("img")).unwrap();
    std::fs::write(static_dir.join("style.css"), "body { color: hotpink }").unwrap();
    std::fs::write(static_dir.join("img/note.txt"), "hello").unwrap();
    std::os::unix::fs::symlink(
        hive.path().join("config/hive.toml"),
        static_dir.join("config.txt"),
    )
    .unwrap();
    let running = hive.run(&[]);
    assert_eq!(
        running.get("/static/style.css"),
        (200, "body { color: hotpink }".to_owned())
    );
    assert_eq!(
        running.get("/static/img/note.txt"),
        (200, "hello".to_owned())
    );
    assert_eq!(
        running.get("/static/app.js").0,
        200,
        "built-in, not overridden"
    );
    assert_eq!(running.get("/static/config.txt").0, 403);
    assert_eq!(running.get("/static/nothing.css").0, 404);
    assert_eq!(running.get("/static/..%2Fconfig%2Fhive.toml").0, 400);
    // A client that sends `..` as is (curl --path-as-is does).
    let mut stream = std::net::TcpStream::connect(running.address()).unwrap();
    write!(
        stream,
        "GET /static/../config/hive.toml HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        running.address()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("test-hive"), "{answer}");
}

#[test]
fn hm_send_reaches_a_subscriber_and_hm_list_prints_the_nodes() {
    let port = free_port();
    let hive = ticking_hive("", "");
    // `hm send` reads the port from the config, so this hive names one.
    let config_path = hive.path().join("config/hive.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("port = 0\n", &format!("port = {port}\n")),
    )
    .unwrap();
    let record = hive.file("receiver.jsonl");
    let running = hive.run(&[]);
    assert!(running.url.ends_with(&format!(":{port}")));

    // From the hive's folder (or below it), `hm send` finds the hive from its config.
    let nodes_dir = hive.path().join("nodes");
    let output = hm_output(&nodes_dir, &["send", "manual-cli", r#"{"via": "hm send"}"#]);
    assert!(output.status.success(), "{output:?}");
    assert!(eventually(WAIT, || !received_from(&record, "manual-cli").is_empty()));
    assert_eq!(
        received_from(&record, "manual-cli"),
        [json!({"via": "hm send"})]
    );

    // --url from anywhere, and the payload from stdin.
    let elsewhere = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(hm())
        .args(["send", "manual-stdin", "-", "--url", &running.url])
        .current_dir(elsewhere.path())
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(b"[1, 2, 3]");
    assert!(child.status.success(), "{child:?}");
    assert!(eventually(WAIT, || !received_from(&record, "manual-stdin").is_empty()));

    let output = hm_output(hive.path(), &["send", "manual-cli", "{not json"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: the payload is not valid JSON"),
        "{stderr}"
    );

    let output = hm_output(hive.path(), &["list"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NODE"), "{table}");
    assert!(
        lines[1].starts_with("receiver") && lines[1].contains("running"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("sender") && lines[2].contains("running"),
        "{table}"
    );

    drop(running);
    let output = hm_output(hive.path(), &["send", "manual-cli", "1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the hive"), "{stderr}");
}

/// `Command::output` with bytes written to its stdin first.
trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output;
}

impl OutputWithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> std::process::Output {
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[test]
fn hm_logs_merges_log_files_in_timestamp_order() {
    let hive = Hive::new();
    let logs = hive.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("root.log"),
        "2026-11-28T02:42:44.000001Z  INFO hive starting\n\
         2026-11-28T02:42:44.000300Z  WARN root warns\n\
         \x20                                 and goes on\n\
         2026-11-28T02:42:44.000500Z  INFO same time, root first\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("batman.log.1"),
        "2026-11-28T02:42:43.999999Z  INFO from the rotated file\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("batman.log"),
        "2026-11-28T02:42:44.000200Z  INFO batman one\n\
         2026-11-28T02:42:44.000400Z ERROR batman two\n\
         2026-11-28T02:42:44.000500Z  INFO same time, batman second\n",
    )
    .unwrap();
    let output = hm_output(hive.path(), &["logs"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let expected = "\
batman | 2026-11-28T02:42:43.999999Z  INFO from the rotated file
root   | 2026-11-28T02:42:44.000001Z  INFO hive starting
batman | 2026-11-28T02:42:44.000200Z  INFO batman one
root   | 2026-11-28T02:42:44.000300Z  WARN root warns
root   |                                   and goes on
batman | 2026-11-28T02:42:44.000400Z ERROR batman two
root   | 2026-11-28T02:42:44.000500Z  INFO same time, root first
batman | 2026-11-28T02:42:44.000500Z  INFO same time, batman second
";
    assert_eq!(text, expected);

    // One log only; and an unknown one is refused with the list.
    let output = hm_output(hive.path(), &["logs", "batman"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 4);
    let output = hm_output(hive.path(), &["logs", "joker"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("joker.log") && stderr.contains("root, batman"),
        "{stderr}"
    );

    // -f prints what is appended, as it is appended.
    let mut follower = std::process::Command::new(hm())
        .args(["logs", "-f"])
        .current_dir(hive.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(line);
        }
    });
    assert!(eventually(WAIT, || lines.lock().unwrap().len() == 8));
    std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("batman.log"))
        .unwrap()
        .write_all(b"2026-11-28T02:42:45.000000Z  INFO batman later\n")
        .unwrap();
    let arrived = eventually(WAIT, || lines.lock().unwrap().len() == 9);
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(arrived, "{:?}", lines.lock().unwrap());
    assert_eq!(
        lines.lock().unwrap()[8],
        "batman | 2026-11-28T02:42:45.000000Z  INFO batman later"
    );
}
