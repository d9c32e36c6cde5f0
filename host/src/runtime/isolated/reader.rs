//! Reads an isolated node's process: every frame its socket brings, until the socket closes.
//!
//! Contract: one reader thread per process ([`read_process`]) reads frames within the bound it
//! is given ([`wire::max_frame`]) and never writes to the process. Messages the process's
//! services send go on the bus at once (a payload that is not JSON is refused and counted as
//! the service's `refused`), log lines go into the node's log, reports into the node's
//! [`Overlay`], acknowledgements into [`Acks`] (ringing the node's doorbell only when its
//! thread waits for one), asks to the host's router through [`Relay`]; everything else reaches
//! the node's thread as an [`Event`], ringing its doorbell. An unknown or malformed frame ends
//! the reading (logged), which the node's thread sees as [`Event::Gone`].

use super::BuiltReport;
use super::overlay::Overlay;
use super::wire;
use crate::bus::Doorbell;
use crate::requests::{Ask, Outcome as RequestOutcome, Part, Router};
use crate::runtime::NodeShared;
use crossbeam_channel::Sender;
use hivemind::abi::LogLevel;
use parking_lot::Mutex;
use serde::de::IgnoredAny;
use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the process's socket brought, for the node's thread (its acknowledgements go to
/// [`Acks`] instead: they need not wake it).
pub(super) enum Event {
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
pub(super) struct Acks {
    /// The highest sequence number acknowledged: every delivery numbered up to it was handled.
    /// Only grows within one process. Bound: a number past the last one sent (a process that
    /// lies) only acknowledges everything sent, which the host then forgets.
    pub(super) upto: AtomicU64,
    /// Set by the node's thread while its window is full and it sleeps: the next ack must ring
    /// its doorbell. Otherwise an ack is only stored, and the thread takes it when it next runs.
    pub(super) wanted: AtomicBool,
}

impl Acks {
    /// The reader heard `upto` (SeqCst, against the node thread's announcement in
    /// [`Pump::pump`]: one of them sees the other).
    pub(super) fn heard(&self, upto: u64, bell: &Doorbell) {
        self.upto.fetch_max(upto, Ordering::SeqCst);
        if self.wanted.load(Ordering::SeqCst) && self.wanted.swap(false, Ordering::SeqCst) {
            bell.ring();
        }
    }
}

/// What the reader thread needs to carry the process's asks to the host's router; the
/// outcomes go to the node's thread (ringing its doorbell), which writes them to the process.
#[derive(Clone)]
pub(super) struct Relay {
    pub(super) router: Arc<Router>,
    pub(super) node: Arc<str>,
    pub(super) host: Arc<str>,
    pub(super) outcomes: Sender<(u64, RequestOutcome)>,
    /// The node's doorbell (its queue's), rung by everything that has work for its thread.
    pub(super) bell: Arc<Doorbell>,
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

/// Where the reader puts what is for the node's thread.
pub(super) struct ToPump {
    pub(super) events: Sender<Event>,
    pub(super) acks: Arc<Acks>,
    /// Where the process's reports go.
    pub(super) overlay: Arc<Mutex<Overlay>>,
}

/// Reads the process's frames until its socket closes: messages its services sent go on the
/// bus at once, log lines into the node's log, reports into the node's overlay,
/// acknowledgements into [`Acks`]; the rest goes to the node's thread as [`Event`]s, ringing
/// its doorbell.
pub(super) fn read_process(
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
}
