//! The hand-off between the threads that put messages in a node's queue and the one thread
//! that takes them out: the consumer sleeps only when its queue is empty, and a producer wakes
//! it only if it is asleep: at most one wake-up per sleep, never one per message, and no
//! spinning or yielding in between (see `docs/DESIGN-handoff.md`).
//!
//! # Guarantees
//!
//! - **No lost wake-up.** A consumer that announced its sleep ([`Doorbell::sleep_unless`]) and
//!   a producer that queued a message and then rang ([`Doorbell::ring`]) cannot both miss each
//!   other: each does its write, a sequentially consistent fence, then its read, so at least one
//!   sees the other's write (the producer sees `sleeping` and wakes the thread, or the consumer
//!   sees the message and does not sleep).
//! - **One wake-up per sleep.** The first ring after a sleep takes the `sleeping` flag (a swap)
//!   and wakes the thread; every other ring until the next sleep only reads the flag: a load
//!   and a fence per message, no system call, no lock.
//! - **Not tied to the scheduler.** Nothing polls: a consumer with nothing to do is parked in
//!   the kernel (`thread::park`, a futex on Linux), and a busy one drains everything queued per
//!   wake-up, so the faster messages come the fewer wake-ups each costs.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::thread::Thread;

/// Wakes a node's sleeping consumer thread when something arrives for it.
#[derive(Debug, Default)]
pub struct Doorbell {
    /// Set by the consumer just before it parks, taken (swapped to `false`) by the one ring that
    /// wakes it. Invariant: while `true`, `thread` holds the consumer that set it.
    sleeping: AtomicBool,
    /// The consumer thread, registered before its first sleep.
    thread: Mutex<Option<Thread>>,
    /// Times the consumer went to sleep (each costs a wake-up): for the benchmarks.
    sleeps: AtomicU64,
}

impl Doorbell {
    /// A doorbell with no consumer yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the consumer if it sleeps; call after queueing (or after sending it a command).
    #[inline]
    pub fn ring(&self) {
        // Orders the queueing before the read of `sleeping` (see the guarantees).
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed)
            && self.sleeping.swap(false, Ordering::AcqRel)
            && let Some(thread) = &*self.thread.lock()
        {
            thread.unpark();
        }
    }

    /// Parks the calling thread (the consumer) until a ring, unless `pending()` says there is
    /// already work once the sleep is announced. Returns at once if so. May return without a
    /// ring (a spurious wake-up): the caller looks at its queue again either way.
    pub fn sleep_unless(&self, pending: impl Fn() -> bool) {
        self.sleep_unless_until(None, pending);
    }

    /// [`Doorbell::sleep_unless`], waking by itself at `until` if nothing rang before (a
    /// node's next timer).
    pub fn sleep_unless_until(
        &self,
        until: Option<std::time::Instant>,
        pending: impl Fn() -> bool,
    ) {
        {
            let mut thread = self.thread.lock();
            if thread.is_none() {
                *thread = Some(std::thread::current());
            }
        }
        self.sleeping.store(true, Ordering::Relaxed);
        // Orders the announcement before the look at the queue (see the guarantees).
        fence(Ordering::SeqCst);
        if pending() {
            self.sleeping.store(false, Ordering::Relaxed);
            return;
        }
        self.sleeps.fetch_add(1, Ordering::Relaxed);
        while self.sleeping.load(Ordering::Acquire) {
            match until {
                None => std::thread::park(),
                Some(until) => {
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        // Nobody rang: take the announcement back (a ring meanwhile only
                        // clears it again, and a spare unpark is harmless).
                        self.sleeping.store(false, Ordering::Relaxed);
                        return;
                    }
                    std::thread::park_timeout(left);
                }
            }
        }
    }

    /// Registers the calling thread as the consumer (a new instance of the node takes over
    /// the queue and its doorbell).
    pub fn attach(&self) {
        *self.thread.lock() = Some(std::thread::current());
    }

    /// How many times the consumer has gone to sleep.
    pub fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    #[test]
    fn a_ring_after_the_sleep_wakes_the_consumer() {
        let bell = Arc::new(Doorbell::new());
        let work = Arc::new(AtomicU64::new(0));
        let (b, w) = (bell.clone(), work.clone());
        let consumer = std::thread::spawn(move || {
            let mut seen = 0;
            while seen < 1000 {
                seen = w.load(Ordering::Acquire);
                if seen < 1000 {
                    b.sleep_unless(|| w.load(Ordering::Acquire) > seen);
                }
            }
        });
        for _ in 0..1000 {
            work.fetch_add(1, Ordering::Release);
            bell.ring();
            if work.load(Ordering::Relaxed).is_multiple_of(100) {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !consumer.is_finished() {
            assert!(Instant::now() < deadline, "a wake-up was lost");
            std::thread::sleep(Duration::from_millis(1));
        }
        consumer.join().unwrap();
        assert!(bell.sleeps() <= 1000, "at most one sleep per piece of work");
    }

    #[test]
    fn pending_work_skips_the_sleep() {
        let bell = Doorbell::new();
        bell.sleep_unless(|| true);
        assert_eq!(bell.sleeps(), 0);
        assert!(!bell.sleeping.load(Ordering::Relaxed));
    }
}
