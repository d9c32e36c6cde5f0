//! Hot reload on the real host with real libraries: every trigger (a library appears, is
//! replaced, is removed; the config changes; `hm dev` rebuilds edited sources), and the rules
//! (no message lost, state handed over, bad versions refused, other nodes untouched, libraries
//! really unloaded).

use hivemind_tests::browser::Browser;
use hivemind_tests::{
    Hive, Running, assert_every_seq_once_in_order, built, eventually, hm_output, output_dir,
    received_from, records, toml_path,
};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// The library file a node of `hive` runs, as the API reports it (crate name and hash).
fn running_build(running: &Running, node: &str) -> (String, String, u64) {
    let snapshot = running.node(node);
    (
        snapshot["library"]["crate_name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        snapshot["library"]["hash"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        snapshot["loads"].as_u64().unwrap_or(0),
    )
}

fn wait_for_loads(running: &Running, node: &str, loads: u64) -> (String, String, u64) {
    let found = running.wait_for(WAIT, |r| {
        let now = running_build(r, node);
        (now.2 >= loads && r.node(node)["status"] == "running").then_some(now)
    });
    found.unwrap_or_else(|| {
        panic!(
            "node {node} did not reach {loads} loads: {}\n{}",
            running.node(node),
            running.stderr()
        )
    })
}

/// Replaces `nodes/libprobe.so` in `hive` with the library `with` (`probe` or `probe2`) by
/// `how`: an in-place copy, a rename over it, or the `install` command.
fn replace_library(hive: &Hive, with: &str, how: &str) {
    let source = built().join(format!("lib{with}.so"));
    let target = hive.path().join("nodes/libprobe.so");
    match how {
        "cp" => {
            std::fs::copy(&source, &target).unwrap();
        }
        "mv" => {
            let aside = hive.path().join("nodes/incoming.tmp");
            std::fs::copy(&source, &aside).unwrap();
            std::fs::rename(&aside, &target).unwrap();
        }
        "install" => {
            let status = std::process::Command::new("install")
                .arg(&source)
                .arg(&target)
                .status()
                .unwrap();
            assert!(status.success());
        }
        _ => unreachable!(),
    }
}

fn probe_hive(extra: &str) -> (Hive, std::path::PathBuf) {
    let hive = Hive::new();
    let record = hive.file("batman.jsonl");
    hive.configure(&format!(
        "[messages]\nqueue_capacity = 100000\n\n\
         [nodes.batman]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"ticks\"]\nrecord = {}\n\n{extra}",
        toml_path(&record)
    ));
    hive.install("probe");
    (hive, record)
}

#[test]
fn replacing_a_library_reloads_its_node_whatever_the_way_it_is_written() {
    let (hive, record) = probe_hive(
        "[nodes.ticker]\nenabled = true\nlibrary = \"ticker\"\nservices = [{ name = \"ticks\", count = 100000, interval_ms = 5 }]\n",
    );
    std::fs::copy(
        built().join("libprobe.so"),
        hive.path().join("nodes/libticker.so"),
    )
    .unwrap();
    let running = hive.run(&[]);
    assert_eq!(running_build(&running, "batman").0, "probe");
    let mut loads = 1;
    for (with, how) in [("probe2", "cp"), ("probe", "mv"), ("probe2", "install")] {
        replace_library(&hive, with, how);
        loads += 1;
        let (crate_name, _, _) = wait_for_loads(&running, "batman", loads);
        assert_eq!(crate_name, with, "after {how}");
        assert!(
            eventually(WAIT, || records(&record)
                .iter()
                .any(|r| r["event"] == "received" && r["build"] == with)),
            "the new code handles messages after {how}"
        );
    }
    let ticker = running.node("ticker");
    assert_eq!(
        ticker["loads"], 1,
        "the other node was not restarted: {ticker}"
    );
    assert_eq!(ticker["services"][0]["running"], true);
}

#[test]
fn a_library_that_appears_is_loaded_and_one_removed_is_unloaded_for_real() {
    let hive = Hive::new();
    hive.configure("[nodes.late]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"x\"]\n");
    let running = hive.run(&[]);
    let node = running.node("late");
    assert_eq!(node["status"], "failed", "{node}");
    assert!(node["error"].as_str().unwrap().contains("does not exist"));

    hive.install("probe");
    wait_for_loads(&running, "late", 1);
    let mapped = |r: &Running| r.maps().lines().any(|l| l.contains("/libprobe-"));
    assert!(
        mapped(&running),
        "the private copy is mapped while the node runs"
    );
    assert!(
        !running
            .maps()
            .contains(&*hive.path().join("nodes").to_string_lossy()),
        "the watched file itself is never mapped"
    );

    std::fs::remove_file(hive.path().join("nodes/libprobe.so")).unwrap();
    let gone = running.wait_for(WAIT, |r| {
        (r.node("late")["status"] != "running" && !mapped(r)).then_some(())
    });
    assert!(gone.is_some(), "unloaded and unmapped:\n{}", running.maps());
    let node = running.node("late");
    assert!(
        node["last_error"].as_str().unwrap().contains("removed"),
        "{node}"
    );
}

#[test]
fn config_edits_load_unload_and_restart_nodes_live() {
    let (hive, record) = probe_hive(
        "[nodes.ticker]\nenabled = true\nlibrary = \"probe\"\nservices = [{ name = \"ticks\", count = 100000, interval_ms = 5 }, { name = \"tocks\", count = 100000, interval_ms = 5 }]\n",
    );
    let running = hive.run(&[]);
    wait_for_loads(&running, "batman", 1);

    let asked = Instant::now();
    assert!(
        hm_output(hive.path(), &["disable", "batman"])
            .status
            .success()
    );
    let off = running.wait_for(WAIT, |r| {
        (r.node("batman")["status"] == "disabled").then_some(())
    });
    assert!(off.is_some(), "{}", running.node("batman"));
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "disabling took {took:?}");

    let asked = Instant::now();
    assert!(
        hm_output(hive.path(), &["enable", "batman"])
            .status
            .success()
    );
    wait_for_loads(&running, "batman", 2);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "enabling took {took:?}");

    // A settings change restarts the node with the new settings: now it hears `tocks`.
    let config_path = hive.path().join("config/hive.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("subscriptions = [\"ticks\"]", "subscriptions = [\"tocks\"]"),
    )
    .unwrap();
    wait_for_loads(&running, "batman", 3);
    assert!(eventually(WAIT, || !received_from(&record, "tocks").is_empty()));
    assert_eq!(
        running.node("ticker")["loads"],
        1,
        "other nodes are not touched"
    );

    // The port cannot change live: the hive says so and keeps serving.
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, config.replace("port = 0", "port = 1")).unwrap();
    assert!(
        running
            .wait_for(WAIT, |r| r
                .stderr()
                .contains("restart hm to apply")
                .then_some(()))
            .is_some()
    );

    // A broken config is reported with its place and the last good one stays in force.
    std::fs::write(&config_path, "[nodes.batman\nenabled = true\n").unwrap();
    assert!(
        running
            .wait_for(WAIT, |r| r
                .stderr()
                .contains("last good config")
                .then_some(()))
            .is_some(),
        "{}",
        running.stderr()
    );
    assert!(running.stderr().contains("line 1"), "{}", running.stderr());
    assert_eq!(running.node("batman")["status"], "running");

    // Fixed, the file is applied at once (here it switches batman off).
    std::fs::write(
        &config_path,
        config.replace(
            "[nodes.batman]\nenabled = true",
            "[nodes.batman]\nenabled = false",
        ),
    )
    .unwrap();
    let applied = running.wait_for(WAIT, |r| {
        (r.node("batman")["status"] == "disabled").then_some(())
    });
    assert!(applied.is_some(), "{}", running.node("batman"));
}

#[test]
fn half_written_truncated_and_bad_libraries_leave_the_running_version() {
    let (hive, _record) = probe_hive("");
    let running = hive.run(&[]);
    let (_, first_hash, _) = wait_for_loads(&running, "batman", 1);
    let target = hive.path().join("nodes/libprobe.so");
    let newer = std::fs::read(built().join("libprobe2.so")).unwrap();

    for (what, bytes) in [
        ("truncated", newer[..newer.len() / 3].to_vec()),
        (
            "not a compiled library",
            b"#!/bin/sh\necho not a library\n".to_vec(),
        ),
    ] {
        std::fs::write(&target, &bytes).unwrap();
        let reported = running.wait_for(WAIT, |r| {
            let node = r.node("batman");
            node["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(what))
                .then_some(node)
        });
        let node =
            reported.unwrap_or_else(|| panic!("no `{what}` error: {}", running.node("batman")));
        assert_eq!(node["status"], "running", "{node}");
        assert_eq!(
            node["library"]["hash"],
            first_hash.as_str(),
            "the old version runs on"
        );
        assert!(
            running.stderr().contains("the running version stays"),
            "{}",
            running.stderr()
        );
    }
    // Once the file is whole, the new version loads.
    std::fs::write(&target, &newer).unwrap();
    let (crate_name, _, _) = wait_for_loads(&running, "batman", 2);
    assert_eq!(crate_name, "probe2");
}

#[test]
fn no_message_is_lost_or_reordered_while_the_subscriber_reloads_ten_times() {
    let count = 3000u64;
    let (hive, record) = probe_hive(&format!(
        "[nodes.ticker]\nenabled = true\nlibrary = \"ticker\"\nservices = [{{ name = \"ticks\", count = {count}, interval_ms = 1 }}]\n"
    ));
    std::fs::copy(
        built().join("libprobe.so"),
        hive.path().join("nodes/libticker.so"),
    )
    .unwrap();
    let running = hive.run(&[]);
    for reload in 1..=10u64 {
        let with = if reload % 2 == 1 { "probe2" } else { "probe" };
        replace_library(&hive, with, "mv");
        wait_for_loads(&running, "batman", reload + 1);
    }
    let sent_all = running.wait_for(Duration::from_secs(60), |r| {
        (r.node("ticker")["services"][0]["sent"] == count).then_some(())
    });
    assert!(sent_all.is_some(), "{}", running.node("ticker"));
    assert_every_seq_once_in_order(&record, "ticks", count, WAIT);
    let builds: std::collections::BTreeSet<String> = records(&record)
        .iter()
        .filter(|r| r["event"] == "received")
        .map(|r| r["build"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "both versions handled messages: {builds:?}"
    );
    let batman = running.node("batman");
    assert_eq!(batman["subscriptions"][0]["dropped"], 0, "{batman}");
}

#[test]
fn state_saved_by_one_instance_is_restored_in_the_next() {
    let (hive, record) = probe_hive(
        "[nodes.ticker]\nenabled = true\nlibrary = \"ticker\"\nservices = [{ name = \"ticks\", count = 100000, interval_ms = 5 }]\n",
    );
    std::fs::copy(
        built().join("libprobe.so"),
        hive.path().join("nodes/libticker.so"),
    )
    .unwrap();
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || received_from(&record, "ticks").len() >= 20));
    replace_library(&hive, "probe2", "mv");
    wait_for_loads(&running, "batman", 2);
    assert!(eventually(WAIT, || {
        records(&record)
            .iter()
            .any(|r| r["event"] == "received" && r["build"] == "probe2")
    }));
    let records = records(&record);
    let restored = records
        .iter()
        .find(|r| r["event"] == "restored")
        .expect("the new instance restored the state");
    assert_eq!(restored["build"], "probe2");
    let before: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "received" && r["build"] == "probe")
        .collect();
    assert_eq!(
        restored["total"],
        before.len() as u64,
        "the counter came across"
    );
    let totals: Vec<u64> = records
        .iter()
        .filter(|r| r["event"] == "received")
        .map(|r| r["total"].as_u64().unwrap())
        .collect();
    assert_eq!(
        totals,
        (1..=totals.len() as u64).collect::<Vec<_>>(),
        "one count across both instances"
    );
}

#[test]
fn dev_rebuilds_an_edited_node_and_keeps_it_running_through_a_broken_build() {
    let repos = tempfile::Builder::new()
        .prefix("hm-dev-reload-")
        .tempdir()
        .unwrap();
    assert!(hm_output(repos.path(), &["new", "gotham"]).status.success());
    let gotham = repos.path().join("gotham");
    assert!(
        hm_output(&gotham, &["create_node", "Robin"])
            .status
            .success()
    );
    assert!(hm_output(&gotham, &["enable", "robin"]).status.success());
    let source = gotham.join("nodes/robin/src/lib.rs");
    let say = |words: &str| {
        std::fs::write(
            &source,
            format!(
                "use hivemind::prelude::*;\nuse std::time::Duration;\npub struct Robin;\n\
                 impl Node for Robin {{\n    fn new(_: &Context) -> Result<Self> {{ Ok(Robin) }}\n\
                 fn services(&mut self, hive: &mut Services) {{\n        hive.add_service(\"chirp\", |s: &Service| {{\n\
                 println!(\"{words}\");\n            s.sleep_for(Duration::from_millis(200));\n            Ok(Flow::Continue)\n        }});\n    }}\n}}\n\
                 hivemind::export_node!(Robin);\n"
            ),
        )
        .unwrap();
    };
    say("Holy rusted metal");
    let target = built().parent().unwrap().join("tutorial-hive");
    let running = Running::start_with_env(
        &gotham,
        &["dev", "--port", "0"],
        &[("CARGO_TARGET_DIR", target.as_os_str())],
    );
    let said = |r: &Running, words: &str| r.stdout().contains(words).then_some(());
    assert!(
        running
            .wait_for(WAIT, |r| said(r, "Holy rusted metal"))
            .is_some()
    );

    say("Holy hot reload");
    assert!(
        running
            .wait_for(Duration::from_secs(60), |r| said(r, "Holy hot reload"))
            .is_some(),
        "{}",
        running.stderr()
    );
    std::fs::write(&source, "this is not Rust\n").unwrap();
    // The failure is tied to its node: one line that says what runs and what to do, the
    // compiler's errors on the node.
    assert!(
        running
            .wait_for(Duration::from_secs(60), |r| r
                .stderr()
                .contains("node crate `robin` (nodes/robin) does not build: ")
                .then_some(()))
            .is_some(),
        "{}",
        running.stderr()
    );
    let stderr = running.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("does not build"))
        .unwrap();
    assert!(
        line.contains("running the last good version")
            && line.contains("saving the fix rebuilds")
            && !line.contains("hm dev"),
        "{line}"
    );
    let robin = running.node("robin");
    assert_eq!(robin["status"], "running", "{robin}");
    let failure = &robin["build_error"];
    assert!(failure["errors"].as_u64().unwrap() >= 1, "{robin}");
    assert!(
        failure["rendered"].as_str().unwrap().contains("src/lib.rs"),
        "the compiler's errors, with their place: {robin}"
    );
    assert_eq!(failure["running_last_good"], true);
    // The node's page, in headless Chromium: the panel says what runs and shows the compiler's
    // errors with their place.
    let browser = Browser::start(1280, 900);
    browser.open(&format!("http://{}/nodes/robin", running.address()));
    browser.wait_until(
        "the node page shows its build-error panel",
        WAIT,
        "const p = document.getElementById('build-error'); \
         return !!p && p.textContent.includes('source does not build, running the last good version') \
         && p.querySelector('pre.error').textContent.includes('src/lib.rs');",
    );
    browser.screenshot(&output_dir("reload").join("build-error-panel.png"));
    drop(browser);
    let lines_before = running.stdout().matches("Holy hot reload").count();
    assert!(
        running
            .wait_for(WAIT, |r| (r.stdout().matches("Holy hot reload").count()
                > lines_before + 2)
                .then_some(()))
            .is_some(),
        "the running version keeps going after a failed build"
    );
    // Fixed back to exactly the running code: nothing new to load, yet the failure clears and
    // a `build ok` event says so.
    say("Holy hot reload");
    assert!(
        eventually(Duration::from_secs(60), || running
            .node("robin")
            .get("build_error")
            .is_none_or(serde_json::Value::is_null)),
        "the build failure clears: {}",
        running.node("robin")
    );
    let (_, page) = running.get("/");
    assert!(
        page.contains("build ok: the source builds again"),
        "the feed ends on the fix, not the failure"
    );
    say("Holy comeback");
    assert!(
        running
            .wait_for(Duration::from_secs(60), |r| said(r, "Holy comeback"))
            .is_some()
    );
    let (status, _, _) = running.quit();
    assert!(status.success());
}

#[test]
fn an_identical_library_is_not_reloaded() {
    let (hive, _record) = probe_hive("");
    let running = hive.run(&[]);
    wait_for_loads(&running, "batman", 1);
    // Same bytes, new file (a new inode, as a rebuild that changed nothing would give).
    replace_library(&hive, "probe", "mv");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        running.node("batman")["loads"],
        1,
        "identical content is not reloaded"
    );
    replace_library(&hive, "probe2", "mv");
    wait_for_loads(&running, "batman", 2);
}

#[test]
fn panics_in_the_state_hooks_do_not_stop_a_reload() {
    let (hive, record) = probe_hive("");
    let config = std::fs::read_to_string(hive.path().join("config/hive.toml")).unwrap();
    std::fs::write(
        hive.path().join("config/hive.toml"),
        config.replace(
            "[nodes.batman]\n",
            "[nodes.batman]\npanic_in_state_hooks = true\n",
        ),
    )
    .unwrap();
    let running = hive.run(&[]);
    wait_for_loads(&running, "batman", 1);
    replace_library(&hive, "probe2", "mv");
    let (crate_name, _, _) = wait_for_loads(&running, "batman", 2);
    assert_eq!(crate_name, "probe2", "the new version runs");
    let log = std::fs::read_to_string(hive.path().join("logs/batman.log")).unwrap();
    assert!(log.contains("save_state panicked"), "{log}");
    assert!(
        !records(&record).iter().any(|r| r["event"] == "restored"),
        "nothing was saved, so nothing restored"
    );
}

#[test]
fn a_setting_of_the_wrong_type_is_named_and_the_running_instance_keeps_its_settings() {
    let hive = Hive::new();
    let good = "[nodes.batsignal]\nenabled = true\ninterval_secs = 0.4\n";
    hive.configure(good);
    hive.install("batsignal");
    let running = hive.run(&[]);
    assert!(eventually(WAIT, || running.node("batsignal")["status"] == "running"));
    hive.configure("[nodes.batsignal]\nenabled = true\ninterval_secs = \"fast\"\n");
    let said = running.wait_for(WAIT, |r| {
        r.stderr()
            .lines()
            .find(|l| l.contains("setting `interval_secs`"))
            .map(str::to_owned)
    });
    let said = said.unwrap_or_else(|| panic!("no word on the setting:\n{}", running.stderr()));
    // `[hive]` takes lines 1 to 3, then a blank line: `interval_secs` is on line 7.
    assert!(
        said.contains("(config/hive.toml, line 7) is a string, but the node expects f64")
            && said.contains("The previous instance keeps running"),
        "{said}"
    );
    let node = running.node("batsignal");
    assert_eq!(node["status"], "running", "{node}");
    assert_eq!(
        node["settings"]["interval_secs"], 0.4,
        "the settings in force are shown, not the rejected ones: {node}"
    );
    let (status, _, _) = running.quit();
    assert!(status.success());
}
