//! Where each service's messages go: a [`Topic`] per service name, holding one route per
//! subscribing node, and the [`Outlet`] (the mesh) that gets every message sent on this host.
//!
//! Contract: publishing reads a topic's routes without a lock and never blocks, except for a
//! node that chose [`Overflow::Block`] (then at most its overflow wait). A message reaches each
//! route once; a route whose queue is full (or whose node stopped) drops it, counts the drop on
//! every subscription it was meant for, and logs and reports the 1st, 2nd, 4th, 8th... drop.
//! The outlet gets a message sent on this host once, after the local routes; a message from
//! another host never reaches it.

use super::message::Message;
use super::queue::{Delivery, Indices, QueueSender, SubscriptionStats};
use super::{DropReport, Wake};
use arc_swap::{ArcSwap, ArcSwapOption};
use crossbeam_channel::{SendTimeoutError, TrySendError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the messages sent on this host also go (the mesh).
///
/// Called on the sender's thread, once per message, after the message was queued for the local
/// subscriptions; it must not block.
pub trait Outlet: Send + Sync {
    /// Takes a message sent on this host.
    fn forward(&self, message: &Message);
}

/// The bus's current outlet, shared by its topics.
pub(super) type OutletSlot = Arc<OutletCell>;

/// Where the outlet is kept: without one (a hive without the mesh) a publish costs one load of
/// a flag here, not a load of the slot (an `arc_swap` load: tens of instructions per message).
#[derive(Default)]
pub(super) struct OutletCell {
    /// Whether `slot` may hold an outlet.
    ///
    /// Invariant: set after `slot` is filled and cleared before it is emptied, so a publisher
    /// that reads `false` may skip the slot, and one that reads `true` still handles an empty
    /// slot (the outlet was just removed).
    pub(super) present: AtomicBool,
    pub(super) slot: ArcSwapOption<Box<dyn Outlet>>,
}

/// Where a topic's messages go for one subscribing node.
#[derive(Clone)]
pub(super) struct Route {
    pub(super) node: Arc<str>,
    pub(super) generation: u64,
    pub(super) overflow: Overflow,
    pub(super) drop_report: Option<DropReport>,
    pub(super) wake: Option<Wake>,
    pub(super) sender: QueueSender,
    pub(super) subscriptions: Indices,
    pub(super) stats: Arc<[Arc<SubscriptionStats>]>,
}

/// What happens to a message for a node whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop it (counted and logged): the publisher and the other subscribers never wait.
    #[default]
    Drop,
    /// Make the publisher wait for room, up to the given time, then drop it: lossless for a
    /// subscriber that keeps up on average, at the price of slowing its publishers.
    Block(std::time::Duration),
}

/// A service name with the routes its messages take.
pub struct Topic {
    pub(super) name: Arc<str>,
    pub(super) routes: ArcSwap<Vec<Route>>,
    pub(super) outlet: OutletSlot,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("routes", &self.routes.load().len())
            .finish()
    }
}

impl Topic {
    /// The service name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Queues `payload` from node `from` of this host for every matching subscription, then
    /// hands it to the outlet if there is one; never blocks.
    pub fn publish(&self, from: &Arc<str>, payload: &str) {
        let message = Message::new(&self.name, from, payload, None);
        if !self.outlet.present.load(Ordering::Acquire) {
            return self.deliver_here(message);
        }
        let outlet = self.outlet.slot.load();
        match outlet.as_ref() {
            Some(outlet) => {
                self.deliver_here(message.clone());
                outlet.forward(&message);
            }
            None => self.deliver_here(message),
        }
    }

    /// Queues `message` for every matching subscription of this host only.
    pub(super) fn deliver_here(&self, message: Message) {
        let routes = self.routes.load();
        let Some((last, others)) = routes.split_last() else {
            return;
        };
        for route in others {
            route.push(message.clone());
        }
        last.push(message);
    }
}

impl Route {
    fn push(&self, message: Message) {
        let delivery = Delivery {
            message,
            subscriptions: self.subscriptions,
            generation: self.generation,
        };
        let (reason, delivery) = match self.sender.try_send(delivery) {
            Ok(()) => {
                if let Some(wake) = &self.wake {
                    wake();
                }
                return;
            }
            Err(TrySendError::Full(delivery)) => match self.overflow {
                Overflow::Drop => ("its queue is full", delivery),
                Overflow::Block(patience) => match self.sender.send_timeout(delivery, patience) {
                    Ok(()) => {
                        if let Some(wake) = &self.wake {
                            wake();
                        }
                        return;
                    }
                    Err(SendTimeoutError::Timeout(delivery)) => (
                        "its queue stayed full for the whole overflow wait",
                        delivery,
                    ),
                    Err(SendTimeoutError::Disconnected(delivery)) => ("it has stopped", delivery),
                },
            },
            Err(TrySendError::Disconnected(delivery)) => ("it has stopped", delivery),
        };
        let message = delivery.message;
        let mut dropped = 0;
        for stats in self.stats.iter() {
            dropped = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        }
        if dropped.is_power_of_two() {
            tracing::warn!(
                node = %self.node,
                service = %message.service(),
                dropped,
                "dropped a message for node `{}` because {reason} (raise queue_capacity in config/hive.toml if it cannot keep up)",
                self.node,
            );
            if let Some(report) = &self.drop_report {
                report(&self.node, message.service(), dropped);
            }
        }
    }
}
