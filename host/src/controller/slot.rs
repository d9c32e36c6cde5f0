//! One node's place in the hive, owned by the control thread: its queue (which outlives its
//! instances), the phase it is in, and what the page needs to know about its history.

use crate::runtime::{NodeQueue, NodeRuntime};

/// Where a node is in its life. Exactly one instance runs in `Running`; none in the others. A
/// reload builds the next instance beside the running one and stays `Running` throughout.
pub(crate) enum Phase {
    /// Nothing runs: never started, disabled, unloaded, or stopped with the hive.
    Idle,
    /// Its first (or next, after an unload) instance is being built; none runs.
    Building,
    /// An instance runs.
    Running(NodeRuntime),
    /// The last attempt to start it failed (`Slot::last_error` says why); none runs.
    Failed,
}

impl Phase {
    /// The running instance, if any.
    pub(crate) fn runtime(&self) -> Option<&NodeRuntime> {
        match self {
            Phase::Running(runtime) => Some(runtime),
            _ => None,
        }
    }
}

/// One node's place in the hive.
pub(crate) struct Slot {
    /// Where the bus puts the node's messages; the running instance drains it. Invariant: made
    /// with room for `queue_capacity` messages.
    pub(crate) queue: NodeQueue,
    /// The room `queue` was made with.
    pub(crate) queue_capacity: usize,
    /// The bus registration of the running (or last) instance; each new instance gets the
    /// next one, so deliveries routed for an older one are re-matched.
    pub(crate) generation: u64,
    /// What runs now.
    pub(crate) phase: Phase,
    /// Instances that started, in all.
    pub(crate) loads: u64,
    /// When the running instance started (RFC 3339).
    pub(crate) loaded_at: Option<String>,
    /// Why the last start or reload failed, until one succeeds.
    pub(crate) last_error: Option<String>,
    /// Whether the running instance has been reported stuck (and not yet running again).
    pub(crate) reported_stuck: bool,
    /// Crashes of an isolated node's process already reported.
    pub(crate) reported_crashes: u64,
}

impl Slot {
    /// A slot with an empty queue of `capacity` and nothing running.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: NodeQueue::new(capacity),
            queue_capacity: capacity,
            generation: 0,
            phase: Phase::Idle,
            loads: 0,
            loaded_at: None,
            last_error: None,
            reported_stuck: false,
            reported_crashes: 0,
        }
    }

    /// Whether an instance runs.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running(_))
    }
}
