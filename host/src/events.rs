//! The hive's event feed: what happened to its nodes (loaded, reloaded, failed, disabled...),
//! kept for late readers and broadcast to live ones (the page, `GET /api/events`).

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast;

/// How many past events a new reader gets.
pub(crate) const KEPT: usize = 200;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A node's library was loaded and the node started.
    Loaded,
    /// A node was swapped for a new instance (new code or new settings).
    Reloaded,
    /// A node was stopped and its library closed.
    Unloaded,
    /// A node could not be loaded, built or reloaded; the message says why.
    Failed,
    /// A node was switched on in the config.
    Enabled,
    /// A node was switched off in the config.
    Disabled,
    /// Messages were dropped for a node (its queue was full).
    Dropped,
    /// A node's callback has run for longer than its `stuck_after_ms`, or runs again after that.
    Stuck,
    /// An isolated node's process died; it is restarted with backoff.
    Crashed,
    /// A node's crate was built by `hm dev`: it failed (the message says how many errors; the
    /// node's snapshot has them), or it builds again after a failure.
    Build,
    /// Something about the hive itself (config errors, changes that need a restart).
    Hive,
    /// Declared payload types: a subscriber whose type cannot accept what a publisher declares
    /// (reported once per pair and difference), or a declared schema the host ignores.
    Schema,
}

/// One entry of the feed. Two entries are equal when all four fields are (the time as written,
/// the kind, the node, the message): a reader that replays the feed, then follows it live,
/// skips an event it was sent both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HiveEvent {
    /// When, in RFC 3339 UTC.
    pub time: String,
    /// What happened.
    pub kind: EventKind,
    /// The node it happened to, if any.
    pub node: Option<String>,
    /// A sentence for people.
    pub message: String,
}

/// The feed: a ring of recent events plus a broadcast to live readers.
pub struct Events {
    recent: Mutex<VecDeque<HiveEvent>>,
    live: broadcast::Sender<HiveEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::channel(KEPT).0,
        }
    }
}

impl Events {
    /// Records an event and hands it to live readers.
    pub fn emit(&self, kind: EventKind, node: Option<&str>, message: impl Into<String>) {
        let event = HiveEvent {
            time: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            kind,
            node: node.map(str::to_owned),
            message: message.into(),
        };
        let mut recent = self.recent.lock();
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        // Nobody listening is fine.
        let _ = self.live.send(event);
    }

    /// The last [`KEPT`] events, oldest first.
    pub fn recent(&self) -> Vec<HiveEvent> {
        self.recent.lock().iter().cloned().collect()
    }

    /// Events from now on. A reader that falls more than [`KEPT`] behind skips the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<HiveEvent> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_and_broadcasts() {
        let events = Events::default();
        let mut live = events.subscribe();
        let total = 3 * KEPT;
        for n in 0..total {
            events.emit(EventKind::Loaded, Some("batman"), format!("load {n}"));
        }
        let recent = events.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].message, format!("load {}", total - KEPT));
        assert_eq!(
            recent.last().unwrap().message,
            format!("load {}", total - 1)
        );
        // The live reader fell behind: it is told so, then reads on from a newer event.
        assert!(matches!(
            live.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        let next = live.try_recv().unwrap().message;
        assert_ne!(next, "load 0");
    }
}
