//! Runs a node in a process of its own (`isolate = true`), so that a segfault, an `abort()` or
//! an out-of-memory kill in its code takes down only that process.
//!
//! The process is this same program started as `hm __isolated` ([`child_main`]): it
//! loads the node's library and runs it with the host's own runtime, exactly as `hm` would in
//! process, so the node's author sees no difference. The host side ([`supervise`]) runs on the
//! node's thread in place of the in-process runtime and speaks the same control language
//! (built, start, hand over, stop), so the controller treats both kinds alike.
//!
//! Between them runs one Unix socket pair carrying [`wire`] frames; the process gets its end
//! as its stdin, so no other process can connect in its place. The host reads every frame
//! with a bound tied to `[messages] max_payload_bytes` ([`wire::max_frame`]), and checks that
//! each payload the process sends is JSON before it goes on the bus (a refused one is counted
//! as the service's `refused` and logged). The process's folder (its copy of the library) is
//! `0700`, the copy `0600`, inside the host's scratch folder ([`scratch_folder`]), which a later
//! host removes if this one was killed. Messages for the node leave the
//! node's queue (which belongs to the host, as for every node) numbered; the process says how
//! far it has handled them, and the host keeps each one until then (at most [`WINDOW`]). When
//! the process dies, the node is shown `crashed`, restarted with backoff, and what it had not
//! handled is sent again, before what waited in the queue meanwhile. A message in hand at two
//! crashes in a row is dropped as the likely cause, and logged.
//!
//! One module per job: this file starts an instance ([`supervise`]: launch, build, start) and
//! holds what both sides share (the spec a process is sent, what it reports it built, the
//! window); [`process`] starts and ends the child; [`reader`] reads the child's frames on its
//! own thread; [`pump`] moves messages and requests to the child and restarts it when it dies;
//! [`wire`] is the frame format; [`overlay`] merges what the child reports into the node's
//! view; [`scratch`] is the host's scratch folder; [`child`] is the child's side.

mod child;
mod overlay;
mod process;
mod pump;
mod reader;
mod scratch;
mod wire;

pub use child::child_main;
pub(crate) use scratch::scratch_folder;

use crate::loader::LibraryInfo;
use crate::runtime::{
    BuildError, Built, Control, Environment, NodeShared, NodeSpec, compile_subscriptions,
};
use crate::schemas::DeclaredTypes;
use crossbeam_channel::{Receiver, Sender};
use overlay::Overlay;
use parking_lot::Mutex;
use process::Process;
use pump::Pump;
use reader::Relay;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wire::Encoder;

/// The hidden `hm` subcommand an isolated node's process runs.
pub const CHILD_COMMAND: &str = "__isolated";

/// Messages sent to a node's process and not yet handled by it, at most: what a crash can make
/// the host send twice. More wait in the node's queue, under its overflow policy.
pub(crate) const WINDOW: usize = 1024;

/// Bytes of frames gathered before they are written (by the host's pump and the process alike).
const WRITE_BATCH: usize = 64 * 1024;

/// What the host tells a new process to run.
#[derive(Debug, Serialize, Deserialize)]
struct ChildSpec {
    name: String,
    library: PathBuf,
    settings_json: String,
    host: String,
    max_payload_bytes: usize,
    spin_us: u64,
    restart_services: bool,
    max_subscription_panics: u64,
    stuck_after_ms: u64,
    /// The process's own folder (for its copy of the library), removed by the host once the
    /// process has ended.
    scratch: PathBuf,
}

impl ChildSpec {
    fn new(spec: &NodeSpec, env: &Environment, scratch: PathBuf) -> Self {
        Self {
            name: spec.name.to_string(),
            library: spec.library.clone(),
            settings_json: spec.settings_json.clone(),
            host: spec.host.to_string(),
            max_payload_bytes: env.max_payload_bytes,
            spin_us: spec.spin.as_micros() as u64,
            restart_services: spec.faults.restart_services,
            max_subscription_panics: spec.faults.max_subscription_panics,
            stuck_after_ms: spec.faults.stuck_after.as_millis() as u64,
            scratch,
        }
    }
}

/// What a process built.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BuiltReport {
    services: Vec<String>,
    patterns: Vec<String>,
    library: LibraryInfo,
    took_us: u64,
    /// The payload types the node declared.
    #[serde(default)]
    types: DeclaredTypes,
    /// The request names it answers, with their help lines.
    #[serde(default)]
    requests: Vec<(String, String)>,
}

/// The isolated [`Driver`](crate::runtime::Driver): the host side of an instance of a node with
/// `isolate = true`. Takes the same control messages and gives the same results as the
/// in-process driver.
pub(crate) fn supervise(
    spec: NodeSpec,
    env: &Environment,
    shared: &Arc<NodeShared>,
    control: &Receiver<Control>,
    built: Sender<Result<Built, BuildError>>,
) {
    // What the process reports, kept here and added to every snapshot of the node.
    let overlay: Arc<Mutex<Overlay>> = Arc::default();
    let view = overlay.clone();
    shared.adjust_views(Box::new(move |snapshot| view.lock().apply(snapshot)));
    let started = Instant::now();
    let (outcomes, asked) = crossbeam_channel::unbounded();
    let relay = Relay {
        router: env.router.clone(),
        node: spec.name.clone(),
        host: spec.host.clone(),
        outcomes,
        bell: spec.queue.sender.bell().clone(),
    };
    let (process, report) = match Process::launch(&spec, env, shared, &relay, &overlay) {
        Ok(launched) => launched,
        Err(error) => {
            shared.fail(&error);
            let _ = built.send(Err(BuildError::Process(error)));
            return;
        }
    };
    let subscriptions =
        match compile_subscriptions(&spec.name, report.patterns.iter().map(String::as_str)) {
            Ok(subscriptions) => subscriptions,
            Err(error) => {
                drop(process);
                shared.fail(&error);
                let _ = built.send(Err(BuildError::Registration(error)));
                return;
            }
        };
    let mut library = report.library.clone();
    library.path.clone_from(&spec.library);
    shared.set_library(library.clone());
    let _ = built.send(Ok(Built {
        subscriptions: subscriptions.clone(),
        services: report.services.iter().map(|s| s.as_str().into()).collect(),
        library,
        took: started.elapsed(),
        types: report.types.clone(),
        requests: report.requests.clone(),
    }));
    let (topics, state, backlog) = match control.recv() {
        Ok(Control::Start {
            topics,
            state,
            backlog,
        }) => (topics, state, backlog),
        Ok(Control::HandOver(reply)) => {
            let _ = reply.send(None);
            process.stop();
            return;
        }
        Ok(Control::Stop) | Err(_) => {
            process.stop();
            return;
        }
    };
    shared.register(topics, &subscriptions);
    env.router.register(
        &spec.name,
        spec.generation,
        &report.requests,
        &spec.queue.desk,
    );
    let mut pump = Pump {
        relay,
        asked,
        in_flight: None,
        next_request: 1,
        spec: &spec,
        env,
        shared,
        overlay,
        control,
        process,
        report,
        subscriptions,
        unacked: VecDeque::with_capacity(WINDOW),
        next_seq: 1,
        outbox: Encoder::default(),
        suspect: None,
        crashes_in_a_row: 0,
    };
    pump.process.start(state.as_deref());
    shared.set_running();
    for delivery in backlog {
        pump.send(delivery);
    }
    pump.run();
    shared.set_stopped();
}
