//! Moves an isolated node's messages from its queue and desk to its process, and restarts the
//! process when it dies: the node's thread, while the instance runs.
//!
//! Contract: deliveries leave the node's queue numbered, and each is kept until the process
//! says it handled it, at most [`WINDOW`] at a time; when the process dies, what it had not
//! handled is sent again to the next one, before what waited in the queue meanwhile, and a
//! message in hand at two deaths in a row is dropped as the likely cause (logged). The process
//! holds one request at a time; the rest wait in the node's desk. Restarts back off from
//! [`FIRST_RESTART_DELAY`] to [`MAX_RESTART_DELAY`], afresh after a process that ran
//! [`STABLE_AFTER`]. Control (hand over, stop) is heard within 20 ms even while the process
//! does not empty its socket; a hand-over gives the process [`HAND_OVER_DEADLINE`] to finish
//! its request and save its state. The thread never spins: with nothing to do it parks on the
//! node's doorbell.

use super::overlay::Overlay;
use super::process::{Process, describe};
use super::reader::{Event, Relay};
use super::wire::{self, Encoder};
use super::{BuiltReport, WINDOW, WRITE_BATCH};
use crate::bus::{Delivery, Message, Subscription};
use crate::requests::{Answer, Failure, Job, Outcome as RequestOutcome, Part};
use crate::runtime::{
    Control, Environment, NodeShared, NodeSpec, SERVICE_STOP_DEADLINE, count_undelivered, withdraw,
};
use crossbeam_channel::Receiver;
use hivemind::abi::LogLevel;
use parking_lot::Mutex;
use serde::de::IgnoredAny;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a process has to save its state and exit when it hands over.
const HAND_OVER_DEADLINE: Duration = Duration::from_secs(10);
/// The first wait before restarting a crashed process; it doubles with each crash in a row.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A process that ran this long before it died starts the backoff afresh.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// How a run of the pump ended.
enum Outcome {
    /// Told to hand over or stop, or the node failed: the instance is done.
    Done,
    /// The process died: restart it.
    Crashed,
}

/// Moves an isolated node's messages from its queue to its process, and restarts the process
/// when it dies.
pub(super) struct Pump<'a> {
    /// Carries the process's asks to the host's router.
    pub(super) relay: Relay,
    /// The outcomes of the process's asks, to write to it.
    pub(super) asked: Receiver<(u64, RequestOutcome)>,
    /// The request the process holds (one at a time, so that the rest wait in the node's desk
    /// for whichever instance comes next), with its id.
    pub(super) in_flight: Option<(u64, Job)>,
    pub(super) next_request: u64,
    pub(super) spec: &'a NodeSpec,
    pub(super) env: &'a Environment,
    pub(super) shared: &'a Arc<NodeShared>,
    /// What the process reports, and the counters its dead predecessors left.
    pub(super) overlay: Arc<Mutex<Overlay>>,
    pub(super) control: &'a Receiver<Control>,
    pub(super) process: Process,
    pub(super) report: BuiltReport,
    pub(super) subscriptions: Vec<Subscription>,
    /// Sent and not yet handled, oldest first, with their sequence numbers.
    pub(super) unacked: VecDeque<(u64, Delivery)>,
    pub(super) next_seq: u64,
    pub(super) outbox: Encoder,
    /// The message in hand when the process last died.
    pub(super) suspect: Option<Message>,
    pub(super) crashes_in_a_row: u32,
}

impl Pump<'_> {
    /// Delivers until told to hand over or stop, restarting the process each time it dies.
    pub(super) fn run(&mut self) {
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
    pub(super) fn send(&mut self, delivery: Delivery) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
