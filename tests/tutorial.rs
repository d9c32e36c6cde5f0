//! The README's tutorial, step by step in the README's order, as a newcomer follows it:
//! `hm new gotham`, `hm dev` on the empty hive, `hm create_node BatSignal`, the README's code,
//! `hm enable batsignal` and `hm dev` (its logs), then `hm create_node batman` and `hm enable
//! batman` while `hm dev` runs; then `hm create_node alfred`, his code, `hm enable alfred`,
//! `hm call`, and Batman's new code that asks Alfred and acts on the reply; each step's
//! promised output is checked. Also the repository's own example hive.

use hivemind_tests::{Running, built, eventually, hm_output, repo_root};
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

/// The `hm` commands of the README tutorial's shell blocks, in order, as written.
fn readme_tutorial_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("## Tutorial: Gotham")
        .expect("the README has its tutorial");
    let tutorial = &readme[start..];
    let end = tutorial[3..]
        .find("\n## ")
        .map_or(tutorial.len(), |i| i + 3);
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in tutorial[..end].lines() {
        match line {
            "```sh" => in_shell = true,
            "```" => in_shell = false,
            _ if in_shell && line.starts_with("hm ") => commands.push(line.to_owned()),
            _ => {}
        }
    }
    commands
}

/// The commands this test runs, in its order: a step added to, changed in or removed from the
/// README's tutorial fails the test until the test runs it too.
const COMMANDS_THE_TEST_RUNS: &[&str] = &[
    "hm new gotham",
    "hm create_node BatSignal",
    "hm enable batsignal",
    "hm dev",
    "hm create_node batman",
    "hm enable batman",
    "hm create_node alfred",
    "hm enable alfred",
    "hm call alfred/advice '\"penguin\"'",
    "hm data get batman saves",
];

/// Runs `hm ARGS` in `dir`; asserts it succeeded and returns its stdout.
fn hm_ok(dir: &Path, args: &[&str]) -> String {
    let output = hm_output(dir, args);
    assert!(
        output.status.success(),
        "hm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits (generously: the first build of a hive compiles its dependencies) until `text` shows
/// in the running hive's stdout or stderr.
fn wait_to_see(running: &Running, text: &str, timeout: Duration) {
    let seen = running.wait_for(timeout, |r| {
        (r.stdout().contains(text) || r.stderr().contains(text)).then_some(())
    });
    assert!(
        seen.is_some(),
        "`{text}` did not show\nstdout:\n{}\nstderr:\n{}",
        running.stdout(),
        running.stderr()
    );
}

/// The README's tutorial, in the README's order, checking what each step promises.
#[test]
fn the_readme_tutorial_works_step_by_step_as_written() {
    assert_eq!(
        readme_tutorial_commands(),
        COMMANDS_THE_TEST_RUNS,
        "the README's tutorial commands are the ones this test runs"
    );
    let repos = tempfile::Builder::new()
        .prefix("hm-tutorial-")
        .tempdir()
        .unwrap();
    // Create a hive.
    let said = hm_ok(repos.path(), &["new", "gotham"]);
    let gotham = repos.path().join("gotham");
    assert!(
        said.contains(&format!("New hive at: {}", gotham.display())),
        "{said}"
    );
    // `hm dev` already works: it serves the empty hive, and says there is no node yet.
    let empty = Running::start(&gotham, &["dev", "--port", "0"]);
    wait_to_see(
        &empty,
        "this hive has no nodes yet",
        Duration::from_secs(20),
    );
    let (status, _, _) = empty.quit();
    assert!(status.success());

    // Create a node: a crate and a disabled table.
    let said = hm_ok(&gotham, &["create_node", "BatSignal"]);
    assert!(said.contains("New node `batsignal`"), "{said}");
    assert!(gotham.join("nodes/batsignal/src/lib.rs").is_file());
    let config = std::fs::read_to_string(gotham.join("config/hive.toml")).unwrap();
    assert!(
        config.contains("[nodes.batsignal]\nenabled = false"),
        "{config}"
    );

    // Add a service: the README's code.
    let files = readme_tutorial_files();
    assert_eq!(
        files.len(),
        4,
        "the README shows the BatSignal, Batman, Alfred and Batman-asks-Alfred code"
    );
    let code = |path: &str| {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, code)| code.clone())
            .unwrap_or_else(|| panic!("the README shows {path}"))
    };
    std::fs::write(
        gotham.join("nodes/batsignal/src/lib.rs"),
        code("nodes/batsignal/src/lib.rs"),
    )
    .unwrap();

    // Logs: enable it, run `hm dev`: it says what it builds, loads the node, and the logs are there.
    hm_ok(&gotham, &["enable", "batsignal"]);
    // The hive's own target folder, kept inside this build's target so that re-runs are fast;
    // it must not be shared with the repository's, whose node crates have the same names.
    let target = built().parent().unwrap().join("tutorial-hive");
    let running = Running::start_with_env(
        &gotham,
        &["dev", "--port", "0"],
        &[("CARGO_TARGET_DIR", target.as_os_str())],
    );
    assert!(
        running
            .stderr()
            .contains("building the node crate batsignal with cargo"),
        "hm dev says what it builds before it builds:\n{}",
        running.stderr()
    );
    wait_to_see(&running, "node `batsignal` loaded", Duration::from_secs(30));
    for log in ["root.log", "batsignal.log"] {
        assert!(
            eventually(Duration::from_secs(10), || gotham
                .join("logs")
                .join(log)
                .is_file()),
            "logs/{log} is missing"
        );
    }
    assert!(!running.stdout().contains("Batman"), "nobody listens yet");

    // Add a subscription while `hm dev` runs: it has picked the new crate up.
    let said = hm_ok(&gotham, &["create_node", "batman"]);
    assert!(
        said.contains("`hm dev`") && said.contains("picked the new crate up"),
        "{said}"
    );
    std::fs::write(
        gotham.join("nodes/batman/src/lib.rs"),
        code("nodes/batman/src/lib.rs"),
    )
    .unwrap();
    hm_ok(&gotham, &["enable", "batman"]);
    wait_to_see(
        &running,
        "node `batman` enabled in config/hive.toml: starting it",
        Duration::from_secs(20),
    );
    // Batman's crate builds (the template first, then the README's code), then he answers.
    wait_to_see(
        &running,
        "Batman has saved the day!",
        Duration::from_secs(180),
    );
    assert!(running.stderr().contains("node `batman` loaded"));
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
    assert!(
        gotham.join("logs/batman.log").is_file(),
        "logs/batman.log is missing"
    );

    // Ask a question: Alfred answers requests; `hm call` asks him; Batman asks him on every
    // signal and acts on the reply.
    hm_ok(&gotham, &["create_node", "alfred"]);
    std::fs::write(
        gotham.join("nodes/alfred/src/lib.rs"),
        code("nodes/alfred/src/lib.rs"),
    )
    .unwrap();
    hm_ok(&gotham, &["enable", "alfred"]);
    wait_to_see(&running, "node `alfred` loaded", Duration::from_secs(180));
    let answered = running.wait_for(Duration::from_secs(60), |_| {
        let output = hm_output(&gotham, &["call", "alfred/advice", "\"penguin\""]);
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && said.contains("An umbrella would be wise, sir."))
            .then_some(said)
    });
    assert!(
        answered.is_some_and(|said| said.contains("\"times_asked\":")),
        "hm call prints Alfred's reply\n{}",
        running.stderr()
    );
    let asking_batman = files
        .iter()
        .rfind(|(p, _)| p == "nodes/batman/src/lib.rs")
        .map(|(_, code)| code.clone())
        .unwrap();
    assert_ne!(asking_batman, code("nodes/batman/src/lib.rs"));
    std::fs::write(gotham.join("nodes/batman/src/lib.rs"), asking_batman).unwrap();
    wait_to_see(
        &running,
        "Alfred says: Take the Batmobile, sir. Batman has saved the day!",
        Duration::from_secs(180),
    );
    // Batman counts his saves in his store: `hm data get` prints the count, a number that grows.
    let count = || {
        let output = hm_output(&gotham, &["data", "get", "batman", "saves"]);
        let said = String::from_utf8_lossy(&output.stdout);
        output
            .status
            .success()
            .then(|| said.trim().parse::<u64>().ok())
            .flatten()
    };
    let first = running.wait_for(Duration::from_secs(30), |_| count().filter(|n| *n >= 1));
    let first = first.expect("hm data get batman saves prints his count of saves");
    let grown = running.wait_for(Duration::from_secs(30), |_| count().filter(|n| *n > first));
    assert!(grown.is_some(), "his count grows with every signal");
    assert!(
        gotham.join("data/batman.db").is_file(),
        "data/batman.db is his store"
    );
    let (status, page) = running.get("/requests");
    assert_eq!(status, 200);
    assert!(
        page.contains("alfred/advice"),
        "the requests page lists it:\n{page}"
    );

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
