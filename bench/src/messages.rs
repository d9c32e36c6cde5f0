//! Message benchmarks: throughput (1→1 small and 4 KiB, 1→16 fan-out, 16→1 fan-in) and
//! latency (paced and at saturation) through the real host and real node libraries, each beside
//! the same pattern through a plain crossbeam channel measured in the same run.

use crate::{baseline, hive};
use anyhow::{Context as _, Result, bail};
use hivemind_host::bus::{Pattern, Tap};
use hivemind_host::controller::Controller;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hive of bench nodes, started, with a tap on the sinks' reports.
pub struct BenchHive {
    _dir: tempfile::TempDir,
    /// The hive's controller.
    pub controller: Controller,
    reports: Tap,
}

impl BenchHive {
    /// Starts a hive whose config has `nodes` (node tables using `library = "bench_node"`).
    pub fn start(libraries: &Path, nodes: &str) -> Result<Self> {
        let dir = hive::folder(
            libraries,
            &["bench_node"],
            &format!("[hive]\nport = 0\n\n{nodes}"),
        )?;
        let controller = hive::controller(dir.path())?;
        let reports = controller.bus().tap(Pattern::new("bench-report")?, 64);
        controller.start();
        Ok(Self {
            _dir: dir,
            controller,
            reports,
        })
    }

    /// Tells the sources to go; returns when `sinks` reports arrived, with the time it took.
    pub fn go_and_wait(&self, sinks: usize, timeout: Duration) -> Result<(Duration, Vec<Value>)> {
        let started = Instant::now();
        let reports = self.ask("go", sinks, timeout)?;
        Ok((started.elapsed(), reports))
    }

    /// Publishes on `service`, then waits for `sinks` reports.
    pub fn ask(&self, service: &str, sinks: usize, timeout: Duration) -> Result<Vec<Value>> {
        let started = Instant::now();
        self.controller
            .publish(service, "true")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut reports = Vec::with_capacity(sinks);
        while reports.len() < sinks {
            let left = timeout.saturating_sub(started.elapsed());
            let delivery = self.reports.inbox.recv_timeout(left).with_context(|| {
                format!(
                    "only {} of {sinks} sinks reported within {timeout:?}: {}",
                    reports.len(),
                    serde_json::to_string(&self.controller.snapshot().nodes).unwrap_or_default()
                )
            })?;
            reports.push(serde_json::from_str(&delivery.message.payload)?);
        }
        Ok(reports)
    }
}

impl Drop for BenchHive {
    fn drop(&mut self) {
        self.controller.stop();
    }
}

fn source(name: &str, service: &str, count: u64, extra: &str) -> String {
    format!(
        "[nodes.{name}]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"source\"\nservice = \"{service}\"\ncount = {count}\n{extra}\n"
    )
}

pub fn sink(name: &str, pattern: &str, count: u64, capacity: u64, extra: &str) -> String {
    format!(
        "[nodes.{name}]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"sink\"\npattern = \"{pattern}\"\ncount = {count}\nqueue_capacity = {capacity}\n{extra}\n"
    )
}

/// One figure beside its baseline.
pub struct Figure {
    /// What was measured.
    pub name: &'static str,
    /// The JSON report's key for it.
    pub key: &'static str,
    /// The host's figure.
    pub hive: f64,
    /// The plain channel's figure.
    pub baseline: Option<f64>,
    /// The unit.
    pub unit: &'static str,
    /// The target, in words.
    pub target: &'static str,
}

/// Runs every message benchmark.
pub fn run(libraries: &Path, quick: bool) -> Result<Vec<Figure>> {
    let n: u64 = if quick { 200_000 } else { 2_000_000 };
    let mut figures = Vec::new();

    let one_to_one = throughput(libraries, 1, 1, n, "")?;
    figures.push(Figure {
        name: "1→1 throughput, 32-byte string",
        key: "throughput_1to1_msgs_per_s",
        hive: one_to_one,
        baseline: Some(baseline::one_to_one(n)),
        unit: "msg/s",
        target: "≥ 2,000,000 and ≥ ⅓ of the channel",
    });
    let big_n = n / 10;
    figures.push(Figure {
        name: "1→1 throughput, 4 KiB JSON object",
        key: "throughput_1to1_4k_msgs_per_s",
        hive: throughput(libraries, 1, 1, big_n, "payload = \"4k\"")?,
        baseline: Some(baseline::one_to_one_4k(big_n)),
        unit: "msg/s",
        target: "",
    });
    let fan_n = n / 4;
    figures.push(Figure {
        name: "1→16 fan-out, deliveries",
        key: "fanout_1to16_deliveries_per_s",
        hive: throughput(libraries, 1, 16, fan_n, "")? * 16.0,
        baseline: Some(baseline::fan_out(fan_n, 16) * 16.0),
        unit: "deliveries/s",
        target: "≥ 5,000,000",
    });
    figures.push(Figure {
        name: "16→1 fan-in",
        key: "fanin_16to1_msgs_per_s",
        hive: throughput(libraries, 16, 1, n / 16, "")?,
        baseline: Some(baseline::fan_in(n / 16, 16)),
        unit: "msg/s",
        target: "",
    });
    figures.push(Figure {
        name: "baseline 1→1 (plain crossbeam channel)",
        key: "baseline_1to1_msgs_per_s",
        hive: baseline::one_to_one(n),
        baseline: None,
        unit: "msg/s",
        target: "",
    });

    let paced = if quick { 5_000 } else { 20_000 };
    let (p50, p99, p999) = latency(libraries, paced, 10_000, "")?;
    let (b50, b99, b999) = baseline::latency(paced, 10_000);
    figures.push(lat(
        "latency p50, 10,000 msg/s",
        "latency_p50_us",
        p50,
        b50,
        "≤ 5 µs",
    ));
    figures.push(lat(
        "latency p99, 10,000 msg/s",
        "latency_p99_us",
        p99,
        b99,
        "≤ 50 µs",
    ));
    figures.push(lat(
        "latency p99.9, 10,000 msg/s",
        "latency_p999_us",
        p999,
        b999,
        "",
    ));
    let (q50, q99, _) = latency(libraries, paced, 10_000, "spin_us = 200")?;
    figures.push(lat(
        "latency p50, 10,000 msg/s, sink with spin_us = 200",
        "latency_spin_p50_us",
        q50,
        f64::NAN,
        "≤ 5 µs",
    ));
    figures.push(lat(
        "latency p99, 10,000 msg/s, sink with spin_us = 200",
        "latency_spin_p99_us",
        q99,
        f64::NAN,
        "≤ 50 µs",
    ));
    let (s50, s99, s999) = latency(libraries, n / 4, 0, "")?;
    figures.push(lat(
        "latency p50, saturated",
        "latency_saturated_p50_us",
        s50,
        f64::NAN,
        "",
    ));
    figures.push(lat(
        "latency p99, saturated",
        "latency_saturated_p99_us",
        s99,
        f64::NAN,
        "",
    ));
    figures.push(lat(
        "latency p99.9, saturated",
        "latency_saturated_p999_us",
        s999,
        f64::NAN,
        "",
    ));
    Ok(figures)
}

fn lat(
    name: &'static str,
    key: &'static str,
    hive: f64,
    baseline: f64,
    target: &'static str,
) -> Figure {
    Figure {
        name,
        key,
        hive,
        baseline: (!baseline.is_nan()).then_some(baseline),
        unit: "µs",
        target,
    }
}

/// `sources` sources each sending `count` to `sinks` sinks; returns messages per second (per
/// sink, so fan-out figures are multiplied by the sinks).
pub fn throughput(
    libraries: &Path,
    sources: usize,
    sinks: usize,
    count: u64,
    extra: &str,
) -> Result<f64> {
    throughput_with(libraries, (sources, extra), (sinks, ""), count)
}

/// [`throughput`] with settings added to the sources' and to the sinks' tables.
pub fn throughput_with(
    libraries: &Path,
    (sources, source_extra): (usize, &str),
    (sinks, sink_extra): (usize, &str),
    count: u64,
) -> Result<f64> {
    let total = count * sources as u64;
    let mut nodes = String::new();
    for s in 0..sources {
        nodes.push_str(&source(
            &format!("source{s}"),
            "bench-flood",
            count,
            source_extra,
        ));
    }
    for s in 0..sinks {
        nodes.push_str(&sink(
            &format!("sink{s}"),
            "bench-flood",
            total,
            total + 1,
            sink_extra,
        ));
    }
    let hive = BenchHive::start(libraries, &nodes)?;
    let (took, reports) = hive.go_and_wait(sinks, Duration::from_secs(120))?;
    for report in &reports {
        if report["received"] != total {
            bail!("a sink received {} of {total}", report["received"]);
        }
    }
    Ok(total as f64 / took.as_secs_f64())
}

/// Latency percentiles in µs of `count` messages sent at `rate` per second (0: flat out);
/// `sink_extra` adds settings to the sink's table.
fn latency(libraries: &Path, count: u64, rate: u64, sink_extra: &str) -> Result<(f64, f64, f64)> {
    latency_with(libraries, count, rate, "", sink_extra)
}

/// [`latency`] with settings added to the source's table too.
pub fn latency_with(
    libraries: &Path,
    count: u64,
    rate: u64,
    source_extra: &str,
    sink_extra: &str,
) -> Result<(f64, f64, f64)> {
    let nodes = format!(
        "{}{}",
        source(
            "source",
            "bench-timed",
            count,
            &format!("timestamps = true\nrate = {rate}\n{source_extra}")
        ),
        sink(
            "sink",
            "bench-timed",
            count,
            count + 1,
            &format!("timestamps = true\n{sink_extra}")
        )
    );
    let hive = BenchHive::start(libraries, &nodes)?;
    let (_, reports) = hive.go_and_wait(1, Duration::from_secs(120))?;
    let us = |key: &str| reports[0][key].as_f64().unwrap_or(f64::NAN) / 1e3;
    Ok((us("p50_ns"), us("p99_ns"), us("p999_ns")))
}
