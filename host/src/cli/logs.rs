//! `hm logs`: the hive's log files merged into one stream in timestamp order.
//!
//! Every record starts with its timestamp (`2026-11-28T02:42:44.123456Z  INFO ...`, see
//! `logging::line`); its continuation lines are indented and stay with it. Records are sorted
//! by timestamp, stably: equal timestamps keep the order of the files as named, then the order
//! within a file. Rotated files (`batman.log.2`, `batman.log.1`) are read before the current one.

use crate::web::tail::LogTail;
use crate::{config, scaffold};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Print the hive's logs merged into one stream, oldest first, each line marked with its log.
///
/// Reads root.log (the host) and <node>.log for each node from the hive's log folder ([log]
/// location in config/hive.toml), rotated files included; no running hive is needed.
#[derive(Debug, Args)]
pub(super) struct LogsArgs {
    /// Keep printing new lines as they are written (stop with Ctrl-C).
    #[arg(short, long)]
    follow: bool,
    /// Only these logs: node names, or `root` for the host (default: every log).
    #[arg(value_name = "NODE")]
    nodes: Vec<String>,
}

/// How often `-f` looks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Runs `hm logs`.
pub(super) fn run(args: LogsArgs) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let config = config::load(&root)?;
    let dir = config.log.location;
    let names = if args.nodes.is_empty() {
        all_logs(&dir)?
    } else {
        args.nodes.iter().map(|n| n.to_lowercase()).collect()
    };
    if names.is_empty() && !args.follow {
        bail!(
            "there are no logs in {} yet; they appear once the hive runs (hm dev)",
            dir.display()
        );
    }
    for name in &names {
        let exists = dir.join(format!("{name}.log")).exists() || !rotated(&dir, name).is_empty();
        if !exists && !args.follow {
            bail!(
                "there is no log `{name}.log` in {} (logs there: {})",
                dir.display(),
                all_logs(&dir).map(|l| l.join(", ")).unwrap_or_default()
            );
        }
    }
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let mut records = Vec::new();
    let mut tails = Vec::new();
    for (source, name) in names.iter().enumerate() {
        let mut lines = Vec::new();
        for file in rotated(&dir, name) {
            lines.extend(read_lines(&file)?);
        }
        // The whole current file, then followed from its end.
        let (tail, current) = LogTail::whole(dir.join(format!("{name}.log")));
        lines.extend(current);
        let mut last = String::new();
        records.extend(split_records(source, lines, &mut last));
        tails.push((tail, last));
    }
    if !print(&mut out, &names, width, merge(records))? || !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let mut records = Vec::new();
        for (source, (tail, last)) in tails.iter_mut().enumerate() {
            records.extend(split_records(source, tail.poll(), last));
        }
        if !print(&mut out, &names, width, merge(records))? {
            return Ok(());
        }
    }
}

/// Every log in `dir` by name (`root`, then the nodes in name order).
fn all_logs(dir: &Path) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let stem = file.split_once(".log")?.0;
            crate::names::check_node_name(stem).ok()?;
            Some(stem.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    if let Some(at) = names.iter().position(|n| n == crate::logging::ROOT) {
        let root = names.remove(at);
        names.insert(0, root);
    }
    Ok(names)
}

/// The rotated files of log `name`, oldest first (`name.log.2`, `name.log.1`).
fn rotated(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let n = file
                .strip_prefix(name)?
                .strip_prefix(".log.")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    found.into_iter().map(|(_, path)| path).collect()
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// One log record: its timestamp, the log it came from, its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    time: String,
    source: usize,
    lines: Vec<String>,
}

/// Groups lines into records. A line without a timestamp belongs to the record above it; at
/// the start of a batch that is the last record of the previous batch, whose time is `last`.
fn split_records(source: usize, lines: Vec<String>, last: &mut String) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    for line in lines {
        match timestamp(&line) {
            Some(time) => {
                *last = time.to_owned();
                records.push(Record {
                    time: time.to_owned(),
                    source,
                    lines: vec![line],
                });
            }
            None => match records.last_mut() {
                Some(record) => record.lines.push(line),
                None => records.push(Record {
                    time: last.clone(),
                    source,
                    lines: vec![line],
                }),
            },
        }
    }
    records
}

/// The timestamp that starts a record line (`2026-11-28T02:42:44.123456Z`), if it has one.
fn timestamp(line: &str) -> Option<&str> {
    const SHAPE: &[u8; 27] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    let stamp = line.get(..SHAPE.len())?;
    let fits = stamp.bytes().zip(SHAPE).all(|(c, &want)| match want {
        b'd' => c.is_ascii_digit(),
        want => c == want,
    });
    fits.then_some(stamp)
}

/// Sorts records by timestamp; ties keep their order (files as named, then file order).
fn merge(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by(|a, b| a.time.cmp(&b.time));
    records
}

/// Prints records as `name | line`; returns false once stdout is closed (a pager quit).
fn print(
    out: &mut impl std::io::Write,
    names: &[String],
    width: usize,
    records: Vec<Record>,
) -> Result<bool> {
    for record in records {
        for line in &record.lines {
            let written = writeln!(out, "{:<width$} | {line}", names[record.source]);
            match written {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
                Err(e) => return Err(e).context("cannot write to stdout"),
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        other => other.map(|()| true).context("cannot write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn recognises_record_lines_by_their_timestamp() {
        assert_eq!(
            timestamp("2026-11-28T02:42:44.123456Z  INFO hello"),
            Some("2026-11-28T02:42:44.123456Z")
        );
        assert_eq!(timestamp("                                  more"), None);
        assert_eq!(timestamp("2026-11-28 02:42:44 INFO hello"), None);
        assert_eq!(timestamp("short"), None);
    }

    #[test]
    fn continuation_lines_stay_with_their_record() {
        let mut last = String::new();
        let records = split_records(
            0,
            lines(
                "2026-11-28T02:42:44.000001Z ERROR boom\n                                  at line 2\n2026-11-28T02:42:45.000000Z  INFO next",
            ),
            &mut last,
        );
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].lines.len(), 2);
        assert_eq!(last, "2026-11-28T02:42:45.000000Z");
        // A batch that starts mid-record keeps the previous record's time.
        let more = split_records(0, lines("     tail of it"), &mut last);
        assert_eq!(more[0].time, "2026-11-28T02:42:45.000000Z");
    }

    #[test]
    fn merges_by_time_and_keeps_ties_in_file_order() {
        let mut a = String::new();
        let mut b = String::new();
        let mut records = split_records(
            0,
            lines("2026-11-28T02:42:44.000002Z  INFO a1\n2026-11-28T02:42:44.000005Z  INFO a2"),
            &mut a,
        );
        records.extend(split_records(
            1,
            lines("2026-11-28T02:42:44.000001Z  INFO b1\n2026-11-28T02:42:44.000005Z  INFO b2\n   b2 more"),
            &mut b,
        ));
        let order: Vec<String> = merge(records)
            .into_iter()
            .flat_map(|r| r.lines)
            .map(|l| l.split_whitespace().last().unwrap().to_owned())
            .collect();
        assert_eq!(order, ["b1", "a1", "a2", "b2", "more"]);
    }

    #[test]
    fn finds_logs_and_their_rotations() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "root.log",
            "batman.log",
            "batman.log.1",
            "batman.log.2",
            "alfred.log.1",
        ] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        assert_eq!(all_logs(dir.path()).unwrap(), ["root", "alfred", "batman"]);
        let names: Vec<String> = rotated(dir.path(), "batman")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["batman.log.2", "batman.log.1"]);
    }
}
