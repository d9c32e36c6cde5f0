//! `isolate = true`: a node in a process of its own. A segfault or an abort in it takes down
//! only that process; the host shows the crash, restarts it with backoff, and delivers what it
//! had not handled and what was sent meanwhile. The node's code is the same as in process.

use hivemind_tests::{
    Hive, assert_every_seq_once_in_order, eventually, received_from, records, toml_path,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The process ids the probe recorded when it was built, in order.
fn built_pids(record: &Path) -> Vec<u64> {
    records(record)
        .into_iter()
        .filter(|r| r["event"] == "built")
        .map(|r| r["pid"].as_u64().unwrap())
        .collect()
}

fn is_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn a_segfaulting_node_is_restarted_and_loses_nothing_but_the_fatal_message() {
    let hive = Hive::new();
    let (victim, witness) = (hive.file("victim.jsonl"), hive.file("witness.jsonl"));
    let payloads = ["a", "b", "die", "c", "d", "e", "f"];
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = {payloads:?}, interval_ms = 30 }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"signals\"]\ncrash_on_payload = \"die\"\ncrash_how = \"segfault\"\nrecord = {}\n\n\
         [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\nrecord = {}\n",
        toml_path(&victim),
        toml_path(&witness),
    ));
    hive.install("probe");
    let running = hive.run(&[]);

    assert!(eventually(WAIT, || received_from(&witness, "signals")
        .len()
        == 7));
    assert!(
        eventually(WAIT, || received_from(&victim, "signals").len() == 6),
        "{:?}\n{}",
        records(&victim),
        running.stderr()
    );
    assert_eq!(
        received_from(&victim, "signals"),
        ["a", "b", "c", "d", "e", "f"].map(|p| json!(p)),
        "every message but the one it died on (twice), once each and in order"
    );

    let pids = built_pids(&victim);
    assert_eq!(
        pids.len(),
        3,
        "built, then restarted after each crash: {pids:?}"
    );
    assert!(
        !pids.contains(&u64::from(running.pid())),
        "it runs outside the host's process"
    );
    assert!(pids[0] != pids[1] && pids[1] != pids[2], "{pids:?}");

    let node = running.node("victim");
    assert_eq!(node["isolated"], true, "{node}");
    assert_eq!(node["crashes"], 2, "{node}");
    assert!(
        eventually(WAIT, || running.node("victim")["status"] == "running"),
        "{}",
        running.node("victim")
    );
    assert!(
        node["last_crash"].as_str().unwrap().contains("SIGSEGV"),
        "{node}"
    );
    assert_eq!(running.node("witness")["status"], "running");
    assert_eq!(running.get("/healthz").0, 200);

    // The host's scratch folder (where its in-process nodes' copies are mapped from) keeps a
    // folder for the live process only: the dead ones' library copies are gone.
    let maps = running.maps();
    let copy = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("hm-libraries-"))
        .expect("the in-process nodes' library copy is mapped");
    let scratch = Path::new(copy).parent().unwrap();
    let folders: Vec<String> = std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("node-"))
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");

    let log = std::fs::read_to_string(hive.file("logs/victim.log")).unwrap();
    assert!(log.contains("killed by signal 11 (SIGSEGV"), "{log}");
    assert!(
        log.contains("dropped a message from `sender` (service `signals`): the node's process died twice while handling it"),
        "{log}"
    );
    // The controller reports each crash once, on the terminal and in the event feed.
    let stderr = running.stderr();
    assert_eq!(
        stderr.matches("isolated node `victim` crashed").count(),
        2,
        "{stderr}"
    );
}

#[test]
fn messages_sent_while_the_process_is_down_wait_and_arrive_in_order() {
    let hive = Hive::new();
    let victim = hive.file("victim.jsonl");
    // It aborts on the first message; 300 more follow at once, while it is down.
    let mut payloads: Vec<Value> = vec![json!("die")];
    payloads.extend((1..=300).map(|i| json!(i)));
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"burst\", payloads_json = '{}' }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"burst\"]\ncrash_on_payload = \"die\"\ncrash_how = \"abort\"\nrecord = {}\n",
        Value::from(payloads),
        toml_path(&victim),
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        eventually(WAIT, || received_from(&victim, "burst").len() >= 300),
        "{}\n{}",
        received_from(&victim, "burst").len(),
        running.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    let expected: Vec<Value> = (1..=300).map(|i| json!(i)).collect();
    assert_eq!(received_from(&victim, "burst"), expected);
    assert!(eventually(WAIT, || running.node("victim")["subscriptions"]
        [0]["delivered"]
        == 300));
    let node = running.node("victim");
    assert_eq!(node["crashes"], 2, "{node}");
    assert!(
        node["last_crash"].as_str().unwrap().contains("SIGABRT"),
        "{node}"
    );
    let subscription = &node["subscriptions"][0];
    assert_eq!(subscription["delivered"], 300, "{node}");
    assert_eq!(subscription["dropped"], 1, "the fatal message: {node}");
}

#[test]
fn an_isolated_node_has_the_same_api_and_its_state_moves_in_and_out_of_process() {
    let hive = Hive::new();
    let (echo, listener) = (hive.file("echo.jsonl"), hive.file("listener.jsonl"));
    let go = hive.file("go");
    let config = |isolate: bool| {
        format!(
            "[nodes.pinger]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"ping\", count = 50, interval_ms = 2, start_file = {} }}]\n\n\
             [nodes.echo]\nenabled = true\nlibrary = \"probe\"\nisolate = {isolate}\n\
             subscriptions = [\"ping\"]\necho_to = \"pong\"\nrecord = {}\n\n\
             [nodes.listener]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"pong\"]\nrecord = {}\n",
            toml_path(&go),
            toml_path(&echo),
            toml_path(&listener),
        )
    };
    hive.configure(&config(true));
    hive.install("probe");
    let running = hive.run(&[]);
    std::fs::write(&go, "").unwrap();
    assert!(
        eventually(WAIT, || received_from(&listener, "pong").len() == 50),
        "{}",
        running.stderr()
    );
    let expected: Vec<Value> = (0..50).map(|i| json!({ "seq": i })).collect();
    assert_eq!(
        received_from(&listener, "pong"),
        expected,
        "through the process and back"
    );
    // The process reports its counters a few times a second.
    assert!(
        eventually(
            WAIT,
            || running.node("echo")["subscriptions"][0]["delivered"] == 50
        ),
        "{}",
        running.node("echo")
    );
    let node = running.node("echo");
    assert_eq!(node["isolated"], true);
    assert_eq!(node["services"][0]["name"], "pong");
    assert_eq!(node["services"][0]["sent"], 50, "{node}");
    assert_eq!(node["services"][0]["running"], true, "{node}");
    assert_eq!(node["library"]["crate_name"], "probe", "{node}");
    let log = std::fs::read_to_string(hive.file("logs/echo.log")).unwrap();
    assert!(
        log.contains("loaded "),
        "the process's log lines reach the node's log: {log}"
    );
    let child = built_pids(&echo)[0];
    assert_ne!(child, u64::from(running.pid()));

    // Out of process: the state (the count of messages received) goes with it.
    hive.configure(&config(false));
    assert!(
        eventually(WAIT, || built_pids(&echo).len() == 2),
        "{}",
        running.stderr()
    );
    assert_eq!(
        built_pids(&echo)[1],
        u64::from(running.pid()),
        "now in process"
    );
    assert!(
        eventually(WAIT, || !is_alive(child)),
        "the old process exited"
    );
    // Built first, then handed the state when it starts.
    let restored = || -> Vec<Value> {
        records(&echo)
            .into_iter()
            .filter(|r| r["event"] == "restored")
            .collect()
    };
    assert!(
        eventually(WAIT, || restored().len() == 1),
        "{:?}",
        restored()
    );
    assert_eq!(restored()[0]["total"], 50);
    assert_eq!(running.node("echo")["isolated"], false);

    // And back into a process of its own.
    hive.configure(&config(true));
    assert!(eventually(WAIT, || built_pids(&echo).len() == 3));
    let again = built_pids(&echo)[2];
    assert_ne!(again, u64::from(running.pid()));
    assert!(
        eventually(WAIT, || restored().len() == 2),
        "{:?}",
        restored()
    );
    assert!(eventually(WAIT, || running.node("echo")["status"] == "running"));

    // The hive stops its processes with it.
    let (status, _, _) = running.quit();
    assert!(status.success());
    assert!(
        eventually(WAIT, || !is_alive(again)),
        "no process outlives the hive"
    );
}

#[test]
fn a_killed_host_takes_its_processes_with_it_and_panics_still_fail_the_node() {
    let hive = Hive::new();
    let (victim, lasting) = (hive.file("victim.jsonl"), hive.file("lasting.jsonl"));
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"boom\", \"boom\", \"x\"], interval_ms = 20 }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\nmax_subscription_panics = 2\n\
         subscriptions = [\"signals\"]\npanic_on_payload = \"boom\"\nrecord = {}\n\n\
         [nodes.lasting]\nenabled = true\nlibrary = \"probe\"\nisolate = true\nsubscriptions = [\"signals\"]\nrecord = {}\n",
        toml_path(&victim),
        toml_path(&lasting),
    ));
    hive.install("probe");
    let mut running = hive.run(&[]);
    assert!(
        eventually(WAIT, || running.node("victim")["status"] == "failed"),
        "{}",
        running.node("victim")
    );
    let error = running.node("victim")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("max_subscription_panics = 2"), "{error}");
    assert_eq!(
        running.node("victim")["crashes"],
        0,
        "a panic is not a crash"
    );
    assert!(eventually(WAIT, || received_from(&lasting, "signals")
        .len()
        == 3));
    let victim_pid = built_pids(&victim)[0];
    assert!(
        eventually(WAIT, || !is_alive(victim_pid)),
        "the failed node's process ended"
    );

    let child = built_pids(&lasting)[0];
    assert!(is_alive(child));
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &running.pid().to_string()])
        .status();
    running.wait_exit(WAIT);
    assert!(
        eventually(WAIT, || !is_alive(child)),
        "a process whose host died exits by itself"
    );
}

#[test]
fn no_message_is_lost_or_reordered_while_an_isolated_subscriber_reloads() {
    let hive = Hive::new();
    let record = hive.file("receiver.jsonl");
    let count = 2000u64;
    hive.configure(&format!(
        "[nodes.ticker]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"ticks\", count = {count}, interval_ms = 1 }}]\n\n\
         [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"ticks\"]\nrecord = {}\n",
        toml_path(&record),
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    for reload in 1..=5u64 {
        assert!(eventually(WAIT, || received_from(&record, "ticks").len()
            as u64
            >= reload * count / 8));
        let (status, body) = running.post("/api/nodes/receiver/reload", "", &[]);
        assert_eq!(status, 200, "{body}");
        assert!(eventually(WAIT, || running.node("receiver")["loads"] == reload + 1));
    }
    assert_every_seq_once_in_order(&record, "ticks", count, WAIT);
    assert_eq!(
        built_pids(&record).len(),
        6,
        "six processes, one after the other"
    );
    let restored: Vec<u64> = records(&record)
        .iter()
        .filter(|r| r["event"] == "restored")
        .map(|r| r["total"].as_u64().unwrap())
        .collect();
    assert_eq!(
        restored.len(),
        5,
        "each process handed its state to the next"
    );
    assert!(restored.windows(2).all(|w| w[0] < w[1]), "{restored:?}");
    assert_eq!(running.node("receiver")["subscriptions"][0]["dropped"], 0);
}
