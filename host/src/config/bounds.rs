//! The bounds of every number `config/hive.toml` may hold, and the one check that applies them.
//!
//! Contract: [`BOUNDS`] lists each numeric key with its least and greatest value and why;
//! [`bounded`] refuses a value outside them with the key, the range, the reason and where to
//! fix it, before anything is applied. Every numeric key of every table is checked here (the
//! web server's keys through `web.rs`), so no number from the file sizes an allocation or a
//! wait unchecked.

use super::CONFIG_FILE;
use anyhow::{Result, bail};

/// The bounds of every number `config/hive.toml` may hold, as `(key, least, most, why)`. A value
/// outside them is refused with the key, the bound and the reason, before anything is applied:
/// each number sizes something the host allocates or waits on.
pub(crate) const BOUNDS: &[(&str, u64, u64, &str)] = &[
    (
        "[hive] max_streams",
        1,
        65_536,
        "each live connection holds a file descriptor",
    ),
    (
        "[hive] write_timeout_ms",
        100,
        600_000,
        "a web client is cut off after at most 10 minutes of not reading",
    ),
    (
        "[hive] build_timeout_ms",
        100,
        600_000,
        "a node's constructor gets at most 10 minutes",
    ),
    (
        "[log] max_bytes",
        0,
        1 << 30,
        "0: never rotate; else at least 4096, at most 1 GiB",
    ),
    (
        "[log] backups",
        0,
        100,
        "each rotation renames every backup",
    ),
    (
        "[messages] max_payload_bytes",
        1,
        64 << 20,
        "every payload is held in memory, at most 64 MiB",
    ),
    (
        "[data] max_bytes",
        64 << 10,
        1 << 40,
        "a node's store file: at least 64 KiB (16 pages), at most 1 TiB",
    ),
    (
        "[data] call_timeout_ms",
        1,
        600_000,
        "one store call waits at most 10 minutes",
    ),
    (
        "queue_capacity",
        1,
        1 << 20,
        "a queue's room is allocated when it is made",
    ),
    (
        "spin_us",
        0,
        10_000,
        "a node's thread polls a core for at most 10 ms before it sleeps",
    ),
    ("stuck_after_ms", 1, 86_400_000, "at most a day"),
    (
        "overflow_wait_ms",
        0,
        60_000,
        "a publisher waits at most a minute for room",
    ),
    ("max_subscription_panics", 0, u32::MAX as u64, "a count"),
    (
        "[hive] header_timeout_ms",
        100,
        300_000,
        "a request's head arrives within 5 minutes at most",
    ),
    (
        "[hive] idle_timeout_ms",
        1_000,
        3_600_000,
        "an idle connection is closed within an hour at most",
    ),
    (
        "[hive] max_connections",
        1,
        65_536,
        "each connection holds a file descriptor",
    ),
    (
        "[hive] max_connections_per_address",
        1,
        65_536,
        "each connection holds a file descriptor",
    ),
    (
        "[hive] max_requests_per_address",
        1,
        65_536,
        "each request in hand holds a connection",
    ),
    (
        "[hive] ws_max_message_bytes",
        125,
        1 << 20,
        "a close frame needs 125 bytes; clients send nothing larger",
    ),
    (
        "[mesh] lease_ms",
        100,
        600_000,
        "a silent host is shown gone within 10 minutes at most",
    ),
    (
        "[mesh] queue_capacity",
        1,
        1 << 20,
        "the mesh's outgoing queue is allocated when it is made",
    ),
    (
        "[mesh] forget_after_s",
        1,
        604_800,
        "a gone host is listed for at most a week",
    ),
];

/// Checks `value` of `key` (`where_` is the table, for the message) against [`BOUNDS`].
pub(super) fn bounded(where_: &str, key: &str, value: u64) -> Result<u64> {
    let (name, least, most, why) = BOUNDS
        .iter()
        .find(|(name, ..)| *name == key)
        .copied()
        .unwrap_or((key, 0, u64::MAX, ""));
    if value < least || value > most {
        let shown = if name.starts_with('[') {
            name.to_owned()
        } else {
            format!("{where_} {name}")
        };
        bail!(
            "{shown} = {value} is out of bounds: it must be from {least} to {most} ({why}); fix it in {CONFIG_FILE}"
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use crate::config::{HiveConfig, parse, parse_err, parse_ok};
    use std::path::Path;

    #[test]
    fn every_number_has_an_upper_bound_named_in_the_error() {
        let cases = [
            (
                "[messages]\nqueue_capacity = 1000000000000\n",
                "[messages] queue_capacity",
            ),
            (
                "[messages]\nqueue_capacity = 4611686018427387904\n",
                "[messages] queue_capacity",
            ),
            (
                "[nodes.a]\nqueue_capacity = 1000000000000\n",
                "[nodes.a] queue_capacity",
            ),
            (
                "[messages]\nmax_payload_bytes = 1000000000000\n",
                "[messages] max_payload_bytes",
            ),
            ("[messages]\nspin_us = 100000000\n", "[messages] spin_us"),
            ("[nodes.a]\nspin_us = 100000000\n", "[nodes.a] spin_us"),
            ("[log]\nbackups = 4294967295\n", "[log] backups"),
            ("[log]\nmax_bytes = 100\n", "[log] max_bytes"),
            ("[log]\nmax_bytes = 1000000000000\n", "[log] max_bytes"),
            (
                "[nodes.a]\nstuck_after_ms = 100000000000\n",
                "[nodes.a] stuck_after_ms",
            ),
            (
                "[nodes.a]\noverflow = \"block\"\noverflow_wait_ms = 100000000\n",
                "overflow_wait_ms",
            ),
            ("[mesh]\nlease_ms = 100000000000\n", "[mesh] lease_ms"),
            (
                "[mesh]\nqueue_capacity = 100000000000\n",
                "[mesh] queue_capacity",
            ),
            ("[hive]\nmax_streams = 100000000\n", "[hive] max_streams"),
            (
                "[hive]\nwrite_timeout_ms = 100000000000\n",
                "[hive] write_timeout_ms",
            ),
            (
                "[hive]\nbuild_timeout_ms = 100000000000\n",
                "[hive] build_timeout_ms",
            ),
            ("[hive]\nbuild_timeout_ms = 1\n", "[hive] build_timeout_ms"),
        ];
        for (text, key) in cases {
            let error = parse_err(text);
            assert!(
                error.contains(key) && error.contains("out of bounds") && error.contains(" to "),
                "{text:?} gave {error}"
            );
        }
        // The bounds themselves are accepted.
        let config = parse_ok(
            "[hive]\nbuild_timeout_ms = 600000\n[log]\nbackups = 100\nmax_bytes = 0\n[messages]\nqueue_capacity = 1048576\n",
        );
        assert_eq!(config.build_timeout.as_secs(), 600);
        assert_eq!(parse_ok("").build_timeout.as_millis(), 10_000);
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        // Any number under any numeric key: refused, or accepted within its bounds.
        #[test]
        fn any_number_is_refused_or_within_bounds(
            table in proptest::sample::select(vec!["hive", "log", "messages", "mesh", "nodes.a"]),
            key in proptest::sample::select(vec![
                "max_streams", "write_timeout_ms", "build_timeout_ms", "max_bytes", "backups",
                "max_payload_bytes", "queue_capacity", "spin_us", "stuck_after_ms",
                "overflow_wait_ms", "max_subscription_panics", "lease_ms",
            ]),
            value in proptest::prop_oneof![0u64..200_000, proptest::num::u64::ANY.prop_map(|v| v >> 1)],
        ) {
            let text = format!("[{table}]\n{key} = {value}\n");
            if let Ok(config) = parse(Path::new("/hives/fuzz"), &text) {
                check_bounds(&config);
            }
        }
    }

    /// The upper bounds every accepted config keeps (the fuzz target checks the same).
    fn check_bounds(config: &HiveConfig) {
        assert!((1..=1 << 20).contains(&config.messages.queue_capacity));
        assert!(config.messages.spin_us <= 10_000);
        assert!((1..=64 << 20).contains(&config.messages.max_payload_bytes));
        assert!(config.log.backups <= 100 && config.log.max_bytes <= 1 << 30);
        assert!((1..=65_536).contains(&config.max_streams));
        assert!(config.write_timeout.as_millis() <= 600_000);
        assert!(config.build_timeout.as_millis() <= 600_000);
        assert!(config.mesh.lease_ms <= 600_000 && config.mesh.queue_capacity <= 1 << 20);
        for node in config.nodes.values() {
            assert!(
                node.queue_capacity
                    .is_none_or(|c| (1..=1 << 20).contains(&c))
            );
            assert!(node.spin_us.is_none_or(|s| s <= 10_000));
            assert!(node.faults.stuck_after.as_millis() <= 86_400_000);
        }
    }
}
