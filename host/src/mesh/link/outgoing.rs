//! This host's messages out to the other hosts: the bus's outlet queues them, the sending
//! thread (`hm-mesh-out`) puts them on Zenoh.
//!
//! Guarantees: messages go out in the order they were sent, in batches of at most
//! [`BATCH_BYTES`] (a larger message alone), one Zenoh `put` per batch; the outlet never
//! blocks the bus (a full queue drops the message for the other hosts only, counted and
//! logged); the thread sleeps on a doorbell when nothing is queued, without spinning.

use super::{Counters, Shared};
use crate::bus::{Doorbell, Message, Outlet};
use crate::mesh::envelope::BatchWriter;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zenoh::Wait;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;

/// The bus's outlet: queues this host's messages for the sending thread and rings its doorbell
/// (a system call only when that thread sleeps, never one per message).
pub(super) struct Forwarder {
    /// `None` once dropped: the sending thread then drains what is left and ends.
    pub(super) queue: Option<Sender<Message>>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) shared: Arc<Shared>,
}

/// What the bus's outlet and the sending thread share besides the queue.
#[derive(Default)]
pub(super) struct Outbox {
    bell: Doorbell,
    /// Set when the outlet is gone: nothing more will be queued.
    closed: AtomicBool,
}

impl Outlet for Forwarder {
    fn forward(&self, message: &Message) {
        let Some(queue) = &self.queue else { return };
        let counters = &self.shared.counters;
        match queue.try_send(message.clone()) {
            Ok(()) => {
                counters.queued.fetch_add(1, Ordering::Relaxed);
                self.outbox.bell.ring();
            }
            Err(TrySendError::Full(_)) => {
                let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        service = %message.service(),
                        dropped,
                        "dropped a message of `{}` for the other hosts because the mesh's outgoing queue is full ({dropped} so far; raise [mesh] queue_capacity in config/hive.toml if the network cannot keep up)",
                        message.service(),
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        drop(self.queue.take());
        self.outbox.closed.store(true, Ordering::Release);
        self.outbox.bell.ring();
    }
}

/// The size a batch is cut at, in bytes: it goes out in one of Zenoh's batches (64 KiB) without
/// being split. A message larger than this travels alone (its payload is at most
/// `[messages] max_payload_bytes`, which Zenoh's largest message leaves room for).
pub(super) const BATCH_BYTES: usize = 60 * 1024;

/// The sending thread: puts every queued message on Zenoh, in order, until the outlet is gone.
/// Each wake-up drains everything queued, as batches of up to [`BATCH_BYTES`] (one Zenoh `put`
/// and one envelope per batch, sent at once: Zenoh's own batching would only wait for more);
/// with nothing queued it parks on the outbox's doorbell, without spinning.
pub(super) fn send_all(
    session: &zenoh::Session,
    shared: &Shared,
    outgoing: &Receiver<Message>,
    outbox: &Outbox,
) {
    let mut publisher: Option<Publisher<'static>> = None;
    let mut next_seq = 1u64;
    // A message taken off the queue that did not fit in the last batch: the next one's first.
    let mut carried: Option<Message> = None;
    outbox.bell.attach();
    loop {
        let mut batch = BatchWriter::new(&shared.origin, &shared.host, next_seq, BATCH_BYTES);
        let filled = fill(&mut batch, &mut carried, outgoing, &shared.counters);
        if batch.count() > 0 {
            next_seq += batch.count() as u64;
            put(session, shared, &mut publisher, batch);
        }
        if filled.taken > 0 {
            shared
                .counters
                .queued
                .fetch_sub(filled.taken, Ordering::Relaxed);
        }
        if carried.is_some() || filled.taken > 0 {
            continue;
        }
        if filled.disconnected {
            return;
        }
        if outbox.closed.load(Ordering::Acquire) && outgoing.is_empty() {
            return;
        }
        outbox
            .bell
            .sleep_unless(|| !outgoing.is_empty() || outbox.closed.load(Ordering::Acquire));
    }
}

/// What one [`fill`] did.
#[derive(Debug, PartialEq, Eq)]
struct Filled {
    /// Messages taken off the queue.
    taken: u64,
    /// The queue is empty and its sender gone.
    disconnected: bool,
}

/// Adds queued messages to `batch` in order, `carried` first, until the queue is empty, the
/// batch is full or the next message would take it past [`BATCH_BYTES`] (that one is left in
/// `carried`; a batch always takes its first message, whatever its size). A message that
/// cannot travel is dropped for the other hosts and counted.
fn fill(
    batch: &mut BatchWriter,
    carried: &mut Option<Message>,
    outgoing: &Receiver<Message>,
    counters: &Counters,
) -> Filled {
    let mut taken = 0;
    loop {
        let message = match carried.take() {
            Some(message) => message,
            None => match outgoing.try_recv() {
                Ok(message) => {
                    taken += 1;
                    message
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    return Filled {
                        taken,
                        disconnected: false,
                    };
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Filled {
                        taken,
                        disconnected: true,
                    };
                }
            },
        };
        let size = BatchWriter::size_of(message.service(), message.node(), message.payload());
        if batch.count() > 0 && (batch.is_full() || batch.len() + size > BATCH_BYTES) {
            *carried = Some(message);
            return Filled {
                taken,
                disconnected: false,
            };
        }
        if let Err(why) = batch.push(message.service(), message.node(), message.payload()) {
            refuse_out(counters, 1, message.service(), &why.to_string());
        }
    }
}

/// Puts one batch on Zenoh under this host's key, declaring its publisher the first time.
fn put(
    session: &zenoh::Session,
    shared: &Shared,
    publisher: &mut Option<Publisher<'static>>,
    batch: BatchWriter,
) {
    let count = batch.count() as u64;
    if publisher.is_none() {
        let declared = session
            .declare_publisher(shared.keys.batch(&shared.host))
            .congestion_control(CongestionControl::Block)
            .express(true)
            .wait();
        match declared {
            Ok(declared) => *publisher = Some(declared),
            Err(error) => {
                return refuse_out(&shared.counters, count, "any service", &error.to_string());
            }
        }
    }
    let Some(publisher) = publisher else { return };
    match publisher.put(batch.finish()).wait() {
        Ok(()) => {
            shared.counters.sent.fetch_add(count, Ordering::Relaxed);
        }
        Err(error) => refuse_out(&shared.counters, count, "any service", &error.to_string()),
    }
}

/// Counts `count` messages (of `service`) that could not be sent to the other hosts.
fn refuse_out(counters: &Counters, count: u64, service: &str, error: &str) {
    let before = counters.dropped.fetch_add(count, Ordering::Relaxed);
    let dropped = before + count;
    // Logged when the count passes a power of two (1st, 2nd, 4th... drop).
    if (before + 1..=dropped).any(u64::is_power_of_two) {
        tracing::warn!(
            "could not send {count} message(s) of `{service}` to the other hosts ({dropped} dropped so far): {error}",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::envelope::{Batch, MAX_SERVICE_BYTES};

    fn message(service: &str, payload: String) -> Message {
        Message::new(service, "batsignal", &payload, None)
    }

    /// The batches the sending thread makes of what `messages` queue, as (service, payload).
    fn batches_of(messages: Vec<Message>) -> (Vec<Vec<(String, String)>>, Counters) {
        let (queue, outgoing) = crossbeam_channel::unbounded();
        for m in messages {
            queue.send(m).unwrap();
        }
        drop(queue);
        let counters = Counters::default();
        let (mut carried, mut batches, mut seq) = (None, Vec::new(), 1);
        loop {
            let mut batch = BatchWriter::new("4f2a", "manor", seq, 0);
            let filled = fill(&mut batch, &mut carried, &outgoing, &counters);
            if batch.count() > 0 {
                seq += batch.count() as u64;
                assert!(batch.count() == 1 || batch.len() <= BATCH_BYTES);
                let bytes = batch.finish();
                let read = Batch::parse(&bytes).unwrap();
                batches.push(
                    read.messages
                        .iter()
                        .map(|e| {
                            let m = e.check(usize::MAX).unwrap();
                            (m.service.to_owned(), m.payload.to_owned())
                        })
                        .collect(),
                );
            }
            if filled.disconnected && carried.is_none() {
                return (batches, counters);
            }
        }
    }

    #[test]
    fn queued_messages_go_out_in_batches_in_order_cut_at_the_batch_size() {
        let small: Vec<Message> = (0..5000)
            .map(|i| message("flood", format!("{{\"seq\":{i}}}")))
            .collect();
        let (batches, counters) = batches_of(small);
        assert!(batches.len() > 1, "5,000 messages fill more than a batch");
        let all: Vec<String> = batches.into_iter().flatten().map(|(_, p)| p).collect();
        let expected: Vec<String> = (0..5000).map(|i| format!("{{\"seq\":{i}}}")).collect();
        assert_eq!(all, expected);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_message_larger_than_a_batch_travels_alone_and_one_that_cannot_is_counted() {
        let big = format!("\"{}\"", "x".repeat(BATCH_BYTES * 2));
        let (batches, counters) = batches_of(vec![
            message("a", "1".into()),
            message("b", big.clone()),
            message(&"s".repeat(MAX_SERVICE_BYTES + 1), "2".into()),
            message("c", "3".into()),
        ]);
        let pair = |s: &str, p: &str| (s.to_owned(), p.to_owned());
        assert_eq!(
            batches,
            vec![
                vec![pair("a", "1")],
                vec![pair("b", &big)],
                vec![pair("c", "3")]
            ]
        );
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
    }
}
