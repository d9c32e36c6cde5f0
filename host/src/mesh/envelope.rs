//! What this host's messages look like on the mesh, and the filter that lets each one in once.
//!
//! # The batch
//!
//! A host's sending thread puts everything queued since its last put as one Zenoh sample on
//! `hivemind/<hive>/batch/<host>` ([`super::keys`]): one compact binary envelope for the whole
//! batch, then each message with only what differs between messages. All integers are
//! little-endian; every length is checked against the bytes that are really there before
//! anything is read or kept, so a forged length costs nothing.
//!
//! | field                      | bytes      | bound (anything else refuses the whole batch) |
//! |----------------------------|------------|-----------------------------------------------|
//! | format version             | 1          | [`VERSION`]                                   |
//! | origin length, origin      | 1 + n      | 1 to 64 ASCII letters and digits              |
//! | host length, host          | 1 + n      | a valid host name (as `[mesh] host`)          |
//! | first sequence number      | 8          | at least 1; the last one at most 2^64 - 1     |
//! | message count              | 4          | 1 to [`MAX_BATCH_MESSAGES`]                   |
//! | per message: service       | 2 + n      | 1 or more bytes (see [`Entry::check`])        |
//! | per message: node          | 1 + n      | 1 or more bytes (see [`Entry::check`])        |
//! | per message: payload       | 4 + n      | 1 or more bytes (see [`Entry::check`])        |
//!
//! The batch ends with its last message (trailing bytes are refused). `origin` is the sending
//! process's Zenoh session id, new at every start; its messages are numbered from 1 in the
//! order it sent them, a batch's messages `first`, `first + 1`, ... Each message is then
//! checked on its own ([`Entry::check`]: service name, node name, payload size, UTF-8, JSON);
//! one that fails is refused alone and the others of its batch are let in.
//!
//! # The duplicate filter
//!
//! A copy that arrives by a second path is the same sample, byte for byte. [`Seen`] remembers a
//! hash of every byte of the last [`RECENT_PER_ORIGIN`] batches of each origin and drops a
//! batch it has seen. Nothing in an envelope is checked by Zenoh (any peer can write any
//! origin), so the filter is built so that a forged batch can only ever hide an identical copy
//! of itself: a forged batch with a real host's origin and the next sequence numbers hides
//! nothing of that host's, and the hash is seeded at random per process, so a peer cannot make
//! one that collides with a batch it has not seen. Its memory is bounded: at most
//! [`MAX_ORIGINS`] origins (the one unheard of longest goes first), each with at most
//! [`RECENT_PER_ORIGIN`] hashes.

use crate::names::{check_node_name, is_host_name};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// The mesh's format version: batches, views and requests. 1 was a JSON envelope per message
/// on `msg/<service>`; 2 is the binary batch.
pub(crate) const VERSION: u32 = 2;

/// The most messages one batch may carry.
pub(crate) const MAX_BATCH_MESSAGES: usize = 65_536;

/// The longest service name that travels (as [`super::peers::MAX_TEXT`]).
pub(crate) const MAX_SERVICE_BYTES: usize = super::peers::MAX_TEXT;

/// Bytes of the envelope before the first message, at most (two names of at most 255 bytes).
pub(crate) const MAX_HEADER_BYTES: usize = 1 + (1 + 255) * 2 + 8 + 4;

/// Bytes one message adds to a batch besides its service, node and payload.
const ENTRY_OVERHEAD: usize = 2 + 1 + 4;

/// Why a sample is not a batch this host reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchError {
    /// Its first byte is not [`VERSION`].
    Version(u8),
    /// It ends inside a field.
    Truncated,
    /// Bytes follow its last message.
    Trailing,
    /// Its origin is not a session id.
    Origin,
    /// Its host is not a valid host name.
    Host,
    /// It counts no messages, or more than [`MAX_BATCH_MESSAGES`].
    Count(u32),
    /// Its first sequence number is 0, or its last one is past 2^64 - 1.
    Sequence,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Version(1) => write!(
                f,
                "it was sent by an older hm speaking mesh format 1 (this hm speaks {VERSION}); run the same hm version on every host"
            ),
            BatchError::Version(v) => write!(
                f,
                "it is not a hivemind batch of mesh format {VERSION} (its first byte is {v}); run the same hm version on every host"
            ),
            BatchError::Truncated => write!(f, "it ends in the middle of a field"),
            BatchError::Trailing => write!(f, "bytes follow its last message"),
            BatchError::Origin => write!(f, "its envelope's origin is not a session id"),
            BatchError::Host => write!(f, "its envelope's host is not a valid host name"),
            BatchError::Count(n) => write!(
                f,
                "it counts {n} messages (1 to {MAX_BATCH_MESSAGES} are allowed)"
            ),
            BatchError::Sequence => write!(f, "its sequence numbers are not within 1 to 2^64 - 1"),
        }
    }
}

/// Why one message of a batch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MessageError {
    /// The service name is not UTF-8, empty, longer than [`MAX_SERVICE_BYTES`] or not printable.
    Service,
    /// The node name is neither a valid node name nor `api`.
    Node,
    /// The payload is over the hive's limit.
    TooLarge { size: usize, limit: usize },
    /// The payload is not UTF-8 text.
    NotText,
    /// The payload is not JSON.
    NotJson(String),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Service => {
                write!(f, "its service name is empty, too long or not printable")
            }
            MessageError::Node => write!(f, "its node is not a valid node name"),
            MessageError::TooLarge { size, limit } => write!(
                f,
                "its payload is {size} bytes, over this hive's limit of {limit} ([messages] max_payload_bytes)"
            ),
            MessageError::NotText => write!(f, "its payload is not UTF-8 text"),
            MessageError::NotJson(error) => write!(f, "its payload is not JSON ({error})"),
        }
    }
}

/// Why a message of this host cannot travel (counted as dropped for the other hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsendable {
    /// Its service name is over [`MAX_SERVICE_BYTES`] (the other hosts would refuse it).
    Service,
    /// Its node name is over 255 bytes.
    Node,
    /// Its payload is over 4 GiB.
    Payload,
}

impl std::fmt::Display for Unsendable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsendable::Service => write!(
                f,
                "its service name is over {MAX_SERVICE_BYTES} bytes, more than other hosts take"
            ),
            Unsendable::Node => write!(f, "its node name is over 255 bytes"),
            Unsendable::Payload => write!(f, "its payload is over 4 GiB"),
        }
    }
}

/// Writes one batch: [`BatchWriter::new`] writes the envelope, [`BatchWriter::push`] adds a
/// message, [`BatchWriter::finish`] gives the sample's bytes.
pub(crate) struct BatchWriter {
    bytes: Vec<u8>,
    /// Where the message count goes (written by `finish`).
    count_at: usize,
    /// Messages pushed; at most [`MAX_BATCH_MESSAGES`].
    count: usize,
}

impl BatchWriter {
    /// A batch from `origin` on `host` whose first message is number `first_seq`. `origin` and
    /// `host` are this host's own (a session id and a checked host name, both at most 64
    /// bytes).
    pub(crate) fn new(origin: &str, host: &str, first_seq: u64, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity.max(MAX_HEADER_BYTES));
        bytes.push(VERSION as u8);
        for name in [origin, host] {
            let len = u8::try_from(name.len()).expect("origins and host names are short");
            bytes.push(len);
            bytes.extend_from_slice(name.as_bytes());
        }
        bytes.extend_from_slice(&first_seq.to_le_bytes());
        let count_at = bytes.len();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Self {
            bytes,
            count_at,
            count: 0,
        }
    }

    /// The batch's size so far, in bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Messages in the batch.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Whether it holds [`MAX_BATCH_MESSAGES`] messages.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_BATCH_MESSAGES
    }

    /// The bytes a message adds to a batch.
    pub(crate) fn size_of(service: &str, node: &str, payload: &str) -> usize {
        ENTRY_OVERHEAD + service.len() + node.len() + payload.len()
    }

    /// Adds a message (the caller keeps the batch under [`MAX_BATCH_MESSAGES`]).
    pub(crate) fn push(
        &mut self,
        service: &str,
        node: &str,
        payload: &str,
    ) -> Result<(), Unsendable> {
        debug_assert!(!self.is_full());
        if service.len() > MAX_SERVICE_BYTES {
            return Err(Unsendable::Service);
        }
        let node_len = u8::try_from(node.len()).map_err(|_| Unsendable::Node)?;
        let payload_len = u32::try_from(payload.len()).map_err(|_| Unsendable::Payload)?;
        let service_len = service.len() as u16; // At most MAX_SERVICE_BYTES (2 KiB).
        self.bytes.extend_from_slice(&service_len.to_le_bytes());
        self.bytes.extend_from_slice(service.as_bytes());
        self.bytes.push(node_len);
        self.bytes.extend_from_slice(node.as_bytes());
        self.bytes.extend_from_slice(&payload_len.to_le_bytes());
        self.bytes.extend_from_slice(payload.as_bytes());
        self.count += 1;
        Ok(())
    }

    /// The sample's bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let count = self.count as u32; // At most MAX_BATCH_MESSAGES.
        self.bytes[self.count_at..self.count_at + 4].copy_from_slice(&count.to_le_bytes());
        self.bytes
    }
}

/// A batch as read from the wire, framed but not yet checked message by message.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    /// The sending process's session id (checked: 1 to 64 letters and digits).
    pub origin: &'a str,
    /// The sending host (checked: a valid host name).
    pub host: &'a str,
    /// The number of the first message (at least 1).
    pub first_seq: u64,
    /// The messages, in the order they were sent; 1 to [`MAX_BATCH_MESSAGES`].
    pub messages: Vec<Entry<'a>>,
}

/// One message of a [`Batch`], as it came: nothing in it is checked before [`Entry::check`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub service: &'a [u8],
    pub node: &'a [u8],
    pub payload: &'a [u8],
}

/// One message of a batch, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked<'a> {
    pub service: &'a str,
    pub node: &'a str,
    pub payload: &'a str,
}

/// Reads a sample's bytes front to back, each read bounded by what is left.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if n > self.bytes.len() {
            return Err(BatchError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BatchError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u8(&mut self) -> Result<u8, BatchError> {
        Ok(self.array::<1>()?[0])
    }

    fn with_len<const N: usize>(&mut self) -> Result<&'a [u8], BatchError> {
        let mut len = [0u8; 8];
        len[..N].copy_from_slice(&self.array::<N>()?);
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| BatchError::Truncated)?;
        self.take(len)
    }
}

impl<'a> Batch<'a> {
    /// Frames a sample: checks its version, envelope and that its messages fill it exactly.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        let mut reader = Reader { bytes };
        let version = reader.u8()?;
        if u32::from(version) != VERSION {
            return Err(BatchError::Version(version));
        }
        let origin = reader.with_len::<1>()?;
        if origin.is_empty() || origin.len() > 64 || !origin.iter().all(u8::is_ascii_alphanumeric) {
            return Err(BatchError::Origin);
        }
        let origin = std::str::from_utf8(origin).map_err(|_| BatchError::Origin)?;
        let host = std::str::from_utf8(reader.with_len::<1>()?).map_err(|_| BatchError::Host)?;
        if !is_host_name(host) {
            return Err(BatchError::Host);
        }
        let first_seq = u64::from_le_bytes(reader.array()?);
        if first_seq == 0 {
            return Err(BatchError::Sequence);
        }
        let count = u32::from_le_bytes(reader.array()?);
        if count == 0 || count as usize > MAX_BATCH_MESSAGES {
            return Err(BatchError::Count(count));
        }
        if first_seq.checked_add(u64::from(count) - 1).is_none() {
            return Err(BatchError::Sequence);
        }
        // Never more room than the bytes left could fill.
        let room = (count as usize).min(reader.bytes.len() / ENTRY_OVERHEAD);
        let mut messages = Vec::with_capacity(room);
        for _ in 0..count {
            messages.push(Entry {
                service: reader.with_len::<2>()?,
                node: reader.with_len::<1>()?,
                payload: reader.with_len::<4>()?,
            });
        }
        if !reader.bytes.is_empty() {
            return Err(BatchError::Trailing);
        }
        Ok(Batch {
            origin,
            host,
            first_seq,
            messages,
        })
    }
}

impl<'a> Entry<'a> {
    /// The message if it is one this host takes: a printable service name of at most
    /// [`MAX_SERVICE_BYTES`] bytes, a valid node name (or `api`), a payload of at most
    /// `max_payload_bytes` bytes of JSON text.
    pub(crate) fn check(&self, max_payload_bytes: usize) -> Result<Checked<'a>, MessageError> {
        let service = std::str::from_utf8(self.service).map_err(|_| MessageError::Service)?;
        if !is_service_name(service) {
            return Err(MessageError::Service);
        }
        let node = std::str::from_utf8(self.node).map_err(|_| MessageError::Node)?;
        if node != crate::names::API && check_node_name(node).is_err() {
            return Err(MessageError::Node);
        }
        let payload = checked_payload(self.payload, max_payload_bytes)?;
        Ok(Checked {
            service,
            node,
            payload,
        })
    }
}

/// A payload as text if it is at most `limit` bytes of JSON.
pub(crate) fn checked_payload(payload: &[u8], limit: usize) -> Result<&str, MessageError> {
    if payload.len() > limit {
        return Err(MessageError::TooLarge {
            size: payload.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|_| MessageError::NotText)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| MessageError::NotJson(e.to_string()))?;
    Ok(text)
}

/// A service name as the host takes one from the API: non-empty and printable; and not
/// longer than a remote text may be.
pub(crate) fn is_service_name(service: &str) -> bool {
    hivemind::names::is_service_name(service) && service.len() <= MAX_SERVICE_BYTES
}

/// Batches remembered per origin: a second copy that arrives after this many newer batches of
/// the same origin is let in again. Copies by a second path arrive milliseconds apart.
pub(crate) const RECENT_PER_ORIGIN: usize = 4096;

/// Origins remembered at once (about 100 KiB each when full): a host restarted many times,
/// or a peer inventing origins, pushes the oldest out.
pub(crate) const MAX_ORIGINS: usize = 256;

/// The recent batches of each origin (see the module's filter).
#[derive(Debug)]
pub(crate) struct Seen {
    origins: HashMap<String, Recent>,
    /// Counts admissions: when each origin was last heard of, for eviction.
    clock: u64,
    /// This process's secret seed for [`Seen::identity`].
    seed: u64,
}

#[derive(Debug)]
struct Recent {
    host: String,
    /// Identities, oldest first; the same as `set`.
    order: VecDeque<u64>,
    set: HashSet<u64, BuildHasherDefault<Identity>>,
    last_heard: u64,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            origins: HashMap::new(),
            clock: 0,
            // std's hash maps are seeded from the operating system's randomness.
            seed: std::collections::hash_map::RandomState::new().hash_one(0x6869_7665_u64),
        }
    }
}

impl Seen {
    /// The identity of a batch: a hash of every byte of it, seeded with this process's secret.
    pub(crate) fn identity(&self, batch: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(batch, self.seed)
    }

    /// Whether the batch `id` ([`Seen::identity`]) from `origin` (on `host`) is new; records
    /// it if so.
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

    fn batch(first_seq: u64, messages: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut writer = BatchWriter::new("4f2a", "manor", first_seq, 0);
        for (service, node, payload) in messages {
            writer.push(service, node, payload).unwrap();
        }
        writer.finish()
    }

    #[test]
    fn a_batch_round_trips_in_order() {
        let bytes = batch(
            17,
            &[
                ("bat-signal", "batsignal", "1"),
                ("sensors/temp", "api", "{\"c\":21.5}"),
                ("bat-signal", "batsignal", "\"two\""),
            ],
        );
        let read = Batch::parse(&bytes).unwrap();
        assert_eq!(
            (read.origin, read.host, read.first_seq),
            ("4f2a", "manor", 17)
        );
        let checked: Vec<Checked> = read
            .messages
            .iter()
            .map(|m| m.check(1024).unwrap())
            .collect();
        assert_eq!(
            checked,
            vec![
                Checked {
                    service: "bat-signal",
                    node: "batsignal",
                    payload: "1"
                },
                Checked {
                    service: "sensors/temp",
                    node: "api",
                    payload: "{\"c\":21.5}"
                },
                Checked {
                    service: "bat-signal",
                    node: "batsignal",
                    payload: "\"two\""
                },
            ]
        );
    }

    #[test]
    fn the_writer_counts_the_bytes_it_adds() {
        let mut writer = BatchWriter::new("4f2a", "manor", 1, 0);
        let before = writer.len();
        writer.push("flood", "bench", "{\"seq\":1}").unwrap();
        assert_eq!(
            writer.len() - before,
            BatchWriter::size_of("flood", "bench", "{\"seq\":1}")
        );
        assert_eq!(writer.count(), 1);
        assert!(before <= MAX_HEADER_BYTES);
    }

    #[test]
    fn what_cannot_travel_is_refused_before_it_is_written() {
        let mut writer = BatchWriter::new("4f2a", "manor", 1, 0);
        let long = "s".repeat(MAX_SERVICE_BYTES + 1);
        assert_eq!(writer.push(&long, "n", "1"), Err(Unsendable::Service));
        assert_eq!(
            writer.push("s", &"n".repeat(256), "1"),
            Err(Unsendable::Node)
        );
        assert_eq!(writer.count(), 0);
        writer.push("s", "n", "1").unwrap();
        assert!(Batch::parse(&writer.finish()).is_ok());
    }

    #[test]
    fn every_cut_of_a_batch_is_refused() {
        let bytes = batch(1, &[("a", "n", "1"), ("bb", "node", "[1,2]")]);
        for end in 0..bytes.len() {
            assert!(Batch::parse(&bytes[..end]).is_err(), "cut at {end}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Batch::parse(&longer).unwrap_err(), BatchError::Trailing);
    }

    #[test]
    fn other_versions_and_bad_envelopes_are_refused_with_the_reason() {
        let good = batch(1, &[("a", "n", "1")]);
        let mut old = good.clone();
        old[0] = 1;
        let error = Batch::parse(&old).unwrap_err();
        assert_eq!(error, BatchError::Version(1));
        assert!(error.to_string().contains("same hm version"), "{error}");
        let json = br#"{"v":1,"host":"manor"}"#;
        assert!(matches!(Batch::parse(json), Err(BatchError::Version(_))));

        let forged = |origin: &str, host: &str, seq: u64| {
            let mut writer = BatchWriter::new(origin, host, seq, 0);
            writer.push("a", "n", "1").unwrap();
            Batch::parse(&writer.finish()).map(|_| ()).unwrap_err()
        };
        assert_eq!(forged("", "manor", 1), BatchError::Origin);
        assert_eq!(forged("not an id", "manor", 1), BatchError::Origin);
        assert_eq!(forged("4f2a", "evil\nhost", 1), BatchError::Host);
        assert_eq!(forged("4f2a", "", 1), BatchError::Host);
        assert_eq!(forged("4f2a", "manor", 0), BatchError::Sequence);
        assert!(Batch::parse(&batch(u64::MAX, &[("a", "n", "1")])).is_ok());
        assert_eq!(
            Batch::parse(&batch(u64::MAX, &[("a", "n", "1"), ("a", "n", "2")])).unwrap_err(),
            BatchError::Sequence
        );

        let empty = BatchWriter::new("4f2a", "manor", 1, 0).finish();
        assert_eq!(Batch::parse(&empty).unwrap_err(), BatchError::Count(0));
    }

    #[test]
    fn a_forged_count_is_refused_without_room_kept_for_it() {
        let mut bytes = batch(1, &[("a", "n", "1")]);
        let count_at = bytes.len() - BatchWriter::size_of("a", "n", "1") - 4;
        bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Batch::parse(&bytes).unwrap_err(),
            BatchError::Count(u32::MAX)
        );
        bytes[count_at..count_at + 4].copy_from_slice(&(MAX_BATCH_MESSAGES as u32).to_le_bytes());
        assert_eq!(Batch::parse(&bytes).unwrap_err(), BatchError::Truncated);
    }

    #[test]
    fn each_message_is_checked_like_a_local_one() {
        let check = |service: &[u8], node: &[u8], payload: &[u8]| {
            Entry {
                service,
                node,
                payload,
            }
            .check(16)
            .map(|_| ())
        };
        assert_eq!(check(b"s", b"n", b"{}"), Ok(()));
        assert_eq!(check(b"", b"n", b"1"), Err(MessageError::Service));
        assert_eq!(check(b"a\nb", b"n", b"1"), Err(MessageError::Service));
        assert_eq!(check(b"\xff", b"n", b"1"), Err(MessageError::Service));
        assert_eq!(check(b"s", b"../root", b"1"), Err(MessageError::Node));
        assert_eq!(check(b"s", b"", b"1"), Err(MessageError::Node));
        assert_eq!(check(b"s", b"\xff", b"1"), Err(MessageError::Node));
        assert_eq!(check(b"s", b"api", b"1"), Ok(()));
        assert_eq!(
            check(b"s", b"n", &[b' '; 17]),
            Err(MessageError::TooLarge {
                size: 17,
                limit: 16
            })
        );
        assert_eq!(check(b"s", b"n", b"\"\xff\""), Err(MessageError::NotText));
        assert!(matches!(
            check(b"s", b"n", b"not json"),
            Err(MessageError::NotJson(_))
        ));
    }

    #[test]
    fn each_batch_is_let_in_once() {
        let mut seen = Seen::default();
        let batches: Vec<Vec<u8>> = (1..=5).map(|seq| batch(seq, &[("s", "n", "1")])).collect();
        // Two paths deliver the same stream; the second lags behind the first.
        let mut admitted = Vec::new();
        for (seq, bytes) in batches.iter().enumerate() {
            for _path in 0..2 {
                if seen.admit("4f2a", "manor", seen.identity(bytes)) {
                    admitted.push(seq + 1);
                }
            }
        }
        assert_eq!(admitted, vec![1, 2, 3, 4, 5]);
        assert!(
            !seen.admit("4f2a", "manor", seen.identity(&batches[2])),
            "a late copy stays out"
        );
        assert!(
            seen.admit("other", "tower", seen.identity(&batches[0])),
            "origins count apart"
        );
        assert_ne!(
            seen.identity(&batch(1, &[("s", "n", "1")])),
            seen.identity(&batch(1, &[("s", "n", "2")])),
            "the payload is part of the identity"
        );
        assert_ne!(
            Seen::default().identity(&batches[0]),
            seen.identity(&batches[0]),
            "each process hashes with its own seed"
        );
    }

    #[test]
    fn a_forged_batch_hides_nothing_but_its_own_copy() {
        let mut seen = Seen::default();
        // The forger guesses the next numbers and the services, not the payloads.
        for seq in 1..=100 {
            let forged = batch(seq, &[("s", "n", "\"forged\"")]);
            assert!(seen.admit("4f2a", "manor", seen.identity(&forged)));
        }
        for seq in 1..=100 {
            let real = batch(seq, &[("s", "n", "\"real\"")]);
            assert!(seen.admit("4f2a", "manor", seen.identity(&real)), "{seq}");
        }
    }

    #[test]
    fn the_filter_is_bounded() {
        let mut seen = Seen::default();
        for id in 0..(RECENT_PER_ORIGIN as u64 * 3) {
            seen.admit("4f2a", "manor", id);
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
