//! What the benchmarks need from the machine: the bench node libraries, built in release, and
//! the process's own resident memory, threads and file descriptors.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `hm` and the bench's node libraries with the release profile; returns their folder.
pub fn build_bench_nodes() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ lives in the workspace")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "probe",
            "-p",
            "probe2",
            "-p",
            "bench_node",
            "-p",
            "hivemind-host",
        ])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the bench nodes failed");
    }
    let exe = std::env::current_exe()?;
    let profile = exe.parent().context("the bench binary has a folder")?;
    Ok(profile
        .parent()
        .context("target/<profile>")?
        .join("release"))
}

/// A line describing the machine.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!("{cpus} CPU(s), {model}, Linux {kernel}, load average {load} at start")
}

/// Voluntary and involuntary context switches so far of this process's live threads whose
/// name starts with `prefix` (a node's thread is `hm:<node>`).
pub fn context_switches(prefix: &str) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let named = status
            .lines()
            .find(|l| l.starts_with("Name:"))
            .is_some_and(|l| l.trim_start_matches("Name:").trim().starts_with(prefix));
        if named {
            total.0 += field("voluntary_ctxt_switches:");
            total.1 += field("nonvoluntary_ctxt_switches:");
        }
    }
    total
}

/// This process's resident memory, in kB.
pub fn rss_kb() -> u64 {
    status_field("VmRSS:")
}

/// This process's anonymous resident memory (heap, stacks; not mapped files), in kB.
pub fn rss_anon_kb() -> u64 {
    status_field("RssAnon:")
}

/// This process's threads.
pub fn threads() -> u64 {
    status_field("Threads:")
}

/// This process's open file descriptors.
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Distinct mapped files whose path contains `needle`.
pub fn mapped_files(needle: &str) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let files: std::collections::BTreeSet<&str> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains(needle))
        .collect();
    files.len() as u64
}

fn status_field(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
