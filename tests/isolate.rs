//! `isolate = true`: a node in a process of its own. A segfault or an abort in it takes down
//! only that process; the host shows the crash, restarts it with backoff, and delivers what it
//! had not handled and what was sent meanwhile. The node's code is the same as in process.
//! Nothing else can reach the process (a socket pair, private folders), a hostile process
//! cannot make its host allocate more than it sends nor publish what is not JSON, and a killed
//! host's scratch folder is removed by the next one.

use hivemind_tests::{
    Hive, Running, assert_every_seq_once_in_order, eventually, received_from, records, toml_path,
};
use serde_json::{Value, json};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
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
        .find(|p| p.contains("hm-scratch-"))
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

/// The host's scratch folders (`hm-scratch-<pid>-*`) in `tmp`, by owning pid.
fn scratch_folders(tmp: &Path) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            let pid = name
                .strip_prefix("hm-scratch-")?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            Some((pid, path))
        })
        .collect();
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A field of `/proc/<pid>/status` in kB (`VmHWM`: the peak resident memory).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Starts `hive` with its temporary folder (and so its scratch folder) in `tmp`.
fn run_in(hive: &Hive, tmp: &Path) -> Running {
    Running::start_with_env(hive.path(), &["run"], &[("TMPDIR", tmp.as_os_str())])
}

#[test]
fn nobody_else_can_reach_an_isolated_node_and_its_files_are_private() {
    let hive = Hive::new();
    let tmp = tempfile::tempdir().unwrap();
    let victim = hive.file("victim.jsonl");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"a\"], interval_ms = 10 }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"signals\"]\nrecord = {}\n",
        toml_path(&victim),
    ));
    hive.install("probe");
    // As in /tmp: anyone may enter the temporary folder. And the host runs under umask 000, so
    // only the modes it sets itself keep others out.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let running = Running::start_under_umask(
        hive.path(),
        &["run"],
        &[("TMPDIR", tmp.path().as_os_str())],
        0o000,
    );
    assert!(eventually(WAIT, || received_from(&victim, "signals").len() == 1));
    let child = built_pids(&victim)[0];

    let folders = scratch_folders(tmp.path());
    assert_eq!(folders.len(), 1, "{folders:?}");
    let (pid, scratch) = &folders[0];
    assert_eq!(*pid, running.pid(), "named after its host");
    assert_eq!(
        mode(scratch),
        0o700,
        "the scratch folder is the user's alone"
    );
    let mut files = Vec::new();
    let mut node_folders = 0;
    let mut walk = vec![scratch.clone()];
    while let Some(dir) = walk.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            assert!(
                !kind.is_socket(),
                "no socket to connect to: {:?}",
                entry.path()
            );
            if kind.is_dir() {
                assert_eq!(mode(&entry.path()), 0o700, "{:?}", entry.path());
                node_folders += 1;
                walk.push(entry.path());
            } else {
                assert_eq!(mode(&entry.path()), 0o600, "{:?}", entry.path());
                files.push(entry.path());
            }
        }
    }
    assert_eq!(
        node_folders, 1,
        "the isolated node's process has its own folder"
    );
    assert!(
        files.len() >= 2,
        "library copies: the host's and the process's ({files:?})"
    );
    // Another local user (nobody) can neither list the scratch folder nor read a library copy.
    if is_root() {
        let as_nobody = |args: &[&str]| {
            let output = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .args(args)
                .output()
                .expect("setpriv runs");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let (listed, why) = as_nobody(&["ls", scratch.to_str().unwrap()]);
        assert!(!listed && why.contains("Permission denied"), "{why}");
        for file in &files {
            let (read, why) = as_nobody(&["cat", file.to_str().unwrap()]);
            assert!(
                !read && why.contains("Permission denied"),
                "{file:?}: {why}"
            );
        }
        let (entered, _) = as_nobody(&["ls", tmp.path().to_str().unwrap()]);
        assert!(
            entered,
            "the check itself works: nobody may list the temporary folder"
        );
    } else {
        eprintln!("not root: the check as another user is skipped (the modes are checked)");
    }

    // No Unix socket of the host or its process has a path another process could connect to:
    // the link is a socket pair, the process's end its stdin, which nothing else holds.
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    let tmp_name = tmp.path().to_string_lossy().into_owned();
    assert!(
        !unix
            .lines()
            .any(|l| l.contains(&tmp_name) || l.contains("hm-scratch-")),
        "{unix}"
    );
    let stdin = std::fs::read_link(format!("/proc/{child}/fd/0")).unwrap();
    assert_eq!(
        stdin,
        Path::new("/dev/null"),
        "the node cannot read the link as stdin"
    );
    let sockets: std::collections::BTreeSet<PathBuf> =
        std::fs::read_dir(format!("/proc/{child}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.to_string_lossy().starts_with("socket:"))
            .collect();
    assert_eq!(sockets.len(), 1, "one link, to its host: {sockets:?}");
    assert_eq!(running.node("victim")["status"], "running");
}

/// Whether the tests run as root (who can act as another user to check what that user sees).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn a_forged_huge_frame_from_an_isolated_process_is_refused_without_the_allocation() {
    let hive = Hive::new();
    let victim = hive.file("victim.jsonl");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"a\", \"forge\", \"b\", \"c\"], interval_ms = 300, start_file = {} }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"signals\"]\nforge_on_payload = \"forge\"\nforge = \"huge_header\"\nrecord = {}\n",
        toml_path(&hive.file("go")),
        toml_path(&victim),
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || running.node("victim")["status"] == "running"));
    let before = status_kb(running.pid(), "VmHWM:");
    std::fs::write(hive.file("go"), "").unwrap();

    assert!(
        eventually(WAIT, || records(&victim)
            .iter()
            .any(|r| r["event"] == "forged")),
        "{:?}",
        records(&victim)
    );
    let forged: Vec<Value> = records(&victim)
        .into_iter()
        .filter(|r| r["event"] == "forged")
        .collect();
    assert_eq!(
        forged[0]["sockets"], 1,
        "the process wrote to its link: {forged:?}"
    );
    let log = hive.file("logs/victim.log");
    assert!(
        eventually(WAIT, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(
                "corrupt isolation stream: a frame of 268435456 bytes (at most"
            )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The process was stopped as corrupt and restarted; what came after still arrives.
    assert!(
        eventually(WAIT, || {
            let got = received_from(&victim, "signals");
            got.contains(&json!("b")) && got.contains(&json!("c"))
        }),
        "{:?}",
        records(&victim)
    );
    assert!(
        built_pids(&victim).len() >= 2,
        "restarted: {:?}",
        built_pids(&victim)
    );
    let after = status_kb(running.pid(), "VmHWM:");
    assert!(
        after < before + 64 * 1024,
        "the host's peak memory grew from {before} kB to {after} kB on one forged header"
    );
    assert_eq!(running.get("/healthz").0, 200);
}

#[test]
fn a_payload_that_is_not_json_from_an_isolated_process_is_refused_and_counted() {
    let hive = Hive::new();
    let (victim, witness) = (hive.file("victim.jsonl"), hive.file("witness.jsonl"));
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"forge\", \"after\"], interval_ms = 300, start_file = {} }}]\n\n\
         [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\n\
         subscriptions = [\"signals\"]\nforge_on_payload = \"forge\"\nforge = \"not_json\"\n\
         forge_service = \"victim-out\"\necho_to = \"victim-out\"\nrecord = {}\n\n\
         [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"victim-out\"]\nrecord = {}\n",
        toml_path(&hive.file("go")),
        toml_path(&victim),
        toml_path(&witness),
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || running.node("victim")["status"] == "running"));
    std::fs::write(hive.file("go"), "").unwrap();

    // The victim echoes both payloads properly; the forged one in between never arrives.
    assert!(
        eventually(WAIT, || received_from(&witness, "victim-out").len() == 2),
        "{:?}",
        records(&witness)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        received_from(&witness, "victim-out"),
        [json!("forge"), json!("after")],
        "only the JSON payloads"
    );
    let node = running.node("victim");
    let service = node["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "victim-out")
        .unwrap()
        .clone();
    assert_eq!(service["refused"], 1, "{node}");
    assert_eq!(service["sent"], 2, "{node}");
    assert_eq!(
        built_pids(&victim).len(),
        1,
        "a bad payload is refused, not fatal"
    );
    let log = std::fs::read_to_string(hive.file("logs/victim.log")).unwrap();
    assert!(
        log.contains("sent a payload on `victim-out` that is not JSON; it was not sent"),
        "{log}"
    );
}

#[test]
fn scratch_folders_of_killed_hosts_are_removed_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let hive = || {
        let hive = Hive::new();
        hive.configure(
            "[nodes.victim]\nenabled = true\nlibrary = \"probe\"\nisolate = true\nsubscriptions = [\"x\"]\n",
        );
        hive.install("probe");
        hive
    };
    let (killed_hive, live_hive, next_hive) = (hive(), hive(), hive());
    let killed = run_in(&killed_hive, tmp.path());
    let live = run_in(&live_hive, tmp.path());
    for running in [&killed, &live] {
        assert!(eventually(WAIT, || running.node("victim")["status"] == "running"));
    }
    let killed_pid = killed.pid();
    drop(killed); // SIGKILL: it cannot clean up.
    let left = scratch_folders(tmp.path());
    assert!(
        left.iter().any(|(pid, _)| *pid == killed_pid),
        "a killed host leaves its folder: {left:?}"
    );
    std::fs::create_dir(tmp.path().join("hm-scratch-notapid-x")).unwrap();

    let next = run_in(&next_hive, tmp.path());
    let pids: Vec<u32> = scratch_folders(tmp.path())
        .iter()
        .map(|(pid, _)| *pid)
        .collect();
    let mut expected = vec![live.pid(), next.pid()];
    expected.sort();
    assert_eq!(
        pids, expected,
        "the dead host's folder went; the live ones stay"
    );
    assert!(
        tmp.path().join("hm-scratch-notapid-x").exists(),
        "not ours: left alone"
    );
    assert!(
        next.stderr().contains("removed 1 scratch folder(s)"),
        "{}",
        next.stderr()
    );
}
