//! One hive across several `hm` processes over Zenoh, on loopback: messages both ways with
//! exact counts and order, a host killed and restarted while the others carry on, no echo and
//! no duplicates in a triangle of connections, hives kept apart, and nothing of the mesh
//! running when it is off.

use hivemind_tests::browser::Browser;
use hivemind_tests::{
    Hive, Running, eventually, free_port, output_dir, records, tcp_mesh, tls_mesh, toml_path,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// One host of a test mesh: its hive, its record file and the file that starts its sender.
struct Host {
    name: &'static str,
    hive: Hive,
    record: PathBuf,
    go: PathBuf,
}

impl Host {
    /// A host whose node `sender` sends `count` messages `{"seq": i}` on `<name>-ticks` (every
    /// `interval_ms`) once its go file exists, and whose node `receiver` records every message
    /// matching `*-ticks`.
    fn new(name: &'static str, listen: u16, connect: &[u16], count: u64, interval_ms: u64) -> Self {
        Self::with_mesh(name, &tcp_mesh(name, listen, connect), count, interval_ms)
    }

    /// [`Host::new`] with its own `[mesh]` section.
    fn with_mesh(name: &'static str, mesh_section: &str, count: u64, interval_ms: u64) -> Self {
        let hive = Hive::new();
        let record = hive.file("receiver.jsonl");
        let go = hive.file("go");
        hive.configure(&format!(
            "{}[messages]\nqueue_capacity = 100000\n\n\
             [nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"{name}-ticks\", count = {count}, interval_ms = {interval_ms}, start_file = {} }}]\n\n\
             [nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"*-ticks\"]\nrecord = {}\n",
            mesh_section,
            toml_path(&go),
            toml_path(&record),
        ));
        hive.install("probe");
        Host {
            name,
            hive,
            record,
            go,
        }
    }

    fn run(&self) -> Running {
        self.hive.run(&[])
    }

    fn go(&self) {
        std::fs::write(&self.go, "").unwrap();
    }

    /// The `seq`s this host's receiver recorded from `<from>-ticks`, in order.
    fn seqs_from(&self, from: &str) -> Vec<u64> {
        received(&self.record, &format!("{from}-ticks"))
            .iter()
            .map(|r| r["payload"]["seq"].as_u64().unwrap())
            .collect()
    }
}

/// The receipts of `service` in a record file.
fn received(path: &Path, service: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["event"] == "received" && r["service"] == service)
        .collect()
}

/// Node `name` of host `host` as `running` lists it in `GET /api/nodes`.
fn node(running: &Running, host: &str, name: &str) -> Option<Value> {
    let (code, body) = running.get("/api/nodes");
    assert_eq!(code, 200, "{body}");
    let nodes: Value = serde_json::from_str(&body).unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["host"] == host && n["name"] == name)
        .cloned()
}

/// The status `running` shows for node `name` of host `host` (`None`: not listed).
fn status(running: &Running, host: &str, name: &str) -> Option<String> {
    node(running, host, name).map(|n| n["status"].as_str().unwrap().to_owned())
}

/// Waits until every host in `running` lists the receivers of all the others as running.
fn wait_until_all_see_each_other(hosts: &[(&Host, &Running)]) {
    for (host, running) in hosts {
        for (other, _) in hosts {
            if other.name == host.name {
                continue;
            }
            assert!(
                eventually(WAIT, || status(running, other.name, "receiver").as_deref()
                    == Some("running")),
                "host {} never saw host {}:\n{}",
                host.name,
                other.name,
                running.stderr()
            );
        }
    }
}

fn mesh_counters(running: &Running) -> Value {
    let (code, body) = running.get("/api/mesh");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Names of the process's threads.
fn threads(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Whether any of `names` is one of Zenoh's runtime threads (`rx-0`, `tx-0`, `acc-0`, ...).
fn has_zenoh_threads(names: &[String]) -> bool {
    names.iter().any(|name| {
        ["rx-", "tx-", "acc-", "app-", "net-"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
    })
}

#[test]
fn two_hosts_exchange_messages_both_ways_exactly_once_in_order() {
    let count = 2000;
    let (pa, pb) = (free_port(), free_port());
    let a = Host::new("a", pa, &[], count, 0);
    let b = Host::new("b", pb, &[pa], count, 0);
    let (ra, rb) = (a.run(), b.run());
    assert!(
        has_zenoh_threads(&threads(ra.pid())),
        "the mesh runs on Zenoh"
    );
    wait_until_all_see_each_other(&[(&a, &ra), (&b, &rb)]);
    a.go();
    b.go();
    let all: Vec<u64> = (0..count).collect();
    for (host, running) in [(&a, &ra), (&b, &rb)] {
        for from in ["a", "b"] {
            assert!(
                eventually(WAIT, || host.seqs_from(from).len() >= count as usize),
                "host {} got {} of {count} from {from}\n{}",
                host.name,
                host.seqs_from(from).len(),
                running.stderr()
            );
        }
    }
    // Anything late (an echo, a second copy) would show up now.
    std::thread::sleep(Duration::from_millis(500));
    for host in [&a, &b] {
        for from in ["a", "b"] {
            assert_eq!(
                host.seqs_from(from),
                all,
                "host {} from {from}: exactly once, in order",
                host.name
            );
            for receipt in received(&host.record, &format!("{from}-ticks")) {
                assert_eq!(receipt["node"], "sender", "{receipt}");
                assert_eq!(receipt["host"], from, "the sending host travels: {receipt}");
            }
        }
    }
    for (running, other) in [(&ra, "b"), (&rb, "a")] {
        let mesh = mesh_counters(running);
        assert_eq!(mesh["sent"], count, "{mesh}");
        assert_eq!(mesh["received"], count, "{mesh}");
        assert_eq!(mesh["dropped"], 0, "{mesh}");
        assert_eq!(mesh["duplicates"], 0, "{mesh}");
        assert_eq!(mesh["peers"][0]["host"], other, "{mesh}");
        // The other host's nodes and counters are visible here too.
        assert!(
            eventually(WAIT, || node(running, other, "sender")
                .is_some_and(|n| n["services"][0]["sent"] == count)),
            "{:?}",
            node(running, other, "sender")
        );
    }
    // Leaving is quick, and the other host sees it at once.
    let (exit, took, _) = ra.quit();
    assert!(exit.success());
    assert!(took < Duration::from_millis(1500), "stopping took {took:?}");
    assert!(eventually(Duration::from_secs(1), || status(
        &rb, "a", "receiver"
    )
    .as_deref()
        == Some("gone")));
}

#[test]
fn a_killed_host_is_shown_gone_the_others_carry_on_and_it_rejoins() {
    // `a` is the hub: `b` and `c` only know its address; gossip connects them directly.
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = Host::new("a", pa, &[], 100_000, 20);
    let b = Host::new("b", pb, &[pa], 100_000, 20);
    let c = Host::new("c", pc, &[pa], 100_000, 20);
    let ra = a.run();
    let (rb, rc) = (b.run(), c.run());
    wait_until_all_see_each_other(&[(&a, &ra), (&b, &rb), (&c, &rc)]);
    for host in [&a, &b, &c] {
        host.go();
    }
    for (host, from) in [(&b, "c"), (&c, "b"), (&a, "b"), (&b, "a")] {
        assert!(
            eventually(WAIT, || host.seqs_from(from).len() >= 10),
            "host {} gets {from}",
            host.name
        );
    }

    // b's dashboard, as a person watching it would see the hub go and come back.
    let shots = output_dir("mesh");
    let browser = Browser::start(1360, 860);
    browser.open(&format!("{}/nodes", rb.url));
    let card_is = |status: &str| {
        format!(
            "const card = document.querySelector('article.card[data-node=\"receiver@a\"]'); \
             return card !== null && card.querySelector('.chip.host').textContent === 'on a' \
               && card.querySelector('button') === null \
               && card.querySelector('.chip[data-status]').dataset.status === '{status}';"
        )
    };
    browser.wait_until(
        "b's dashboard shows a's receiver running",
        WAIT,
        &card_is("running"),
    );

    let killed = Instant::now();
    drop(ra); // SIGKILL
    for running in [&rb, &rc] {
        assert!(
            eventually(Duration::from_secs(5), || status(running, "a", "receiver")
                .as_deref()
                == Some("gone")),
            "a killed host is shown gone within 5 s:\n{}",
            running.stderr()
        );
        let (_, page) = running.get("/");
        assert!(
            page.contains("\"status\":\"gone\""),
            "the page is drawn with it gone"
        );
    }
    let gone_after = killed.elapsed();
    browser.wait_until(
        "b's dashboard shows a's receiver gone",
        WAIT,
        &card_is("gone"),
    );
    browser.screenshot(&shots.join("host-gone.png"));
    let (b_from_c, c_from_b) = (b.seqs_from("c").len(), c.seqs_from("b").len());
    assert!(
        eventually(WAIT, || b.seqs_from("c").len() >= b_from_c + 25
            && c.seqs_from("b").len() >= c_from_b + 25),
        "b and c keep exchanging without a:\n{}\n{}",
        rb.stderr(),
        rc.stderr()
    );

    let before = received(&a.record, "b-ticks").len() + received(&a.record, "c-ticks").len();
    let b_from_a = b.seqs_from("a").len();
    let ra = a.run();
    for running in [&rb, &rc] {
        assert!(
            eventually(WAIT, || status(running, "a", "receiver").as_deref()
                == Some("running")),
            "a restarted host is shown back:\n{}",
            running.stderr()
        );
    }
    assert!(
        eventually(WAIT, || status(&ra, "b", "receiver").as_deref()
            == Some("running")
            && status(&ra, "c", "receiver").as_deref() == Some("running")),
        "the restarted host sees the others"
    );
    browser.wait_until(
        "b's dashboard shows a's receiver back",
        WAIT,
        &card_is("running"),
    );
    browser.screenshot(&shots.join("host-back.png"));
    assert!(
        eventually(WAIT, || {
            received(&a.record, "b-ticks").len() + received(&a.record, "c-ticks").len()
                >= before + 50
        }),
        "the restarted host receives again:\n{}",
        ra.stderr()
    );
    // Its sender starts again from 0 at once; what it sends before it has reconnected is
    // missed (the mesh keeps nothing), everything after arrives in order.
    assert!(
        eventually(WAIT, || b.seqs_from("a").len() >= b_from_a + 25),
        "the others receive the restarted host's new messages"
    );
    let again = &b.seqs_from("a")[b_from_a..];
    assert!(again.windows(2).all(|w| w[1] == w[0] + 1), "{again:?}");
    // Through all of it, what b and c sent each other arrived once each, in order.
    for (host, from) in [(&b, "c"), (&c, "b")] {
        let seqs = host.seqs_from(from);
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "host {} from {from}",
            host.name
        );
    }
    eprintln!("a killed host was shown gone after {gone_after:?}");
}

#[test]
fn a_host_cut_off_is_shown_gone_after_the_lease_and_rejoins_by_itself() {
    // SIGSTOP freezes `a` with its connections open: nothing closes, it just falls silent,
    // as a host behind a pulled cable would. `[mesh] lease_ms` is 3000 by default.
    let (pa, pb) = (free_port(), free_port());
    let a = Host::new("a", pa, &[], 100_000, 20);
    let b = Host::new("b", pb, &[pa], 100_000, 20);
    let (ra, rb) = (a.run(), b.run());
    wait_until_all_see_each_other(&[(&a, &ra), (&b, &rb)]);
    a.go();
    b.go();
    assert!(eventually(WAIT, || a.seqs_from("b").len() >= 10));
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &ra.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let cut = Instant::now();
    let shown_gone = eventually(Duration::from_secs(10), || {
        status(&rb, "a", "receiver").as_deref() == Some("gone")
    });
    let gone_after = cut.elapsed();
    signal("-CONT");
    assert!(shown_gone, "a silent host is shown gone:\n{}", rb.stderr());
    assert!(
        gone_after >= Duration::from_millis(2000) && gone_after <= Duration::from_secs(6),
        "gone after the lease, within a few seconds: {gone_after:?}"
    );
    let from_b = a.seqs_from("b").len();
    assert!(
        eventually(WAIT, || status(&rb, "a", "receiver").as_deref()
            == Some("running")
            && a.seqs_from("b").len() >= from_b + 25),
        "once it answers again it rejoins, with no restart of either:\n{}\n{}",
        ra.stderr(),
        rb.stderr()
    );
    let seqs = a.seqs_from("b");
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "never twice, never out of order: {seqs:?}"
    );
    eprintln!("a silent host was shown gone after {gone_after:?}");
}

#[test]
fn a_triangle_of_connections_delivers_each_message_once() {
    let count = 1000;
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = Host::new("a", pa, &[pb], count, 0);
    let b = Host::new("b", pb, &[pc], count, 0);
    let c = Host::new("c", pc, &[pa], count, 0);
    let (ra, rb, rc) = (a.run(), b.run(), c.run());
    wait_until_all_see_each_other(&[(&a, &ra), (&b, &rb), (&c, &rc)]);
    for host in [&a, &b, &c] {
        host.go();
    }
    let all: Vec<u64> = (0..count).collect();
    for host in [&a, &b, &c] {
        for from in ["a", "b", "c"] {
            assert!(
                eventually(WAIT, || host.seqs_from(from).len() >= count as usize),
                "host {} got {} from {from}",
                host.name,
                host.seqs_from(from).len()
            );
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for host in [&a, &b, &c] {
        for from in ["a", "b", "c"] {
            assert_eq!(host.seqs_from(from), all, "host {} from {from}", host.name);
        }
    }
    for running in [&ra, &rb, &rc] {
        let mesh = mesh_counters(running);
        assert_eq!(mesh["received"], 2 * count, "{mesh}");
        assert_eq!(mesh["sent"], count, "{mesh}");
    }
}

#[test]
fn two_hives_on_one_network_do_not_mix() {
    let (pa, pb) = (free_port(), free_port());
    let gotham = Host::new("a", pa, &[], 20, 0);
    let metropolis = Host::new("b", pb, &[pa], 20, 0);
    let config = metropolis.hive.path().join("config/hive.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"test-hive\"", "\"metropolis\"")).unwrap();
    let (rg, rm) = (gotham.run(), metropolis.run());
    gotham.go();
    metropolis.go();
    assert!(eventually(WAIT, || gotham.seqs_from("a").len() == 20
        && metropolis.seqs_from("b").len() == 20));
    std::thread::sleep(Duration::from_secs(2));
    assert!(gotham.seqs_from("b").is_empty());
    assert!(metropolis.seqs_from("a").is_empty());
    assert_eq!(status(&rg, "b", "sender"), None);
    assert_eq!(status(&rm, "a", "sender"), None);
}

#[test]
fn a_hive_without_a_mesh_runs_nothing_of_it() {
    let hive = Hive::new();
    let record = hive.file("receiver.jsonl");
    hive.configure(&format!(
        "[nodes.receiver]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"*\"]\nrecord = {}\n",
        toml_path(&record)
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || status(
        &running,
        &host_of(&running),
        "receiver"
    )
    .as_deref()
        == Some("running")));
    let names = threads(running.pid());
    assert!(!names.is_empty());
    assert!(!has_zenoh_threads(&names), "{names:?}");
    assert_eq!(mesh_counters(&running), Value::Null);
}

/// The host name `running` gives its own nodes.
fn host_of(running: &Running) -> String {
    let (_, body) = running.get("/api/nodes");
    let nodes: Value = serde_json::from_str(&body).unwrap();
    nodes[0]["host"].as_str().unwrap().to_owned()
}

#[test]
fn a_listen_port_in_use_is_refused_with_the_fix() {
    let port = free_port();
    let first = Host::new("a", port, &[], 1, 0);
    let _running = first.run();
    let second = Host::new("b", port, &[], 1, 0);
    let output = hivemind_tests::hm_output(second.hive.path(), &["run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("error: cannot join the mesh"), "{stderr}");
    assert!(stderr.contains("[mesh] listen"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Security: what a rogue peer can do, and TLS between hosts.

use zenoh::Wait;

/// A raw Zenoh peer connected to `endpoint`, as an attacker would run one (not hm).
fn rogue(endpoint: &str) -> zenoh::Session {
    rogue_with(endpoint, &[])
}

/// A raw Zenoh peer connecting to `endpoint`, with extra Zenoh settings.
fn rogue_with(endpoint: &str, extra: &[(&str, String)]) -> zenoh::Session {
    let mut config = zenoh::Config::default();
    let base = [
        ("mode", "\"peer\"".to_owned()),
        ("connect/endpoints", format!("[\"{endpoint}\"]")),
        ("listen/endpoints", "[\"tcp/127.0.0.1:0\"]".to_owned()),
        ("scouting/multicast/enabled", "false".to_owned()),
    ];
    for (key, value) in base.iter().chain(extra) {
        config.insert_json5(key, value).unwrap();
    }
    zenoh::open(config).wait().unwrap()
}

/// Whether `session` has a Zenoh session with any peer.
fn connected(session: &zenoh::Session) -> bool {
    session.info().peers_zid().wait().next().is_some()
}

/// What a forged batch claims about its sender.
struct Envelope {
    host: String,
    node: String,
    origin: String,
    seq: u64,
}

fn envelope(host: &str, node: &str, origin: &str, seq: u64) -> Envelope {
    Envelope {
        host: host.into(),
        node: node.into(),
        origin: origin.into(),
        seq,
    }
}

/// `name` as one Zenoh key chunk, as hm writes it (`%XX` for all but `[A-Za-z0-9._~-]`).
fn key_chunk(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A batch of mesh format 2 (see hm's `mesh::envelope`) carrying one message, written by hand
/// as a rogue peer would; `version` is its first byte.
fn batch_bytes(version: u8, envelope: &Envelope, service: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![version];
    for name in [&envelope.origin, &envelope.host] {
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name.as_bytes());
    }
    bytes.extend_from_slice(&envelope.seq.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(service.len() as u16).to_le_bytes());
    bytes.extend_from_slice(service.as_bytes());
    bytes.push(envelope.node.len() as u8);
    bytes.extend_from_slice(envelope.node.as_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Puts a one-message batch of `service` on the test hive, under the key of the host its
/// `envelope` names.
fn forge(session: &zenoh::Session, service: &str, envelope: &Envelope, payload: Vec<u8>) {
    let bytes = batch_bytes(2, envelope, service, &payload);
    put_raw(
        session,
        &format!("batch/{}", key_chunk(&envelope.host)),
        bytes,
    );
}

/// Puts `bytes` on `key` (under `hivemind/test-hive/`).
fn put_raw(session: &zenoh::Session, key: &str, bytes: Vec<u8>) {
    session
        .put(format!("hivemind/test-hive/{key}"), bytes)
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait()
        .unwrap();
}

/// A `/proc/<pid>/status` field in kB.
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

#[test]
fn a_rogue_peer_cannot_silence_a_host_forge_names_or_make_it_keep_memory() {
    let count = 50;
    let (pm, pt) = (free_port(), free_port());
    let manor = Host::new("manor", pm, &[], 0, 0);
    let tower = Host::new("tower", pt, &[pm], count, 5);
    let (rm, rt) = (manor.run(), tower.run());
    wait_until_all_see_each_other(&[(&manor, &rm), (&tower, &rt)]);
    let session = rogue(&format!("tcp/127.0.0.1:{pm}"));
    assert!(eventually(WAIT, || connected(&session)));
    let tower_origin = mesh_counters(&rt)["origin"].as_str().unwrap().to_owned();

    // One envelope with tower's origin and the last sequence number silences nothing.
    forge(
        &session,
        "tower-ticks",
        &envelope("tower", "sender", &tower_origin, u64::MAX),
        br#"{"seq": 1000000}"#.to_vec(),
    );
    // Names from the wire are checked like local ones.
    let refused_before = mesh_counters(&rm)["rejected"].as_u64().unwrap();
    for bad in [
        envelope("evil\nhost", "sender", "abc", 1),
        envelope("tower", "../root", "abc", 2),
        envelope("tower", "sender", "not an id", 3),
    ] {
        forge(
            &session,
            "tower-ticks",
            &bad,
            br#"{"seq": 2000000}"#.to_vec(),
        );
    }
    forge(
        &session,
        "tower-ticks",
        &envelope("tower", "sender", "abc", 4),
        b"not json".to_vec(),
    );
    // Another version, a batch under another host's key, and mesh format 1 (a JSON envelope
    // per message on `msg/<service>`) are refused too.
    let real = envelope("tower", "sender", "abc", 5);
    put_raw(
        &session,
        "batch/tower",
        batch_bytes(3, &real, "tower-ticks", br#"{"seq": 2000000}"#),
    );
    put_raw(
        &session,
        "batch/manor",
        batch_bytes(2, &real, "tower-ticks", br#"{"seq": 2000000}"#),
    );
    session
        .put("hivemind/test-hive/msg/tower-ticks", br#"{"seq": 2000000}"#.to_vec())
        .attachment(
            serde_json::json!({"v": 1, "host": "tower", "node": "sender", "origin": "abc", "seq": 6})
                .to_string()
                .into_bytes(),
        )
        .wait()
        .unwrap();
    assert!(
        eventually(WAIT, || mesh_counters(&rm)["rejected"].as_u64().unwrap()
            >= refused_before + 7),
        "{}\n{}",
        mesh_counters(&rm),
        rm.stderr()
    );
    tower.go();
    assert!(
        eventually(WAIT, || (0..count)
            .all(|i| manor.seqs_from("tower").contains(&i))),
        "the real host was silenced: {:?}",
        manor.seqs_from("tower")
    );
    assert!(
        !manor.seqs_from("tower").contains(&2000000),
        "a forged name got in"
    );
    assert!(
        !rm.stderr().contains("evil\nhost"),
        "a newline from the wire reached the terminal"
    );

    // A payload of 200 MiB is dropped by Zenoh as it arrives, not buffered.
    let before = status_kb(rm.pid(), "VmHWM:");
    forge(
        &session,
        "tower-ticks",
        &envelope("tower", "sender", "abc", 5),
        vec![b' '; 200 << 20],
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = status_kb(rm.pid(), "VmHWM:");
    assert!(
        after < before + 100 * 1024,
        "peak memory {before} kB -> {after} kB for one 200 MiB payload"
    );

    // A flood of valid-looking junk, each message from a new origin, leaves little behind:
    // the duplicate filter keeps at most 256 origins.
    let junk = 200_000u64;
    let received_before = mesh_counters(&rm)["received"].as_u64().unwrap();
    let rss_before = status_kb(rm.pid(), "VmRSS:");
    for i in 0..junk {
        forge(
            &session,
            "junk",
            &envelope("junk", "flood", &format!("f{i}"), 1),
            br#"{"junk": true}"#.to_vec(),
        );
    }
    assert!(
        eventually(Duration::from_secs(120), || mesh_counters(&rm)["received"]
            .as_u64()
            .unwrap()
            >= received_before + junk),
        "{}",
        mesh_counters(&rm)
    );
    let rss_after = status_kb(rm.pid(), "VmRSS:");
    let per_message = (rss_after.saturating_sub(rss_before) * 1024) / junk;
    println!(
        "junk flood: {junk} messages, RSS {rss_before} kB -> {rss_after} kB ({per_message} B each)"
    );
    assert!(
        rss_after < rss_before + 10 * 1024,
        "RSS {rss_before} kB -> {rss_after} kB after {junk} junk messages ({per_message} B each)"
    );
    // Still serving, and the real host's later messages still arrive.
    assert_eq!(rm.get("/healthz").0, 200);
    assert_eq!(status(&rm, "tower", "receiver").as_deref(), Some("running"));
}

#[test]
fn a_fake_host_cannot_list_without_bound_shadow_local_logs_or_forge_terminal_lines() {
    let pm = free_port();
    let manor = Host::with_mesh(
        "manor",
        &format!(
            "[mesh]\nenabled = true\nhost = \"manor\"\nlisten = [\"tcp/127.0.0.1:{pm}\"]\nforget_after_s = 2\nlease_ms = 1000\n\n"
        ),
        0,
        0,
    );
    let rm = manor.run();
    let session = rogue(&format!("tcp/127.0.0.1:{pm}"));
    assert!(eventually(WAIT, || connected(&session)));
    let node = |name: &str| {
        serde_json::json!({
            "name": name, "status": "running", "error": null, "library": null, "services": [],
            "subscriptions": [], "enabled": true, "loads": 1, "loaded_at": null, "last_error": null,
        })
    };
    let mut nodes: Vec<Value> = (0..20_000).map(|i| node(&format!("n{i}"))).collect();
    nodes.push(node("root"));
    nodes.insert(0, node("root"));
    let view =
        serde_json::json!({"v": 2, "host": "fake", "origin": "fake1", "nodes": nodes}).to_string();
    let queryable = session
        .declare_queryable("hivemind/test-hive/view/fake")
        .callback(move |query| {
            let _ = query
                .reply("hivemind/test-hive/view/fake", view.clone())
                .wait();
        })
        .wait()
        .unwrap();
    let token = session
        .liveliness()
        .declare_token("hivemind/test-hive/host/fake")
        .wait()
        .unwrap();
    let _evil = session
        .liveliness()
        .declare_token("hivemind/test-hive/host/evil%0Ahost%20joined")
        .wait()
        .unwrap();

    assert!(
        eventually(WAIT, || status(&rm, "fake", "root").as_deref()
            == Some("running")),
        "{}",
        rm.get("/api/nodes").1
    );
    let (_, body) = rm.get("/api/nodes");
    let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
    let fake = listed.iter().filter(|n| n["host"] == "fake").count();
    assert!(fake <= 1024, "{fake} nodes of one host listed");
    // `root` of another host is not this host's root.log.
    std::fs::write(
        manor.hive.file("logs/root.log"),
        "secret line of the host's own log\n",
    )
    .ok();
    let (code, body) = rm.get("/api/nodes/root/log");
    assert_eq!(code, 404, "{body}");
    assert!(!body.contains("secret line"), "{body}");
    let peers = mesh_counters(&rm)["peers"].clone();
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["host"] == "fake"),
        "only valid host names are listed: {peers}"
    );
    assert!(!rm.stderr().contains("evil\nhost"), "{}", rm.stderr());

    // Gone, then forgotten after [mesh] forget_after_s.
    drop(token);
    drop(queryable);
    assert!(eventually(WAIT, || status(&rm, "fake", "root").as_deref()
        == Some("gone")));
    assert!(
        eventually(WAIT, || mesh_counters(&rm)["peers"]
            .as_array()
            .unwrap()
            .is_empty()),
        "{}",
        mesh_counters(&rm)
    );
    assert!(
        rm.stderr().contains("host `fake` is forgotten"),
        "{}",
        rm.stderr()
    );
}

#[test]
fn a_mesh_beyond_loopback_without_tls_is_refused_with_what_to_add() {
    let hive = Hive::new();
    hive.configure("[mesh]\nenabled = true\nlisten = [\"tcp/0.0.0.0:7447\"]\n");
    let output = hivemind_tests::hm_output(hive.path(), &["run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("has no TLS"), "{stderr}");
    assert!(stderr.contains("hm mesh certs HOST..."), "{stderr}");
    assert!(stderr.contains("tls_ca, tls_cert and tls_key"), "{stderr}");
}

#[test]
fn hosts_with_the_hives_certificates_talk_and_a_peer_without_them_gets_nothing() {
    let certs = tempfile::tempdir().unwrap();
    let (ours, theirs) = (certs.path().join("ours"), certs.path().join("theirs"));
    for (dir, hosts) in [
        (&ours, &["manor", "tower"][..]),
        (&theirs, &["intruder"][..]),
    ] {
        let mut args = vec!["mesh", "certs", "--dir", dir.to_str().unwrap()];
        args.extend_from_slice(hosts);
        let output = hivemind_tests::hm_output(certs.path(), &args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("tls_cert = "), "{stdout}");
    }
    let count = 20;
    let (pm, pt, pi) = (free_port(), free_port(), free_port());
    let manor = Host::with_mesh("manor", &tls_mesh("manor", &ours, pm, &[]), count, 10);
    let tower = Host::with_mesh("tower", &tls_mesh("tower", &ours, pt, &[pm]), count, 10);
    // Its own CA: a certificate, but not one of this hive's.
    let intruder = Host::with_mesh(
        "intruder",
        &tls_mesh("intruder", &theirs, pi, &[pm, pt]),
        count,
        10,
    );
    let (rm, rt, ri) = (manor.run(), tower.run(), intruder.run());
    wait_until_all_see_each_other(&[(&manor, &rm), (&tower, &rt)]);
    // A plain TCP peer cannot open a session with a TLS host either, nor can a QUIC peer that
    // trusts the hive's CA but shows no certificate of its own.
    let plain = rogue(&format!("tcp/127.0.0.1:{pm}"));
    let anonymous = rogue_with(
        &format!("quic/127.0.0.1:{pm}"),
        &[(
            "transport/link/tls/root_ca_certificate",
            format!("{:?}", ours.join("ca.pem").to_str().unwrap()),
        )],
    );
    manor.go();
    tower.go();
    intruder.go();
    let all: Vec<u64> = (0..count).collect();
    // On a failure, both members' mesh counters and their own receipts tell which side lost it.
    let why = |got: Vec<u64>| {
        format!(
            "got {got:?}\nmanor's own: {:?}\ntower's own: {:?}\nmanor: {}\ntower: {}\nmanor's stderr:\n{}\ntower's stderr:\n{}",
            manor.seqs_from("manor"),
            tower.seqs_from("tower"),
            mesh_counters(&rm),
            mesh_counters(&rt),
            rm.stderr(),
            rt.stderr()
        )
    };
    assert!(
        eventually(WAIT, || manor.seqs_from("tower") == all),
        "{}",
        why(manor.seqs_from("tower"))
    );
    assert!(
        eventually(WAIT, || tower.seqs_from("manor") == all),
        "{}",
        why(tower.seqs_from("manor"))
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        intruder.seqs_from("manor").is_empty() && intruder.seqs_from("tower").is_empty(),
        "nothing out"
    );
    assert_eq!(
        intruder.seqs_from("intruder"),
        all,
        "its own messages reach only itself"
    );
    assert!(
        manor.seqs_from("intruder").is_empty() && tower.seqs_from("intruder").is_empty(),
        "nothing in"
    );
    for running in [&rm, &rt] {
        let hosts: Vec<Value> = mesh_counters(running)["peers"].as_array().unwrap().clone();
        assert!(hosts.iter().all(|p| p["host"] != "intruder"), "{hosts:?}");
    }
    assert!(
        mesh_counters(&ri)["peers"].as_array().unwrap().is_empty(),
        "{}",
        mesh_counters(&ri)
    );
    assert!(
        !connected(&plain),
        "a plain TCP peer has no session with a TLS host"
    );
    assert!(
        !connected(&anonymous),
        "a QUIC peer without a certificate of the hive's CA has no session"
    );
}
