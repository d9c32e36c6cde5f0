//! The isolated node's side: the process `hm __isolated` runs.
//!
//! Its connection to the host is the socket it was given as its stdin (its end of a socket
//! pair; stdin is then pointed at `/dev/null`, so a node that reads stdin cannot steal frames).
//! It loads the one node it is told to, and runs it with the host's own
//! runtime on a private bus that has no subscribers: what the node's services send leaves
//! through the bus's outlet to the host, which routes it; what the host delivers goes straight
//! into the node's queue. Log lines go to the host too, which owns the files and the terminal.
//! When the socket closes (the host stopped or died) the process exits at once.

use super::wire::{self, Encoder};
use super::{BuiltReport, ChildSpec, WINDOW};
use crate::bus::{Bus, Delivery, Indices, Message, Outlet, Overflow};
use crate::config::FaultPolicy;
use crate::loader::Libraries;
use crate::logging::Logs;
use crate::requests::{Ask, Done, Outcome as RequestOutcome, Router, Upstream};
use crate::runtime::{self, Environment, NodeQueue, NodeRuntime, NodeSpec, NodeStatus};
use anyhow::{Context as _, Result, bail};
use crossbeam_channel::{Receiver, Sender};
use hivemind::abi::LogLevel;
use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The registration generation the process's own runtime uses; deliveries the host could not
/// index for it carry another, so the runtime matches them itself.
const GENERATION: u64 = 1;

/// How often the process reports its node's status and counters.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// What the writing thread sends.
enum Outgoing {
    Publish(Message),
    Frame(Vec<u8>),
    /// Wakes the writer: deliveries arrived while it slept, and their acks are due.
    Nudge,
    /// Write what is left and end.
    Exit,
}

/// The private bus's outlet: every message the node's services send goes to the host.
struct ToHost(Sender<Outgoing>);

impl Outlet for ToHost {
    fn forward(&self, message: &Message) {
        // Blocks while the host is behind: the node's services slow down, as they would for
        // a full queue in process with `overflow = "block"`; the host applies the real policy.
        let _ = self.0.send(Outgoing::Publish(message.clone()));
    }
}

/// The process's way to the host's router: every ask of its node goes to the host (an `ASK`
/// frame), whose router always answers (an `ASKED` frame), by the ask's timeout at the latest.
struct ToHostRouter {
    outgoing: Sender<Outgoing>,
    waiting: parking_lot::Mutex<HashMap<u64, Done>>,
    tokens: AtomicU64,
}

impl Upstream for ToHostRouter {
    fn ask(&self, ask: Ask, done: Done) {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed) + 1;
        self.waiting.lock().insert(token, done);
        send_frame(&self.outgoing, wire::ASK, |f| {
            f.u64(token)
                .u64(ask.timeout.as_millis() as u64)
                .u8(u8::from(ask.all))
                .str(&ask.name)
                .str(&ask.args)
        });
    }
}

impl ToHostRouter {
    /// The host answered ask `token`.
    fn answered(&self, token: u64, outcome: RequestOutcome) {
        let done = self.waiting.lock().remove(&token);
        if let Some(done) = done {
            done(outcome);
        }
    }
}

/// Takes the connection to the host from stdin, and points stdin at `/dev/null`.
fn take_connection() -> Result<UnixStream> {
    const STARTED_BY_HM: &str = "`hm __isolated` is started by hm itself for a node with `isolate = true`, with its connection as stdin";
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context(STARTED_BY_HM)?;
    let stream = UnixStream::from(fd);
    // Not a socket (a terminal, a file): nobody to talk to.
    stream.local_addr().context(STARTED_BY_HM)?;
    let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    rustix::stdio::dup2_stdin(&null).context("cannot point stdin at /dev/null")?;
    Ok(stream)
}

/// Runs one isolated node for the host at the other end of stdin; returns when the host says
/// stop or goes away. Errors are for the host's log (it sees the process end).
pub fn child_main() -> Result<()> {
    let stream = take_connection()?;
    // The host's frames: what it starts with is small; then a delivery is at most a payload.
    let mut input = wire::Decoder::new(stream.try_clone()?, wire::max_frame(0));
    let spec: ChildSpec = match input.next()? {
        Some((wire::INIT, mut fields)) => fields.json()?,
        _ => bail!("the host did not say which node to run"),
    };
    input.set_max_frame(wire::max_frame(spec.max_payload_bytes));
    let (outgoing, to_write) = crossbeam_channel::bounded(WINDOW);
    let (lines, log_lines) = crossbeam_channel::unbounded();
    let env = Arc::new(Environment {
        logs: Logs::forwarding(lines, true),
        libraries: Libraries::new(spec.scratch.clone()),
        max_payload_bytes: spec.max_payload_bytes,
        scratch: spec.scratch.clone(),
        child_exe: std::env::current_exe().unwrap_or_default(),
        router: Arc::new(Router::new(
            spec.host.as_str().into(),
            spec.max_payload_bytes,
        )),
        store: Arc::new(crate::store::Nowhere),
    });
    let upstream = Arc::new(ToHostRouter {
        outgoing: outgoing.clone(),
        waiting: parking_lot::Mutex::new(HashMap::new()),
        tokens: AtomicU64::new(0),
    });
    env.router.set_upstream(upstream.clone());
    let router = env.router.clone();
    // Set while the writer waits for something to send: the node's thread, done with a batch,
    // wakes it to acknowledge (once per batch, never per delivery; see `Progress`).
    let writer_sleeps = Arc::new(AtomicBool::new(false));
    let processed = {
        let (sleeping, nudge) = (writer_sleeps.clone(), outgoing.clone());
        Arc::new(runtime::Progress::new(move || {
            if sleeping.swap(false, Ordering::SeqCst) {
                // A full channel wakes the writer anyway.
                let _ = nudge.try_send(Outgoing::Nudge);
            }
        }))
    };
    let queue = NodeQueue::new(WINDOW);
    let name: Arc<str> = spec.name.as_str().into();
    let node_spec = NodeSpec {
        name: name.clone(),
        library: spec.library.clone(),
        settings_json: spec.settings_json.clone(),
        queue: queue.clone(),
        generation: GENERATION,
        spin: Duration::from_micros(spec.spin_us),
        faults: FaultPolicy {
            restart_services: spec.restart_services,
            max_subscription_panics: spec.max_subscription_panics,
            stuck_after: Duration::from_millis(spec.stuck_after_ms),
        },
        host: spec.host.as_str().into(),
        isolate: false,
        processed: Some(processed.clone()),
        read: None,
    };
    let runtime = NodeRuntime::spawn(node_spec, env);
    let built = runtime.wait_built();
    let writer = Writer {
        stream,
        processed: processed.clone(),
        sleeping: writer_sleeps,
        acked: 0,
        runtime: runtime.shared(),
    };
    // The sequence number of the last delivery received: a hand-over waits until the node has
    // handled that many.
    let mut received = 0;
    // The other host named by the last delivery from the mesh: a run of messages from one
    // host shares its name.
    let mut last_host: Option<Arc<str>> = None;
    let writing = writer.spawn(to_write, log_lines);
    let bus = Arc::new(Bus::new());
    let topics = match built {
        Ok(built) => {
            let report = BuiltReport {
                services: built.services.iter().map(|s| s.to_string()).collect(),
                patterns: built
                    .subscriptions
                    .iter()
                    .map(|s| s.pattern.as_str().to_owned())
                    .collect(),
                library: built.library,
                took_us: built.took.as_micros() as u64,
                types: built.types,
                requests: built.requests.clone(),
            };
            send_frame(&outgoing, wire::BUILT, |f| {
                f.raw(&serde_json::to_vec(&report).expect("plain data"))
            });
            bus.set_outlet(Some(Box::new(ToHost(outgoing.clone()))));
            // No subscriptions here: the host routes every message, the node's own included.
            bus.register(
                &name,
                queue.sender.clone(),
                Vec::new(),
                &built.services,
                GENERATION,
                Overflow::Drop,
            )
        }
        Err(error) => {
            send_frame(&outgoing, wire::BUILD_FAILED, |f| f.str(&error.to_string()));
            let _ = outgoing.send(Outgoing::Exit);
            let _ = writing.join();
            return Ok(());
        }
    };
    let mut topics = Some(topics);
    let mut runtime = runtime;
    loop {
        let Some((tag, mut fields)) = input.next()? else {
            // The host is gone: nobody is left to deliver to or to report to.
            std::process::exit(0);
        };
        match tag {
            wire::DELIVER => {
                let seq = fields.u64()?;
                let count = fields.u8()?;
                // Read straight into the inline indices: no allocation per message.
                let indices: Indices = match count {
                    u8::MAX => std::iter::empty().collect(),
                    count => (0..count)
                        .map(|_| fields.u32())
                        .collect::<io::Result<_>>()?,
                };
                let service = fields.str()?;
                let node = fields.str()?;
                let host = fields
                    .opt_str()?
                    .map(|host| same_or_new(&mut last_host, host));
                let message = Message::new(service, node, fields.str()?, host);
                let delivery = Delivery {
                    message,
                    subscriptions: indices,
                    generation: if count == u8::MAX { 0 } else { GENERATION },
                };
                if queue.sender.send(delivery).is_err() {
                    break;
                }
                received = seq;
            }
            wire::REQUEST => {
                let id = fields.u64()?;
                let timeout = Duration::from_millis(fields.u64()?);
                let ask = Ask {
                    name: fields.str()?.to_owned(),
                    from_node: fields.str()?.into(),
                    from_host: fields.str()?.into(),
                    args: fields.str()?.to_owned(),
                    timeout,
                    all: false,
                };
                let answers = outgoing.clone();
                // To this process's own node (registered with its router when it started).
                router.route(ask, move |outcome| {
                    let part = match outcome {
                        Ok(parts) => parts.into_iter().next(),
                        Err(failure) => Some(Err(failure)),
                    };
                    if let Some(part) = part {
                        let json = serde_json::to_vec(&part).expect("plain data");
                        send_frame(&answers, wire::ANSWER, |f| f.u64(id).raw(&json));
                    }
                });
            }
            wire::ASKED => {
                let token = fields.u64()?;
                let outcome: RequestOutcome = fields.json()?;
                upstream.answered(token, outcome);
            }
            wire::START => {
                let state = fields.opt_str()?.map(str::to_owned);
                runtime.start(topics.take().unwrap_or_default(), state, Vec::new());
            }
            wire::HAND_OVER => {
                // Everything the host sent is handled before the state is saved, so the next
                // instance (in process or not) gets it all.
                while processed.handled() < received
                    && matches!(
                        runtime.snapshot().status,
                        NodeStatus::Running | NodeStatus::Stuck
                    )
                {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let state = runtime.hand_over();
                send_frame(&outgoing, wire::STATE, |f| f.opt_str(state.as_deref()));
                break;
            }
            wire::STOP => {
                runtime.request_stop();
                break;
            }
            other => bail!("the host sent an unknown frame ({other})"),
        }
    }
    runtime.request_stop();
    runtime.join(Instant::now() + Duration::from_millis(500));
    bus.set_outlet(None);
    let _ = outgoing.send(Outgoing::Exit);
    let _ = writing.join();
    // A service that did not stop still runs the library's code: leave without unwinding.
    std::process::exit(0);
}

fn send_frame(
    out: &Sender<Outgoing>,
    tag: u8,
    fill: impl FnOnce(wire::Frame<'_>) -> wire::Frame<'_>,
) {
    let mut encoder = Encoder::default();
    fill(encoder.frame(tag)).end();
    let _ = out.send(Outgoing::Frame(encoder.bytes().to_vec()));
}

/// The thread that owns the socket's writing end: it sends what the node's services publish,
/// its log lines, how far it has handled its deliveries, and its reports.
struct Writer {
    /// Frames are gathered in an [`Encoder`] and written with one call per round.
    stream: UnixStream,
    /// How far the node's thread has got, rung after each batch.
    processed: Arc<runtime::Progress>,
    /// Set while the writer waits for something to send: the node's thread, done with a batch,
    /// must wake it ([`Outgoing::Nudge`]) so that the host hears how far it went.
    sleeping: Arc<AtomicBool>,
    acked: u64,
    runtime: Arc<crate::runtime::NodeShared>,
}

impl Writer {
    fn spawn(
        mut self,
        outgoing: Receiver<Outgoing>,
        lines: Receiver<(LogLevel, String)>,
    ) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("hm:isolated:write".into())
            .spawn(move || {
                // The socket closing means the host is gone; the reader sees it and exits.
                let _ = self.run(&outgoing, &lines);
            })
            .expect("the OS refused to start a thread")
    }

    fn run(
        &mut self,
        outgoing: &Receiver<Outgoing>,
        lines: &Receiver<(LogLevel, String)>,
    ) -> std::io::Result<()> {
        let mut out = Encoder::default();
        let mut next_report = Instant::now();
        loop {
            // Wait for something to send, a batch handled or the next report. The sleep is
            // announced, then progress looked at: either this sees the node's last batch or the
            // node's thread sees the announcement and nudges (both sides SeqCst), so no
            // acknowledgement is left unsent, and none is polled for.
            self.sleeping.store(true, Ordering::SeqCst);
            let patience = if self.acked != self.processed.handled() {
                self.sleeping.store(false, Ordering::SeqCst);
                Duration::ZERO
            } else {
                next_report.saturating_duration_since(Instant::now())
            };
            let mut exit = false;
            crossbeam_channel::select! {
                recv(outgoing) -> item => exit = self.encode(&mut out, item.unwrap_or(Outgoing::Exit)),
                recv(lines) -> line => if let Ok((level, text)) = line {
                    encode_log(&mut out, level, &text);
                },
                default(patience) => {}
            }
            self.sleeping.store(false, Ordering::SeqCst);
            // Take whatever else is ready without waiting, up to a batch.
            while !exit && out.len() < super::WRITE_BATCH {
                match outgoing.try_recv() {
                    Ok(item) => exit = self.encode(&mut out, item),
                    Err(_) => break,
                }
            }
            for (level, text) in lines.try_iter() {
                encode_log(&mut out, level, &text);
            }
            self.ack(&mut out);
            if Instant::now() >= next_report {
                self.report(&mut out);
                next_report = Instant::now() + REPORT_EVERY;
            }
            if !out.is_empty() {
                out.write_all(&mut self.stream)?;
            }
            if exit {
                self.report(&mut out);
                return out.write_all(&mut self.stream);
            }
        }
    }

    /// Encodes one outgoing item; returns whether it was the last.
    fn encode(&mut self, out: &mut Encoder, item: Outgoing) -> bool {
        match item {
            Outgoing::Publish(message) => {
                out.frame(wire::PUBLISH)
                    .str(message.service())
                    .str(message.payload())
                    .end();
            }
            Outgoing::Frame(bytes) => {
                // Before a state or a last word, say how far the deliveries went.
                self.ack(out);
                out.append(&bytes);
            }
            Outgoing::Nudge => {}
            Outgoing::Exit => {
                self.ack(out);
                return true;
            }
        }
        false
    }

    fn ack(&mut self, out: &mut Encoder) {
        let processed = self.processed.handled();
        if processed != self.acked {
            self.acked = processed;
            out.frame(wire::ACK).u64(processed).end();
        }
    }

    fn report(&mut self, out: &mut Encoder) {
        let mut snapshot = self.runtime.snapshot();
        // The host keeps the payloads itself (it forwards them); a report stays small.
        for service in &mut snapshot.services {
            service.last_payload = None;
        }
        let json = serde_json::to_vec(&snapshot).expect("plain data");
        out.frame(wire::REPORT).raw(&json).end();
    }
}

/// `last` if it holds `name`, else `name` newly shared and kept in `last`. (A message's own
/// names and payload are copied once, into its one allocation: see `bus::Message`.)
fn same_or_new(last: &mut Option<Arc<str>>, name: &str) -> Arc<str> {
    match last {
        Some(kept) if **kept == *name => kept.clone(),
        _ => last.insert(Arc::from(name)).clone(),
    }
}

fn encode_log(out: &mut Encoder, level: LogLevel, text: &str) {
    out.frame(wire::LOG).u8(level as u8).str(text).end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_seen_last_is_shared_not_copied() {
        let mut last = None;
        let first = same_or_new(&mut last, "manor");
        let again = same_or_new(&mut last, "manor");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same name twice is one allocation"
        );
        let other = same_or_new(&mut last, "tower");
        assert_eq!(&*other, "tower");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(&*same_or_new(&mut last, "manor"), "manor");
    }
}
