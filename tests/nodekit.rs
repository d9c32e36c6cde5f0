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
