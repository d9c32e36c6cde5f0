//! Fuzzes the hive config parser: any text as `config/hive.toml` is parsed into a config or
//! refused with a message, never a panic; a config it accepts keeps the promises the rest of the
//! host relies on (plain node and library names, non-zero queues and limits, a usable mesh
//! section).
//!
//! Input: the bytes of the file, read as UTF-8 with invalid sequences replaced (the host reads
//! the file with `read_to_string`, which refuses invalid UTF-8 before parsing; replacing keeps
//! every input useful to the parser instead of discarding most mutations).

#![no_main]

use hivemind_host::{check_node_name, parse_config as parse};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(Path::new("/hives/fuzz"), &text) {
        Err(error) => {
            // A clear refusal: something to show the user, not an empty string.
            assert!(!format!("{error:#}").trim().is_empty(), "an empty error");
        }
        Ok(config) => {
            // Lower and upper bounds (config::BOUNDS): every number sizes an allocation or a wait.
            assert!((1..=1 << 20).contains(&config.messages.queue_capacity));
            assert!(config.messages.spin_us <= 10_000);
            assert!((1..=64 << 20).contains(&config.messages.max_payload_bytes));
            assert!(config.log.backups <= 100 && config.log.max_bytes <= 1 << 30);
            assert!((1..=65_536).contains(&config.max_streams));
            assert!(config.write_timeout >= std::time::Duration::from_millis(100));
            assert!(config.write_timeout <= std::time::Duration::from_secs(600));
            assert!(config.build_timeout >= std::time::Duration::from_millis(100));
            assert!(config.build_timeout <= std::time::Duration::from_secs(600));
            assert!((1..=1 << 20).contains(&config.mesh.queue_capacity));
            assert!((100..=600_000).contains(&config.mesh.lease_ms));
            for (name, node) in &config.nodes {
                assert!(check_node_name(name).is_ok(), "node name {name:?} accepted");
                assert!(
                    check_node_name(&node.library).is_ok(),
                    "library {:?} accepted",
                    node.library
                );
                assert!(node.queue_capacity.is_none_or(|c| (1..=1 << 20).contains(&c)));
                assert!(node.spin_us.is_none_or(|s| s <= 10_000));
                assert!(node.faults.stuck_after <= std::time::Duration::from_secs(86_400));
                let settings = node
                    .settings
                    .as_object()
                    .expect("settings are a JSON object");
                assert_eq!(
                    settings.get("enabled").and_then(|v| v.as_bool()),
                    Some(node.enabled),
                    "settings carry `enabled`"
                );
            }
            for warning in &config.warnings {
                assert!(warning.starts_with("config/hive.toml"), "{warning}");
            }
        }
    }
});
