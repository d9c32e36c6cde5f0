//! Message benchmarks: throughput (1→1 small and 4 KiB, 1→16 fan-out, 16→1 fan-in) and
//! latency (paced and at saturation) through the real host and real node libraries, each beside
//! the same pattern through a plain crossbeam channel measured in the same run.

use crate::stats::Spread;
use crate::{baseline, hive, peers};
use anyhow::{Context as _, Result, bail};
use hivemind_host::Controller;
use hivemind_host::{Pattern, Tap};
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
            reports.push(serde_json::from_str(delivery.message.payload())?);
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

/// The largest `queue_capacity` a hive's config accepts.
const MAX_QUEUE: u64 = 1 << 20;

/// A sink's node table. A queue holds the whole burst when `capacity` fits the config's bound
/// (nothing waits, nothing is dropped); past it the queue is the bound and the source waits
/// for room (`overflow = "block"`), so that no message is dropped either way.
pub fn sink(name: &str, pattern: &str, count: u64, capacity: u64, extra: &str) -> String {
    let room = if capacity > MAX_QUEUE {
        format!("queue_capacity = {MAX_QUEUE}\noverflow = \"block\"\noverflow_wait_ms = 60000")
    } else {
        format!("queue_capacity = {capacity}")
    };
    format!(
        "[nodes.{name}]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"sink\"\npattern = \"{pattern}\"\ncount = {count}\n{room}\n{extra}\n"
    )
}

/// One figure: hivemind's trials beside the peers' trials from the same run.
pub struct Figure {
    /// What was measured.
    pub name: &'static str,
    /// The JSON report's key for it.
    pub key: &'static str,
    /// The host's figure (the median of its trials).
    pub hive: f64,
    /// The host's trials.
    pub spread: Spread,
    /// The first peer's median (the chart's second bar).
    pub baseline: Option<f64>,
    /// The peers, each with its trials.
    pub peers: Vec<(&'static str, Spread)>,
    /// The unit.
    pub unit: &'static str,
    /// The target, in words.
    pub target: &'static str,
    /// Whether the target holds on the medians (`None`: no target).
    pub met: Option<bool>,
}

impl Figure {
    fn new(
        name: &'static str,
        key: &'static str,
        unit: &'static str,
        spread: Spread,
        peers: Vec<(&'static str, Spread)>,
    ) -> Self {
        Self {
            name,
            key,
            hive: spread.median(),
            baseline: peers.first().map(|(_, p)| p.median()),
            spread,
            peers,
            unit,
            target: "",
            met: None,
        }
    }

    /// The median of peer `name`.
    pub fn peer(&self, name: &str) -> f64 {
        self.peers
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, s)| s.median())
    }

    fn target(mut self, target: &'static str, met: impl FnOnce(&Self) -> bool) -> Self {
        self.met = Some(met(&self));
        self.target = target;
        self
    }

    /// Whether every trial of the host and of its peers stays within 1.5× of the others.
    pub fn stable(&self) -> bool {
        self.spread.stable() && self.peers.iter().all(|(_, s)| s.stable())
    }
}

/// The peer names used in the figures.
pub const ZENOH: &str = "zenoh, one session";
/// The plain channel, doing the same JSON work.
pub const CHANNEL: &str = "plain channel";
/// The node loop's wait before issue 13, on a plain channel.
pub const OLD_WAIT: &str = "spin-yield-select";

fn push_switches(
    figures: &mut Vec<Figure>,
    name: &'static str,
    key: &'static str,
    switches: &[(f64, f64)],
) {
    figures.push(Figure::new(
        name,
        key,
        "per message",
        Spread {
            samples: switches.iter().map(|s| s.0).collect(),
        },
        vec![],
    ));
}

/// Runs every message benchmark, `trials` times each.
pub fn run(libraries: &Path, quick: bool) -> Result<Vec<Figure>> {
    let trials = 3;
    let n: u64 = if quick { 200_000 } else { 2_000_000 };
    let small = Value::String(peers::small());
    let large = peers::four_kib();
    let mut figures = Vec::new();

    let mut switches = Vec::new();
    let hive = Spread::of(trials, || {
        let rate = throughput(libraries, 1, 1, n, "");
        switches.push(last_switches());
        rate
    })?;
    push_switches(
        &mut figures,
        "1→1: sink thread's sleeps (voluntary switches) per message",
        "switches_1to1_per_msg",
        &switches,
    );
    let zenoh = Spread::of(trials, || peers::zenoh_one_session(n, 1))?;
    let channel = Spread::of(trials, || Ok(peers::channel(n, &small)))?;
    figures.push(
        Figure::new(
            "1→1 throughput, 32-byte string",
            "throughput_1to1_msgs_per_s",
            "msg/s",
            hive,
            vec![(ZENOH, zenoh), (CHANNEL, channel)],
        )
        .target("≥ 2× zenoh, ≥ ⅓ channel", |f| {
            f.hive >= 2.0 * f.peer(ZENOH) && f.hive >= f.peer(CHANNEL) / 3.0
        }),
    );

    let big_n = n / 10;
    let hive = Spread::of(trials, || {
        throughput(libraries, 1, 1, big_n, "payload = \"4k\"")
    })?;
    let channel = Spread::of(trials, || Ok(peers::channel(big_n, &large)))?;
    figures.push(
        Figure::new(
            "1→1 throughput, 4 KiB JSON object",
            "throughput_1to1_4k_msgs_per_s",
            "msg/s",
            hive,
            vec![(CHANNEL, channel)],
        )
        .target("≥ ½ channel", |f| f.hive * 2.0 >= f.peer(CHANNEL)),
    );

    let fan_n = n / 4;
    let mut switches = Vec::new();
    let hive = Spread::of(trials, || {
        let rate = throughput(libraries, 1, 16, fan_n, "")? * 16.0;
        switches.push(last_switches());
        Ok(rate)
    })?;
    push_switches(
        &mut figures,
        "1→16: a sink thread's sleeps per delivery",
        "switches_1to16_per_delivery",
        &switches,
    );
    let zenoh = Spread::of(trials, || peers::zenoh_one_session(fan_n, 16))?;
    let channel = Spread::of(trials, || {
        Ok(peers::channel_fan_out(fan_n, 16, &small) * 16.0)
    })?;
    figures.push(
        Figure::new(
            "1→16 fan-out, deliveries",
            "fanout_1to16_deliveries_per_s",
            "deliveries/s",
            hive,
            vec![(ZENOH, zenoh), (CHANNEL, channel)],
        )
        .target("≥ 2× zenoh", |f| f.hive >= 2.0 * f.peer(ZENOH)),
    );

    let hive = Spread::of(trials, || throughput(libraries, 16, 1, n / 16, ""))?;
    let channel = Spread::of(trials, || Ok(baseline::fan_in(n / 16, 16)))?;
    figures.push(Figure::new(
        "16→1 fan-in (channel: raw 32 bytes, no JSON)",
        "fanin_16to1_msgs_per_s",
        "msg/s",
        hive,
        vec![(CHANNEL, channel)],
    ));

    // The hand-off alone (a channel, two threads, the JSON work): the node loop's old wait
    // beside the doorbell it has now.
    let mut rates = (Vec::new(), Vec::new());
    let mut sleeps = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (rate, per) = peers::handoff(n, peers::Waiting::Doorbell);
        rates.0.push(rate);
        sleeps.0.push(per);
        let (rate, per) = peers::handoff(n, peers::Waiting::SpinYieldSelect);
        rates.1.push(rate);
        sleeps.1.push(per);
    }
    figures.push(Figure::new(
        "hand-off alone, 1→1 + JSON: doorbell (now) vs spin-yield-select (before)",
        "handoff_doorbell_msgs_per_s",
        "msg/s",
        Spread { samples: rates.0 },
        vec![(OLD_WAIT, Spread { samples: rates.1 })],
    ));
    figures.push(Figure::new(
        "hand-off alone: consumer's sleeps per message, doorbell vs before",
        "handoff_doorbell_sleeps_per_msg",
        "per message",
        Spread { samples: sleeps.0 },
        vec![(OLD_WAIT, Spread { samples: sleeps.1 })],
    ));

    let paced = if quick { 5_000 } else { 20_000 };
    let mut hive = (Vec::new(), Vec::new());
    let mut channel = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (p50, p99, _) = latency(libraries, paced, 10_000, "")?;
        hive.0.push(p50);
        hive.1.push(p99);
        let (b50, b99) = peers::channel_latency(paced, 10_000);
        channel.0.push(b50);
        channel.1.push(b99);
    }
    let spread = |samples: Vec<f64>| Spread { samples };
    figures.push(
        Figure::new(
            "latency p50, 10,000 msg/s",
            "latency_p50_us",
            "µs",
            spread(hive.0),
            vec![(CHANNEL, spread(channel.0))],
        )
        .target("≤ channel", |f| f.hive <= f.peer(CHANNEL)),
    );
    figures.push(Figure::new(
        "latency p99, 10,000 msg/s",
        "latency_p99_us",
        "µs",
        spread(hive.1),
        vec![(CHANNEL, spread(channel.1))],
    ));
    let (s50, s99, _) = latency(libraries, n / 4, 0, "")?;
    figures.push(Figure::new(
        "latency p50, saturated (queueing: one trial)",
        "latency_saturated_p50_us",
        "µs",
        spread(vec![s50]),
        vec![],
    ));
    figures.push(Figure::new(
        "latency p99, saturated (queueing: one trial)",
        "latency_saturated_p99_us",
        "µs",
        spread(vec![s99]),
        vec![],
    ));
    Ok(figures)
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
    let before = crate::system::context_switches("hm:sink");
    let (took, reports) = hive.go_and_wait(sinks, Duration::from_secs(120))?;
    let after = crate::system::context_switches("hm:sink");
    for report in &reports {
        if report["received"] != total {
            bail!("a sink received {} of {total}", report["received"]);
        }
    }
    let deliveries = (total * sinks as u64) as f64;
    *SWITCHES.lock().expect("not poisoned") = (
        after.0.saturating_sub(before.0) as f64 / deliveries,
        after.1.saturating_sub(before.1) as f64 / deliveries,
    );
    Ok(total as f64 / took.as_secs_f64())
}

/// The sink threads' voluntary and involuntary context switches per delivery in the last
/// [`throughput_with`] run.
static SWITCHES: std::sync::Mutex<(f64, f64)> = std::sync::Mutex::new((0.0, 0.0));

/// The sink threads' (voluntary, involuntary) context switches per delivery of the last
/// throughput run: a voluntary one is a sleep and a wake-up of the node's thread.
pub fn last_switches() -> (f64, f64) {
    *SWITCHES.lock().expect("not poisoned")
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
