//! The mesh between two processes on loopback: what crossing to another `hm` over Zenoh adds to
//! a round trip, and how many messages a second one host carries to another, each beside the
//! same measurement within one process.
//!
//! Host B is a real `hm run` on a temporary hive with two probe nodes: `echo` answers every
//! `ping` with a `pong`, `sink` takes every `flood`. Host A is this process: the real controller
//! with the real mesh, no nodes, publishing through its bus and reading `pong` through a tap.
//! The in-process figures use the same nodes in a controller of this process, without a mesh.

use crate::peers;
use crate::stats::{Spread, percentile};
use crate::table;
use anyhow::{Context as _, Result, bail};
use hivemind_host::Controller;
use hivemind_host::{Pattern, Tap};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// One way of carrying messages, measured.
struct Figures {
    /// Round trips back to back (the next ping leaves when the pong arrives), in µs, sorted.
    round_trips_us: Vec<f64>,
    /// Round trips one per millisecond (threads are asleep when a ping leaves), in µs, sorted.
    paced_us: Vec<f64>,
    /// Messages from the publisher to the other side's node, per second.
    throughput: f64,
    /// Messages lost on the way (must be 0).
    lost: u64,
}

/// What the mesh benchmark measured.
pub struct Report {
    round_trips: usize,
    flood: u64,
    in_process: Figures,
    mesh: Figures,
    /// Raw Zenoh between two processes, the same flood and round trips: throughput trials and
    /// back-to-back round-trip p50 and p99 in µs.
    zenoh: (Spread, f64, f64),
}

/// The nodes both setups run: an echo and a sink that parses and counts (the JSON work the
/// raw Zenoh peer does on its side).
const NODES: &str = "[nodes.echo]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"ping\"]\necho_to = \"pong\"\n\n\
                     [nodes.sink]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"sink\"\npattern = \"flood\"\ncount = 0\n";

/// Runs the mesh benchmark with the release `hm` and probe library in `libraries`.
pub fn run(libraries: &Path, quick: bool) -> Result<Report> {
    let round_trips = if quick { 500 } else { 5000 };
    let flood: u64 = if quick { 20_000 } else { 200_000 };
    let in_process = in_process(libraries, round_trips, flood)?;
    let mesh = across_processes(libraries, round_trips, flood)?;
    let pair = peers::ZenohPair::start(flood)?;
    let zenoh_throughput = Spread::of(3, || pair.throughput())?;
    let (z50, z99) = pair.round_trip(round_trips, false)?;
    drop(pair);
    Ok(Report {
        round_trips,
        flood,
        in_process,
        mesh,
        zenoh: (zenoh_throughput, z50, z99),
    })
}

/// A temporary hive with the probe library and `config` as its config/hive.toml.
pub(crate) fn hive(libraries: &Path, config: &str) -> Result<tempfile::TempDir> {
    crate::hive::folder(libraries, &["probe", "bench_node"], config)
}

/// The same nodes in this process.
fn in_process(libraries: &Path, round_trips: usize, flood: u64) -> Result<Figures> {
    let text = format!(
        "[hive]\nport = 0\n[messages]\nqueue_capacity = {}\n\n{NODES}",
        flood + 1
    );
    let hive = hive(libraries, &text)?;
    let controller = crate::hive::controller(hive.path())?;
    controller.start();
    let pong = controller.bus().tap(Pattern::new("pong")?, 16);
    let round_trips_us = ping_pong(&controller, &pong, round_trips, Duration::ZERO)?;
    let paced_us = ping_pong(&controller, &pong, round_trips, PACE)?;
    let sink = || {
        let node = controller
            .local_nodes()
            .into_iter()
            .find(|n| n.name == "sink");
        node.map_or((0, 0), |n| {
            (n.subscriptions[0].delivered, n.subscriptions[0].dropped)
        })
    };
    let (throughput, lost) = pour(&controller, flood, || Ok(sink()))?;
    controller.stop();
    Ok(Figures {
        round_trips_us,
        paced_us,
        throughput,
        lost,
    })
}

/// The nodes in another `hm`, reached over the mesh.
fn across_processes(libraries: &Path, round_trips: usize, flood: u64) -> Result<Figures> {
    let port = free_port()?;
    let b = hive(
        libraries,
        &format!(
            "[hive]\nname = \"bench\"\nport = 0\n[messages]\nqueue_capacity = {}\n\
             [mesh]\nenabled = true\nhost = \"b\"\nlisten = [\"tcp/127.0.0.1:{port}\"]\n\n{NODES}",
            flood + 1
        ),
    )?;
    let host_b = HmProcess::start(&libraries.join("hm"), b.path())?;
    let a = hive(
        libraries,
        &format!(
            "[hive]\nname = \"bench\"\nport = 0\n[mesh]\nenabled = true\nhost = \"a\"\n\
             connect = [\"tcp/127.0.0.1:{port}\"]\nqueue_capacity = {}\n",
            flood + 1
        ),
    )?;
    let controller = Arc::new(crate::hive::controller(a.path())?);
    controller.start_mesh()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !controller
        .snapshot()
        .nodes
        .iter()
        .any(|n| n.host == "b" && n.name == "echo")
    {
        if Instant::now() > deadline {
            bail!("host b did not appear on the mesh within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pong = controller.bus().tap(Pattern::new("pong")?, 16);
    let round_trips_us = ping_pong(&controller, &pong, round_trips, Duration::ZERO)?;
    let paced_us = ping_pong(&controller, &pong, round_trips, PACE)?;
    let (throughput, lost) = pour(&controller, flood, || {
        let sink = host_b.get_json("/api/nodes/sink")?;
        let subscription = &sink["subscriptions"][0];
        Ok((
            subscription["delivered"].as_u64().unwrap_or(0),
            subscription["dropped"].as_u64().unwrap_or(0),
        ))
    })?;
    let mesh = controller.snapshot().mesh.context("the mesh is on")?;
    controller.stop();
    Ok(Figures {
        round_trips_us,
        paced_us,
        throughput,
        lost: lost + mesh.dropped,
    })
}

/// The gap between paced round trips.
const PACE: Duration = Duration::from_millis(1);

/// `n` round trips, one at a time, `gap` apart, after a warm-up; sorted, in µs.
fn ping_pong(controller: &Controller, pong: &Tap, n: usize, gap: Duration) -> Result<Vec<f64>> {
    let warm_up = n / 10;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warm_up + n {
        let payload = i.to_string();
        let sent = Instant::now();
        controller
            .publish("ping", &payload)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let answer = pong
            .inbox
            .recv_timeout(Duration::from_secs(5))
            .context("no pong within 5 s")?;
        let took = sent.elapsed();
        if *answer.message.payload() != *payload {
            bail!("expected pong {payload}, got {}", answer.message.payload());
        }
        if i >= warm_up {
            samples.push(took.as_secs_f64() * 1e6);
        }
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

/// Publishes `n` messages on `flood` at once and waits until `sink` reports them all handled
/// (or nothing moves for 5 s); returns messages per second and how many were lost.
fn pour(
    controller: &Controller,
    n: u64,
    sink: impl Fn() -> Result<(u64, u64)>,
) -> Result<(f64, u64)> {
    let (before, _) = sink()?;
    let from: Arc<str> = "bench".into();
    let started = Instant::now();
    for i in 0..n {
        controller
            .bus()
            .publish("flood", &from, &format!("{{\"seq\":{i}}}"));
    }
    let mut last = (before, Instant::now());
    loop {
        let (delivered, dropped) = sink()?;
        let handled = delivered - before;
        if handled + dropped >= n {
            return Ok((
                handled as f64 / started.elapsed().as_secs_f64(),
                n - handled,
            ));
        }
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            return Ok((
                handled as f64 / started.elapsed().as_secs_f64(),
                n - handled,
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `hm run`, stopped on drop.
pub(crate) struct HmProcess {
    child: Child,
    address: String,
    _lines: Receiver<String>,
}

impl HmProcess {
    pub(crate) fn start(hm: &Path, hive: &Path) -> Result<Self> {
        let mut child = Command::new(hm)
            .arg("run")
            .current_dir(hive)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", hm.display()))?;
        let (sender, lines) = channel();
        let stderr = child.stderr.take().context("hm's stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .context("host b did not start serving within 30 s")?;
            if let Some(at) = line.find("http://") {
                let address = line[at + 7..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Self {
                    child,
                    address,
                    _lines: lines,
                });
            }
            if line.starts_with("error") {
                bail!("host b failed: {line}");
            }
        }
    }

    /// GETs `path` from its web server as JSON (HTTP/1.0, so the server closes when done).
    fn get_json(&self, path: &str) -> Result<Value> {
        let mut stream = std::net::TcpStream::connect(&self.address)?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.address
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .context("an HTTP answer without a body")?;
        serde_json::from_str(body).with_context(|| format!("GET {path}: {body}"))
    }
}

impl Drop for HmProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Report {
    /// Prints the table.
    pub fn print(&self) {
        let mut rows = Vec::new();
        let (zenoh, z50, z99) = &self.zenoh;
        let us = |sorted: &[f64], p: f64| format!("{:.1} µs", percentile(sorted, p));
        for (how, pick) in [
            (
                "back to back",
                (|f: &Figures| &f.round_trips_us) as fn(&Figures) -> &Vec<f64>,
            ),
            ("one per ms", |f: &Figures| &f.paced_us),
        ] {
            for p in [50.0, 99.0] {
                let raw = match (how, p) {
                    ("back to back", 50.0) => format!("{z50:.1} µs"),
                    ("back to back", _) => format!("{z99:.1} µs"),
                    _ => String::new(),
                };
                rows.push(vec![
                    format!("round trip ping → echo node → pong, {how}, p{p}"),
                    us(pick(&self.in_process), p),
                    us(pick(&self.mesh), p),
                    raw,
                ]);
            }
        }
        rows.push(vec![
            format!("{} messages poured into a node, msgs/s", self.flood),
            format!("{:.0}", self.in_process.throughput),
            format!("{:.0}", self.mesh.throughput),
            format!(
                "{:.0} [{:.0}–{:.0}]",
                zenoh.median(),
                zenoh.min(),
                zenoh.max()
            ),
        ]);
        rows.push(vec![
            "messages lost".to_owned(),
            self.in_process.lost.to_string(),
            self.mesh.lost.to_string(),
            String::new(),
        ]);
        table::print_rows(
            &[
                "mesh: two processes on loopback",
                "in one process",
                "over the mesh",
                "raw zenoh, two processes (same run)",
            ],
            &rows,
        );
        let throughput = self.mesh.throughput / zenoh.median();
        let round_trip = percentile(&self.mesh.round_trips_us, 50.0) / z50;
        println!(
            "mesh against raw zenoh: throughput {throughput:.2}× (target ≥ 0.8×: {}), round trip p50 {round_trip:.2}× (target ≤ 1.1×: {})",
            if throughput >= 0.8 { "met" } else { "MISSED" },
            if round_trip <= 1.1 { "met" } else { "MISSED" },
        );
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let figures = |f: &Figures| {
            json!({
                "round_trip_p50_us": percentile(&f.round_trips_us, 50.0),
                "round_trip_p90_us": percentile(&f.round_trips_us, 90.0),
                "round_trip_p99_us": percentile(&f.round_trips_us, 99.0),
                "paced_round_trip_p50_us": percentile(&f.paced_us, 50.0),
                "paced_round_trip_p90_us": percentile(&f.paced_us, 90.0),
                "paced_round_trip_p99_us": percentile(&f.paced_us, 99.0),
                "msgs_per_s": f.throughput,
                "lost": f.lost,
            })
        };
        json!({
            "zenoh_two_processes": {
                "msgs_per_s": self.zenoh.0.json(),
                "round_trip_p50_us": self.zenoh.1,
                "round_trip_p99_us": self.zenoh.2,
            },
            "round_trips": self.round_trips,
            "flood": self.flood,
            "in_process": figures(&self.in_process),
            "mesh": figures(&self.mesh),
        })
    }
}
