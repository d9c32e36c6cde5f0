//! The benchmark's node, driven by its settings.
//!
//! - `role = "source"`: a service `service` that waits for a message on `go`, then sends `count`
//!   payloads (a 32-byte string, or with `payload = "4k"` a 4 KiB JSON object; with
//!   `timestamps = true` an object carrying its send time), as fast as it can or at `rate` per
//!   second, then stops.
//! - `role = "sink"`: a subscription on `pattern` that counts messages (and with `timestamps`,
//!   records each one's latency); when it has `count`, it sends one report on `bench-report`.
//! - `role = "idle"`: `subscriptions` subscriptions that never match and, with `service`, a
//!   service that only waits: for the scale benchmark.

use hivemind::prelude::*;
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
    settings: Settings,
    go: Arc<AtomicBool>,
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
    let fields: hivemind::serde_json::Map<String, Value> = (0..64)
        .map(|i| (format!("field_{i:02}"), json!(format!("{:0>50}", i))))
        .collect();
    Value::Object(fields)
}

impl Node for BenchNode {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        let latencies_ns = Vec::with_capacity(if settings.timestamps {
            settings.count as usize
        } else {
            0
        });
        Ok(BenchNode {
            settings,
            go: Arc::new(AtomicBool::new(false)),
            received: 0,
            latencies_ns,
            first: None,
            report: None,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        match self.settings.role.as_str() {
            "source" => self.add_source(hive),
            "sink" => self.report = Some(hive.add_service("bench-report", idle)),
            "idle" if !self.settings.service.is_empty() => {
                hive.add_service(self.settings.service.clone(), idle);
            }
            _ => {}
        }
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        match self.settings.role.as_str() {
            "source" => hive.add_subscription("go", |node: &mut Self, _: &Message| {
                node.go.store(true, Ordering::Release);
                Ok(())
            }),
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
}

/// A service that only waits: it gives a sink a handle to send its report through.
fn idle(service: &Service) -> Result<Flow> {
    service.sleep_for(Duration::from_secs(3600));
    Ok(Flow::Continue)
}

impl BenchNode {
    fn add_source(&mut self, hive: &mut Services) {
        let go = self.go.clone();
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
            while sent < count {
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
