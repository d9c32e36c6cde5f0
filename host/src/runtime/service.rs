//! Service threads: each runs one service's callback in a loop until it stops.

use super::state::NodeShared;
use super::stats::ServiceStats;
use hivemind::abi::{Flow, LogLevel, ServiceBox};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running service's thread.
pub(super) struct ServiceThread {
    name: String,
    thread: JoinHandle<()>,
}

impl ServiceThread {
    /// Starts stepping the callback of service `name` on a new thread.
    pub(super) fn spawn(
        name: String,
        runner: ServiceBox,
        stats: Arc<ServiceStats>,
        shared: Arc<NodeShared>,
    ) -> Self {
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hm:{}:{name}", shared.name))
            .spawn(move || run(&thread_name, runner, &stats, &shared))
            .expect("the OS refused to start a thread");
        Self { name, thread }
    }
}

/// The first wait before a failed service runs again; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two runs of a failing service.
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);

fn run(name: &str, mut runner: ServiceBox, stats: &ServiceStats, shared: &NodeShared) {
    stats.set_running(true);
    let mut backoff = FIRST_BACKOFF;
    while !shared.is_stopping() {
        let outcome = stats.busy.around(|| runner.step().into_result());
        match outcome {
            Ok(Flow::Stop) => {
                shared.log.write(
                    LogLevel::Info,
                    &format!("service `{name}` returned Flow::Stop and has ended"),
                );
                break;
            }
            Ok(Flow::Continue) => backoff = FIRST_BACKOFF,
            Err(error) => {
                let how = if error.panicked {
                    "panicked"
                } else {
                    "returned an error"
                };
                let restart = shared.faults.restart_services;
                let then = if restart {
                    format!("it runs again in {} ms", backoff.as_millis())
                } else {
                    "it has stopped (on_service_failure = \"stop\")".to_owned()
                };
                let line = format!("service `{name}` {how}: {}; {then}", error.message);
                shared.log.write(LogLevel::Error, &line);
                stats.set_error(line);
                if !restart || !shared.sleep(backoff) {
                    break;
                }
                stats.restarted();
                backoff = (backoff * 2).min(LONGEST_BACKOFF);
            }
        }
    }
    stats.set_running(false);
    // The callback (made by the library) is dropped here, on the thread that ran it.
    drop(runner);
}

/// Joins every thread that ends before `deadline`; returns the names of those that did not.
pub(super) fn join_all(threads: Vec<ServiceThread>, deadline: Instant) -> Vec<String> {
    while threads.iter().any(|t| !t.thread.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut stuck = Vec::new();
    for service in threads {
        if service.thread.is_finished() {
            let _ = service.thread.join();
        } else {
            stuck.push(service.name);
        }
    }
    stuck
}
