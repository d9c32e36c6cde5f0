//! Isolation benchmark: what `isolate = true` costs against the same nodes in process,
//! measured in the same run: 1→1 throughput and paced latency with the sink, the source or
//! both in processes of their own, and the time to start a node either way.
//!
//! Isolated nodes run in processes of this same program (`hivemind-bench __isolated`,
//! handled first thing in `main`), exactly as `hm` runs them.

use crate::messages::{self, BenchHive};
use crate::peers;
use crate::table;
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

const ISOLATED: &str = "isolate = true";

/// One figure in process and isolated.
struct Row {
    name: &'static str,
    key: &'static str,
    in_process: f64,
    isolated: f64,
    unit: &'static str,
}

/// What the isolation benchmark measured.
pub struct Report {
    rows: Vec<Row>,
    /// A Unix socket between two threads, same run: round trip p50 and p99 (µs) and a
    /// pipelined stream's messages per second, with the same JSON work.
    socket: (f64, f64, f64),
}

/// Runs the isolation benchmark with the release libraries in `libraries`.
pub fn run(libraries: &Path, quick: bool) -> Result<Report> {
    let n: u64 = if quick { 50_000 } else { 500_000 };
    let in_process = messages::throughput_with(libraries, (1, ""), (1, ""), n)?;
    let mut rows = vec![
        Row {
            name: "1→1 throughput, sink isolated",
            key: "isolated_sink_1to1_msgs_per_s",
            in_process,
            isolated: messages::throughput_with(libraries, (1, ""), (1, ISOLATED), n)?,
            unit: "msg/s",
        },
        Row {
            name: "1→1 throughput, source isolated",
            key: "isolated_source_1to1_msgs_per_s",
            in_process,
            isolated: messages::throughput_with(libraries, (1, ISOLATED), (1, ""), n)?,
            unit: "msg/s",
        },
        Row {
            name: "1→1 throughput, both isolated",
            key: "isolated_both_1to1_msgs_per_s",
            in_process,
            isolated: messages::throughput_with(libraries, (1, ISOLATED), (1, ISOLATED), n)?,
            unit: "msg/s",
        },
    ];
    let paced = if quick { 5_000 } else { 20_000 };
    let (p50, p99, _) = messages::latency_with(libraries, paced, 10_000, "", "")?;
    let (i50, i99, _) = messages::latency_with(libraries, paced, 10_000, "", ISOLATED)?;
    let (b50, b99, _) = messages::latency_with(libraries, paced, 10_000, ISOLATED, ISOLATED)?;
    rows.extend([
        latency_row(
            "latency p50, 10,000 msg/s, sink isolated",
            "isolated_sink_latency_p50_us",
            p50,
            i50,
        ),
        latency_row(
            "latency p99, 10,000 msg/s, sink isolated",
            "isolated_sink_latency_p99_us",
            p99,
            i99,
        ),
        latency_row(
            "latency p50, 10,000 msg/s, both isolated",
            "isolated_both_latency_p50_us",
            p50,
            b50,
        ),
        latency_row(
            "latency p99, 10,000 msg/s, both isolated",
            "isolated_both_latency_p99_us",
            p99,
            b99,
        ),
    ]);
    rows.push(Row {
        name: "start a hive of one node (load, build, first report)",
        key: "isolated_start_ms",
        in_process: start_ms(libraries, "")?,
        isolated: start_ms(libraries, ISOLATED)?,
        unit: "ms",
    });
    let (r50, r99) = peers::unix_ping_pong(paced as usize)?;
    let stream = peers::unix_stream(n * 4)?;
    Ok(Report {
        rows,
        socket: (r50, r99, stream),
    })
}

fn latency_row(name: &'static str, key: &'static str, in_process: f64, isolated: f64) -> Row {
    Row {
        name,
        key,
        in_process,
        isolated,
        unit: "µs",
    }
}

/// Milliseconds to start a hive whose one node counts to 1 and reports, then to see the report.
fn start_ms(libraries: &Path, extra: &str) -> Result<f64> {
    let started = Instant::now();
    let hive = BenchHive::start(
        libraries,
        &messages::sink("sink", "bench-one", 1, 16, extra),
    )?;
    hive.ask("bench-one", 1, std::time::Duration::from_secs(30))?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

impl Report {
    /// Prints the table.
    pub fn print(&self) {
        let rows: Vec<(String, String, String)> = self
            .rows
            .iter()
            .map(|row| {
                let cost = if row.unit == "msg/s" {
                    format!("{:.2}× the throughput", row.isolated / row.in_process)
                } else {
                    format!("+{}", format_value(row.isolated - row.in_process, row.unit))
                };
                (
                    row.name.to_owned(),
                    format!(
                        "{} → {}",
                        format_value(row.in_process, row.unit),
                        format_value(row.isolated, row.unit)
                    ),
                    cost,
                )
            })
            .collect();
        table::print(&["isolate = true", "in process → isolated", "cost"], &rows);
        let (r50, r99, stream) = self.socket;
        println!(
            "peer, same run: Unix socket between two threads: round trip p50 {r50:.1} µs, p99 {r99:.1} µs; pipelined stream {:.2} M msg/s",
            stream / 1e6
        );
        let ratio = self.rows[0].isolated / self.rows[0].in_process;
        let added = self.rows[3].isolated - self.rows[3].in_process;
        println!(
            "isolated sink: {ratio:.2}× in process (target ≥ 0.8×: {}); added p50 latency {added:.1} µs against a socket round trip of {r50:.1} µs (target ≤: {})",
            if ratio >= 0.8 { "met" } else { "MISSED" },
            if added <= r50 { "met" } else { "MISSED" },
        );
    }

    /// The figures for the JSON report: each key isolated, and `<key>_in_process`.
    pub fn json(&self) -> Value {
        let mut json = json!({
            "unix_socket_round_trip_p50_us": self.socket.0,
            "unix_socket_round_trip_p99_us": self.socket.1,
            "unix_socket_stream_msgs_per_s": self.socket.2,
        });
        for row in &self.rows {
            json[row.key] = row.isolated.into();
            json[format!("{}_in_process", row.key)] = row.in_process.into();
        }
        json
    }
}

fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "msg/s" => format!("{:.2} M msg/s", value / 1e6),
        "µs" => format!("{value:.1} µs"),
        _ => format!("{value:.0} {unit}"),
    }
}
