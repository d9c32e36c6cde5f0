//! Soak: a publisher at full rate into three subscribers for a minute, while one of them is
//! reloaded every two seconds and another is disabled and enabled again. Every message to a
//! subscriber that was enabled at the time must arrive once and in order, and memory, threads
//! and open files must stay flat.

use crate::messages::BenchHive;
use crate::system;
use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the soak measured.
pub struct Report {
    /// How long the publisher ran.
    pub seconds: u64,
    /// Messages the publisher sent.
    pub sent: u64,
    /// Reloads of the `reloaded` subscriber.
    pub reloads: u64,
    /// Disable/enable cycles of the `toggled` subscriber.
    pub toggles: u64,
    /// The checkers' reports, by node: received, gaps, missing, duplicates_or_reordered.
    pub checks: Vec<(String, Value)>,
    /// Resident memory (kB) after the first tenth of the run, and at the end.
    pub rss_kb: (u64, u64),
    /// Threads then and at the end.
    pub threads: (u64, u64),
    /// Open files then and at the end.
    pub fds: (u64, u64),
}

impl Report {
    /// Whether the subscribers that were never switched off got every message once, in order,
    /// and the switched one never got one twice or out of order.
    pub fn exact(&self) -> bool {
        self.checks.iter().all(|(node, check)| {
            let clean = check["duplicates_or_reordered"] == 0;
            if node == "toggled" {
                clean
            } else {
                clean && check["gaps"] == 0 && check["received"] == self.sent
            }
        })
    }
}

/// Runs the soak for `seconds`.
pub fn run(libraries: &Path, seconds: u64) -> Result<Report> {
    let checker = |name: &str| {
        format!(
            "[nodes.{name}]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"checker\"\npattern = \"soak\"\nqueue_capacity = 4096\noverflow = \"block\"\noverflow_wait_ms = 5000\n\n"
        )
    };
    let nodes = format!(
        "[nodes.publisher]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"source\"\nservice = \"soak\"\ncount = 1000000000000\ntimestamps = true\n\n{}{}{}",
        checker("steady"),
        checker("reloaded"),
        checker("toggled"),
    );
    let hive = BenchHive::start(libraries, &nodes)?;
    let controller = &hive.controller;
    controller
        .publish("go", "true")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut reloads = 0;
    let mut toggles = 0;
    let mut early = None;
    let mut enabled = true;
    let mut next = Duration::from_secs(1);
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(next.saturating_sub(started.elapsed()));
        next += Duration::from_secs(1);
        let second = started.elapsed().as_secs();
        if second.is_multiple_of(2) {
            controller.reload("reloaded")?;
            reloads += 1;
        } else {
            enabled = !enabled;
            controller.set_enabled("toggled", enabled)?;
            if enabled {
                toggles += 1;
            }
        }
        if early.is_none()
            && started.elapsed() >= Duration::from_secs(seconds / 10).max(Duration::from_secs(2))
        {
            early = Some((system::rss_kb(), system::threads(), system::open_fds()));
        }
    }
    if !enabled {
        controller.set_enabled("toggled", true)?;
        toggles += 1;
    }
    // Let the re-enabled subscriber take part for a while before the publisher stops.
    std::thread::sleep(Duration::from_secs(1));
    controller
        .publish("bench-halt", "true")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sent = wait_until_sent(&hive)?;
    let checks = collect_reports(&hive, sent)?;
    // Retired instances close their libraries on threads of their own; let them finish.
    std::thread::sleep(Duration::from_millis(300));
    let late = (system::rss_kb(), system::threads(), system::open_fds());
    let early = early.context("the soak was too short to sample")?;
    Ok(Report {
        seconds,
        sent,
        reloads,
        toggles,
        checks,
        rss_kb: (early.0, late.0),
        threads: (early.1, late.1),
        fds: (early.2, late.2),
    })
}

/// Waits until the publisher has stopped; returns how many messages it sent.
fn wait_until_sent(hive: &BenchHive) -> Result<u64> {
    let sent = || {
        hive.controller
            .snapshot()
            .nodes
            .iter()
            .find(|n| n.name == "publisher")
            .and_then(|n| n.services.first().map(|s| (s.sent, s.running)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sent() {
            Some((count, false)) => return Ok(count),
            _ if Instant::now() > deadline => bail!("the publisher did not stop"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Asks the checkers for their counters once they have caught up with `sent`.
fn collect_reports(hive: &BenchHive, sent: u64) -> Result<Vec<(String, Value)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reports = hive.ask("soak-report", 3, Duration::from_secs(10))?;
        let mut checks: Vec<(String, Value)> = reports
            .into_iter()
            .map(|r| {
                let node = r["node"].as_str().unwrap_or("").to_owned();
                (node, r)
            })
            .collect();
        checks.sort_by(|a, b| a.0.cmp(&b.0));
        let caught_up = checks.iter().all(|(_, c)| c["next"].as_u64() == Some(sent));
        if caught_up || Instant::now() > deadline {
            return Ok(checks);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
