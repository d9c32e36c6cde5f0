//! A node's two queues of the request traffic, which belong to the node, not to an instance:
//! its [`Desk`] (requests for it to answer) and its [`Mailbox`] (outcomes of its own
//! non-blocking asks).
//!
//! Guarantees: what is queued on either rings the node's delivery thread's doorbell (the
//! router rings it for a desk, [`Mailbox::post`] for a mailbox);
//! a desk holds at most [`super::DESK_CAPACITY`] requests; both outlive a reload, so what is
//! queued reaches the new instance.

use super::{DESK_CAPACITY, Job, Outcome};
use crate::bus::Doorbell;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;

/// A node's queue of requests, with the doorbell of its delivery thread. Belongs to the node,
/// not to an instance (see the module's contract).
#[derive(Clone)]
pub(crate) struct Desk {
    pub(super) sender: Sender<Job>,
    /// Where the node's delivery thread takes its requests from.
    pub(crate) inbox: Receiver<Job>,
    pub(super) bell: Arc<Doorbell>,
}

impl Desk {
    /// A desk whose arrivals ring `bell`.
    pub(crate) fn new(bell: Arc<Doorbell>) -> Self {
        let (sender, inbox) = crossbeam_channel::bounded(DESK_CAPACITY);
        Self {
            sender,
            inbox,
            bell,
        }
    }

    /// Fails everything queued ([`FailureKind::Restarted`]): the node has stopped for good.
    pub(crate) fn drain(&self) -> usize {
        self.inbox.try_iter().count()
    }
}

/// Where the outcomes of a node's non-blocking asks go: its delivery thread hands them to the
/// node's reply callbacks. Belongs to the node, like its [`Desk`].
#[derive(Clone)]
pub(crate) struct Mailbox {
    pub(super) sender: Sender<(u64, Outcome)>,
    /// Where the node's delivery thread takes the outcomes from.
    pub(crate) inbox: Receiver<(u64, Outcome)>,
    pub(super) bell: Arc<Doorbell>,
}

impl Mailbox {
    /// A mailbox whose arrivals ring `bell`.
    pub(crate) fn new(bell: Arc<Doorbell>) -> Self {
        let (sender, inbox) = crossbeam_channel::unbounded();
        Self {
            sender,
            inbox,
            bell,
        }
    }

    /// Puts `outcome` in it for the ask `token`.
    pub(crate) fn post(&self, token: u64, outcome: Outcome) {
        let _ = self.sender.send((token, outcome));
        self.bell.ring();
    }
}
