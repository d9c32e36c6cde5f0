//! Messages through the real host between real node libraries: payload kinds, fan-out, order,
//! glob routing, and shutdown.

use hivemind_tests::{Hive, eventually, received_from, records, toml_path};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn payloads_of_every_json_kind_arrive_intact() {
    let hive = Hive::new();
    let record = hive.file("receiver.jsonl");
    let payloads = json!([
        "Batman! We need help! — Gotham's 蝙蝠 🦇",
        42,
        -3.5,
        {"nested": {"list": [1, "two", null], "empty": {}}},
        [1, 2, 3],
        null,
        true,
        ""
    ]);
    hive.configure(&format!(
            "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"kinds\", payloads_json = {} }}]\n\n\
             [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"kinds\"]\nrecord = {}\n",
            toml_edit::Value::from(payloads.to_string()),
            toml_path(&record)
        ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || received_from(&record, "kinds").len() == 8),
        "received {:?}\n{}",
        records(&record),
        running.stderr()
    );
    assert_eq!(Value::Array(received_from(&record, "kinds")), payloads);
    let sender = records(&record)
        .into_iter()
        .find(|r| r["event"] == "received")
        .unwrap();
    assert_eq!(
        sender["node"], "sender",
        "the message names its sending node"
    );
}

#[test]
fn two_subscriptions_on_two_nodes_each_get_every_message_in_order() {
    let count = 5000;
    let first = Hive::new();
    let (one, two) = (first.file("one.jsonl"), first.file("two.jsonl"));
    first.configure(&format!(
            "[messages]\nqueue_capacity = 100000\n\n\
             [nodes.ticker]\nenabled = true\nlibrary = \"probe\"\nservices = [{{ name = \"ticks\", count = {count} }}]\n\n\
             [nodes.one]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"tick*\"]\nrecord = {}\n\n\
             [nodes.two]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"*s\"]\nrecord = {}\n",
            toml_path(&one),
            toml_path(&two)
        ));
    first.install("probe");
    let running = first.run(&[]);
    for file in [&one, &two] {
        assert!(
            eventually(WAIT, || received_from(file, "ticks").len() >= count),
            "{}",
            running.stderr()
        );
        let seqs: Vec<u64> = received_from(file, "ticks")
            .iter()
            .map(|p| p["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (0..count as u64).collect::<Vec<_>>(),
            "exactly once, in order"
        );
    }
    let ticker = running.node("ticker");
    assert_eq!(ticker["services"][0]["sent"], count);
    assert_eq!(running.node("one")["subscriptions"][0]["delivered"], count);
    assert_eq!(running.node("one")["subscriptions"][0]["dropped"], 0);
}

#[test]
fn overlapping_subscriptions_on_one_node_each_get_their_copy() {
    let hive = Hive::new();
    let record = hive.file("batman.jsonl");
    hive.configure(&format!(
            "[nodes.signal]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"bat-signal-main\", payloads = [1, 2, 3] }}]\n\n\
             [nodes.batman]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"bat-*\", \"*-main\", \"robin-*\"]\nrecord = {}\n",
            toml_path(&record)
        ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(
        &record,
        "bat-signal-main"
    )
    .len()
        == 6));
    let by_subscription = |index: u64| -> Vec<Value> {
        records(&record)
            .into_iter()
            .filter(|r| r["event"] == "received" && r["subscription"] == index)
            .map(|r| r["payload"].clone())
            .collect()
    };
    assert_eq!(by_subscription(0), vec![json!(1), json!(2), json!(3)]);
    assert_eq!(by_subscription(1), vec![json!(1), json!(2), json!(3)]);
    assert!(by_subscription(2).is_empty());
    drop(running);
}

#[test]
fn routes_follow_the_glob_rules() {
    let hive = Hive::new();
    let record = hive.file("batman.jsonl");
    hive.configure(&format!(
            "[nodes.city]\nenabled = true\nlibrary = \"probe\"\nservices = [\
             {{ name = \"bat-signal-main\", payloads = [\"main\"] }}, \
             {{ name = \"Bat-Signal-main\", payloads = [\"shouting\"] }}, \
             {{ name = \"cat-signal\", payloads = [\"cat\"] }}, \
             {{ name = \"bat-signal-2\", payloads = [\"two\"] }}]\n\n\
             [nodes.batman]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"bat-signal-*\"]\nrecord = {}\n",
            toml_path(&record)
        ));
    hive.install("probe");
    let running = hive.run(&[]);
    let (status, body) = running.get("/api/topics");
    assert_eq!(status, 200);
    let topics: Value = serde_json::from_str(&body).unwrap();
    let subscribers = |service: &str| -> Value {
        topics
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["service"] == service)
            .map(|t| t["subscribers"].clone())
            .unwrap_or_else(|| panic!("no topic {service} in {topics}"))
    };
    assert_eq!(subscribers("bat-signal-main"), json!(["batman"]));
    assert_eq!(subscribers("bat-signal-2"), json!(["batman"]));
    assert_eq!(subscribers("Bat-Signal-main"), json!([]));
    assert_eq!(subscribers("cat-signal"), json!([]));
    assert!(eventually(WAIT, || {
        running.node("city")["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["sent"] == 1)
    }));
    assert!(eventually(WAIT, || records(&record).len() == 3));
    let mut got: Vec<String> = records(&record)
        .iter()
        .filter(|r| r["event"] == "received")
        .map(|r| r["payload"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, vec!["main", "two"]);
}

#[test]
fn sleep_for_wakes_at_shutdown_and_the_hive_exits_cleanly() {
    let hive = Hive::new();
    let record = hive.file("sleeper.jsonl");
    hive.configure(&format!(
            "[nodes.sleeper]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"nap\", sleep_secs = 60.0 }}, {{ name = \"nap2\", sleep_secs = 60.0 }}]\nrecord = {}\n",
            toml_path(&record)
        ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || running.node("sleeper")["services"][1]
        ["running"]
        == true));
    let (status, took, _running) = running.quit();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?}, so sleep_for did not wake"
    );
    let woke: Vec<Value> = records(&record)
        .into_iter()
        .filter(|r| r["event"] == "woke")
        .collect();
    assert_eq!(woke.len(), 2, "{woke:?}");
    for event in woke {
        assert_eq!(event["running"], false, "sleep_for reports the stop");
        assert!(event["slept_ms"].as_u64().unwrap() < 5000);
    }
}

#[test]
fn sigterm_stops_the_hive_and_a_closed_stdin_does_not() {
    let hive = Hive::new();
    hive.configure("[nodes.sleeper]\nenabled = true\nlibrary = \"probe\"\nservices = [{ name = \"nap\", sleep_secs = 60.0 }]\n");
    hive.install("probe");
    let mut running = hive.run(&[]);
    running.close_stdin();
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = running.get("/healthz");
    assert_eq!(status, 200, "still serving after stdin closed");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = running.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(running.stderr().contains("SIGTERM"), "{}", running.stderr());
}

#[test]
fn logs_land_in_root_and_per_node_files() {
    let hive = Hive::new();
    hive.configure("[log]\nlocation = \"my-logs\"\n\n[nodes.sleeper]\nenabled = true\nlibrary = \"probe\"\nservices = [{ name = \"nap\", sleep_secs = 60.0 }]\n");
    hive.install("probe");
    let running = hive.run(&["-v"]);
    let (status, _, _running) = running.quit();
    assert!(status.success());
    let root = std::fs::read_to_string(hive.path().join("my-logs/root.log")).unwrap();
    let node = std::fs::read_to_string(hive.path().join("my-logs/sleeper.log")).unwrap();
    assert!(root.contains("is running at http://"), "{root}");
    assert!(node.contains("loaded"), "{node}");
    let record = regex_like_timestamp;
    for line in root
        .lines()
        .chain(node.lines())
        .filter(|l| !l.starts_with(' '))
    {
        assert!(record(line), "not a timestamped record: {line:?}");
    }
}

/// `2026-11-28T02:42:44.123456Z` at the start of the line.
fn regex_like_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 27
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && bytes[26] == b'Z'
        && bytes[20..26].iter().all(u8::is_ascii_digit)
}

#[test]
fn a_subscription_can_send_on_its_nodes_service() {
    let hive = Hive::new();
    let record = hive.file("listener.jsonl");
    hive.configure(&format!(
            "[nodes.pinger]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"ping\", count = 50 }}]\n\n\
             [nodes.echo]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"ping\"]\necho_to = \"pong\"\n\n\
             [nodes.listener]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"pong\"]\nrecord = {}\n",
            toml_path(&record)
        ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(&record, "pong").len() == 50));
    let seqs: Vec<u64> = received_from(&record, "pong")
        .iter()
        .map(|p| p["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    let echoed = records(&record)
        .into_iter()
        .find(|r| r["event"] == "received")
        .unwrap();
    assert_eq!(echoed["node"], "echo");
    drop(running);
}

#[test]
fn ctrl_c_stops_the_hive_cleanly() {
    let hive = Hive::new();
    hive.configure("[nodes.sleeper]\nenabled = true\nlibrary = \"probe\"\nservices = [{ name = \"nap\", sleep_secs = 60.0 }]\n");
    hive.install("probe");
    let mut running = hive.run(&[]);
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = running.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(running.stderr().contains("Ctrl-C"), "{}", running.stderr());
}
