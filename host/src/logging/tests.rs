use super::*;
use crate::logging::line::tests::record_re;
use std::collections::HashSet;
use std::fs;

fn settings(dir: &Path, max_bytes: u64, backups: u32, verbose: bool) -> LogSettings {
    LogSettings {
        dir: dir.to_owned(),
        max_bytes,
        backups,
        verbose,
    }
}

/// Every line of every file in `dir`.
fn all_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn last line: {text:?}"
        );
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[test]
fn node_logs_are_created_at_the_first_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gotham/logs");
    let logs = Logs::new(settings(&dir, 1 << 20, 3, false));
    let batman = logs.node("batman");
    assert_eq!(logs.dir(), dir);
    assert!(!dir.exists(), "node() must not touch the disk");

    batman.write(LogLevel::Info, "on patrol");
    let text = fs::read_to_string(dir.join("batman.log")).unwrap();
    assert!(record_re().is_match(&text), "{text:?}");
    assert!(text.ends_with("  INFO on patrol\n"), "{text:?}");
    assert!(!dir.join("root.log").exists());
    assert!(!dir.join("batsignal.log").exists());
}

#[test]
fn debug_lines_need_verbose() {
    let tmp = tempfile::tempdir().unwrap();
    let quiet = Logs::new(settings(&tmp.path().join("quiet"), 0, 1, false)).node("n");
    let loud = Logs::new(settings(&tmp.path().join("loud"), 0, 1, true)).node("n");
    for log in [&quiet, &loud] {
        log.write(LogLevel::Debug, "detail");
        log.write(LogLevel::Info, "normal");
    }
    let quiet = fs::read_to_string(tmp.path().join("quiet/n.log")).unwrap();
    assert_eq!(quiet.lines().count(), 1, "{quiet:?}");
    assert!(quiet.contains(" INFO normal"));
    let loud = fs::read_to_string(tmp.path().join("loud/n.log")).unwrap();
    assert_eq!(loud.lines().count(), 2, "{loud:?}");
    assert!(loud.contains("DEBUG detail"));
}

#[test]
fn every_level_is_written_with_its_label() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Logs::new(settings(tmp.path(), 0, 1, true)).node("batman");
    log.write(LogLevel::Error, "e");
    log.write(LogLevel::Warn, "w\nmore");
    log.write(LogLevel::Info, "i");
    log.write(LogLevel::Debug, "d");
    let text = fs::read_to_string(tmp.path().join("batman.log")).unwrap();
    let labels: Vec<&str> = text
        .lines()
        .filter(|l| record_re().is_match(l))
        .map(|l| &l[28..33])
        .collect();
    assert_eq!(labels, ["ERROR", " WARN", " INFO", "DEBUG"]);
    assert!(text.contains(&format!("  WARN w\n{}more\n", line::INDENT)));
}

#[test]
fn one_file_per_node_shared_by_all_handles() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = Logs::new(settings(tmp.path(), 0, 1, false));
    let a = logs.node("batman");
    let b = logs.clone().node("batman");
    let c = a.clone();
    a.write(LogLevel::Info, "a");
    b.write(LogLevel::Info, "b");
    c.write(LogLevel::Info, "c");
    assert!(a.file().same_file(b.file()));
    let text = fs::read_to_string(tmp.path().join("batman.log")).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert_eq!(a.name(), "batman");
}

#[test]
fn node_names_cannot_escape_the_directory() {
    assert_eq!(file_stem("batman"), "batman");
    assert_eq!(file_stem("../etc/passwd"), ".._etc_passwd");
    assert_eq!(file_stem("a\\b:c\n"), "a_b_c_");
    assert_eq!(file_stem(".."), "_");
    assert_eq!(file_stem(""), "_");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let log = Logs::new(settings(&dir, 0, 1, false)).node("../escape");
    log.write(LogLevel::Info, "x");
    assert!(dir.join(".._escape.log").exists());
    assert!(!tmp.path().join("escape.log").exists());
}

#[test]
fn concurrent_writers_never_interleave() {
    const THREADS: usize = 8;
    const LINES: usize = 1000;
    let tmp = tempfile::tempdir().unwrap();
    // Small files, enough backups to keep every line: rotation happens under contention too.
    let logs = Logs::new(settings(tmp.path(), 16 * 1024, 100, false));
    let first = logs.node("busy");
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            // Half the threads clone one handle, half ask `Logs` again: same file either way.
            let log = if t % 2 == 0 {
                first.clone()
            } else {
                logs.node("busy")
            };
            scope.spawn(move || {
                for i in 0..LINES {
                    log.write(
                        LogLevel::Info,
                        &format!("thread {t} line {i} {}", "x".repeat(i % 50)),
                    );
                }
            });
        }
    });

    let lines = all_lines(tmp.path());
    assert_eq!(lines.len(), THREADS * LINES);
    let shape = regex::Regex::new(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z  INFO thread (\d) line (\d+) (x*)$",
    )
    .unwrap();
    let mut seen = HashSet::new();
    for line in &lines {
        let caps = shape
            .captures(line)
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let i: usize = caps[2].parse().unwrap();
        assert_eq!(caps[3].len(), i % 50, "{line:?}");
        assert!(seen.insert((caps[1].to_owned(), i)), "duplicate {line:?}");
    }
    assert!(
        fs::read_dir(tmp.path()).unwrap().count() > 2,
        "expected rotation"
    );
}

#[test]
fn root_log_and_node_logs_share_a_file_for_a_node_named_root() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = Logs::new(settings(tmp.path(), 0, 1, false));
    let root = logs.file(ROOT);
    let node = logs.node("root");
    assert!(root.same_file(node.file()));
}

#[test]
fn the_verbose_host_filter_keeps_dependencies_at_info() {
    let verbose = default_targets(true);
    assert!(verbose.would_enable("hivemind_host::dev", &Level::DEBUG));
    assert!(verbose.would_enable("hm", &Level::DEBUG));
    assert!(!verbose.would_enable("hyper::proto", &Level::DEBUG));
    assert!(verbose.would_enable("hyper::proto", &Level::INFO));
    let quiet = default_targets(false);
    assert!(!quiet.would_enable("hivemind_host::dev", &Level::DEBUG));
    assert!(quiet.would_enable("hivemind_host::dev", &Level::INFO));
}

#[test]
fn a_forwarding_log_hands_its_lines_over_and_writes_no_file() {
    let (sink, lines) = crossbeam_channel::unbounded();
    let logs = Logs::forwarding(sink, false);
    let log = logs.node("batman");
    log.write(LogLevel::Warn, "the signal is dim");
    log.write(LogLevel::Debug, "filtered: not verbose");
    assert!(log.write_to_file(LogLevel::Error, "the host reports this too"));
    let got: Vec<(LogLevel, String)> = lines.try_iter().collect();
    assert_eq!(
        got,
        [
            (LogLevel::Warn, "the signal is dim".to_owned()),
            (LogLevel::Error, "the host reports this too".to_owned()),
        ]
    );
}
