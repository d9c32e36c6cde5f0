//! Service threads: each runs one service's callback in a loop until it stops.

use super::state::{NodeShared, ServiceStats};
use hivemind::abi::{FLOW_STOP, LogLevel, ServiceDecl};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running service's thread.
pub struct ServiceThread {
    name: String,
    thread: JoinHandle<()>,
}

impl ServiceThread {
    /// Starts stepping `decl`'s callback on a new thread.
    pub fn spawn(decl: ServiceDecl, stats: Arc<ServiceStats>, shared: Arc<NodeShared>) -> Self {
        let name = decl.name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("hm:{}:{name}", shared.name))
            .spawn(move || run(decl, &stats, &shared))
            .expect("the OS refused to start a thread");
        Self { name, thread }
    }
}

fn run(decl: ServiceDecl, stats: &ServiceStats, shared: &NodeShared) {
    let ServiceDecl { name, mut runner } = decl;
    stats.set_running(true);
    while !shared.is_stopping() {
        match runner.step().into_result() {
            Ok(FLOW_STOP) => {
                shared.log.write(
                    LogLevel::Info,
                    &format!("service `{name}` returned Flow::Stop and has ended"),
                );
                break;
            }
            Ok(_) => {}
            Err(error) => {
                let how = if error.panicked {
                    "panicked"
                } else {
                    "returned an error"
                };
                let line = format!("service `{name}` {how} and has stopped: {}", error.message);
                shared.log.write(LogLevel::Error, &line);
                stats.set_error(line);
                break;
            }
        }
    }
    stats.set_running(false);
    // The callback (made by the library) is dropped here, on the thread that ran it.
    drop(runner);
}

/// Joins every thread that ends before `deadline`; returns the names of those that did not.
pub fn join_all(threads: Vec<ServiceThread>, deadline: Instant) -> Vec<String> {
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
