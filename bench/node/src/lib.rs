//! The benchmark's node, driven by its settings.
//!
//! - `role = "source"`: a service `service` that waits for a message on `go`, then sends `count`
//!   payloads (a 32-byte string, or with `payload = "4k"` a 4 KiB JSON object; with
//!   `timestamps = true` an object carrying its send time), as fast as it can or at `rate` per
//!   second, then stops.
//! - `role = "sink"`: a subscription on `pattern` that parses and counts messages (and with
//!   `timestamps`, records each one's latency); when it has `count`, it sends one report on `bench-report`.
//! - `role = "checker"`: a subscription on `pattern` that checks the `n` of each timestamped
//!   payload: in order, once each (its counters survive reloads); it reports on `bench-report`
//!   when a message arrives on `soak-report`.
//! - Sources stop when a message arrives on `bench-halt`.
//! - `role = "idle"`: `subscriptions` subscriptions that never match and, with `service`, a
//!   service that only waits: for the scale benchmark.
//! - `role = "responder"`: answers the request named `service` (default `bench/echo`) with its
//!   arguments, parsed into a JSON value and encoded again (the work the request benchmark's
//!   Zenoh queryable does): for the request benchmark.

use hivemind::prelude::*;
use hivemind::serde_json;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Deserialize)]
struct Settings {
    role: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    rate: u64,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    timestamps: bool,
    #[serde(default)]
    subscriptions: u64,
}

/// A node of the benchmark.
pub struct BenchNode {
    name: String,
    settings: Settings,
    go: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
    check: Check,
    received: u64,
    latencies_ns: Vec<u64>,
    first: Option<Instant>,
    report: Option<Service>,
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn four_kib_object() -> Value {
    let fields: serde_json::Map<String, Value> = (0..64)
        .map(|i| (format!("field_{i:02}"), json!(format!("{:0>50}", i))))
        .collect();
    Value::Object(fields)
}

impl Node for BenchNode {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        let timed_sink = settings.role == "sink" && settings.timestamps;
        let latencies_ns = Vec::with_capacity(if timed_sink {
            settings.count as usize
        } else {
            0
        });
        Ok(BenchNode {
            name: context.name().to_owned(),
            settings,
            go: Arc::new(AtomicBool::new(false)),
            halt: Arc::new(AtomicBool::new(false)),
            check: Check::default(),
            received: 0,
            latencies_ns,
            first: None,
            report: None,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        match self.settings.role.as_str() {
            "source" => self.add_source(hive),
            "sink" | "checker" => self.report = Some(hive.add_service("bench-report", idle)),
            "idle" if !self.settings.service.is_empty() => {
                hive.add_service(self.settings.service.clone(), idle);
            }
            _ => {}
        }
    }

    fn save_state(&mut self) -> Result<Option<Value>> {
        Ok(Some(serde_json::to_value(&self.check)?))
    }

    fn restore_state(&mut self, state: Value) -> Result<()> {
        self.check = serde_json::from_value(state)?;
        Ok(())
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        match self.settings.role.as_str() {
            "source" => {
                hive.add_subscription("go", |node: &mut Self, _: &Message| {
                    node.go.store(true, Ordering::Release);
                    Ok(())
                });
                hive.add_subscription("bench-halt", |node: &mut Self, _: &Message| {
                    node.halt.store(true, Ordering::Release);
                    Ok(())
                });
            }
            "checker" => {
                let pattern = self.settings.pattern.clone();
                hive.add_subscription(pattern, |node: &mut Self, message: &Message| {
                    node.check
                        .see(message.payload()["n"].as_u64().unwrap_or(u64::MAX));
                    Ok(())
                });
                hive.add_subscription("soak-report", |node: &mut Self, _: &Message| {
                    let mut report = serde_json::to_value(&node.check)?;
                    report["node"] = json!(node.name);
                    if let Some(service) = &node.report {
                        service.send(&report)?;
                    }
                    Ok(())
                });
            }
            "sink" => {
                let pattern = self.settings.pattern.clone();
                hive.add_subscription(pattern, Self::receive);
            }
            "idle" => {
                for n in 0..self.settings.subscriptions {
                    hive.add_subscription(
                        format!("idle-{n}-*"),
                        |_: &mut Self, _: &Message| Ok(()),
                    );
                }
            }
            _ => {}
        }
    }

    fn requests(&mut self, hive: &mut Requests<Self>) {
        if self.settings.role == "responder" {
            let name = if self.settings.service.is_empty() {
                "bench/echo".to_owned()
            } else {
                self.settings.service.clone()
            };
            hive.add_request(
                name,
                "its arguments, parsed and encoded again",
                |_: &mut Self, request: &Request| Ok(request.args().clone()),
            );
        }
    }
}

/// A service that only waits: it gives a sink a handle to send its report through.
fn idle(service: &Service) -> Result<Flow> {
    service.sleep_for(Duration::from_secs(3600));
    Ok(Flow::Continue)
}

/// A checker's counters: kept across reloads.
#[derive(Default, serde::Serialize, Deserialize)]
struct Check {
    received: u64,
    next: Option<u64>,
    gaps: u64,
    missing: u64,
    duplicates_or_reordered: u64,
}

impl Check {
    fn see(&mut self, n: u64) {
        self.received += 1;
        match self.next {
            Some(next) if n < next => self.duplicates_or_reordered += 1,
            Some(next) if n > next => {
                self.gaps += 1;
                self.missing += n - next;
            }
            _ => {}
        }
        self.next = Some(self.next.map_or(n + 1, |next| next.max(n + 1)));
    }
}

impl BenchNode {
    fn add_source(&mut self, hive: &mut Services) {
        let go = self.go.clone();
        let halt = self.halt.clone();
        let count = self.settings.count;
        let timestamps = self.settings.timestamps;
        let interval = (self.settings.rate > 0)
            .then(|| Duration::from_nanos(1_000_000_000 / self.settings.rate));
        let small = "x".repeat(32);
        let large = four_kib_object();
        let big = self.settings.payload == "4k";
        let mut sent = 0u64;
        hive.add_service(self.settings.service.clone(), move |service: &Service| {
            if !go.load(Ordering::Acquire) {
                service.sleep_for(Duration::from_millis(1));
                return Ok(Flow::Continue);
            }
            let started = Instant::now();
            while sent < count && !halt.load(Ordering::Relaxed) {
                if timestamps {
                    service.send(&json!({ "t": unix_nanos(), "n": sent }))?;
                } else if big {
                    service.send(&large)?;
                } else {
                    service.send(&small)?;
                }
                sent += 1;
                if let Some(interval) = interval {
                    let next = started + interval * sent as u32;
                    let now = Instant::now();
                    if next > now && !service.sleep_for(next - now) {
                        break;
                    }
                }
            }
            Ok(Flow::Stop)
        });
    }

    fn receive(&mut self, message: &Message) -> Result<()> {
        let first = *self.first.get_or_insert_with(Instant::now);
        if self.settings.timestamps {
            let sent = message.payload()["t"].as_u64().unwrap_or(0);
            self.latencies_ns.push(unix_nanos().saturating_sub(sent));
        } else {
            // A node reads what it receives: the payload is parsed, as the peers measured
            // beside the host parse theirs.
            std::hint::black_box(message.payload());
        }
        self.received += 1;
        if self.received == self.settings.count {
            let mut latencies = std::mem::take(&mut self.latencies_ns);
            latencies.sort_unstable();
            let at = |p: f64| -> u64 {
                if latencies.is_empty() {
                    return 0;
                }
                latencies[((p / 100.0) * (latencies.len() - 1) as f64).round() as usize]
            };
            let report = json!({
                "received": self.received,
                "first_to_last_ns": first.elapsed().as_nanos() as u64,
                "p50_ns": at(50.0),
                "p99_ns": at(99.0),
                "p999_ns": at(99.9),
            });
            if let Some(service) = &self.report {
                service.send(&report)?;
            }
        }
        Ok(())
    }
}

hivemind::export_node!(BenchNode);
