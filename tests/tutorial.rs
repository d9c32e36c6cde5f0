//! The README's tutorial, step by step, as a newcomer follows it: `hm new gotham`,
//! `hm create_node BatSignal` and `batman`, the README's code, enable both, `hm dev`.
//! Also the repository's own example hive.

use hivemind_tests::{Running, built, hm_output, repo_root};
use std::path::Path;
use std::time::{Duration, Instant};

/// The code blocks the README marks with `<!-- tutorial-file: PATH -->`, as (path, code).
fn readme_tutorial_files() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut files = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- tutorial-file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```rust"),
            "a rust block follows the marker"
        );
        let code: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        files.push((path.to_owned(), code.join("\n") + "\n"));
    }
    files
}

fn enable(hive: &Path, nodes: &[&str]) {
    let path = hive.join("config/hive.toml");
    let mut config: toml_edit::DocumentMut =
        std::fs::read_to_string(&path).unwrap().parse().unwrap();
    for node in nodes {
        config["nodes"][node]["enabled"] = toml_edit::value(true);
    }
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn the_readme_tutorial_works_from_a_new_hive() {
    let repos = tempfile::Builder::new()
        .prefix("hm-tutorial-")
        .tempdir()
        .unwrap();
    let new = hm_output(repos.path(), &["new", "gotham"]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let gotham = repos.path().join("gotham");
    assert!(
        String::from_utf8_lossy(&new.stdout)
            .contains(&format!("New hive at: {}", gotham.display()))
    );
    for name in ["BatSignal", "batman"] {
        let created = hm_output(&gotham, &["create_node", name]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
    let files = readme_tutorial_files();
    assert_eq!(
        files.len(),
        2,
        "the README shows the BatSignal and Batman code"
    );
    for (path, code) in &files {
        std::fs::write(gotham.join(path), code).unwrap();
    }
    enable(&gotham, &["batsignal", "batman"]);

    // The hive's own target folder, kept inside this build's target so that re-runs are fast;
    // it must not be shared with the repository's, whose node crates have the same names.
    let target = built().parent().unwrap().join("tutorial-hive");
    let running = Running::start_with_env(
        &gotham,
        &["dev", "--port", "0"],
        &[("CARGO_TARGET_DIR", target.as_os_str())],
    );
    let saved = running.wait_for(Duration::from_secs(30), |r| {
        r.stdout()
            .contains("Batman has saved the day!")
            .then_some(())
    });
    assert!(
        saved.is_some(),
        "stdout:\n{}\nstderr:\n{}",
        running.stdout(),
        running.stderr()
    );
    let (status, page) = running.get("/");
    assert_eq!(status, 200);
    for expected in [
        "batsignal",
        "batman",
        "bat-signal-main",
        "bat-signal-*",
        "running",
    ] {
        assert!(
            page.contains(expected),
            "the page lacks {expected}:\n{page}"
        );
    }
    for log in ["root.log", "batsignal.log", "batman.log"] {
        assert!(
            gotham.join("logs").join(log).is_file(),
            "logs/{log} is missing"
        );
    }
    let (status, took, _running) = running.quit();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
}

#[test]
fn the_repository_hive_shows_batman_within_six_seconds() {
    built();
    let running = Running::start(&repo_root(), &["dev", "--port", "0"]);
    let started = Instant::now();
    let saved = running.wait_for(Duration::from_secs(6), |r| {
        r.stdout()
            .contains("Batman has saved the day!")
            .then_some(())
    });
    assert!(
        saved.is_some(),
        "no rescue within 6 s of the hive starting\nstdout:\n{}\nstderr:\n{}",
        running.stdout(),
        running.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    let (status, _, _running) = running.quit();
    assert!(status.success());
}
