//! Requests across hosts, on real `hm` processes meshed over loopback with the `oracle` test
//! node: a node, the HTTP API and `hm call` on one host get replies (and typed failures) from a
//! node of another host; a responder on the asking host is preferred; `request_all` gathers
//! from this host and two others; a host killed with a request in hand gives the asker a clear
//! error long before the timeout, and is no longer offered; over mutual TLS the members ask
//! each other and a peer with another CA's certificate learns and gets nothing.

use hivemind_tests::{
    Hive, Running, ask, call, eventually, free_port, records, tcp_mesh, tls_mesh, toml_path,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// An oracle table: `[nodes.NAME]` with library `oracle` and `rest`.
fn oracle(name: &str, rest: &str) -> String {
    format!("[nodes.{name}]\nenabled = true\nlibrary = \"oracle\"\n{rest}\n\n")
}

/// A hive with the oracle library, configured by `config` (after `[hive]`), which gets the
/// hive to name its files.
fn hive(config: impl FnOnce(&Hive) -> String) -> Hive {
    let hive = Hive::new();
    hive.configure(&config(&hive));
    hive.install("oracle");
    hive
}

/// `GET /api/requests`' entry for `name`.
fn listed(running: &Running, name: &str) -> Option<Value> {
    let (_, body) = running.get("/api/requests");
    let list: Value = serde_json::from_str(&body).ok()?;
    list.as_array()?.iter().find(|r| r["name"] == name).cloned()
}

/// Waits until `running` lists `name` as answered by `node` of `host`.
fn wait_for_responder(running: &Running, name: &str, node: &str, host: &str) {
    let found = eventually(WAIT, || {
        listed(running, name).is_some_and(|r| {
            r["responders"]
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p["node"] == node && p["host"] == host))
        })
    });
    assert!(
        found,
        "{name} is never answered by {node}@{host}: {}\n{}",
        running.get("/api/requests").1,
        running.stderr()
    );
}

/// The records of `event` in a record file.
fn events(path: &Path, event: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[test]
fn a_node_the_api_and_hm_call_get_replies_from_another_host_and_this_hosts_own_is_preferred() {
    let (pa, pb) = (free_port(), free_port());
    let asks = [
        "{ name = \"alfred/whoami\", timeout_ms = 5000 }",
        "{ name = \"alfred/add\", args = [2, 40], timeout_ms = 5000 }",
        "{ name = \"alfred/add\", args = \"two\", timeout_ms = 5000 }",
        "{ name = \"alfred/fail\", timeout_ms = 5000 }",
        "{ name = \"shared/who\", timeout_ms = 5000 }",
    ];
    let a = hive(|a| {
        format!(
            "{}[messages]\nmax_payload_bytes = 4096\n\n{}{}",
            tcp_mesh("a", pa, &[]),
            oracle("robin", "shared = true"),
            oracle(
                "bruce",
                &format!(
                    "record = {}\ngo_file = {}\nservice_asks = [{}]",
                    toml_path(&a.file("bruce.jsonl")),
                    toml_path(&a.file("go")),
                    asks.join(", ")
                )
            )
        )
    });
    let (record, go) = (a.file("bruce.jsonl"), a.file("go"));
    let b = hive(|_| {
        format!(
            "{}{}",
            tcp_mesh("b", pb, &[pa]),
            oracle("alfred", "shared = true")
        )
    });
    let (ra, rb) = (a.run(&[]), b.run(&[]));
    wait_for_responder(&ra, "alfred/echo", "alfred", "b");
    wait_for_responder(&ra, "shared/who", "robin", "a");
    wait_for_responder(&rb, "shared/who", "robin", "a");

    // Node to node: bruce on a asks alfred on b, blocking, from its service.
    std::fs::write(&go, "").unwrap();
    assert!(
        eventually(WAIT, || events(&record, "asked").len() == asks.len()),
        "{:?}\n{}",
        records(&record),
        ra.stderr()
    );
    let asked = events(&record, "asked");
    let whoami = &asked[0]["outcome"];
    assert_eq!(
        (&whoami["node"], &whoami["host"]),
        (&json!("alfred"), &json!("b")),
        "{whoami}"
    );
    assert_eq!(
        whoami["reply"],
        json!({ "node": "alfred", "asker": "bruce", "asker_host": "a", "generation": 0 })
    );
    assert_eq!(asked[1]["outcome"]["reply"], 42);
    assert_eq!(asked[2]["outcome"]["kind"], "InvalidArgs", "{}", asked[2]);
    assert_eq!(asked[3]["outcome"]["kind"], "HandlerError", "{}", asked[3]);
    assert!(
        asked[3]["outcome"]["error"]
            .as_str()
            .unwrap()
            .contains("the oracle was told to fail"),
        "{}",
        asked[3]
    );
    assert_eq!(
        asked[4]["outcome"]["node"], "robin",
        "this host's responder is preferred: {}",
        asked[4]
    );

    // The API and hm call on a, every JSON kind there and back.
    for args in [
        json!(null),
        json!(true),
        json!(-1.5),
        json!("ünï \"quoted\""),
        json!([1, [null]]),
        json!({"k": {"list": [false]}}),
    ] {
        let (status, body) = ask(&ra, "alfred/echo", &args, "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["reply"], &body["node"], &body["host"]),
            (&args, &json!("alfred"), &json!("b"))
        );
        let (code, stdout, stderr) = call(&ra, &["alfred/echo", &args.to_string()]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(serde_json::from_str::<Value>(stdout.trim()).unwrap(), args);
    }
    let (code, stdout, stderr) = call(&ra, &["alfred/whoami"]);
    assert_eq!(code, 0, "{stderr}");
    let who: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (&who["asker"], &who["asker_host"]),
        (&json!("cli"), &json!("a"))
    );

    // Typed failures cross with their kind, status and exit code, named after b's node.
    let (status, body) = ask(&ra, "alfred/panic", &json!(null), "");
    assert_eq!((status, &body["kind"]), (500, &json!("panicked")), "{body}");
    assert_eq!(
        (&body["node"], &body["host"]),
        (&json!("alfred"), &json!("b"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("told to panic"),
        "{body}"
    );
    let (code, _, stderr) = call(&ra, &["alfred/fail"]);
    assert_eq!(code, 5, "{stderr}");
    // a takes replies of at most 4096 bytes; b would send 5000.
    let (status, body) = ask(&ra, "alfred/big", &json!(5000), "");
    assert_eq!(
        (status, &body["kind"]),
        (413, &json!("too_large")),
        "{body}"
    );
    let (status, body) = ask(&ra, "alfred/big", &json!(3000), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"].as_str().unwrap().len(), 3000);
    let (status, body) = ask(&ra, "alfred/sleep", &json!({"ms": 2000}), "?timeout_ms=300");
    assert_eq!((status, &body["kind"]), (504, &json!("timeout")), "{body}");

    // Each host prefers its own; all=true gathers from both.
    let (_, body) = ask(&ra, "shared/who", &json!(null), "");
    assert_eq!(
        (&body["reply"], &body["host"]),
        (&json!("robin"), &json!("a"))
    );
    let (_, body) = ask(&rb, "shared/who", &json!(null), "");
    assert_eq!(
        (&body["reply"], &body["host"]),
        (&json!("alfred"), &json!("b"))
    );
    let (status, body) = ask(&ra, "shared/who", &json!(null), "?all=true");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["replies"],
        json!([
            { "node": "robin", "host": "a", "reply": "robin" },
            { "node": "alfred", "host": "b", "reply": "alfred" },
        ])
    );

    // The list shows b's responders with their host and help; a counts what a asked.
    let echo = listed(&ra, "alfred/echo").unwrap();
    assert_eq!(
        echo["responders"],
        json!([{ "node": "alfred", "host": "b" }])
    );
    assert_eq!(echo["help"], "the arguments, as they are");
    assert_eq!(echo["asked"], 12, "{echo}");
    let shared = listed(&ra, "shared/who").unwrap();
    assert_eq!(
        shared["responders"],
        json!([{ "node": "robin", "host": "a" }, { "node": "alfred", "host": "b" }]),
        "this host's first"
    );
    assert!(
        listed(&rb, "alfred/echo").unwrap()["asked"] == 0,
        "b counts only what b asked"
    );
}

#[test]
fn request_all_gathers_from_two_other_hosts_and_a_host_killed_mid_request_fails_it_at_once() {
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let a = hive(|_| tcp_mesh("a", pa, &[]));
    let b = hive(|_| {
        format!(
            "{}{}",
            tcp_mesh("b", pb, &[pa]),
            oracle("batgirl", "shared = true")
        )
    });
    let c = hive(|c| {
        format!(
            "{}{}",
            tcp_mesh("c", pc, &[pa]),
            oracle(
                "lucius",
                &format!(
                    "shared = true\nrecord = {}",
                    toml_path(&c.file("lucius.jsonl"))
                )
            )
        )
    });
    let lucius = c.file("lucius.jsonl");
    let ra = a.run(&[]);
    let (rb, rc) = (b.run(&[]), c.run(&[]));
    wait_for_responder(&ra, "shared/who", "batgirl", "b");
    wait_for_responder(&ra, "shared/who", "lucius", "c");

    let (status, body) = ask(&ra, "shared/who", &json!(null), "?all=true&timeout_ms=5000");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["replies"],
        json!([
            { "node": "batgirl", "host": "b", "reply": "batgirl" },
            { "node": "lucius", "host": "c", "reply": "lucius" },
        ])
    );
    let (code, stdout, stderr) = call(&ra, &["shared/who", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    // c holds a request for 20 s, asked with a 15 s timeout; c is killed meanwhile.
    let url = ra.url.clone();
    let asking = std::thread::spawn(move || {
        let started = Instant::now();
        let response = hivemind_tests::http_agent()
            .post(format!("{url}/api/request/lucius/sleep?timeout_ms=15000"))
            .send("{\"ms\": 20000}");
        let (status, body) = match response {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap()),
            Err(error) => panic!("the request failed on the way: {error}"),
        };
        (status, body, started.elapsed())
    });
    assert!(
        eventually(WAIT, || !events(&lucius, "sleeping").is_empty()),
        "lucius never got the request: {:?}\n{}",
        records(&lucius),
        rc.stderr()
    );
    let killed = Instant::now();
    drop(rc); // SIGKILL
    let (status, body, _) = asking.join().unwrap();
    let waited = killed.elapsed();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &body["kind"]),
        (503, &json!("restarted")),
        "{body}"
    );
    assert_eq!(
        (&body["node"], &body["host"]),
        (&json!("lucius"), &json!("c"))
    );
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("host `c` left the mesh (or died) with request `lucius/sleep` in hand"),
        "{message}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "the asker heard of it {waited:?} after the kill, not at its 15 s timeout"
    );

    // c is no longer offered: all=true gathers b alone, c's own names are answered by nobody.
    assert!(
        eventually(WAIT, || listed(&ra, "lucius/echo")
            .is_none_or(|r| r["responders"].as_array().unwrap().is_empty())),
        "{:?}",
        listed(&ra, "lucius/echo")
    );
    let (status, body) = ask(&ra, "shared/who", &json!(null), "?all=true&timeout_ms=3000");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["replies"],
        json!([{ "node": "batgirl", "host": "b", "reply": "batgirl" }])
    );
    let (status, body) = ask(&ra, "lucius/echo", &json!(1), "");
    assert_eq!(
        (status, &body["kind"]),
        (404, &json!("no_responder")),
        "{body}"
    );
    drop(rb);
}

#[test]
fn over_mutual_tls_members_ask_each_other_and_a_peer_of_another_ca_gets_no_answer() {
    let certs = tempfile::tempdir().unwrap();
    let (ours, theirs) = (certs.path().join("ours"), certs.path().join("theirs"));
    for (dir, hosts) in [
        (&ours, &["manor", "tower"][..]),
        (&theirs, &["intruder"][..]),
    ] {
        let mut args = vec!["mesh", "certs", "--dir", dir.to_str().unwrap()];
        args.extend_from_slice(hosts);
        let output = hivemind_tests::hm_output(certs.path(), &args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (pm, pt, pi) = (free_port(), free_port(), free_port());
    let manor = hive(|_| {
        format!(
            "{}{}",
            tls_mesh("manor", &ours, pm, &[]),
            oracle("alfred", "")
        )
    });
    let tower = hive(|_| tls_mesh("tower", &ours, pt, &[pm]));
    // A certificate, but of another CA: not a member.
    let intruder = hive(|_| tls_mesh("intruder", &theirs, pi, &[pm, pt]));
    let (rm, rt, ri) = (manor.run(&[]), tower.run(&[]), intruder.run(&[]));
    wait_for_responder(&rt, "alfred/echo", "alfred", "manor");
    // While the intruder retries, Zenoh may replace a link between the members (the known TLS
    // limit in docs/ROADMAP.md): a request caught by that is `restarted`; the next one passes.
    let reached = eventually(WAIT, || {
        let (status, body) = ask(&rt, "alfred/echo", &json!({"over": "tls"}), "");
        status == 200 && body["reply"] == json!({"over": "tls"}) && body["host"] == "manor"
    });
    assert!(reached, "tower never got manor's reply:\n{}", rt.stderr());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        listed(&ri, "alfred/echo").is_none(),
        "the intruder never learns what the members answer: {}",
        ri.get("/api/requests").1
    );
    let (status, body) = ask(&ri, "alfred/echo", &json!(1), "");
    assert_eq!(
        (status, &body["kind"]),
        (404, &json!("no_responder")),
        "{body}"
    );
    let (_, mesh) = rm.get("/api/mesh");
    assert!(!mesh.contains("intruder"), "{mesh}");
}
