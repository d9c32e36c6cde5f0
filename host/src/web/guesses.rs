//! The wrong-key throttle: how many wrong `[hive] key`s each client address sent, and whether it
//! must wait before it may try again ([`Guesses`]).
//!
//! Contract:
//! - An address gets [`FREE_FAILURES`] wrong keys in a [`WINDOW`]; each one more locks it out
//!   for [`FIRST_LOCKOUT`], doubling with each lockout up to [`MAX_LOCKOUT`] (back to the first
//!   after a window without a wrong key). While locked out, every request of that address that
//!   presents a key is answered 429 with `Retry-After` before the key is even compared, so a
//!   guesser learns nothing, the right key included.
//! - Addresses are counted alone, IPv6 ones by their /64 (one machine's many addresses): the
//!   right key from another address is never slowed by someone else's guessing.
//! - The table is bounded: at most [`MAX_ADDRESSES`], the address seen least recently leaves
//!   first; a right key from an address (never compared while it is locked out) removes it.
//! - The first wrong key of an address is logged (warning), then each lockout with its count;
//!   `/metrics` and the event feed (the page) show the counts.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Wrong keys an address may send in one [`WINDOW`] before it is locked out.
pub(super) const FREE_FAILURES: u32 = 5;
/// The window the free failures are counted in.
pub(super) const WINDOW: Duration = Duration::from_secs(60);
/// The first lockout; each next one is twice as long.
pub(super) const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
/// The longest lockout.
pub(super) const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// Addresses kept in the table at once.
pub(super) const MAX_ADDRESSES: usize = 4096;

/// One address's (or /64's) record.
#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    in_window: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    next_lockout: Duration,
    total: u64,
}

/// What a wrong key did to its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Counted; the address may try again at once.
    Counted,
    /// Counted, and the address is now locked out for this long.
    Locked(Duration),
}

/// The wrong keys per client address, and the counters `/metrics` shows.
#[derive(Default)]
pub(super) struct Guesses {
    table: Mutex<HashMap<IpAddr, Record>>,
    failures: AtomicU64,
    lockouts: AtomicU64,
    throttled: AtomicU64,
}

/// The address a client is counted under: IPv4 as it is, IPv6 by its /64.
fn group(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// `address` as the log and the messages name it (a /64 for IPv6).
pub(super) fn shown(address: IpAddr) -> String {
    match group(address) {
        IpAddr::V6(v6) => format!("{v6}/64"),
        v4 => v4.to_string(),
    }
}

impl Guesses {
    /// How long `address` must still wait before a key it sends is compared, if it is locked
    /// out now.
    pub(super) fn locked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let table = self.table.lock();
        let until = table.get(&group(address))?.locked_until?;
        let left = until.checked_duration_since(now)?;
        (!left.is_zero()).then_some(left)
    }

    /// Counts a 429 answered to a locked-out address.
    pub(super) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a wrong key from `address`; the total so far, and whether it is now locked out.
    pub(super) fn failed(&self, address: IpAddr, now: Instant) -> (u64, Outcome) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let key = group(address);
        let mut table = self.table.lock();
        if !table.contains_key(&key)
            && table.len() >= MAX_ADDRESSES
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(a, _)| *a)
        {
            table.remove(&oldest);
        }
        let record = table.entry(key).or_insert(Record {
            window_start: now,
            in_window: 0,
            last_failure: now,
            locked_until: None,
            next_lockout: FIRST_LOCKOUT,
            total: 0,
        });
        if now.duration_since(record.window_start) >= WINDOW {
            if now.duration_since(record.last_failure) >= WINDOW {
                record.next_lockout = FIRST_LOCKOUT;
            }
            record.window_start = now;
            record.in_window = 0;
        }
        record.in_window += 1;
        record.total += 1;
        record.last_failure = now;
        if record.in_window <= FREE_FAILURES {
            return (record.total, Outcome::Counted);
        }
        let lockout = record.next_lockout;
        record.locked_until = Some(now + lockout);
        record.next_lockout = (lockout * 2).min(MAX_LOCKOUT);
        self.lockouts.fetch_add(1, Ordering::Relaxed);
        (record.total, Outcome::Locked(lockout))
    }

    /// A right key from `address`: its record goes (it is not locked out, or the key would
    /// not have been compared).
    pub(super) fn succeeded(&self, address: IpAddr) {
        self.table.lock().remove(&group(address));
    }

    /// Addresses in the table now.
    fn len(&self) -> usize {
        self.table.lock().len()
    }

    /// The `/metrics` lines about wrong keys.
    pub(super) fn metrics(&self) -> String {
        format!(
            "# HELP hivemind_web_key_failures_total Requests refused 401 for a wrong [hive] key.\n\
             # TYPE hivemind_web_key_failures_total counter\n\
             hivemind_web_key_failures_total {}\n\
             # HELP hivemind_web_key_lockouts_total Times a client address was locked out for sending wrong keys.\n\
             # TYPE hivemind_web_key_lockouts_total counter\n\
             hivemind_web_key_lockouts_total {}\n\
             # HELP hivemind_web_key_throttled_total Requests with a key answered 429 because their address was locked out.\n\
             # TYPE hivemind_web_key_throttled_total counter\n\
             hivemind_web_key_throttled_total {}\n\
             # HELP hivemind_web_key_addresses Client addresses with wrong keys on record.\n\
             # TYPE hivemind_web_key_addresses gauge\n\
             hivemind_web_key_addresses {}\n",
            self.failures.load(Ordering::Relaxed),
            self.lockouts.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
            self.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn five_free_failures_then_lockouts_that_double_up_to_the_cap() {
        let g = Guesses::default();
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for n in 1..=FREE_FAILURES {
            assert_eq!(g.failed(a, t0), (u64::from(n), Outcome::Counted));
            assert_eq!(g.locked(a, t0), None);
        }
        assert_eq!(g.failed(a, t0).1, Outcome::Locked(FIRST_LOCKOUT));
        assert_eq!(g.locked(a, t0), Some(FIRST_LOCKOUT));
        // Another address is not touched.
        assert_eq!(g.locked(ip("10.0.0.2"), t0), None);
        let mut t = t0;
        let mut expected = FIRST_LOCKOUT * 2;
        for _ in 0..12 {
            t += Duration::from_millis(10);
            assert_eq!(g.failed(a, t).1, Outcome::Locked(expected));
            expected = (expected * 2).min(MAX_LOCKOUT);
        }
        assert_eq!(g.locked(a, t), Some(MAX_LOCKOUT));
        assert_eq!(g.locked(a, t + MAX_LOCKOUT), None);
        // A quiet window later, it starts over.
        let later = t + MAX_LOCKOUT + WINDOW;
        assert_eq!(g.failed(a, later).1, Outcome::Counted);
    }

    #[test]
    fn ipv6_is_grouped_by_its_64_and_mapped_ipv4_is_ipv4() {
        let g = Guesses::default();
        let now = Instant::now();
        for n in 0..=FREE_FAILURES {
            g.failed(ip(&format!("2001:db8:1:2::{n:x}")), now);
        }
        assert!(g.locked(ip("2001:db8:1:2:ffff::1"), now).is_some());
        assert!(g.locked(ip("2001:db8:1:3::1"), now).is_none());
        for _ in 0..=FREE_FAILURES {
            g.failed(ip("::ffff:10.0.0.9"), now);
        }
        assert!(g.locked(ip("10.0.0.9"), now).is_some());
        assert_eq!(shown(ip("2001:db8:1:2::5")), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_table_is_bounded_and_a_right_key_clears_an_unlocked_record() {
        let g = Guesses::default();
        let now = Instant::now();
        for n in 0..(MAX_ADDRESSES as u32 + 100) {
            g.failed(
                IpAddr::from(n.to_be_bytes()),
                now + Duration::from_micros(n.into()),
            );
        }
        assert_eq!(g.len(), MAX_ADDRESSES);
        let a = ip("192.0.2.1");
        g.failed(a, now);
        g.succeeded(a);
        assert_eq!(g.len(), MAX_ADDRESSES - 1);
        assert!(
            g.metrics()
                .contains("hivemind_web_key_failures_total 4197\n")
        );
    }
}
