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

mod child;
mod overlay;
mod scratch;
mod wire;

pub use child::child_main;
pub(crate) use scratch::scratch_folder;

use crate::bus::{Delivery, Doorbell, Message, Subscription};
use crate::loader::LibraryInfo;
use crate::requests::{Answer, Ask, Failure, Job, Outcome as RequestOutcome, Part, Router};
use crate::runtime::{
    BuildError, Built, Control, Environment, NodeShared, NodeSpec, SERVICE_STOP_DEADLINE,
    compile_subscriptions, count_undelivered, withdraw,
};
use crate::schemas::DeclaredTypes;
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::LogLevel;
use overlay::Overlay;
use parking_lot::Mutex;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wire::Encoder;

/// The hidden `hm` subcommand an isolated node's process runs.
pub const CHILD_COMMAND: &str = "__isolated";

/// Messages sent to a node's process and not yet handled by it, at most: what a crash can make
/// the host send twice. More wait in the node's queue, under its overflow policy.
pub(crate) const WINDOW: usize = 1024;

/// How long a node's process has to load the library and build the node.
const BUILD_DEADLINE: Duration = Duration::from_secs(60);
/// How long a process has to save its state and exit when it hands over.
const HAND_OVER_DEADLINE: Duration = Duration::from_secs(10);
/// The first wait before restarting a crashed process; it doubles with each crash in a row.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A process that ran this long before it died starts the backoff afresh.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Bytes of frames gathered before they are written.
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

/// What the process's socket brought, for the node's thread (its acknowledgements go to
/// [`Acks`] instead: they need not wake it).
enum Event {
    Built(Box<BuiltReport>),
    BuildFailed(String),
    State(Option<String>),
    /// The node failed inside the process (too many panics); the text says why.
    Failed(String),
    /// The answer to the request sent with this id.
    Answered(u64, Part),
    /// The socket closed: the process exited or died.
    Gone,
}

/// How far a process has handled its deliveries, as its reader heard it (`ACK` frames), and
/// whether the node's thread waits to hear it.
#[derive(Debug, Default)]
struct Acks {
    /// The highest sequence number acknowledged: every delivery numbered up to it was handled.
    /// Only grows within one process. Bound: a number past the last one sent (a process that
    /// lies) only acknowledges everything sent, which the host then forgets.
    upto: AtomicU64,
    /// Set by the node's thread while its window is full and it sleeps: the next ack must ring
    /// its doorbell. Otherwise an ack is only stored, and the thread takes it when it next runs.
    wanted: AtomicBool,
}

impl Acks {
    /// The reader heard `upto` (SeqCst, against the node thread's announcement in
    /// [`Pump::pump`]: one of them sees the other).
    fn heard(&self, upto: u64, bell: &Doorbell) {
        self.upto.fetch_max(upto, Ordering::SeqCst);
        if self.wanted.load(Ordering::SeqCst) && self.wanted.swap(false, Ordering::SeqCst) {
            bell.ring();
        }
    }
}

/// What the reader thread needs to carry the process's asks to the host's router; the
/// outcomes go to the node's thread (ringing its doorbell), which writes them to the process.
#[derive(Clone)]
struct Relay {
    router: Arc<Router>,
    node: Arc<str>,
    host: Arc<str>,
    outcomes: Sender<(u64, RequestOutcome)>,
    /// The node's doorbell (its queue's), rung by everything that has work for its thread.
    bell: Arc<Doorbell>,
}

impl Relay {
    fn ask(&self, token: u64, ask: Ask) {
        let outcomes = self.outcomes.clone();
        let bell = self.bell.clone();
        self.router.ask(ask, move |outcome| {
            let _ = outcomes.send((token, outcome));
            bell.ring();
        });
    }
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

/// One running process of a node, from the host's side.
struct Process {
    child: Child,
    /// The socket's writing end; a thread of its own reads the other way.
    stream: UnixStream,
    events: Receiver<Event>,
    /// What its reader heard of its progress.
    acks: Arc<Acks>,
    started: Instant,
    /// The process's folder (0700): its copy of the library.
    folder: PathBuf,
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
    fn launch(
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
    fn died_while(mut self, doing: &str) -> String {
        let status = self.reap(Duration::from_millis(100));
        format!(
            "the node's process ended while {doing}: {}",
            describe(status)
        )
    }

    fn start(&mut self, state: Option<&str>) {
        let mut out = Encoder::default();
        out.frame(wire::START).opt_str(state).end();
        // A process that died is seen through its socket's reader.
        let _ = out.write_all(&mut self.stream);
    }

    /// Tells the process to stop, gives it until the services' deadline, then kills it.
    fn stop(mut self) {
        let mut out = Encoder::default();
        out.frame(wire::STOP).end();
        let _ = out.write_all(&mut self.stream);
        self.reap(SERVICE_STOP_DEADLINE);
    }

    /// Waits up to `patience` for the process to exit, then kills it; returns its status.
    fn reap(&mut self, patience: Duration) -> Option<ExitStatus> {
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

/// Where the reader puts what is for the node's thread.
struct ToPump {
    events: Sender<Event>,
    acks: Arc<Acks>,
    /// Where the process's reports go.
    overlay: Arc<Mutex<Overlay>>,
}

/// Reads the process's frames until its socket closes: messages its services sent go on the
/// bus at once, log lines into the node's log, reports into the node's overlay,
/// acknowledgements into [`Acks`]; the rest goes to the node's thread as [`Event`]s, ringing
/// its doorbell.
fn read_process(
    stream: UnixStream,
    max_frame: usize,
    shared: &NodeShared,
    to_pump: &ToPump,
    relay: &Relay,
) {
    let mut input = wire::Decoder::new(stream, max_frame);
    let mut services: HashMap<String, u32> = HashMap::new();
    loop {
        let event = match input.next() {
            Ok(Some((tag, mut fields))) => {
                match on_frame(tag, &mut fields, shared, &mut services, relay, to_pump) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(error) => {
                        shared
                            .log
                            .write(LogLevel::Error, &format!("{error}; the process is stopped"));
                        Event::Gone
                    }
                }
            }
            Ok(None) => Event::Gone,
            Err(error) => {
                if error.kind() == io::ErrorKind::InvalidData {
                    shared
                        .log
                        .write(LogLevel::Error, &format!("{error}; the process is stopped"));
                }
                Event::Gone
            }
        };
        let gone = matches!(event, Event::Gone);
        let _ = to_pump.events.send(event);
        relay.bell.ring();
        if gone {
            return;
        }
    }
}

fn on_frame(
    tag: u8,
    fields: &mut wire::Fields<'_>,
    shared: &NodeShared,
    services: &mut HashMap<String, u32>,
    relay: &Relay,
    to_pump: &ToPump,
) -> io::Result<Option<Event>> {
    let acks = &to_pump.acks;
    Ok(Some(match tag {
        wire::ANSWER => {
            let id = fields.u64()?;
            let part: Part = fields.json()?;
            Event::Answered(id, part)
        }
        wire::ASK => {
            let token = fields.u64()?;
            let timeout = Duration::from_millis(fields.u64()?);
            let all = fields.u8()? != 0;
            let name = fields.str()?.to_owned();
            let args = fields.str()?;
            // The node's glue sends JSON only; anything else is refused like a publish.
            let ask = Ask {
                name,
                args: if serde_json::from_str::<IgnoredAny>(args).is_ok() {
                    args.to_owned()
                } else {
                    shared.log.write(
                        LogLevel::Error,
                        "the node's process asked with arguments that are not JSON; sent as null",
                    );
                    "null".to_owned()
                },
                from_node: relay.node.clone(),
                from_host: relay.host.clone(),
                timeout,
                all,
            };
            relay.ask(token, ask);
            return Ok(None);
        }
        wire::PUBLISH => {
            let service = fields.str()?;
            let payload = fields.str()?;
            match services.get(service) {
                // The node's own glue sends JSON only; a process that sends anything else is
                // not running it (or something in it writes to the socket).
                Some(&index) if serde_json::from_str::<IgnoredAny>(payload).is_err() => {
                    let before = shared.count_refused(index);
                    if (before + 1).is_power_of_two() {
                        shared.log.write(
                            LogLevel::Error,
                            &format!(
                                "the node's process sent a payload on `{service}` that is not JSON; it was not sent ({} refused so far)",
                                before + 1
                            ),
                        );
                    }
                }
                // Refusals (too large) are logged by `forward`.
                Some(&index) => drop(shared.forward(index, payload)),
                None => shared.log.write(
                    LogLevel::Error,
                    &format!(
                        "the node's process sent on `{service}`, which it never registered; dropped"
                    ),
                ),
            }
            return Ok(None);
        }
        wire::LOG => {
            let level = match fields.u8()? {
                1 => LogLevel::Error,
                2 => LogLevel::Warn,
                3 => LogLevel::Info,
                _ => LogLevel::Debug,
            };
            shared.log.write(level, fields.str()?);
            return Ok(None);
        }
        wire::ACK => {
            acks.heard(fields.u64()?, &relay.bell);
            return Ok(None);
        }
        wire::REPORT => {
            let report: crate::runtime::NodeSnapshot = fields.json()?;
            let failed = (report.status == crate::runtime::NodeStatus::Failed)
                .then(|| report.error.clone().unwrap_or_default());
            to_pump.overlay.lock().report = Some(report);
            match failed {
                Some(reason) => Event::Failed(reason),
                None => return Ok(None),
            }
        }
        wire::BUILT => {
            let report: BuiltReport = fields.json()?;
            *services = report
                .services
                .iter()
                .enumerate()
                .map(|(index, name)| (name.clone(), index as u32))
                .collect();
            Event::Built(Box::new(report))
        }
        wire::BUILD_FAILED => Event::BuildFailed(fields.str()?.to_owned()),
        wire::STATE => Event::State(fields.opt_str()?.map(str::to_owned)),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the node's process sent an unknown frame ({other})"),
            ));
        }
    }))
}

/// How a run of the pump ended.
enum Outcome {
    /// Told to hand over or stop, or the node failed: the instance is done.
    Done,
    /// The process died: restart it.
    Crashed,
}

/// Moves an isolated node's messages from its queue to its process, and restarts the process
/// when it dies.
struct Pump<'a> {
    /// Carries the process's asks to the host's router.
    relay: Relay,
    /// The outcomes of the process's asks, to write to it.
    asked: Receiver<(u64, RequestOutcome)>,
    /// The request the process holds (one at a time, so that the rest wait in the node's desk
    /// for whichever instance comes next), with its id.
    in_flight: Option<(u64, Job)>,
    next_request: u64,
    spec: &'a NodeSpec,
    env: &'a Environment,
    shared: &'a Arc<NodeShared>,
    /// What the process reports, and the counters its dead predecessors left.
    overlay: Arc<Mutex<Overlay>>,
    control: &'a Receiver<Control>,
    process: Process,
    report: BuiltReport,
    subscriptions: Vec<Subscription>,
    /// Sent and not yet handled, oldest first, with their sequence numbers.
    unacked: VecDeque<(u64, Delivery)>,
    next_seq: u64,
    outbox: Encoder,
    /// The message in hand when the process last died.
    suspect: Option<Message>,
    crashes_in_a_row: u32,
}

impl Pump<'_> {
    /// Delivers until told to hand over or stop, restarting the process each time it dies.
    fn run(&mut self) {
        loop {
            match self.pump() {
                Outcome::Done => return,
                Outcome::Crashed => {
                    if !self.restart() {
                        return;
                    }
                }
            }
        }
    }

    /// Moves messages until the instance is done or its process dies.
    ///
    /// Each round takes everything that is ready (requests, outcomes of the process's asks,
    /// deliveries while the window has room, up to [`WRITE_BATCH`] bytes), writes it with one
    /// call, and looks at the process's events and the control channel. With nothing left to
    /// do the thread parks on the node's doorbell, which the bus, the desk, the control
    /// channel, the process's reader and the router's outcomes all ring: no select, no spin, no
    /// yield. A socket the process does not empty makes the write itself wait (in the kernel,
    /// at most 20 ms at a time, so that control is heard).
    fn pump(&mut self) -> Outcome {
        let inbox = &self.spec.queue.inbox;
        let desk = &self.spec.queue.desk.inbox;
        let bell = self.spec.queue.sender.bell().clone();
        bell.attach();
        loop {
            self.forget_acked();
            self.take_request();
            self.write_asked();
            while self.unacked.len() < WINDOW && self.outbox.len() < WRITE_BATCH {
                match inbox.try_recv() {
                    Ok(delivery) => self.send(delivery),
                    Err(_) => break,
                }
            }
            if !self.outbox.is_empty() {
                // A socket that fails is seen closing by the reader, which says so.
                let _ = self.flush();
            }
            while let Ok(event) = self.process.events.try_recv() {
                if let Some(outcome) = self.on_event(event) {
                    return outcome;
                }
            }
            if let Ok(command) = self.control.try_recv()
                && let Some(outcome) = self.on_control(command)
            {
                return outcome;
            }
            if !self.outbox.is_empty() {
                continue;
            }
            let room = self.unacked.len() < WINDOW;
            if room && !inbox.is_empty() {
                continue;
            }
            // Window full: the next acknowledgement must wake this thread (announced, then
            // looked at, as the reader stores, then looks: one of the two sees the other).
            let acks = &self.process.acks;
            let oldest = self.unacked.front().map_or(u64::MAX, |(seq, _)| *seq);
            if !room {
                acks.wanted.store(true, Ordering::SeqCst);
            }
            let events = &self.process.events;
            let (control, asked) = (self.control, &self.asked);
            let holds_request = self.in_flight.is_some();
            bell.sleep_unless(|| {
                !control.is_empty()
                    || !events.is_empty()
                    || !asked.is_empty()
                    || (room && !inbox.is_empty())
                    || (!holds_request && !desk.is_empty())
                    || (!room && acks.upto.load(Ordering::SeqCst) >= oldest)
            });
            acks.wanted.store(false, Ordering::SeqCst);
        }
    }

    /// Forgets the deliveries the process has handled, as far as its reader has heard.
    fn forget_acked(&mut self) {
        let upto = self.process.acks.upto.load(Ordering::SeqCst);
        while self.unacked.front().is_some_and(|(seq, _)| *seq <= upto) {
            self.unacked.pop_front();
        }
    }

    /// Sends the next request on the desk to the process, if it holds none.
    fn take_request(&mut self) {
        if self.in_flight.is_none()
            && let Ok(job) = self.spec.queue.desk.inbox.try_recv()
        {
            self.send_request(job);
        }
    }

    fn send_request(&mut self, job: Job) {
        if job.expired() {
            return;
        }
        let id = self.next_request;
        self.next_request += 1;
        self.outbox
            .frame(wire::REQUEST)
            .u64(id)
            .u64(job.left().as_millis().max(1) as u64)
            .str(&job.name)
            .str(&job.from_node)
            .str(&job.from_host)
            .str(&job.args)
            .end();
        self.in_flight = Some((id, job));
    }

    /// Writes the outcomes of the process's asks that have come.
    fn write_asked(&mut self) {
        while let Ok((token, outcome)) = self.asked.try_recv() {
            self.encode_asked(token, &outcome);
        }
    }

    fn encode_asked(&mut self, token: u64, outcome: &RequestOutcome) {
        let json = serde_json::to_vec(outcome).expect("plain data");
        self.outbox.frame(wire::ASKED).u64(token).raw(&json).end();
    }

    /// The process answered request `id`.
    fn answered(&mut self, id: u64, part: Part) {
        match self.in_flight.take() {
            Some((held, job)) if held == id => job.answer(match part {
                Ok(Answer { json, .. }) if serde_json::from_str::<IgnoredAny>(&json).is_ok() => {
                    Ok(json)
                }
                Ok(_) => Err(Failure::new(
                    crate::requests::FailureKind::HandlerError,
                    "the node's process sent a reply that is not JSON",
                )),
                Err(failure) => Err(failure),
            }),
            other => self.in_flight = other,
        }
    }

    /// Numbers a delivery, encodes it and keeps it until the process has handled it.
    fn send(&mut self, delivery: Delivery) {
        let seq = self.next_seq;
        self.next_seq += 1;
        encode_delivery(&mut self.outbox, seq, &delivery, self.spec.generation);
        self.unacked.push_back((seq, delivery));
    }

    /// Writes what the outbox holds; a socket that takes nothing for a while is left for the
    /// next round (the process may be busy in a callback, and control must still be heard).
    fn flush(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            match self.process.stream.write(self.outbox.bytes()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outbox.consume(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Option<Outcome> {
        match event {
            Event::Failed(reason) => {
                self.shared.fail(&reason);
                self.finish(true);
                Some(Outcome::Done)
            }
            Event::Answered(id, part) => {
                self.answered(id, part);
                None
            }
            Event::Gone => Some(Outcome::Crashed),
            Event::Built(_) | Event::BuildFailed(_) | Event::State(_) => None,
        }
    }

    fn on_control(&mut self, command: Control) -> Option<Outcome> {
        match command {
            Control::Start { .. } => None,
            Control::HandOver(reply) => {
                let _ = reply.send(self.hand_over());
                Some(Outcome::Done)
            }
            Control::Stop => {
                self.finish(true);
                Some(Outcome::Done)
            }
        }
    }

    /// Lets the process finish what it was sent, save its state and exit; returns the state.
    fn hand_over(&mut self) -> Option<String> {
        let deadline = Instant::now() + HAND_OVER_DEADLINE;
        // The request in hand is finished first; the queued ones stay for the next instance.
        let _ = self.flush();
        while self.in_flight.is_some()
            && let Some(left) = deadline.checked_duration_since(Instant::now())
        {
            match self.process.events.recv_timeout(left) {
                Ok(Event::Gone) | Err(_) => break,
                Ok(event) => {
                    self.on_event(event);
                }
            }
        }
        while !self.outbox.is_empty() && Instant::now() < deadline {
            if self.flush().is_err() {
                break;
            }
        }
        self.outbox.frame(wire::HAND_OVER).end();
        let _ = self.flush();
        let mut state = None;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.process.events.recv_timeout(left) {
                Ok(Event::State(saved)) => {
                    state = saved;
                    break;
                }
                Ok(Event::Gone) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.forget_acked();
        self.finish(false);
        state
    }

    /// Ends the process (asking first) and accounts for what it will never handle: what it
    /// was sent and, when the node stops for good (`all`), what waits in the queue.
    fn finish(&mut self, all: bool) {
        let mut out = Encoder::default();
        out.frame(wire::STOP).end();
        let _ = out.write_all(&mut self.process.stream);
        self.process.reap(SERVICE_STOP_DEADLINE);
        // Its last words may say it handled more than we have heard of yet.
        while let Ok(event) = self.process.events.recv_timeout(Duration::from_millis(100)) {
            match event {
                Event::Answered(id, part) => self.answered(id, part),
                Event::Gone => break,
                _ => {}
            }
        }
        self.forget_acked();
        self.drop_unacked("were not handled before the node's process ended");
        // Unanswered, it fails its asker (`restarted`).
        self.in_flight = None;
        if all {
            withdraw(&self.relay.router, self.spec, &self.shared.log);
            count_undelivered(
                &self.spec.queue.inbox,
                &self.subscriptions,
                &self.shared.log,
            );
        }
    }

    /// Restarts a process that died, after the backoff; returns false if the instance was
    /// told to stop or hand over meanwhile.
    fn restart(&mut self) -> bool {
        // All it acknowledged before it died (its reader stored it before it saw the end).
        self.forget_acked();
        let ran = self.process.started.elapsed();
        let how = describe(self.process.reap(Duration::from_millis(500)));
        if ran >= STABLE_AFTER {
            self.crashes_in_a_row = 0;
        }
        self.outbox = Encoder::default();
        // The request in hand died with the process: its asker hears it now (`restarted`).
        self.in_flight = None;
        self.drop_suspect();
        let crashes = {
            let mut overlay = self.overlay.lock();
            overlay.carry();
            overlay.crashes += 1;
            overlay.last_crash = Some(format!("its process died ({how})"));
            overlay.crashes
        };
        self.shared.log.write(
            LogLevel::Error,
            &format!(
                "the node's process died ({how}) after {:.1} s (crash {crashes}); {} message(s) it had not handled are kept for the next process",
                ran.as_secs_f64(),
                self.unacked.len()
            ),
        );
        loop {
            self.crashes_in_a_row += 1;
            let delay = restart_delay(self.crashes_in_a_row);
            self.overlay.lock().crashed = Some(format!(
                "its process died ({how}); restarting in {} ms",
                delay.as_millis()
            ));
            self.shared.log.write(
                LogLevel::Info,
                &format!("restarting the node's process in {} ms", delay.as_millis()),
            );
            if !self.wait(delay) {
                return false;
            }
            match Process::launch(self.spec, self.env, self.shared, &self.relay, &self.overlay) {
                Ok((process, report)) => {
                    if report.services != self.report.services
                        || report.patterns != self.report.patterns
                    {
                        process.stop();
                        self.shared.fail(&format!(
                            "node `{}`: its library changed while its process was restarted (other services or subscriptions); reload it to run the new version",
                            self.spec.name
                        ));
                        self.finish(true);
                        return false;
                    }
                    self.process = process;
                    break;
                }
                Err(error) => self
                    .shared
                    .log
                    .write(LogLevel::Error, &format!("could not restart: {error}")),
            }
        }
        self.process.start(None);
        {
            let mut overlay = self.overlay.lock();
            overlay.crashed = None;
        }
        self.shared.log.write(
            LogLevel::Info,
            &format!(
                "the node's process was restarted (pid {}); it starts afresh (its state went with the old process)",
                self.process.child.id()
            ),
        );
        self.next_seq = 1;
        for (_, delivery) in std::mem::take(&mut self.unacked) {
            self.send(delivery);
        }
        true
    }

    /// The oldest unhandled message was in hand when the process died; if it was also the one
    /// in hand at the previous death, it is dropped as the likely cause.
    fn drop_suspect(&mut self) {
        let Some((_, first)) = self.unacked.front() else {
            self.suspect = None;
            return;
        };
        if !self
            .suspect
            .as_ref()
            .is_some_and(|s| s.same(&first.message))
        {
            self.suspect = Some(first.message.clone());
            return;
        }
        self.suspect = None;
        let (_, delivery) = self.unacked.pop_front().expect("looked at it");
        count_dropped(&self.subscriptions, &delivery);
        self.shared.log.write(
            LogLevel::Error,
            &format!(
                "dropped a message from `{}` (service `{}`): the node's process died twice while handling it",
                delivery.message.node(), delivery.message.service()
            ),
        );
    }

    /// Counts the messages sent and never handled as dropped, and says so (`what` happened).
    fn drop_unacked(&mut self, what: &str) {
        let lost = self.unacked.len();
        for (_, delivery) in self.unacked.drain(..) {
            count_dropped(&self.subscriptions, &delivery);
        }
        if lost > 0 {
            self.shared
                .log
                .write(LogLevel::Warn, &format!("{lost} message(s) {what}"));
        }
    }

    /// Waits `delay` while listening for control; returns false if told to stop or hand over.
    fn wait(&mut self, delay: Duration) -> bool {
        match self.control.recv_timeout(delay) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => true,
            Ok(Control::Start { .. }) => self.wait(delay),
            Ok(Control::HandOver(reply)) => {
                let _ = reply.send(None);
                self.drop_unacked("in hand when the node's process died were dropped: the node was reloaded before it restarted");
                false
            }
            Ok(Control::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.drop_unacked(
                    "in hand when the node's process died were dropped: the node stopped",
                );
                withdraw(&self.relay.router, self.spec, &self.shared.log);
                count_undelivered(
                    &self.spec.queue.inbox,
                    &self.subscriptions,
                    &self.shared.log,
                );
                false
            }
        }
    }
}

fn encode_delivery(out: &mut Encoder, seq: u64, delivery: &Delivery, generation: u64) {
    let message = &delivery.message;
    let indices = match delivery.subscriptions.get() {
        Some(indices) if delivery.generation == generation => Some(indices),
        _ => None,
    };
    let mut frame = out.frame(wire::DELIVER).u64(seq);
    frame = match indices {
        Some(indices) => indices
            .iter()
            .fold(frame.u8(indices.len() as u8), |frame, &i| frame.u32(i)),
        // The process matches the message against the node's patterns itself.
        None => frame.u8(u8::MAX),
    };
    frame
        .str(message.service())
        .str(message.node())
        .opt_str(message.host())
        .str(message.payload())
        .end();
}

fn count_dropped(subscriptions: &[Subscription], delivery: &Delivery) {
    for subscription in subscriptions
        .iter()
        .filter(|s| s.pattern.matches(delivery.message.service()))
    {
        subscription.stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The wait before the `crashes`-th restart in a row: 100 ms, doubling, at most 30 s.
fn restart_delay(crashes: u32) -> Duration {
    FIRST_RESTART_DELAY
        .saturating_mul(1 << crashes.saturating_sub(1).min(16))
        .min(MAX_RESTART_DELAY)
}

/// How a process ended, for people.
fn describe(status: Option<ExitStatus>) -> String {
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
    fn an_ack_wakes_the_node_thread_only_when_it_waits_for_one() {
        let bell = Arc::new(Doorbell::new());
        let acks = Arc::new(Acks::default());
        // Not wanted: stored, and the thread is not woken (it takes it when it next runs).
        acks.heard(5, &bell);
        assert_eq!(acks.upto.load(Ordering::SeqCst), 5);
        acks.heard(3, &bell);
        assert_eq!(
            acks.upto.load(Ordering::SeqCst),
            5,
            "an older ack never goes back"
        );
        // Wanted: the thread sleeps until an ack rings it.
        let (b, a) = (bell.clone(), acks.clone());
        let waiter = std::thread::spawn(move || {
            a.wanted.store(true, Ordering::SeqCst);
            b.sleep_unless(|| a.upto.load(Ordering::SeqCst) >= 6);
            a.upto.load(Ordering::SeqCst)
        });
        while !acks.wanted.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        acks.heard(6, &bell);
        assert_eq!(waiter.join().unwrap(), 6);
        assert!(
            !acks.wanted.load(Ordering::SeqCst),
            "the ring took the wish"
        );
    }

    #[test]
    fn restarts_back_off_from_100_ms_to_30_s() {
        let delays: Vec<u128> = (1..=11).map(|n| restart_delay(n).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }

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
