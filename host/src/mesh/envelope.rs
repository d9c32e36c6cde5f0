//! What a message carries on the mesh besides its payload, and the filter that lets each
//! message in once.
//!
//! The payload travels as Zenoh's payload, untouched JSON text. The envelope travels as the
//! sample's attachment, a small JSON object:
//!
//! ```json
//! {"v":1,"host":"manor","node":"batsignal","origin":"4f2a…","seq":17}
//! ```
//!
//! `origin` is the sending process's Zenoh session id, new at every start, and `seq` counts
//! the messages that process sent, from 1, in the order it sent them.
//!
//! # The duplicate filter
//!
//! A copy that arrives by a second path is the same message: same origin, number, host, node,
//! service and payload. [`Seen`] remembers a hash of exactly that for the last
//! [`RECENT_PER_ORIGIN`] messages of each origin and drops a message it has seen. Nothing in
//! an envelope is checked by Zenoh (any peer can write any origin), so the filter is built so
//! that a forged envelope can only ever hide an identical copy of itself: a forged
//! `seq = 2^64-1` with a real host's origin hides nothing of that host's. Its memory is
//! bounded: at most [`MAX_ORIGINS`] origins (the one unheard of longest goes first), each with
//! at most [`RECENT_PER_ORIGIN`] hashes.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// The envelope's format version.
pub(crate) const VERSION: u32 = 1;

/// The sender's side of a message on the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The format version ([`VERSION`]).
    pub v: u32,
    /// The sending host's name.
    pub host: String,
    /// The sending node's name (`api` for messages published through the host's API).
    pub node: String,
    /// The sending process's session id.
    pub origin: String,
    /// The message's number among those its origin sent, from 1.
    pub seq: u64,
}

impl Envelope {
    /// The attachment bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Reads an attachment; says why it is not an envelope of this version.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| format!("its attachment is not a hivemind envelope ({e})"))?;
        if envelope.v != VERSION {
            return Err(format!(
                "it was sent by an hm speaking mesh format {} (this hm speaks {VERSION}); run the same hm version on every host",
                envelope.v
            ));
        }
        Ok(envelope)
    }
}

/// Messages remembered per origin: a second copy that arrives after this many newer messages of
/// the same origin is let in again. Copies by a second path arrive milliseconds apart.
pub(crate) const RECENT_PER_ORIGIN: usize = 4096;

/// Origins remembered at once (about 100 KiB each when full): a host restarted many times,
/// or a peer inventing origins, pushes the oldest out.
pub(crate) const MAX_ORIGINS: usize = 256;

/// The identity of one message: a hash of everything that makes it that message.
pub(crate) fn identity(envelope: &Envelope, service: &str, payload: &[u8]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in [
        envelope.origin.as_bytes(),
        envelope.host.as_bytes(),
        envelope.node.as_bytes(),
        service.as_bytes(),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(&envelope.seq.to_le_bytes());
    hasher.update(payload);
    hasher.digest()
}

/// The recent messages of each origin (see the module's filter).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    origins: HashMap<String, Recent>,
    /// Counts admissions: when each origin was last heard of, for eviction.
    clock: u64,
}

#[derive(Debug)]
struct Recent {
    host: String,
    /// Identities, oldest first; the same as `set`.
    order: VecDeque<u64>,
    set: HashSet<u64, BuildHasherDefault<Identity>>,
    last_heard: u64,
}

impl Seen {
    /// Whether the message `id` ([`identity`]) from `origin` (on `host`) is new; records it
    /// if so.
    pub(crate) fn admit(&mut self, origin: &str, host: &str, id: u64) -> bool {
        self.clock += 1;
        if !self.origins.contains_key(origin) {
            if self.origins.len() >= MAX_ORIGINS
                && let Some(oldest) = self
                    .origins
                    .iter()
                    .min_by_key(|(_, recent)| recent.last_heard)
                    .map(|(origin, _)| origin.clone())
            {
                self.origins.remove(&oldest);
            }
            self.origins.insert(
                origin.to_owned(),
                Recent {
                    host: host.to_owned(),
                    order: VecDeque::new(),
                    set: HashSet::default(),
                    last_heard: 0,
                },
            );
        }
        let recent = self.origins.get_mut(origin).expect("inserted above");
        recent.last_heard = self.clock;
        if !recent.set.insert(id) {
            return false;
        }
        recent.order.push_back(id);
        if recent.order.len() > RECENT_PER_ORIGIN
            && let Some(old) = recent.order.pop_front()
        {
            recent.set.remove(&old);
        }
        true
    }

    /// Forgets the origins of `host` (it has gone; if it comes back, it is a new origin).
    pub(crate) fn forget_host(&mut self, host: &str) {
        self.origins.retain(|_, recent| recent.host != host);
    }

    /// How many origins are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.origins.len()
    }

    /// Identities remembered in all.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.origins.values().map(|recent| recent.order.len()).sum()
    }
}

/// Identities are hashes already: the set uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            v: VERSION,
            host: "manor".into(),
            node: "batsignal".into(),
            origin: "4f2a".into(),
            seq,
        }
    }

    #[test]
    fn an_envelope_round_trips() {
        let bytes = envelope(17).to_bytes();
        assert_eq!(Envelope::parse(&bytes), Ok(envelope(17)));
    }

    #[test]
    fn foreign_or_other_version_attachments_are_refused_with_the_reason() {
        assert!(
            Envelope::parse(b"hello")
                .unwrap_err()
                .contains("not a hivemind envelope")
        );
        let mut other = envelope(1);
        other.v = 2;
        let error = Envelope::parse(&other.to_bytes()).unwrap_err();
        assert!(error.contains("same hm version"), "{error}");
    }

    fn id(seq: u64, payload: &str) -> u64 {
        identity(&envelope(seq), "bat-signal", payload.as_bytes())
    }

    #[test]
    fn each_message_is_let_in_once() {
        let mut seen = Seen::default();
        // Two paths deliver the same stream; the second lags behind the first.
        let mut admitted = Vec::new();
        for seq in 1..=5 {
            for _path in 0..2 {
                if seen.admit("4f2a", "manor", id(seq, "x")) {
                    admitted.push(seq);
                }
            }
        }
        assert_eq!(admitted, vec![1, 2, 3, 4, 5]);
        assert!(
            !seen.admit("4f2a", "manor", id(3, "x")),
            "a late copy stays out"
        );
        assert!(
            seen.admit("other", "tower", id(1, "x")),
            "origins count apart"
        );
        assert_ne!(
            id(1, "x"),
            id(1, "y"),
            "the payload is part of the identity"
        );
    }

    #[test]
    fn a_forged_envelope_hides_nothing_but_its_own_copy() {
        let mut seen = Seen::default();
        assert!(seen.admit("4f2a", "manor", id(u64::MAX, "forged")));
        for seq in 1..=100 {
            assert!(seen.admit("4f2a", "manor", id(seq, "real")), "{seq}");
        }
    }

    #[test]
    fn the_filter_is_bounded() {
        let mut seen = Seen::default();
        for seq in 0..(RECENT_PER_ORIGIN as u64 * 3) {
            seen.admit("4f2a", "manor", id(seq, "x"));
        }
        assert_eq!(seen.remembered(), RECENT_PER_ORIGIN);
        for origin in 0..(MAX_ORIGINS * 4) {
            seen.admit(&format!("junk-{origin}"), "junk", 1);
        }
        assert_eq!(seen.len(), MAX_ORIGINS);
        assert!(!seen.admit("junk-1023", "junk", 1), "the newest are kept");
    }

    #[test]
    fn a_host_that_went_away_starts_afresh() {
        let mut seen = Seen::default();
        assert!(seen.admit("old", "manor", 9));
        assert!(seen.admit("tower-1", "tower", 1));
        seen.forget_host("manor");
        assert_eq!(seen.len(), 1);
        assert!(seen.admit("old", "manor", 9));
    }
}
