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
        json!([{"service": "ticks", "publishers": ["sender"], "subscribers": ["receiver"], "schema": false}])
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

type WebSocket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Opens `/api/subscribe?{query}`. Once this returns, the host has answered the handshake, so
/// its tap exists: every message published from now on reaches the socket.
fn websocket(running: &Running, query: &str) -> WebSocket {
    let url = format!("ws://{}/api/subscribe?{query}", running.address());
    let (socket, _) = tungstenite::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    socket
}

/// Reads text frames from a WebSocket until `want` accepts one (or `WAIT` passes).
fn websocket_frames(running: &Running, query: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    read_frames(websocket(running, query), want)
}

/// Reads text frames from `socket` until `want` accepts one (or `WAIT` passes).
fn read_frames(mut socket: WebSocket, want: impl Fn(&Value) -> bool) -> Vec<Value> {
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
    let socket = websocket(&running, "pattern=manual-%3F");
    running.post("/api/publish/manual-q", r#""hello""#, &[]);
    let published = read_frames(socket, |f| f["service"] == "manual-q");
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

// ---- Faults and bad input: many clients, too many clients, clients that never read. ----

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Opens a WebSocket on `/api/subscribe?{query}` whose reads give up after `WAIT`.
fn subscriber(running: &Running, query: &str) -> Socket {
    let url = format!("ws://{}/api/subscribe?{query}", running.address());
    let (socket, _) = tungstenite::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    socket
}

/// The next text frame as JSON (pings and the like skipped).
fn next_frame(socket: &mut Socket) -> Value {
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => return json_of(&text),
            Ok(_) => {}
            Err(e) => panic!("no frame before the deadline: {e}"),
        }
    }
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(running: &Running, name: &str) -> u64 {
    let (status, text) = running.get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// `hm`'s resident memory in KiB, from `/proc/<pid>/status`.
fn resident_kib(running: &Running) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in\n{status}"))
}

/// GETs `path` and checks it answers 200 with `want` in the body; returns how long it took.
fn answers(running: &Running, path: &str, want: &str) -> Duration {
    let started = std::time::Instant::now();
    let (status, body) = running.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(body.contains(want), "{path}: {body}");
    started.elapsed()
}

#[test]
fn two_hundred_websocket_clients_each_get_every_message_while_the_api_keeps_answering() {
    const CLIENTS: usize = 200;
    const MESSAGES: u64 = 20;
    let hive = ticking_hive("", "");
    let record = hive.file("receiver.jsonl");
    let running = hive.run(&[]);

    // Connected from 10 threads at once, all open together.
    let mut sockets: Vec<Socket> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    (0..CLIENTS / 10)
                        .map(|_| subscriber(&running, "pattern=manual-load"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        openers
            .into_iter()
            .flat_map(|opener| opener.join().unwrap())
            .collect()
    });
    assert_eq!(sockets.len(), CLIENTS);
    assert!(
        eventually(WAIT, || metric(&running, "hivemind_web_streams")
            == CLIENTS as u64),
        "the server counts {} live connections",
        metric(&running, "hivemind_web_streams")
    );

    // Publish while another thread keeps asking for the health check and the nodes.
    let done = std::sync::atomic::AtomicBool::new(false);
    let slowest = std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            let mut slowest = Duration::ZERO;
            let mut checks = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || checks < 5 {
                slowest = slowest.max(answers(&running, "/healthz", "ok"));
                slowest = slowest.max(answers(&running, "/api/nodes", "receiver"));
                checks += 1;
            }
            slowest
        });
        for n in 0..MESSAGES {
            let (status, body) = running.post(
                "/api/publish/manual-load",
                &json!({ "n": n }).to_string(),
                &[],
            );
            assert_eq!(status, 200, "{body}");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        checker.join().unwrap()
    });
    // Not a speed test: only that the API was never held up behind the clients.
    assert!(
        slowest < Duration::from_secs(5),
        "a request took {slowest:?}"
    );

    // Every client got every message, in order, and nothing was dropped.
    for (client, socket) in sockets.iter_mut().enumerate() {
        for n in 0..MESSAGES {
            let frame = next_frame(socket);
            assert_eq!(frame["service"], "manual-load", "client {client}: {frame}");
            assert_eq!(
                frame["payload"],
                json!({ "n": n }),
                "client {client}: {frame}"
            );
        }
    }
    assert!(eventually(WAIT, || received_from(&record, "manual-load")
        .len()
        == MESSAGES as usize));

    for mut socket in sockets {
        let _ = socket.close(None);
        let _ = socket.flush();
    }
    assert!(
        eventually(WAIT, || metric(&running, "hivemind_web_streams") == 0),
        "closed clients still hold {} places",
        metric(&running, "hivemind_web_streams")
    );
    assert_eq!(metric(&running, "hivemind_web_streams_refused_total"), 0);
}

/// The status and JSON body of a refused WebSocket handshake.
fn refused_handshake(running: &Running, query: &str) -> (u16, Value) {
    let url = format!("ws://{}/api/subscribe?{query}", running.address());
    match tungstenite::connect(&url) {
        Ok(_) => panic!("{url} was accepted"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                json_of(&String::from_utf8_lossy(&body)),
            )
        }
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn beyond_max_streams_live_connections_get_503_until_one_closes() {
    let hive = ticking_hive("max_streams = 5", "");
    let running = hive.run(&[]);
    // Five places: three WebSockets and two event streams.
    let mut sockets: Vec<Socket> = (0..3)
        .map(|_| subscriber(&running, "pattern=tick*"))
        .collect();
    let mut snapshots = running.sse_lines("/api/stream");
    assert!(snapshots.any(|line| line == "event:hive"));
    let events = running.sse_lines("/api/events");
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 5));

    let (status, body) = refused_handshake(&running, "pattern=tick*");
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("5 live connections") && error.contains("[hive] max_streams"),
        "{error}"
    );
    assert_eq!(body["max_streams"], 5);
    for path in ["/api/events", "/api/stream", "/api/nodes/receiver/log"] {
        let (status, body) = running.get(path);
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            json_of(&body)["error"]
                .as_str()
                .unwrap()
                .contains("max_streams")
        );
    }
    // Everything that is not a live connection is still served.
    answers(&running, "/healthz", "ok");
    answers(&running, "/api/nodes", "receiver");
    answers(&running, "/", "<title>");
    assert_eq!(metric(&running, "hivemind_web_streams_refused_total"), 4);

    // Closing one frees its place for the next client.
    let mut closed = sockets.pop().unwrap();
    closed.close(None).unwrap();
    while closed.read().is_ok() {} // until the server's answer to the close
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 4));
    let mut again = subscriber(&running, "pattern=tick*");
    assert_eq!(next_frame(&mut again)["service"], "ticks");
    assert_eq!(refused_handshake(&running, "pattern=tick*").0, 503);

    // So does leaving an event stream.
    drop(events);
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 4));
    let mut feed = running.sse_lines("/api/events");
    assert!(feed.any(|line| line == "event:hive-event"));

    // The ones that stayed open kept working throughout.
    for socket in &mut sockets {
        assert_eq!(next_frame(socket)["service"], "ticks");
    }
    assert!(snapshots.any(|line| line == "event:hive"));
}

/// Tells a helper thread to stop; set by its [`Stopper`] when dropped, so also when the test
/// fails (a scope would otherwise wait for the thread for ever).
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

/// Sets its flag when dropped.
struct Stopper<'a>(&'a Flag);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        self.0.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Flag {
    fn stopper(&self) -> Stopper<'_> {
        Stopper(self)
    }

    fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The highest resident size of `hm` seen, in KiB, every 20 ms until `stop` (at most a minute).
fn peak_resident(running: &Running, from: u64, stop: &Flag) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut peak = from;
    while !stop.is_set() && std::time::Instant::now() < deadline {
        peak = peak.max(resident_kib(running));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// A raw connection asking for the server-sent events at `path`, which then never reads.
fn stalled_event_stream(running: &Running, path: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(running.address()).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        running.address()
    )
    .unwrap();
    stream
}

/// Reads what is left on `stream` and says whether the server closed it (end of stream or a
/// reset) before `WAIT` passed.
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_websocket_client_that_never_reads_is_cut_off_without_growing_memory_or_slowing_the_rest() {
    const MESSAGES: u64 = 4000;
    let hive = Hive::new();
    let go = hive.file("go");
    // 4,000 messages of 16 KiB (64 MiB), about one a millisecond; the receiver makes the
    // flood wait rather than lose any. The write deadline is longer than the flood, so what
    // bounds memory during it is the stuck client's queue, not the deadline.
    hive.configure(&format!(
        "write_timeout_ms = 8000\n\n\
         [nodes.flood]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"flood\", count = {MESSAGES}, pad_bytes = 16384, interval_ms = 1, start_file = {} }}]\n\n\
         [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"flood\"]\n\
         overflow = \"block\"\noverflow_wait_ms = 60000\n",
        toml_path(&go)
    ));
    hive.install("probe");
    let running = hive.run(&[]);

    // Never reads: its kernel buffers fill, then its queue in the hive, then the deadline runs.
    let stuck = subscriber(&running, "pattern=flood");
    let stuck_address = match stuck.get_ref() {
        tungstenite::stream::MaybeTlsStream::Plain(stream) => stream.local_addr().unwrap(),
        _ => unreachable!("plain ws://"),
    };
    // Event streams that never read either (they send little: they stay open, and harmless).
    let _stuck_snapshots = stalled_event_stream(&running, "/api/stream");
    let _stuck_events = stalled_event_stream(&running, "/api/events");
    let mut healthy = subscriber(&running, "pattern=flood");
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 4));
    let before = resident_kib(&running);

    std::fs::write(&go, "").unwrap();
    // Sampled on another thread until the flood is over (or the test fails).
    let flood_over = Flag::default();
    let (received, dropped, peak) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| peak_resident(&running, before, &flood_over));
        let stop = flood_over.stopper();
        // The healthy client reads as fast as it can: every message reaches it, in order, or
        // is counted as dropped for it.
        let (mut received, mut dropped, mut last) = (0, 0, None);
        while received + dropped < MESSAGES {
            let frame = next_frame(&mut healthy);
            match frame["dropped"].as_u64() {
                Some(total) => dropped = total,
                None => {
                    let seq = frame["payload"]["seq"].as_u64().unwrap();
                    assert!(last < Some(seq), "{seq} after {last:?}");
                    last = Some(seq);
                    received += 1;
                }
            }
        }
        drop(stop);
        (received, dropped, watcher.join().unwrap())
    });
    // Whether it kept up with the flood depends on the machine; it received, in order.
    assert!(
        received > 0,
        "the healthy client got nothing ({dropped} dropped)"
    );

    // The hive held at most a queue's worth for the stuck client, not the 64 MiB sent.
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 40,
        "hm grew by {grown_mib} MiB during the flood"
    );

    // Then the write deadline cut the stuck client off, naming it.
    let cut_off = running.wait_for(WAIT, |r| {
        r.stderr()
            .contains(&format!("closing the web connection of {stuck_address}"))
            .then_some(())
    });
    assert!(
        cut_off.is_some(),
        "no warning naming {stuck_address}:\n{}",
        running.stderr()
    );

    // The node got every message (the last ones may still be on their way to it).
    assert!(eventually(
        WAIT,
        || running.node("receiver")["subscriptions"][0]["delivered"] == MESSAGES
    ));
    let receiver = running.node("receiver");
    assert_eq!(
        receiver["subscriptions"][0]["delivered"], MESSAGES,
        "{receiver}"
    );
    assert_eq!(receiver["subscriptions"][0]["dropped"], 0, "{receiver}");

    // The stuck client was really closed, its place given back; the others still work.
    let mut stuck_stream = match stuck.into_inner() {
        tungstenite::stream::MaybeTlsStream::Plain(stream) => stream,
        _ => unreachable!("plain ws://"),
    };
    assert!(
        closed_by_server(&mut stuck_stream),
        "the stuck client is still connected"
    );
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 3));
    answers(&running, "/healthz", "ok");
    let (status, body) = running.post("/api/publish/flood", r#""after the flood""#, &[]);
    assert_eq!(status, 200, "{body}");
    let frame = next_frame(&mut healthy);
    assert_eq!(frame["payload"], "after the flood", "{frame}");
}

#[test]
fn an_event_stream_client_that_never_reads_is_cut_off() {
    let hive = ticking_hive("write_timeout_ms = 1000", "[log]\nmax_bytes = 0\n");
    let running = hive.run(&[]);
    let log = hive.path().join("logs/receiver.log");
    assert!(eventually(WAIT, || log.exists()));

    // A client follows the receiver's log and never reads, while the log grows by 1 MiB every
    // 100 ms: the server's writes to it stall, then the deadline closes it.
    let mut stuck = stalled_event_stream(&running, "/api/nodes/receiver/log?lines=1");
    let stuck_address = stuck.local_addr().unwrap();
    let line = format!("2026-11-28T02:42:44.000000Z  INFO {}\n", "x".repeat(1000));
    let chunk = line.repeat(1024);
    let done = Flag::default();
    let cut_off = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            // At most 30 s (300 MiB), whatever happens.
            for _ in 0..300 {
                if done.is_set() {
                    break;
                }
                file.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let stop = done.stopper();
        let cut_off = running.wait_for(WAIT, |r| {
            r.stderr()
                .contains(&format!("closing the web connection of {stuck_address}"))
                .then_some(())
        });
        // Meanwhile the rest of the API answers.
        answers(&running, "/healthz", "ok");
        drop(stop);
        writer.join().unwrap();
        cut_off
    });
    assert!(
        cut_off.is_some(),
        "no warning naming {stuck_address}:\n{}",
        running.stderr()
    );
    assert!(
        closed_by_server(&mut stuck),
        "the stuck client is still connected"
    );
    assert!(eventually(WAIT, || metric(
        &running,
        "hivemind_web_streams"
    ) == 0));
    // A client that reads gets the log as before.
    let mut fresh = running.sse_lines("/api/nodes/receiver/log?lines=1");
    assert!(fresh.any(|line| line.starts_with("data:") && line.contains("INFO")));
}

/// Sends `GET {target}` exactly as written (no client normalises it) and returns the status and
/// the body.
fn raw_get(running: &Running, target: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(running.address()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        running.address()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn bad_paths_get_json_errors_and_never_leave_static() {
    let hive = ticking_hive("", "");
    std::fs::create_dir_all(hive.path().join("static")).unwrap();
    std::fs::write(hive.path().join("static/ok.txt"), "fine").unwrap();
    let running = hive.run(&[]);
    assert_eq!(
        raw_get(&running, "/static/ok.txt"),
        (200, "fine".to_owned())
    );

    // Ways out of static/: dots as is, percent-encoded (either case, mixed, in the middle),
    // an absolute path, backslashes, a NUL, invalid UTF-8.
    for target in [
        "/static/../config/hive.toml",
        "/static/%2e%2e/config/hive.toml",
        "/static/%2E%2E/config/hive.toml",
        "/static/.%2e/config/hive.toml",
        "/static/ok/../../config/hive.toml",
        "/static/%2e%2e%2fconfig%2fhive.toml",
        "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/..%5Cconfig%5Chive.toml",
        "/static/%5C..%5Cconfig%5Chive.toml",
        "/static/ok.txt%00.png",
        "/static/%ff%fe",
        "/static/./ok.txt",
        "/static/",
    ] {
        let (status, body) = raw_get(&running, target);
        assert_eq!(status, 400, "{target}: {body}");
        let error = json_of(&body)["error"].as_str().unwrap().to_owned();
        assert!(error.contains("static/"), "{target}: {error}");
        assert!(
            !body.contains("test-hive") && !body.contains("root:"),
            "{target} leaked: {body}"
        );
    }
    // Decoded once only: `%252e%252e` names a file called `%2e%2e`, which does not exist.
    let (status, body) = raw_get(&running, "/static/%252e%252e/config/hive.toml");
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("test-hive"), "{body}");
    // A raw backslash is not allowed in a request line at all.
    let (status, body) = raw_get(&running, "/static/..\\config\\hive.toml");
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("test-hive"), "{body}");

    // Unknown pages, API routes and nodes: 404 with a JSON error that says what exists.
    for target in [
        "/nowhere",
        "/api",
        "/api/nodes/receiver/explode",
        "/static/nothing.css",
    ] {
        let (status, body) = raw_get(&running, target);
        assert_eq!(status, 404, "{target}: {body}");
        assert!(json_of(&body)["error"].is_string(), "{target}: {body}");
    }
    for target in [
        "/api/nodes/joker",
        "/api/nodes/joker/log",
        "/api/nodes/..%2Fconfig/log",
        "/api/nodes/%2e%2e/log",
    ] {
        let (status, body) = raw_get(&running, target);
        assert_eq!(status, 404, "{target}: {body}");
        let error = json_of(&body)["error"].as_str().unwrap().to_owned();
        assert!(error.contains("receiver, sender"), "{target}: {error}");
    }
    for action in ["enable", "disable", "reload"] {
        let (status, body) = running.post(&format!("/api/nodes/joker/{action}"), "", &[]);
        assert_eq!(status, 404, "{action}: {body}");
        assert!(json_of(&body)["error"].as_str().unwrap().contains("joker"));
    }
    // The wrong method is named as such.
    let (status, body) = running.post("/api/nodes", "", &[]);
    assert_eq!(status, 405, "{body}");
    assert!(json_of(&body)["error"].as_str().unwrap().contains("GET"));
}

/// Each subscription lists the offered services its pattern matches, as the bus matches them
/// (`matches`, in `/api/hive`, `/api/stream` and `/api/nodes/{name}`): the node page shows this
/// list and matches no glob itself. `[!]a]*` is one a hand-written matcher gets wrong: its set
/// holds `]` (right after `[!`) and `a`, so `ba` matches and `]x`, `ab`, `a]` do not.
#[test]
fn subscriptions_list_the_services_they_match_as_the_bus_routes_them() {
    let hive = Hive::new();
    let services = ["ba", "]x", "ab", "a]"]
        .map(|name| format!("{{ name = \"{name}\", count = 1 }}"))
        .join(", ");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\nservices = [{services}]\n\n\
         [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"[!]a]*\", \"[]]*\", \"none-*\"]\n"
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || running.node("receiver")["status"] == "running"
            && running.node("sender")["status"] == "running"),
        "{}",
        running.stderr()
    );
    let (status, body) = running.get("/api/hive");
    assert_eq!(status, 200);
    let hive_view = json_of(&body);
    let receiver = hive_view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "receiver")
        .unwrap()
        .clone();
    let matches = |node: &Value| -> Vec<Value> {
        node["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["matches"].clone())
            .collect()
    };
    let expected = vec![json!(["ba"]), json!(["]x"]), json!([])];
    assert_eq!(matches(&receiver), expected, "{receiver}");
    assert_eq!(
        matches(&running.node("receiver")),
        expected,
        "/api/nodes/receiver"
    );
    // The same as the bus routes: receiver is a subscriber of exactly the services listed.
    let (_, topics) = running.get("/api/topics");
    let topics = json_of(&topics);
    assert_eq!(topics.as_array().unwrap().len(), 4, "{topics}");
    for topic in topics.as_array().unwrap() {
        let routed = topic["subscribers"]
            .as_array()
            .unwrap()
            .contains(&json!("receiver"));
        let listed = expected
            .iter()
            .any(|m| m.as_array().unwrap().contains(&topic["service"]));
        assert_eq!(routed, listed, "{topic}");
    }
}
