//! Other hosts' batches into this host's bus.
//!
//! Guarantees: a batch is checked (its envelope, its key's host, its mesh format) and let in
//! once (copies arriving by a second path are dropped and counted); each message is checked
//! like a local one, a bad one refused and counted while the rest of its batch gets in;
//! nothing is kept for what is refused, and what is logged of the wire is cut and escaped.

use super::Shared;
use crate::bus::{Bus, Incoming};
use crate::mesh::envelope::{Batch, BatchError};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use zenoh::sample::{Sample, SampleKind};

/// A batch from another host: check its envelope, let each batch in once, check each message
/// like a local one and hand those that pass to the bus in one go. Every check costs at most
/// one pass over what arrived; nothing is kept for a refused batch or message.
pub(super) fn receive(shared: &Shared, bus: &Bus, sample: &Sample) {
    if sample.kind() != SampleKind::Put {
        return;
    }
    let key = sample.key_expr().as_str();
    // Zenoh refuses samples beyond `max_message_size` (see `zenoh_config`); each payload is
    // then held to the hive's own, smaller limit below.
    let Some(key_host) = shared.keys.batch_host_of(key) else {
        return refuse_in(shared, key, "its key is not an encoded host name");
    };
    let bytes = sample.payload().to_bytes();
    let batch = match Batch::parse(&bytes) {
        Ok(batch) => batch,
        Err(error) => return refuse_in(shared, key, &error.to_string()),
    };
    if batch.origin == shared.origin {
        return;
    }
    if batch.host != key_host {
        return refuse_in(shared, key, "its envelope names another host than its key");
    }
    if batch.host == shared.host && !shared.warned_same_name.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "another hm on the mesh is also named `{}`: give each host its own [mesh] host in config/hive.toml",
            shared.host
        );
    }
    let count = batch.messages.len() as u64;
    {
        let mut seen = shared.seen.lock();
        let id = seen.identity(&bytes);
        if !seen.admit(batch.origin, batch.host, id) {
            shared
                .counters
                .duplicates
                .fetch_add(count, Ordering::Relaxed);
            return;
        }
    }
    let host: Arc<str> = batch.host.into();
    let mut incoming = Vec::with_capacity(batch.messages.len());
    for (i, entry) in batch.messages.iter().enumerate() {
        // Within u64: `Batch::parse` checked the batch's last number.
        let seq = batch.first_seq.wrapping_add(i as u64);
        let message = match entry.check(shared.max_payload_bytes) {
            Ok(message) => message,
            Err(error) => {
                refuse_in(shared, key, &format!("its message number {seq}: {error}"));
                continue;
            }
        };
        incoming.push(Incoming {
            service: message.service,
            node: message.node,
            payload: message.payload,
        });
    }
    shared
        .counters
        .received
        .fetch_add(incoming.len() as u64, Ordering::Relaxed);
    bus.inject_all(&host, incoming);
}

/// A sample on mesh format 1's keys: an older hm (or a peer imitating one), refused.
pub(super) fn refuse_format_1(shared: &Shared, sample: &Sample) {
    if sample.kind() == SampleKind::Put {
        refuse_in(
            shared,
            sample.key_expr().as_str(),
            &BatchError::Version(1).to_string(),
        );
    }
}

fn refuse_in(shared: &Shared, key: &str, reason: &str) {
    let refused = shared.counters.rejected.fetch_add(1, Ordering::Relaxed) + 1;
    if refused.is_power_of_two() {
        // The key came from the wire: written escaped, it cannot forge a line.
        tracing::warn!(
            "refused a message on {:?} from the mesh ({refused} so far): {reason}",
            cut_for_log(key)
        );
    }
}

/// At most 200 bytes of a text from the wire, for a log line.
pub(super) fn cut_for_log(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
