//! `logging::init` installs a process-wide subscriber, so it is exercised in a child process:
//! the test re-runs this unit-test binary with `HM_LOGGING_CHILD` set, running only [`child`],
//! and checks its stderr and files.

use crate::logging::{self, LogSettings};
use hivemind::abi::LogLevel;
use std::path::Path;
use std::process::Command;

const CHILD: &str = "HM_LOGGING_CHILD";

/// The child's side: only does something when run by `init_routes_host_and_node_lines`.
#[test]
fn child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let logs = logging::init(LogSettings {
        dir: dir.into(),
        max_bytes: 1 << 20,
        backups: 2,
        verbose: false,
    })
    .unwrap();
    assert!(!logs.dir().exists(), "init must not create the directory");
    tracing::info!(nodes = 2, "hive started");
    tracing::debug!("host detail");
    let batman = logs.node("batman");
    batman.write(LogLevel::Info, "on patrol");
    batman.write(LogLevel::Debug, "node detail");
    batman.write(LogLevel::Warn, "Unknown payload type");
    batman.write(LogLevel::Error, "lost\nthe car");
    let again = logging::init(LogSettings {
        dir: logs.dir().to_owned(),
        max_bytes: 0,
        backups: 0,
        verbose: true,
    });
    assert!(again.is_err(), "a second init must fail");
}

#[test]
fn init_routes_host_and_node_lines() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "logging::init_tests::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stderr}");

    let read = |name: &str| std::fs::read_to_string(Path::new(&dir).join(name)).unwrap();
    let root = read("root.log");
    assert_eq!(root.lines().count(), 1, "{root}");
    assert!(root.ends_with("  INFO hive started nodes=2\n"), "{root}");
    let batman = read("batman.log");
    let levels: Vec<&str> = batman.lines().map(|l| l.get(28..33).unwrap_or(l)).collect();
    assert_eq!(levels, [" INFO", " WARN", "ERROR", "     "], "{batman}");

    // Terminal: host INFO, node WARN and ERROR; no DEBUG, no node INFO.
    assert!(stderr.contains("hive started"), "{stderr}");
    assert!(
        stderr.contains("[batman] WARN Unknown payload type\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[batman] ERROR lost\n    the car\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("detail"), "{stderr}");
    assert!(!stderr.contains("on patrol"), "{stderr}");
}
