//! Exactly one outcome per request, by its deadline: the [`Job`] a responder holds, the
//! gathering of every responder's part, and the deadline thread.
//!
//! Guarantees: a request's `done` runs once, when its last part is in (a late part changes
//! nothing); a [`Job`] dropped unanswered fails its part at once (`Restarted`, or `Timeout`
//! once past its deadline); the deadline thread fails every part still missing at the
//! request's deadline, and ends when the router is gone.

use super::{Answer, Failure, FailureKind, Outcome, Part};
use parking_lot::{Condvar, Mutex};
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A request on its way to (or in the hands of) a responder. Dropped unanswered, it fails the
/// request: [`FailureKind::Restarted`], or [`FailureKind::Timeout`] once past its deadline.
pub(crate) struct Job {
    /// The request's name.
    pub(crate) name: Arc<str>,
    /// The arguments, as JSON text.
    pub(crate) args: Arc<str>,
    /// Who asked.
    pub(crate) from_node: Arc<str>,
    /// The asker's host.
    pub(crate) from_host: Arc<str>,
    /// The responder it was routed to, and its host.
    pub(crate) node: Arc<str>,
    pub(super) host: Arc<str>,
    pub(super) deadline: Instant,
    pub(super) slot: Option<Arc<Slot>>,
}

impl Job {
    /// Whether its asker has stopped waiting (the handler need not run).
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// How long its asker still waits.
    pub(crate) fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Answers it with `json` (the reply) or `failure`.
    pub(crate) fn answer(mut self, result: Result<String, Failure>) {
        let part = match result {
            Ok(json) => Ok(Answer {
                node: self.node.to_string(),
                host: self.host.to_string(),
                json,
            }),
            Err(failure) => Err(failure.of(&self.node, &self.host)),
        };
        if let Some(slot) = self.slot.take() {
            slot.fill(part);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let failure = if self.expired() {
            timeout(&self.name, self.deadline)
        } else {
            Failure::new(
                FailureKind::Restarted,
                format!(
                    "node `{}` stopped (reloaded, crashed or disabled) with request `{}` unanswered; ask again",
                    self.node, self.name
                ),
            )
        };
        slot.fill(Err(failure.of(&self.node, &self.host)));
    }
}

pub(super) fn timeout(name: &str, _deadline: Instant) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("request `{name}` got no reply before its timeout"),
    )
}

/// One responder's place in a request's outcome: filled once (the first filler wins).
pub(super) struct Slot {
    pub(super) gather: Arc<Gather>,
    pub(super) index: usize,
}

impl Slot {
    pub(super) fn fill(&self, part: Part) {
        self.gather.fill(self.index, part);
    }
}

/// What gets a request's outcome, once.
pub(crate) type Done = Box<dyn FnOnce(Outcome) + Send>;

/// Collects the parts of one request; calls `done` once all are in.
pub(super) struct Gather {
    pub(super) name: Arc<str>,
    pub(super) parts: Mutex<(Vec<Option<Part>>, usize, Option<Done>)>,
}

impl Gather {
    pub(super) fn new(name: Arc<str>, count: usize, done: Done) -> Arc<Self> {
        Arc::new(Self {
            name,
            parts: Mutex::new(((0..count).map(|_| None).collect(), count, Some(done))),
        })
    }

    pub(super) fn fill(&self, index: usize, part: Part) {
        let finished = {
            let mut parts = self.parts.lock();
            let (slots, missing, done) = &mut *parts;
            if done.is_none() {
                // Finished already: a late part changes nothing.
                return;
            }
            match slots.get_mut(index) {
                Some(slot @ None) => {
                    *slot = Some(part);
                    *missing -= 1;
                }
                _ => return,
            }
            if *missing > 0 {
                return;
            }
            let done = done.take();
            let list: Vec<Part> = slots.iter_mut().filter_map(Option::take).collect();
            done.map(|done| (done, list))
        };
        if let Some((done, list)) = finished {
            done(Ok(list));
        }
    }

    /// At the deadline: every part still missing is a timeout.
    pub(super) fn expire(&self, deadline: Instant, responders: &[(Arc<str>, Arc<str>)]) {
        for (index, (node, host)) in responders.iter().enumerate() {
            self.fill(index, Err(timeout(&self.name, deadline).of(node, host)));
        }
    }
}

/// The deadline thread's queue: requests by deadline.
pub(super) struct Deadlines {
    pub(super) queue: Mutex<BinaryHeap<Due>>,
    pub(super) wake: Condvar,
}

pub(super) struct Due {
    pub(super) at: Instant,
    pub(super) gather: Weak<Gather>,
    pub(super) responders: Vec<(Arc<str>, Arc<str>)>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Reversed: the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

impl Deadlines {
    /// Starts the thread; it ends once the router is gone.
    pub(super) fn start() -> Arc<Self> {
        let deadlines = Arc::new(Self {
            queue: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&deadlines);
        std::thread::Builder::new()
            .name("hm:request-deadlines".into())
            .spawn(move || Self::run(&weak))
            .expect("the OS refused to start a thread");
        deadlines
    }

    pub(super) fn add(
        &self,
        at: Instant,
        gather: &Arc<Gather>,
        responders: Vec<(Arc<str>, Arc<str>)>,
    ) {
        let mut queue = self.queue.lock();
        let earliest = queue.peek().is_none_or(|top| at < top.at);
        queue.push(Due {
            at,
            gather: Arc::downgrade(gather),
            responders,
        });
        if earliest {
            self.wake.notify_one();
        }
    }

    pub(super) fn run(weak: &Weak<Self>) {
        loop {
            let Some(this) = weak.upgrade() else {
                return;
            };
            let mut due = Vec::new();
            {
                let mut queue = this.queue.lock();
                let now = Instant::now();
                while queue.peek().is_some_and(|top| top.at <= now) {
                    due.extend(queue.pop());
                }
                if due.is_empty() {
                    // Wakes at least every second, to notice the router is gone.
                    let until = queue
                        .peek()
                        .map_or(now + Duration::from_secs(1), |top| top.at)
                        .min(now + Duration::from_secs(1));
                    this.wake.wait_until(&mut queue, until);
                }
            }
            drop(this);
            for item in due {
                if let Some(gather) = item.gather.upgrade() {
                    gather.expire(item.at, &item.responders);
                }
            }
        }
    }
}
