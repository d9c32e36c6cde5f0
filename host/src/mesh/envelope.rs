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
//! the messages that process sent, from 1, in the order it sent them. A receiver keeps the
//! highest `seq` seen per origin and lets in only higher ones: a second copy that came by
//! another path is dropped, and since one process's messages leave in order on every path,
//! the first copy of each is never behind one already let in.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The envelope's format version.
pub const VERSION: u32 = 1;

/// The sender's side of a message on the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
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
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Reads an attachment; says why it is not an envelope of this version.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
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

/// The highest sequence number let in per origin, and which host each origin is.
#[derive(Debug, Default)]
pub struct Seen {
    origins: HashMap<String, (String, u64)>,
}

impl Seen {
    /// Whether the message numbered `seq` from `origin` (on `host`) is new; records it if so.
    pub fn admit(&mut self, origin: &str, host: &str, seq: u64) -> bool {
        match self.origins.get_mut(origin) {
            Some((_, last)) if seq <= *last => false,
            Some((_, last)) => {
                *last = seq;
                true
            }
            None => {
                self.origins
                    .insert(origin.to_owned(), (host.to_owned(), seq));
                true
            }
        }
    }

    /// Forgets the origins of `host` (it has gone; if it comes back, it is a new origin).
    pub fn forget_host(&mut self, host: &str) {
        self.origins.retain(|_, (h, _)| h != host);
    }

    /// How many origins are remembered.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether no origin is remembered.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
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

    #[test]
    fn each_message_is_let_in_once_and_in_order() {
        let mut seen = Seen::default();
        // Two paths deliver the same stream; the second lags behind the first.
        let first_path = [1, 2, 3, 4, 5];
        let second_path = [1, 2, 3, 4, 5];
        let mut admitted = Vec::new();
        for (a, b) in first_path.iter().zip(second_path.iter()) {
            for seq in [*a, *b] {
                if seen.admit("o", "manor", seq) {
                    admitted.push(seq);
                }
            }
        }
        assert_eq!(admitted, vec![1, 2, 3, 4, 5]);
        assert!(!seen.admit("o", "manor", 3), "a late copy stays out");
        assert!(seen.admit("other", "tower", 1), "origins count apart");
    }

    #[test]
    fn a_host_that_went_away_starts_afresh() {
        let mut seen = Seen::default();
        assert!(seen.admit("old", "manor", 9));
        assert!(seen.admit("tower-1", "tower", 1));
        seen.forget_host("manor");
        assert_eq!(seen.len(), 1);
        assert!(seen.admit("old", "manor", 1));
    }
}
