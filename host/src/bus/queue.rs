//! A node's queue: what is queued for it ([`Delivery`]), the ends of the queue, and the
//! subscriptions the deliveries are meant for, with their counters.
//!
//! Contract: a node's queue is bounded (its capacity is given once, at [`queue`]); putting a
//! delivery in it rings the node's [`Doorbell`], which wakes the node's thread only if it
//! sleeps. A delivery names the matching subscriptions inline, up to [`Indices::INLINE`];
//! past that it says so, and the node matches the message itself.

use super::Doorbell;
use super::message::Message;
use super::pattern::Pattern;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// A message queued for one node, with the node's subscriptions it is meant for.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Indices of the receiving node's subscriptions that match the message's service, as
    /// registered under `generation`.
    pub subscriptions: Indices,
    /// The registration the indices belong to: an instance registered under another one
    /// matches the message against its own patterns instead.
    pub generation: u64,
}

/// The indices of a node's subscriptions that a message matches, kept inline (most messages
/// match one or two of a node's subscriptions; copying a few words costs less than sharing a
/// list between threads). Past [`Indices::INLINE`] matches it says "too many", and the node
/// matches the message against its patterns itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indices {
    len: u8,
    items: [u32; Self::INLINE],
}

impl Indices {
    /// How many indices fit inline.
    pub const INLINE: usize = 4;

    /// The indices, or `None` if there were too many to keep inline.
    pub fn get(&self) -> Option<&[u32]> {
        self.items.get(..usize::from(self.len))
    }
}

impl FromIterator<u32> for Indices {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut indices = Indices {
            len: 0,
            items: [0; Self::INLINE],
        };
        for index in iter {
            match indices.items.get_mut(usize::from(indices.len)) {
                Some(slot) => {
                    *slot = index;
                    indices.len += 1;
                }
                // Too many: an out-of-range length makes `get` say so.
                None => indices.len = u8::MAX,
            }
        }
        indices
    }
}

/// The receiving end of a node's queue, drained by the node's thread.
pub(crate) type Inbox = Receiver<Delivery>;

/// The sending end of a node's queue: what is put in it rings the node's [`Doorbell`], which
/// wakes the node's thread only if it sleeps.
#[derive(Debug, Clone)]
pub struct QueueSender {
    sender: Sender<Delivery>,
    bell: Arc<Doorbell>,
}

impl QueueSender {
    /// Queues `delivery` if there is room, then rings.
    pub fn try_send(&self, delivery: Delivery) -> Result<(), TrySendError<Delivery>> {
        self.sender.try_send(delivery)?;
        self.bell.ring();
        Ok(())
    }

    /// Queues `delivery`, waiting for room up to `patience`, then rings.
    pub fn send_timeout(
        &self,
        delivery: Delivery,
        patience: std::time::Duration,
    ) -> Result<(), SendTimeoutError<Delivery>> {
        self.sender.send_timeout(delivery, patience)?;
        self.bell.ring();
        Ok(())
    }

    /// Queues `delivery`, waiting for room as long as it takes, then rings; fails only if the
    /// inbox is gone.
    pub fn send(&self, delivery: Delivery) -> Result<(), crossbeam_channel::SendError<Delivery>> {
        self.sender.send(delivery)?;
        self.bell.ring();
        Ok(())
    }

    /// The doorbell of the queue's consumer.
    pub fn bell(&self) -> &Arc<Doorbell> {
        &self.bell
    }
}

/// Creates a node's queue: the sender goes to [`Bus::join`], the inbox to the node.
pub(crate) fn queue(capacity: usize) -> (QueueSender, Inbox) {
    let (sender, inbox) = crossbeam_channel::bounded(capacity);
    let bell = Arc::new(Doorbell::new());
    (QueueSender { sender, bell }, inbox)
}

/// Counters of one subscription.
#[derive(Debug, Default)]
pub struct SubscriptionStats {
    /// Callbacks that returned `Ok`.
    pub delivered: AtomicU64,
    /// Messages dropped because the node's queue was full or the node stopped.
    pub dropped: AtomicU64,
    /// Callbacks that returned an error.
    pub failed: AtomicU64,
    /// Callbacks that panicked.
    pub panicked: AtomicU64,
}

/// A subscription as registered: its node-local index and its pattern.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Index in the node's registration order (the id used at the ABI).
    pub index: u32,
    /// The compiled pattern.
    pub pattern: Pattern,
    /// Its counters, shared with the node's runtime.
    pub stats: Arc<SubscriptionStats>,
}
