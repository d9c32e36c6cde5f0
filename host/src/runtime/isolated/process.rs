//! Starts and ends an isolated node's process: one [`Process`] is one running child, from the
//! host's side.
//!
//! Contract: [`Process::launch`] makes the process's folder (`0700`, inside the host's scratch
//! folder), connects to the child through a socket pair whose other end is the child's stdin
//! (nothing else can connect in its place), starts the child in a process group of its own
//! (Ctrl-C is for the host), starts its reader thread, sends it what to run and waits at most
//! [`BUILD_DEADLINE`] for it to build the node. No process outlives its [`Process`]: dropping
//! one kills the child if it still runs and removes its folder. [`describe`] says how a
//! process ended, for people.

use super::overlay::Overlay;
use super::reader::{Acks, Event, Relay, ToPump, read_process};
use super::wire::{self, Encoder};
use super::{BuiltReport, CHILD_COMMAND, ChildSpec};
use crate::runtime::{Environment, NodeShared, NodeSpec, SERVICE_STOP_DEADLINE};
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a node's process has to load the library and build the node.
const BUILD_DEADLINE: Duration = Duration::from_secs(60);

/// One running process of a node, from the host's side.
pub(super) struct Process {
    pub(super) child: Child,
    /// The socket's writing end; a thread of its own reads the other way.
    pub(super) stream: UnixStream,
    pub(super) events: Receiver<Event>,
    /// What its reader heard of its progress.
    pub(super) acks: Arc<Acks>,
    pub(super) started: Instant,
    /// The process's folder (0700): its copy of the library.
    pub(super) folder: PathBuf,
}

impl Drop for Process {
    /// No process outlives its handle, and its folder goes with it.
    fn drop(&mut self) {
        self.reap(Duration::ZERO);
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

impl Process {
    /// Starts a process for `spec`, waits for it to build the node, and returns it with what
    /// it built (or why it could not).
    pub(super) fn launch(
        spec: &NodeSpec,
        env: &Environment,
        shared: &Arc<NodeShared>,
        relay: &Relay,
        overlay: &Arc<Mutex<Overlay>>,
    ) -> Result<(Self, BuiltReport), String> {
        static PROCESSES: AtomicU64 = AtomicU64::new(0);
        let folder = env.scratch.join(format!(
            "node-{}",
            PROCESSES.fetch_add(1, Ordering::Relaxed)
        ));
        let what = |e: io::Error| {
            format!(
                "cannot start a process for isolated node `{}`: {e}",
                spec.name
            )
        };
        // Only this user may enter the folder: the node's library copy is written there.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)
            .map_err(what)?;
        // The connection is a socket pair: the process gets its end as its stdin, so nothing
        // else on the machine can reach it (no path to connect to, nothing to accept).
        let (stream, theirs) = UnixStream::pair().map_err(what)?;
        // A process that does not empty its socket makes a write wait at most this long, so
        // that the node's thread still hears control (see `Pump::flush`).
        stream
            .set_write_timeout(Some(Duration::from_millis(20)))
            .map_err(what)?;
        let child = Command::new(&env.child_exe)
            .arg(CHILD_COMMAND)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            // Its own process group: Ctrl-C in the terminal is for the host, which stops it.
            .process_group(0)
            .spawn();
        // The `Command` (holding the process's end) is gone: when the process dies, its end
        // closes and the reader sees the socket close.
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&folder);
                return Err(format!(
                    "cannot start {} for isolated node `{}`: {e}",
                    env.child_exe.display(),
                    spec.name
                ));
            }
        };
        let (sender, events) = crossbeam_channel::unbounded();
        let acks = Arc::new(Acks::default());
        // From here on, dropping `process` kills the child and removes its folder.
        let mut process = Process {
            child,
            stream,
            events,
            acks: acks.clone(),
            started: Instant::now(),
            folder: folder.clone(),
        };
        let reading = process.stream.try_clone().map_err(what)?;
        let reader_shared = shared.clone();
        let max_frame = wire::max_frame(env.max_payload_bytes);
        let relay = relay.clone();
        let overlay = overlay.clone();
        std::thread::Builder::new()
            .name(format!("hm:{}:read", spec.name))
            .spawn(move || {
                let to_pump = ToPump {
                    events: sender,
                    acks,
                    overlay,
                };
                read_process(reading, max_frame, &reader_shared, &to_pump, &relay);
            })
            .map_err(what)?;
        let init = serde_json::to_string(&ChildSpec::new(spec, env, folder)).expect("plain data");
        let mut out = Encoder::default();
        out.frame(wire::INIT).raw(init.as_bytes()).end();
        if out.write_all(&mut process.stream).is_err() {
            return Err(process.died_while("starting"));
        }
        match process.events.recv_timeout(BUILD_DEADLINE) {
            Ok(Event::Built(report)) => Ok((process, *report)),
            Ok(Event::BuildFailed(error)) => {
                process.stop();
                Err(error)
            }
            Ok(_) | Err(_) => {
                let how = process.died_while("building the node");
                Err(how)
            }
        }
    }

    /// Kills the process if it still runs; says how it ended, for an error.
    pub(super) fn died_while(mut self, doing: &str) -> String {
        let status = self.reap(Duration::from_millis(100));
        format!(
            "the node's process ended while {doing}: {}",
            describe(status)
        )
    }

    pub(super) fn start(&mut self, state: Option<&str>) {
        let mut out = Encoder::default();
        out.frame(wire::START).opt_str(state).end();
        // A process that died is seen through its socket's reader.
        let _ = out.write_all(&mut self.stream);
    }

    /// Tells the process to stop, gives it until the services' deadline, then kills it.
    pub(super) fn stop(mut self) {
        let mut out = Encoder::default();
        out.frame(wire::STOP).end();
        let _ = out.write_all(&mut self.stream);
        self.reap(SERVICE_STOP_DEADLINE);
    }

    /// Waits up to `patience` for the process to exit, then kills it; returns its status.
    pub(super) fn reap(&mut self, patience: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    return self.child.wait().ok();
                }
                Err(_) => return None,
            }
        }
    }
}

/// How a process ended, for people.
pub(super) fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "its status is unknown".into();
    };
    if let Some(signal) = status.signal() {
        let name = match signal {
            4 => " (SIGILL)",
            6 => " (SIGABRT: abort)",
            7 => " (SIGBUS)",
            8 => " (SIGFPE)",
            9 => " (SIGKILL: killed, perhaps for running out of memory)",
            11 => " (SIGSEGV: invalid memory access)",
            15 => " (SIGTERM)",
            _ => "",
        };
        return format!("killed by signal {signal}{name}");
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_are_described_by_signal_name() {
        let segv = ExitStatus::from_raw(11);
        assert_eq!(
            describe(Some(segv)),
            "killed by signal 11 (SIGSEGV: invalid memory access)"
        );
        let exit3 = ExitStatus::from_raw(3 << 8);
        assert_eq!(describe(Some(exit3)), "exited with status 3");
        assert_eq!(describe(None), "its status is unknown");
    }
}
