//! Bad input and failing nodes: each is reported clearly, and the rest of the hive keeps
//! running.

use hivemind_tests::{
    Hive, built, cargo, eventually, hm_output, received_from, repo_root, toml_path,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn panics_in_constructor_service_and_subscription_leave_the_rest_running() {
    let hive = Hive::new();
    let (witness, victim) = (hive.file("witness.jsonl"), hive.file("victim.jsonl"));
    hive.configure(&format!(
            "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"signals\", payloads = [\"a\", \"boom\", \"b\", \"oops\", \"c\"], interval_ms = 20 }}]\n\n\
             [nodes.broken_ctor]\nenabled = true\nlibrary = \"probe\"\npanic_in_constructor = true\n\n\
             [nodes.broken_service]\nenabled = true\nlibrary = \"probe\"\non_service_failure = \"stop\"\n\
             services = [{{ name = \"doomed\", panic = true }}, {{ name = \"fine\", sleep_secs = 60.0 }}]\n\n\
             [nodes.victim]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\n\
             panic_on_payload = \"boom\"\nfail_on_payload = \"oops\"\nrecord = {}\n\n\
             [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\nrecord = {}\n",
            toml_path(&victim),
            toml_path(&witness)
        ),
    );
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(&witness, "signals")
        .len()
        == 5));
    assert_eq!(
        received_from(&witness, "signals"),
        vec![
            json!("a"),
            json!("boom"),
            json!("b"),
            json!("oops"),
            json!("c")
        ]
    );
    assert!(eventually(WAIT, || received_from(&victim, "signals").len() == 3));
    assert_eq!(
        received_from(&victim, "signals"),
        vec![json!("a"), json!("b"), json!("c")],
        "the subscription keeps receiving after a panic and an error"
    );

    let victim_node = running.node("victim");
    let counters = &victim_node["subscriptions"][0];
    assert_eq!(counters["panicked"], 1, "{victim_node}");
    assert_eq!(counters["failed"], 1, "{victim_node}");
    assert_eq!(counters["delivered"], 3, "{victim_node}");

    let ctor = running.node("broken_ctor");
    assert_eq!(ctor["status"], "failed");
    let error = ctor["error"].as_str().unwrap();
    assert!(
        error.contains("constructor") && error.contains("panicked"),
        "{error}"
    );
    assert!(
        error.contains("told to panic in its constructor"),
        "{error}"
    );

    let service_node = running.node("broken_service");
    assert_eq!(service_node["status"], "running");
    let doomed = &service_node["services"][0];
    assert_eq!(doomed["running"], false);
    assert!(
        doomed["error"].as_str().unwrap().contains("panicked"),
        "{doomed}"
    );
    assert!(eventually(
        WAIT,
        || running.node("broken_service")["services"][1]["running"] == true
    ));

    let victim_log = std::fs::read_to_string(hive.path().join("logs/victim.log")).unwrap();
    assert!(
        victim_log.contains("panicked at"),
        "the panic's place is logged:\n{victim_log}"
    );
    assert!(victim_log.contains("told to fail"), "{victim_log}");
    let (status, took, _running) = running.quit();
    assert!(status.success(), "the host survived: {status}");
    assert!(took < Duration::from_secs(5));
}

#[test]
fn files_that_are_not_node_libraries_are_refused_by_name() {
    let hive = Hive::new();
    let witness = hive.file("witness.jsonl");
    let probe = std::fs::read(built().join("libprobe.so")).unwrap();
    let nodes = hive.path().join("nodes");
    std::fs::write(nodes.join("libempty.so"), b"").unwrap();
    std::fs::write(nodes.join("libtext.so"), b"this is not a library\n").unwrap();
    let noise: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(nodes.join("libnoise.so"), noise).unwrap();
    std::fs::write(nodes.join("libhalf.so"), &probe[..probe.len() / 2]).unwrap();
    std::fs::copy(
        a_shared_library_that_is_not_a_node(),
        nodes.join("libforeign.so"),
    )
    .unwrap();
    let mut config = String::new();
    for name in ["empty", "text", "noise", "half", "foreign", "absent"] {
        config.push_str(&format!("[nodes.{name}]\nenabled = true\n\n"));
    }
    config.push_str(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\nservices = [{{ name = \"ok\", payloads = [1] }}]\n\n\
         [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"ok\"]\nrecord = {}\n",
        toml_path(&witness)
    ));
    hive.configure(&config);
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(&witness, "ok") == vec![json!(1)]));
    let expectations = [
        ("empty", "the file is empty"),
        ("text", "not a compiled library"),
        ("noise", "not a compiled library"),
        ("half", "truncated"),
        ("foreign", "not a hivemind node"),
        ("absent", "does not exist"),
    ];
    for (name, expected) in expectations {
        let node = running.node(name);
        assert_eq!(node["status"], "failed", "{node}");
        let error = node["error"].as_str().unwrap();
        assert!(error.contains(expected), "{name}: {error}");
        assert!(
            error.contains(&format!("lib{name}.so")),
            "the error names the file: {error}"
        );
        assert!(
            error.contains("help:"),
            "the error says what to do: {error}"
        );
    }
    assert!(
        running.stderr().contains("libhalf.so"),
        "{}",
        running.stderr()
    );
}

fn a_shared_library_that_is_not_a_node() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("libm.so") || path.contains("libc.so"))
        .expect("the C library is mapped")
        .to_owned()
}

#[test]
fn a_library_built_against_another_api_version_is_refused_with_both_versions() {
    let library = build_against_changed_api("version", |api| {
        set_api_version(api, "0.99.0");
    });
    let hive = Hive::new();
    std::fs::copy(&library, hive.path().join("nodes/libapi_mismatch.so")).unwrap();
    hive.configure("[nodes.api_mismatch]\nenabled = true\n");
    let running = hive.run(&[]);
    let node = running.node("api_mismatch");
    assert_eq!(node["status"], "failed");
    let error = node["error"].as_str().unwrap();
    assert!(error.contains("libapi_mismatch.so"), "{error}");
    assert!(error.contains("API 0.99.0"), "{error}");
    assert!(
        error.contains(&format!("API {}", host_api_version())),
        "{error}"
    );
    assert!(error.contains("rebuild"), "{error}");
    assert!(
        error.lines().count() <= 3,
        "one short paragraph, not a layout dump:\n{error}"
    );
}

#[test]
fn a_library_whose_abi_differs_under_the_same_version_is_refused() {
    let library = build_against_changed_api("layout", |api| {
        let abi = api.join("src/abi.rs");
        let code = std::fs::read_to_string(&abi).unwrap();
        let changed = code.replace(
            "pub struct MessageView<'a> {",
            "pub struct MessageView<'a> {\n    /// Added by the test.\n    pub extra: u64,",
        );
        assert_ne!(code, changed, "the test edits MessageView");
        std::fs::write(&abi, changed).unwrap();
        // `hivemind::testing` builds messages as the host does: it fills the new field too.
        let testing = api.join("src/testing/drive.rs");
        let code = std::fs::read_to_string(&testing).unwrap();
        let changed = code.replace(
            "host: RStr::from_str(TEST_SENDER),",
            "host: RStr::from_str(TEST_SENDER),\n            extra: 0,",
        );
        assert_ne!(
            code, changed,
            "the test edits testing/drive.rs's MessageView"
        );
        std::fs::write(&testing, changed).unwrap();
    });
    let hive = Hive::new();
    std::fs::copy(&library, hive.path().join("nodes/libapi_mismatch.so")).unwrap();
    hive.configure("[nodes.api_mismatch]\nenabled = true\n");
    let running = hive.run(&[]);
    let node = running.node("api_mismatch");
    assert_eq!(node["status"], "failed");
    let error = node["error"].as_str().unwrap();
    let version = host_api_version();
    assert!(
        error.contains(&format!("both say API {version}")),
        "{error}"
    );
    assert!(error.contains("type `MessageView`"), "{error}");
    assert!(
        error.len() < 1500,
        "a summary, not abi_stable's whole report:\n{error}"
    );
}

fn set_api_version(api: &Path, version: &str) {
    let manifest = std::fs::read_to_string(api.join("Cargo.toml")).unwrap();
    let mut parsed: toml_edit::DocumentMut = manifest.parse().unwrap();
    parsed["package"]["version"] = toml_edit::value(version);
    std::fs::write(api.join("Cargo.toml"), parsed.to_string()).unwrap();
}

fn host_api_version() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("plugin-api/Cargo.toml")).unwrap();
    let parsed: toml_edit::DocumentMut = manifest.parse().unwrap();
    parsed["package"]["version"].as_str().unwrap().to_owned()
}

/// Builds a node against a copy of the plugin API changed by `change`; `variant` names the
/// change, and the build's own target folder (the copy has the real API's package name, so
/// sharing the tests' folder could mix the two up).
fn build_against_changed_api(variant: &str, change: impl FnOnce(&Path)) -> std::path::PathBuf {
    let work = tempfile::Builder::new()
        .prefix("hm-api-mismatch-")
        .tempdir()
        .unwrap();
    let api = work.path().join("api");
    copy_dir(&repo_root().join("plugin-api"), &api);
    change(&api);
    let node = work.path().join("api_mismatch");
    std::fs::create_dir_all(node.join("src")).unwrap();
    std::fs::write(
        work.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"api_mismatch\"]\n",
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("Cargo.lock"),
        work.path().join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(
        node.join("Cargo.toml"),
        "[package]\nname = \"api_mismatch\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nhivemind = { path = \"../api\" }\n",
    )
    .unwrap();
    std::fs::write(
        node.join("src/lib.rs"),
        "use hivemind::prelude::*;\npub struct Old;\nimpl Node for Old {\n    fn new(_: &Context) -> Result<Self> { Ok(Old) }\n}\nhivemind::export_node!(Old);\n",
    )
    .unwrap();
    let target = built().parent().unwrap().join(format!("api-{variant}"));
    let status = cargo()
        .current_dir(work.path())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "-p", "api_mismatch"])
        .status()
        .unwrap();
    assert!(status.success(), "building the mismatched node failed");
    let library = target.join("debug/libapi_mismatch.so");
    let kept = built().join(format!("libapi_mismatch-{variant}.so"));
    std::fs::copy(&library, &kept).unwrap();
    kept
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn an_invalid_pattern_fails_its_node_only() {
    let hive = Hive::new();
    hive.configure(
        "[nodes.typo]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"bat-[signal\"]\n\n\
         [nodes.fine]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"bat-*\"]\n",
    );
    hive.install("probe");
    let running = hive.run(&[]);
    let typo = running.node("typo");
    assert_eq!(typo["status"], "failed");
    let error = typo["error"].as_str().unwrap();
    assert!(
        error.contains("`bat-[signal`") && error.contains("never closed"),
        "{error}"
    );
    assert_eq!(running.node("fine")["status"], "running");
}

#[test]
fn a_payload_over_the_limit_is_refused_and_logged() {
    let hive = Hive::new();
    hive.configure(&format!(
        "[messages]\nmax_payload_bytes = 64\n\n[nodes.big]\nenabled = true\nlibrary = \"probe\"\n\
             services = [{{ name = \"huge\", payloads = [{}] }}]\n",
        Value::String("x".repeat(100))
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || {
        running.node("big")["services"][0]["error"].is_string()
    }));
    let big = running.node("big");
    assert_eq!(big["services"][0]["sent"], 0);
    let error = big["services"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("102 bytes") && error.contains("max_payload_bytes"),
        "{error}"
    );
}

#[test]
fn a_malformed_config_is_refused_with_line_and_column() {
    let hive = Hive::new();
    // Written whole, so that the line numbers below are this text's.
    std::fs::write(
        hive.path().join("config/hive.toml"),
        "[hive]\nport = 0\n\n[nodes.batman]\nenabled = true\nsettings = [1, 2\n",
    )
    .unwrap();
    let output = hm_output(hive.path(), &["run"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config/hive.toml"), "{stderr}");
    assert!(stderr.contains("line 6, column 17"), "{stderr}");
}

#[test]
fn a_port_in_use_is_a_clear_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let hive = Hive::new();
    let output = hm_output(hive.path(), &["run", "--port", &port]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("[hive] port"), "{stderr}");
}

#[test]
fn a_failing_service_restarts_with_backoff_unless_told_to_stop() {
    let hive = Hive::new();
    hive.configure(
        "[nodes.restarting]\nenabled = true\nlibrary = \"probe\"\nservices = [{ name = \"doomed\", panic = true }]\n\n\
         [nodes.stopping]\nenabled = true\nlibrary = \"probe\"\non_service_failure = \"stop\"\nservices = [{ name = \"doomed\", panic = true }]\n",
    );
    hive.install("probe");
    let running = hive.run(&[]);
    // Backoff 100 ms, then 200 ms, then 400 ms: three restarts in well under 2 s.
    assert!(
        eventually(
            WAIT,
            || running.node("restarting")["services"][0]["restarts"]
                .as_u64()
                .unwrap_or(0)
                >= 3
        ),
        "{}",
        running.node("restarting")
    );
    let restarting = running.node("restarting");
    assert_eq!(restarting["services"][0]["running"], true);
    assert!(
        restarting["services"][0]["error"]
            .as_str()
            .unwrap()
            .contains("runs again in")
    );
    let stopping = running.node("stopping");
    assert_eq!(stopping["services"][0]["running"], false, "{stopping}");
    assert_eq!(stopping["services"][0]["restarts"], 0);
    assert!(
        stopping["services"][0]["error"]
            .as_str()
            .unwrap()
            .contains("on_service_failure")
    );
}

#[test]
fn too_many_subscription_panics_fail_and_unload_the_node_only() {
    let hive = Hive::new();
    let witness = hive.file("witness.jsonl");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"boom\", \"boom\", \"boom\", \"ok\", \"boom\"], interval_ms = 20 }}]\n\n\
         [nodes.fragile]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\npanic_on_payload = \"boom\"\nmax_subscription_panics = 3\n\n\
         [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\nrecord = {}\n",
        toml_path(&witness)
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    let failed = running.wait_for(WAIT, |r| {
        let node = r.node("fragile");
        (node["status"] == "failed").then_some(node)
    });
    let node = failed.unwrap_or_else(|| panic!("{}", running.node("fragile")));
    let error = node["error"].as_str().unwrap();
    assert!(error.contains("max_subscription_panics = 3"), "{error}");
    assert!(eventually(WAIT, || received_from(&witness, "signals")
        .len()
        == 5));
    let left = running.wait_for(WAIT, |r| {
        let (_, body) = r.get("/api/topics");
        let topics: Value = serde_json::from_str(&body).ok()?;
        (topics[0]["subscribers"] == json!(["witness"])).then_some(())
    });
    assert!(
        left.is_some(),
        "the failed node left the bus: {}",
        running.get("/api/topics").1
    );
}

#[test]
fn a_stuck_callback_is_shown_and_the_rest_of_the_hive_goes_on() {
    let hive = Hive::new();
    let witness = hive.file("witness.jsonl");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\n\
         services = [{{ name = \"signals\", payloads = [\"hang\", \"a\", \"b\", \"c\"], interval_ms = 100 }}]\n\n\
         [nodes.sleepy]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\nhang_on_payload = \"hang\"\nhang_ms = 1500\nstuck_after_ms = 200\n\n\
         [nodes.witness]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"signals\"]\nrecord = {}\n\n\
         [nodes.busy]\nenabled = true\nlibrary = \"probe\"\nservices = [{{ name = \"spin\", busy = true }}]\n",
        toml_path(&witness)
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    let stuck = running.wait_for(WAIT, |r| {
        let node = r.node("sleepy");
        (node["status"] == "stuck").then_some(node)
    });
    let node = stuck.unwrap_or_else(|| panic!("never stuck: {}", running.node("sleepy")));
    assert!(
        node["error"]
            .as_str()
            .unwrap()
            .contains("stuck_after_ms = 200"),
        "{node}"
    );
    // Meanwhile the others carry on, and a service that never sleeps does not starve them.
    assert!(eventually(WAIT, || received_from(&witness, "signals")
        .len()
        == 4));
    let (status, _) = running.get("/healthz");
    assert_eq!(status, 200);
    assert!(
        running
            .wait_for(WAIT, |r| (r.node("sleepy")["status"] == "running")
                .then_some(()))
            .is_some()
    );
    assert!(
        running.stderr().contains("is stuck"),
        "{}",
        running.stderr()
    );
    assert!(
        running
            .wait_for(WAIT, |r| r.stderr().contains("runs again").then_some(()))
            .is_some(),
        "{}",
        running.stderr()
    );
}

#[test]
fn a_slow_subscriber_drops_and_counts_without_slowing_the_others() {
    let count = 300;
    let hive = Hive::new();
    let fast = hive.file("fast.jsonl");
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\nservices = [{{ name = \"flood\", count = {count} }}]\n\n\
         [nodes.slow]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"flood\"]\nslow_ms = 5\nqueue_capacity = 10\n\n\
         [nodes.fast]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"flood\"]\nqueue_capacity = 1000\nrecord = {}\n",
        toml_path(&fast)
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(&fast, "flood").len() == count));
    let settled = running.wait_for(WAIT, |r| {
        let slow = &r.node("slow")["subscriptions"][0];
        let delivered = slow["delivered"].as_u64().unwrap_or(0);
        let dropped = slow["dropped"].as_u64().unwrap_or(0);
        (delivered + dropped == count as u64).then_some((delivered, dropped))
    });
    let (delivered, dropped) = settled.unwrap_or_else(|| panic!("{}", running.node("slow")));
    assert!(dropped > 0, "the slow subscriber's queue overflowed");
    assert!(delivered >= 10, "it still received what fit: {delivered}");
    assert_eq!(running.node("fast")["subscriptions"][0]["dropped"], 0);
    assert!(
        running
            .stderr()
            .contains("dropped a message for node `slow`"),
        "{}",
        running.stderr()
    );
}

#[test]
fn a_slow_subscriber_set_to_block_slows_its_publisher_and_loses_nothing() {
    let count = 200;
    let hive = Hive::new();
    hive.configure(&format!(
        "[nodes.sender]\nenabled = true\nlibrary = \"probe\"\nservices = [{{ name = \"flood\", count = {count} }}]\n\n\
         [nodes.slow]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"flood\"]\nslow_ms = 2\nqueue_capacity = 10\noverflow = \"block\"\n"
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    let done = running.wait_for(WAIT, |r| {
        let slow = &r.node("slow")["subscriptions"][0];
        (slow["delivered"] == count).then(|| slow.clone())
    });
    let slow = done.unwrap_or_else(|| panic!("{}", running.node("slow")));
    assert_eq!(slow["dropped"], 0, "{slow}");
}
