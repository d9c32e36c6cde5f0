//! Reload benchmarks: how long from a new library being in place to the new code handling a
//! message, and whether a thousand reloads leak memory, threads, file descriptors or mappings.

use crate::stats::percentile;
use crate::{hive, system};
use anyhow::{Context as _, Result, bail};
use hivemind_host::Controller;
use hivemind_host::Pattern;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the reload benchmark measured.
pub struct Report {
    cycles: usize,
    latencies_ms: Vec<f64>,
    load_ms: f64,
    unload_ms: f64,
    rss_before_kb: u64,
    rss_after_first_kb: u64,
    rss_after_kb: u64,
    threads: (u64, u64),
    fds: (u64, u64),
    mapped_copies_after: u64,
}

/// Runs the reload benchmark with the release libraries in `libraries`.
pub fn run(libraries: &Path, quick: bool) -> Result<Report> {
    let cycles = if quick { 100 } else { 1000 };
    let text = "[hive]\nport = 0\n[nodes.echo]\nenabled = true\nlibrary = \"probe\"\n\
                subscriptions = [\"ping\"]\necho_to = \"pong\"\n";
    let hive = hive::folder(libraries, &["probe"], text)?;
    let root = hive.path();
    let target = root.join("nodes/libprobe.so");
    let versions = [
        libraries.join("libprobe.so"),
        libraries.join("libprobe2.so"),
    ];
    let controller = hive::controller(root)?;
    let started = Instant::now();
    controller.start();
    let load_ms = ms(started.elapsed());
    let pong = controller.bus().tap(Pattern::new("pong")?, 16);
    round_trip(&controller, &pong, 0)?;

    let rss_before_kb = system::rss_kb();
    let threads_before = system::threads();
    let fds_before = system::open_fds();
    let mut latencies_ms = Vec::with_capacity(cycles);
    let mut rss_after_first_kb = 0;
    for cycle in 1..=cycles {
        install(&versions[cycle % 2], &target)?;
        let swapped = Instant::now();
        controller
            .library_changed(&target)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        round_trip(&controller, &pong, cycle)?;
        latencies_ms.push(ms(swapped.elapsed()));
        if cycle == 20 {
            rss_after_first_kb = system::rss_kb();
        }
    }
    // Let the retired instances finish closing their libraries.
    std::thread::sleep(Duration::from_millis(300));
    let report_state = (system::rss_kb(), system::threads(), system::open_fds());
    let mapped_copies_after = system::mapped_files("/libprobe-");
    let stopping = Instant::now();
    controller.stop();
    let unload_ms = ms(stopping.elapsed());
    Ok(Report {
        cycles,
        latencies_ms,
        load_ms,
        unload_ms,
        rss_before_kb,
        rss_after_first_kb,
        rss_after_kb: report_state.0,
        threads: (threads_before, report_state.1),
        fds: (fds_before, report_state.2),
        mapped_copies_after,
    })
}

/// Publishes ping `n` and waits for the node's pong.
fn round_trip(controller: &Controller, pong: &hivemind_host::Tap, n: usize) -> Result<()> {
    controller
        .publish("ping", &n.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let delivery = pong
        .inbox
        .recv_timeout(Duration::from_secs(5))
        .context("the node did not answer within 5 s")?;
    if *delivery.message.payload() != *n.to_string() {
        bail!("expected pong {n}, got {}", delivery.message.payload());
    }
    Ok(())
}

/// Puts `source` at `target` the way a build does: a new file renamed over the old one.
fn install(source: &Path, target: &Path) -> Result<()> {
    let aside = target.with_extension("incoming");
    std::fs::copy(source, &aside).with_context(|| format!("cannot copy {}", source.display()))?;
    std::fs::rename(&aside, target)?;
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

impl Report {
    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    fn growth_mb(&self) -> f64 {
        (self.rss_after_kb as f64 - self.rss_before_kb as f64) / 1024.0
    }

    /// Prints the table.
    pub fn print(&self) {
        let sorted = self.sorted();
        let rows = [
            (
                "first load of a node (open, check, build, start)".to_owned(),
                format!("{:.2} ms", self.load_ms),
                "≤ 1 ms",
            ),
            (
                format!(
                    "reload: library in place → new code answers, p50 ({} reloads)",
                    self.cycles
                ),
                format!("{:.2} ms", percentile(&sorted, 50.0)),
                "≤ 20 ms",
            ),
            (
                "reload, p90".to_owned(),
                format!("{:.2} ms", percentile(&sorted, 90.0)),
                "",
            ),
            (
                "reload, max".to_owned(),
                format!("{:.2} ms", sorted.last().copied().unwrap_or(0.0)),
                "",
            ),
            (
                "unload at stop".to_owned(),
                format!("{:.2} ms", self.unload_ms),
                "",
            ),
            (
                "resident memory: before, after 20 reloads, after all".to_owned(),
                format!(
                    "{} / {} / {} kB",
                    self.rss_before_kb, self.rss_after_first_kb, self.rss_after_kb
                ),
                "flat after the first",
            ),
            (
                "resident growth over all reloads".to_owned(),
                format!("{:.2} MB", self.growth_mb()),
                "< 20 MB",
            ),
            (
                "threads before → after".to_owned(),
                format!("{} → {}", self.threads.0, self.threads.1),
                "equal",
            ),
            (
                "open files before → after".to_owned(),
                format!("{} → {}", self.fds.0, self.fds.1),
                "equal",
            ),
            (
                "library copies mapped at the end".to_owned(),
                self.mapped_copies_after.to_string(),
                "1 (the running one)",
            ),
        ];
        crate::table::print(&["reload", "measured", "target"], &rows);
    }

    /// The report as JSON.
    pub fn json(&self) -> serde_json::Value {
        let sorted = self.sorted();
        json!({
            "reload_cycles": self.cycles,
            "load_ms": self.load_ms,
            "reload_ms": percentile(&sorted, 50.0),
            "reload_p90_ms": percentile(&sorted, 90.0),
            "reload_max_ms": sorted.last().copied().unwrap_or(0.0),
            "unload_ms": self.unload_ms,
            "reload_rss_before_kb": self.rss_before_kb,
            "reload_rss_after_kb": self.rss_after_kb,
            "reload_rss_growth_mb": self.growth_mb(),
            "reload_threads_before": self.threads.0,
            "reload_threads_after": self.threads.1,
            "reload_fds_before": self.fds.0,
            "reload_fds_after": self.fds.1,
            "reload_mapped_copies_after": self.mapped_copies_after,
        })
    }
}
