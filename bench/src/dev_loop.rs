//! The `hm dev` loop: from saving a node's source to the new code running, against the time
//! cargo itself spends on the incremental build. Runs the real `hm dev --release` on a new hive
//! (release, to share the dependencies the bench has already built).

use anyhow::{Context as _, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// What the dev-loop benchmark measured, one entry per edit.
pub struct Report {
    /// Save → new output, in ms.
    pub total_ms: Vec<f64>,
    /// What cargo reported for the rebuild, in ms.
    pub cargo_ms: Vec<f64>,
}

impl Report {
    /// The median of `total - cargo` over the edits, in ms.
    pub fn overhead_ms(&self) -> f64 {
        let mut overheads: Vec<f64> = self
            .total_ms
            .iter()
            .zip(&self.cargo_ms)
            .map(|(total, cargo)| total - cargo)
            .collect();
        overheads.sort_by(f64::total_cmp);
        overheads.get(overheads.len() / 2).copied().unwrap_or(0.0)
    }

    /// The median of the whole save → running time, in ms.
    pub fn total_median_ms(&self) -> f64 {
        let mut sorted = self.total_ms.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    }
}

/// Lines from the running `hm`, with the time each arrived.
struct Output {
    lines: Receiver<(Instant, String)>,
}

impl Output {
    fn wait_for(&self, needle: &str, timeout: Duration) -> Result<(Instant, Vec<String>)> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return Ok((at, seen));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("`{needle}` did not appear within {timeout:?}")
                }
                Err(RecvTimeoutError::Disconnected) => bail!("hm dev exited before `{needle}`"),
            }
        }
    }
}

/// Runs `edits` edit-save-wait cycles on a node of a new hive under `hm dev`.
pub fn run(hm: &Path, cache: &Path, edits: usize) -> Result<Report> {
    let work = tempfile::Builder::new().prefix("hm-bench-dev-").tempdir()?;
    let hive = work.path().join("gotham");
    run_hm(hm, work.path(), &["new", "gotham"])?;
    run_hm(hm, &hive, &["create_node", "Robin"])?;
    run_hm(hm, &hive, &["enable", "robin"])?;
    let source = hive.join("nodes/robin/src/lib.rs");
    write_node(&source, 0)?;
    let (mut child, output) = start_dev(hm, &hive, cache)?;
    let result = (|| {
        output.wait_for("robin says 0", Duration::from_secs(300))?;
        let mut report = Report {
            total_ms: Vec::new(),
            cargo_ms: Vec::new(),
        };
        for edit in 1..=edits {
            std::thread::sleep(Duration::from_millis(300));
            write_node(&source, edit)?;
            let saved = Instant::now();
            let (at, lines) =
                output.wait_for(&format!("robin says {edit}"), Duration::from_secs(120))?;
            let cargo = lines
                .iter()
                .rev()
                .find_map(|l| cargo_seconds(l))
                .context("cargo reported no build time")?;
            report.total_ms.push((at - saved).as_secs_f64() * 1e3);
            report.cargo_ms.push(cargo * 1e3);
        }
        Ok(report)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A node whose service prints `robin says <n>` every 10 ms.
fn write_node(source: &Path, n: usize) -> Result<()> {
    let code = format!(
        "use hivemind::prelude::*;\nuse std::time::Duration;\npub struct Robin;\n\
         impl Node for Robin {{\n    fn new(_: &Context) -> Result<Self> {{ Ok(Robin) }}\n    \
         fn services(&mut self, hive: &mut Services) {{\n        hive.add_service(\"chirp\", |s: &Service| {{\n            \
         println!(\"robin says {n}\");\n            s.sleep_for(Duration::from_millis(10));\n            Ok(Flow::Continue)\n        }});\n    }}\n}}\n\
         hivemind::export_node!(Robin);\n"
    );
    std::fs::write(source, code).with_context(|| format!("cannot write {}", source.display()))
}

/// Cargo's `Finished ... in 0.27s` (or `1m 02s`), in seconds.
fn cargo_seconds(line: &str) -> Option<f64> {
    let rest = line.trim().strip_prefix("Finished")?;
    let time = rest.rsplit(" in ").next()?.trim();
    let seconds = time.strip_suffix('s')?;
    match seconds.split_once("m ") {
        Some((minutes, seconds)) => {
            Some(minutes.parse::<f64>().ok()? * 60.0 + seconds.parse::<f64>().ok()?)
        }
        None => seconds.parse().ok(),
    }
}

fn run_hm(hm: &Path, dir: &Path, args: &[&str]) -> Result<()> {
    let output = Command::new(hm).args(args).current_dir(dir).output()?;
    if !output.status.success() {
        bail!(
            "hm {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn start_dev(hm: &Path, hive: &Path, cache: &Path) -> Result<(Child, Output)> {
    let mut child = Command::new(hm)
        .args(["dev", "--port", "0", "--release"])
        .current_dir(hive)
        .env("CARGO_TARGET_DIR", cache)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start hm dev")?;
    let (sender, lines) = channel();
    for stream in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if sender.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
    }
    Ok((child, Output { lines }))
}

/// Where the bench hive builds: the workspace's own target folder, whose release dependencies
/// are already built (the hive's node crate has a name of its own, so nothing collides).
pub fn cache_dir(release_dir: &Path) -> PathBuf {
    release_dir
        .parent()
        .map_or_else(|| release_dir.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargos_build_time() {
        assert_eq!(
            cargo_seconds(
                "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.27s"
            ),
            Some(0.27)
        );
        assert_eq!(
            cargo_seconds("Finished `release` profile [optimized] target(s) in 1m 02s"),
            Some(62.0)
        );
        assert_eq!(cargo_seconds("   Compiling robin v0.1.0"), None);
    }
}
