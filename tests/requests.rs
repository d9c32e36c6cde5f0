//! Requests and replies on the real host with real node libraries (the `oracle` test node):
//! replies of every JSON kind between nodes, over HTTP and through `hm call`; each failure
//! with its kind, HTTP status and exit code; a node's non-blocking asks and the refusal of a
//! blocking one on its delivery thread; `request_all` over three responders; a reload, a
//! disable and an isolated node's crash with requests in hand and queued.

use hivemind_tests::{Hive, Running, ask, call, eventually, records, toml_path, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// Every JSON kind, as arguments and so as replies.
fn every_kind() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(42),
        json!(-1.5),
        json!("text with \"quotes\" and ünïcode"),
        json!([]),
        json!([1, "a", null, [2]]),
        json!({}),
        json!({"k": {"n": null, "list": [true]}}),
    ]
}

/// An oracle table: `[nodes.NAME]` with library `oracle` and `rest`.
fn oracle(name: &str, rest: &str) -> String {
    format!("[nodes.{name}]\nenabled = true\nlibrary = \"oracle\"\n{rest}\n\n")
}

/// Waits until the router lists `name` as answered by `node`.
fn wait_for_responder(running: &Running, name: &str, node: &str) {
    let found = running.wait_for(WAIT, |r| {
        let (_, body) = r.get("/api/requests");
        let list: Value = serde_json::from_str(&body).ok()?;
        list.as_array()?
            .iter()
            .any(|r| {
                r["name"] == name
                    && r["responders"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|p| p["node"] == node))
            })
            .then_some(())
    });
    assert!(
        found.is_some(),
        "{name} is not answered by {node}: {}",
        running.get("/api/requests").1
    );
}

fn events(record: &Path, event: &str) -> Vec<Value> {
    records(record)
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[test]
fn replies_of_every_json_kind_reach_a_node_the_api_and_hm_call() {
    let hive = Hive::new();
    let record = hive.file("bruce.jsonl");
    let go = hive.file("go");
    let asks: Vec<String> = every_kind()
        .iter()
        .map(|args| {
            format!(
                "{{ name = \"alfred/echo\", args_json = {} }}",
                toml_string(&args.to_string())
            )
        })
        .chain([
            "{ name = \"alfred/whoami\" }".to_owned(),
            "{ name = \"alfred/add\", args = [2, 40] }".to_owned(),
            "{ name = \"alfred/add\", args = \"two\" }".to_owned(),
        ])
        .collect();
    hive.configure(&format!(
        "{}{}",
        oracle("alfred", ""),
        oracle(
            "bruce",
            &format!(
                "record = {}\ngo_file = {}\nservice_asks = [{}]",
                toml_path(&record),
                toml_path(&go),
                asks.join(", ")
            )
        )
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");
    std::fs::write(&go, "").unwrap();

    let expected = every_kind().len() + 3;
    assert!(
        eventually(WAIT, || events(&record, "asked").len() == expected),
        "{:?}\n{}",
        records(&record),
        running.stderr()
    );
    let asked = events(&record, "asked");
    for (args, got) in every_kind().iter().zip(&asked) {
        assert_eq!(&got["outcome"]["reply"], args, "{got}");
        assert_eq!(got["outcome"]["node"], "alfred");
    }
    let whoami = &asked[every_kind().len()]["outcome"]["reply"];
    assert_eq!(whoami["asker"], "bruce", "{whoami}");
    assert_eq!(whoami["node"], "alfred");
    let hive_host = running.get("/api/hive");
    let host: Value = serde_json::from_str(&hive_host.1).unwrap();
    assert_eq!(whoami["asker_host"], host["host"]);
    assert_eq!(asked[every_kind().len() + 1]["outcome"]["reply"], 42);
    let decode = &asked[every_kind().len() + 2]["outcome"];
    assert_eq!(decode["kind"], "InvalidArgs", "{decode}");
    assert!(
        decode["error"]
            .as_str()
            .unwrap()
            .contains("the arguments of request `alfred/add` do not decode"),
        "{decode}"
    );

    for args in every_kind() {
        let (status, body) = ask(&running, "alfred/echo", &args, "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reply"], args);
        assert_eq!(body["node"], "alfred");
        assert_eq!(body["host"], host["host"]);
        let (code, stdout, stderr) = call(&running, &["alfred/echo", &args.to_string()]);
        assert_eq!(code, 0, "{stderr}");
        let printed: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(printed, args);
    }
    let (_, body) = ask(&running, "alfred/whoami", &json!(null), "");
    assert_eq!(body["reply"]["asker"], "api");
    let (code, stdout, _) = call(&running, &["alfred/whoami"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("\"asker\":\"cli\""), "{stdout}");

    let (_, list) = running.get("/api/requests");
    let list: Value = serde_json::from_str(&list).unwrap();
    let echo = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "alfred/echo")
        .unwrap();
    assert_eq!(echo["help"], "the arguments, as they are");
    assert_eq!(
        echo["responders"],
        json!([{ "node": "alfred", "host": host["host"] }])
    );
    // Asked from bruce, the API and hm call: each counted here.
    assert_eq!(echo["asked"], json!(3 * every_kind().len()), "{echo}");
}

/// A TOML string literal.
fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string()
}

#[test]
fn each_failure_has_its_kind_its_status_and_its_exit_code() {
    let hive = Hive::new();
    let record = hive.file("alfred.jsonl");
    hive.configure(&format!(
        "[messages]\nmax_payload_bytes = 4096\n\n{}",
        oracle("alfred", &format!("record = {}", toml_path(&record)))
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");

    let cases: [(&str, Value, &str, u16, &str, i32); 6] = [
        ("nobody/home", json!(null), "", 404, "no_responder", 3),
        (
            "alfred/sleep",
            json!({"ms": 1500}),
            "?timeout_ms=200",
            504,
            "timeout",
            4,
        ),
        ("alfred/fail", json!(null), "", 502, "handler_error", 5),
        ("alfred/panic", json!(null), "", 500, "panicked", 5),
        ("alfred/add", json!("two"), "", 400, "invalid_args", 5),
        ("alfred/big", json!(100_000), "", 413, "too_large", 7),
    ];
    for (name, args, query, status, kind, code) in cases {
        let asked = Instant::now();
        let (got, body) = ask(&running, name, &args, query);
        assert_eq!(
            (got, body["kind"].as_str()),
            (status, Some(kind)),
            "{name}: {body}"
        );
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        if kind == "no_responder" {
            assert!(asked.elapsed() < Duration::from_secs(2), "known at once");
        }
        if kind == "timeout" {
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "not after the handler ended: {:?}",
                asked.elapsed()
            );
            // Let the sleeping handler finish before the next request.
            wait_until(WAIT, "alfred's first sleep ended", || {
                events(&record, "slept").len() == 1
            });
        }
        let timeout = if kind == "timeout" { "200" } else { "5000" };
        let (exit, _, stderr) = call(&running, &[name, &args.to_string(), "--timeout", timeout]);
        assert_eq!(exit, code, "{name}: {stderr}");
        assert!(stderr.contains(kind), "{stderr}");
        if kind == "timeout" {
            wait_until(WAIT, "alfred's second sleep ended", || {
                events(&record, "slept").len() == 2
            });
        }
    }
    let (_, body) = ask(&running, "alfred/panic", &json!(null), "");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the oracle was told to panic"),
        "{body}"
    );
    assert_eq!(body["node"], "alfred");
    // The node answers on after its handler's panic.
    assert_eq!(ask(&running, "alfred/echo", &json!(1), "").0, 200);

    // Arguments over the limit, a body that is not JSON, timeouts out of bounds.
    let big = json!("y".repeat(5000));
    assert_eq!(ask(&running, "alfred/echo", &big, "").0, 413);
    let (status, body) = running.post("/api/request/alfred/echo", "{not json", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_json"), "{body}");
    for query in ["?timeout_ms=0", "?timeout_ms=60001", "?timeout_ms=soon"] {
        let (status, body) = ask(&running, "alfred/echo", &json!(1), query);
        assert_eq!(
            (status, body["kind"].as_str()),
            (400, Some("invalid_timeout")),
            "{body}"
        );
    }
    let (exit, _, stderr) = call(&running, &["alfred/echo", "1", "--timeout", "0"]);
    assert_eq!(exit, 1, "{stderr}");
    let (exit, _, stderr) = call(&running, &["alfred/echo", "{not json"]);
    assert_eq!(exit, 1, "{stderr}");

    let (_, metrics) = running.get("/metrics");
    for line in [
        "hivemind_request_errors_total{name=\"alfred/fail\",kind=\"handler_error\"} 2",
        "hivemind_request_errors_total{name=\"nobody/home\",kind=\"no_responder\"} 2",
        "hivemind_request_errors_total{name=\"alfred/sleep\",kind=\"timeout\"} 2",
        "hivemind_requests_total{name=\"alfred/echo\"}",
        "hivemind_request_duration_seconds_bucket{name=\"alfred/echo\",le=\"+Inf\"}",
        "hivemind_request_duration_seconds_count{name=\"alfred/fail\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[test]
fn requests_need_the_key_and_the_hives_own_origin_like_publishing() {
    let hive = Hive::new();
    hive.configure(&format!("key = \"s3cret\"\n\n{}", oracle("alfred", "")));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");
    let (status, _) = running.post("/api/request/alfred/echo", "1", &[]);
    assert_eq!(status, 401);
    let (status, _) = running.post(
        "/api/request/alfred/echo",
        "1",
        &[("x-hive-key", "s3cret"), ("origin", "http://evil.example")],
    );
    assert_eq!(status, 403);
    let (status, body) = running.post("/api/request/alfred/echo", "1", &[("x-hive-key", "s3cret")]);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_node_asks_later_from_its_delivery_thread_and_a_blocking_ask_there_is_refused() {
    let hive = Hive::new();
    let record = hive.file("bruce.jsonl");
    hive.configure(&format!(
        "{}{}",
        oracle("alfred", ""),
        oracle("bruce", &format!("record = {}", toml_path(&record)))
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");
    wait_for_responder(&running, "bruce/echo", "bruce");
    let publish = |service: &str, payload: Value| {
        let (status, body) = running.post(
            &format!("/api/publish/{service}"),
            &payload.to_string(),
            &[],
        );
        assert_eq!(status, 200, "{body}");
    };
    publish("ask-blocking", json!({"name": "alfred/echo", "args": 1}));
    publish("ask-async", json!({"name": "alfred/whoami"}));
    publish("ask-async", json!({"name": "nobody/home"}));
    publish(
        "ask-async",
        json!({"name": "alfred/sleep", "args": {"ms": 800}, "timeout_ms": 100}),
    );
    publish(
        "ask-async",
        json!({"name": "alfred/echo", "args": [1, {"two": 2}]}),
    );
    assert!(
        eventually(WAIT, || events(&record, "reply").len() == 4),
        "{:?}",
        records(&record)
    );
    let blocking = &events(&record, "blocking")[0]["outcome"];
    assert_eq!(blocking["kind"], "WouldBlock", "{blocking}");
    assert!(
        blocking["error"]
            .as_str()
            .unwrap()
            .contains("delivery thread")
    );
    let replies: Vec<Value> = events(&record, "reply")
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    // In the order asked: alfred answers in order, and the one nobody answers fails at once.
    let by_name = |name: &str| {
        events(&record, "reply")
            .into_iter()
            .find(|r| r["name"] == name)
            .map(|r| r["outcome"].clone())
            .unwrap()
    };
    assert_eq!(
        by_name("alfred/whoami")["reply"]["asker"],
        "bruce",
        "{replies:?}"
    );
    assert_eq!(by_name("nobody/home")["kind"], "NoResponder");
    assert_eq!(by_name("alfred/sleep")["kind"], "Timeout");
    assert_eq!(by_name("alfred/echo")["reply"], json!([1, {"two": 2}]));
    // bruce's own thread was never blocked: it answers at once while alfred may sleep.
    assert_eq!(ask(&running, "bruce/echo", &json!("still here"), "").0, 200);
}

#[test]
fn request_all_gathers_three_responders_and_times_out_the_late_one() {
    let hive = Hive::new();
    let record = hive.file("asker.jsonl");
    let n3_record = hive.file("n3.jsonl");
    let go = hive.file("go");
    hive.configure(&format!(
        "{}{}{}{}",
        oracle("n1", "shared = true"),
        oracle("n2", "shared = true"),
        oracle(
            "n3",
            &format!("shared = true\nrecord = {}", toml_path(&n3_record))
        ),
        oracle(
            "asker",
            &format!(
                "record = {}\ngo_file = {}\nservice_asks = [{{ name = \"shared/who\", all = true, timeout_ms = 3000 }}, {{ name = \"shared/who\", timeout_ms = 3000 }}]",
                toml_path(&record),
                toml_path(&go)
            )
        )
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    for node in ["n1", "n2", "n3"] {
        wait_for_responder(&running, "shared/who", node);
    }
    std::fs::write(&go, "").unwrap();
    assert!(
        eventually(WAIT, || events(&record, "asked").len() == 2),
        "{:?}",
        records(&record)
    );
    let asked = events(&record, "asked");
    let mut names: Vec<String> = asked[0]["outcome"]["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["reply"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert!(
        asked[1]["outcome"]["reply"].is_string(),
        "one answers a plain request"
    );

    let (status, body) = ask(&running, "shared/who", &json!(null), "?all=true");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replies"].as_array().unwrap().len(), 3, "{body}");

    // n3 is busy with a long request: the gathering ends at its timeout, n3's part a timeout.
    let slow = {
        let url = running.url.clone();
        std::thread::spawn(move || {
            hivemind_tests::http_agent()
                .post(format!("{url}/api/request/n3/sleep?timeout_ms=5000"))
                .send("{\"ms\": 1500}")
                .map(|r| r.status().as_u16())
        })
    };
    wait_until(WAIT, "n3 began its long request", || {
        !events(&n3_record, "sleeping").is_empty()
    });
    let asked = Instant::now();
    let (status, body) = ask(
        &running,
        "shared/who",
        &json!(null),
        "?all=true&timeout_ms=500",
    );
    let took = asked.elapsed();
    assert_eq!(status, 200, "{body}");
    let parts = body["replies"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let late: Vec<&Value> = parts.iter().filter(|p| p["kind"] == "timeout").collect();
    assert_eq!(late.len(), 1, "{body}");
    assert_eq!(late[0]["node"], "n3");
    assert!(
        took < Duration::from_millis(1400),
        "ended at the timeout, not when n3 was free: {took:?}"
    );
    assert_eq!(slow.join().unwrap().unwrap(), 200);
    let (code, stdout, stderr) = call(&running, &["shared/who", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

/// Asks `name` with `args` on a thread of its own; joins to (status, body).
fn ask_in_background(
    running: &Running,
    name: &str,
    args: Value,
    timeout_ms: u64,
) -> std::thread::JoinHandle<(u16, Value)> {
    let url = format!("{}/api/request/{name}?timeout_ms={timeout_ms}", running.url);
    std::thread::spawn(move || {
        let mut response = hivemind_tests::http_agent()
            .post(url)
            .send(args.to_string())
            .unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&body).unwrap())
    })
}

#[test]
fn a_reload_finishes_the_request_in_hand_and_hands_the_queued_ones_to_the_new_instance() {
    let hive = Hive::new();
    let record = hive.file("alfred.jsonl");
    let table = |generation: u64| {
        oracle(
            "alfred",
            &format!("record = {}\ngeneration = {generation}", toml_path(&record)),
        )
    };
    hive.configure(&table(1));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");

    // Long enough that the config's quiet period and the new instance's build end before it
    // does, even on a loaded machine (1.2 s was not, once, with two test runs at once).
    let in_hand = ask_in_background(&running, "alfred/sleep", json!({"ms": 3000}), 10_000);
    assert!(eventually(WAIT, || !events(&record, "sleeping").is_empty()));
    let queued = ask_in_background(&running, "alfred/whoami", json!(null), 10_000);
    // Time for the second request to reach alfred's queue: nothing shows a queued request
    // (the host counts one when it ends), so this one stays a pause.
    std::thread::sleep(Duration::from_millis(100));
    hive.configure(&table(2));

    let (status, body) = in_hand.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reply"], json!({"slept": 3000, "generation": 1}));
    let (status, body) = queued.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reply"]["generation"], 2,
        "the queued request reached the new instance: {body}"
    );
    assert_eq!(running.node("alfred")["loads"], 2);
}

#[test]
fn a_disabled_responder_finishes_the_request_in_hand_and_fails_the_queued_ones_at_once() {
    let hive = Hive::new();
    let record = hive.file("alfred.jsonl");
    hive.configure(&oracle(
        "alfred",
        &format!("record = {}", toml_path(&record)),
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");

    let in_hand = ask_in_background(&running, "alfred/sleep", json!({"ms": 600}), 10_000);
    assert!(eventually(WAIT, || !events(&record, "sleeping").is_empty()));
    let queued = ask_in_background(&running, "alfred/whoami", json!(null), 10_000);
    // Time for the second request to reach alfred's queue: nothing shows a queued request
    // (the host counts one when it ends), so this one stays a pause.
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let (status, body) = running.post("/api/nodes/alfred/disable", "", &[]);
    assert_eq!(status, 200, "{body}");

    let (status, body) = in_hand.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = queued.join().unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("restarted")),
        "{body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "not after its timeout"
    );
    assert_eq!(body["node"], "alfred");
    let (status, body) = ask(&running, "alfred/echo", &json!(1), "");
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("no_responder")),
        "{body}"
    );
}

#[test]
fn an_isolated_node_answers_and_asks_and_its_crash_fails_the_request_in_hand() {
    let hive = Hive::new();
    let record = hive.file("bruce.jsonl");
    let go = hive.file("go");
    hive.configure(&format!(
        "{}{}",
        oracle("alfred", "isolate = true"),
        oracle(
            "bruce",
            &format!(
                "isolate = true\nrecord = {}\ngo_file = {}\nservice_asks = [{{ name = \"alfred/whoami\" }}, {{ name = \"alfred/add\", args = [1, 2] }}]",
                toml_path(&record),
                toml_path(&go)
            )
        )
    ));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");
    for args in [json!({"deep": [1, null, "x"]}), json!("text"), json!(null)] {
        let (status, body) = ask(&running, "alfred/echo", &args, "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reply"], args);
    }
    let (status, body) = ask(&running, "alfred/panic", &json!(null), "");
    assert_eq!(
        (status, body["kind"].as_str()),
        (500, Some("panicked")),
        "{body}"
    );
    std::fs::write(&go, "").unwrap();
    assert!(
        eventually(WAIT, || events(&record, "asked").len() == 2),
        "{:?}\n{}",
        records(&record),
        running.stderr()
    );
    let asked = events(&record, "asked");
    assert_eq!(asked[0]["outcome"]["reply"]["asker"], "bruce", "{asked:?}");
    assert_eq!(asked[1]["outcome"]["reply"], 3);

    // The process segfaults with the request in hand: the asker hears at once, not at its
    // timeout.
    let asked = Instant::now();
    let (status, body) = ask(&running, "alfred/crash", &json!(null), "?timeout_ms=20000");
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("restarted")),
        "{body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    // Restarted, it answers again.
    let back = running.wait_for(WAIT, |r| {
        (ask(r, "alfred/echo", &json!(7), "").0 == 200).then_some(())
    });
    assert!(back.is_some(), "{}", running.stderr());
    let node = running.node("alfred");
    assert_eq!(node["crashes"], 1, "{node}");
    assert!(
        node["last_crash"]
            .as_str()
            .is_some_and(|c| c.contains("SIGSEGV")),
        "{node}"
    );
}

#[test]
fn the_requests_page_lists_the_names_and_its_form_asks_one() {
    use hivemind_tests::browser::Browser;
    let shots = hivemind_tests::output_dir("requests");
    let hive = Hive::new();
    hive.configure(&oracle("alfred", ""));
    hive.install("oracle");
    let running = hive.run(&[]);
    wait_for_responder(&running, "alfred/echo", "alfred");
    // Counted before the page opens: it shows them.
    assert_eq!(ask(&running, "alfred/fail", &json!(null), "").0, 502);
    let browser = Browser::start(1360, 860);
    browser.open(&format!("{}/requests", running.url));
    browser.wait_until(
        "the table lists alfred's names, with help and responder",
        WAIT,
        "const row = document.querySelector('tr[data-request=\"alfred/echo\"]'); \
         const fail = document.querySelector('tr[data-request=\"alfred/fail\"]'); \
         return row !== null && row.textContent.includes('the arguments, as they are') \
           && row.textContent.includes('alfred') && fail.textContent.includes('handler_error') \
           && fail.textContent.includes('p50 ≤') && fail.textContent.includes('p99 ≤');",
    );
    browser.click("tr[data-request=\"alfred/echo\"] button.pick");
    browser.eval(
        "document.querySelector('#request-args').value = '{\"from\": \"the page\"}'; return true;",
    );
    browser.click("form.form button[type=submit]");
    browser.wait_until(
        "the reply is shown",
        WAIT,
        "return document.querySelector('#request-result').className.includes('ok') \
         && document.querySelector('#request-reply').textContent.includes('the page');",
    );
    browser.eval("document.querySelector('#request-name').value = 'nobody/home'; return true;");
    browser.click("form.form button[type=submit]");
    browser.wait_until(
        "a failure is shown with its status and kind",
        WAIT,
        "return document.querySelector('#request-result').textContent.startsWith('404 no_responder');",
    );
    browser.screenshot(&shots.join("requests.png"));
    let size = std::fs::metadata(shots.join("requests.png")).unwrap().len();
    assert!(size > 10_000, "requests.png is only {size} bytes");
}
