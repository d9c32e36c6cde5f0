//! Taps: subscriptions for readers outside the hive (a WebSocket client, a test).
//!
//! Contract: a [`Tap`] gets every message whose service matches its pattern, in order, through
//! a bounded queue whose drops it counts, like a node's subscription; it never shows in the
//! topic listing (its name, `tap#<n>`, is never a node's), and it leaves the bus when dropped.

use super::pattern::Pattern;
use super::queue::{Inbox, Subscription, SubscriptionStats, queue};
use super::registry::NodeEntry;
use super::routes::Overflow;
use super::{Bus, Wake};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Taps are named `tap#<n>`: `#` is never in a node's name, so they cannot clash, and the
/// topic listing leaves them out.
pub(super) const TAP_PREFIX: &str = "tap#";

/// A subscription for a reader outside the hive (a WebSocket client, a test): every message
/// whose service matches its pattern, in order, through a bounded queue. Leaves on drop.
pub struct Tap {
    bus: std::sync::Weak<Bus>,
    name: Arc<str>,
    /// The messages, as they are published.
    pub inbox: Inbox,
    /// Messages dropped because the reader fell `capacity` behind.
    pub stats: Arc<SubscriptionStats>,
}

impl Bus {
    /// Starts a [`Tap`] on `pattern` with room for `capacity` unread messages.
    pub fn tap(self: &Arc<Self>, pattern: Pattern, capacity: usize) -> Tap {
        self.tap_waking(pattern, capacity, None)
    }

    /// [`Bus::tap`], calling `wake` (on the publisher's thread: it must be quick and must not
    /// block) after each message it queues for the tap.
    pub fn tap_waking(
        self: &Arc<Self>,
        pattern: Pattern,
        capacity: usize,
        wake: Option<Wake>,
    ) -> Tap {
        static TAPS: AtomicU64 = AtomicU64::new(0);
        let name: Arc<str> = format!("{TAP_PREFIX}{}", TAPS.fetch_add(1, Ordering::Relaxed)).into();
        let (sender, inbox) = queue(capacity);
        let stats = Arc::new(SubscriptionStats::default());
        let subscription = Subscription {
            index: 0,
            pattern,
            stats: stats.clone(),
        };
        let entry = NodeEntry {
            generation: 0,
            overflow: Overflow::Drop,
            drop_report: self.drop_report.clone(),
            wake,
            sender,
            subscriptions: vec![subscription],
            services: Vec::new(),
        };
        // Tap names are unique (a counter), so this adds and never replaces.
        self.install(&name, entry);
        Tap {
            bus: Arc::downgrade(self),
            name,
            inbox,
            stats,
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.leave(&self.name);
        }
    }
}
