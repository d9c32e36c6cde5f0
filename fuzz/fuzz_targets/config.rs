//! Fuzzes the hive config parser: any text as `config/hive.toml` is parsed into a config or
//! refused with a message, never a panic; a config it accepts keeps the promises the rest of the
//! host relies on (plain node and library names, non-zero queues and limits, a usable mesh
//! section).
//!
//! Input: the bytes of the file, read as UTF-8 with invalid sequences replaced (the host reads
//! the file with `read_to_string`, which refuses invalid UTF-8 before parsing; replacing keeps
//! every input useful to the parser instead of discarding most mutations).

#![no_main]

use hivemind_host::config::{check_node_name, parse};
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
            assert!(config.messages.queue_capacity >= 1);
            assert!(config.max_streams >= 1);
            assert!(config.write_timeout >= std::time::Duration::from_millis(100));
            assert!(config.mesh.queue_capacity >= 1);
            assert!(config.mesh.lease_ms >= 100);
            for (name, node) in &config.nodes {
                assert!(check_node_name(name).is_ok(), "node name {name:?} accepted");
                assert!(
                    check_node_name(&node.library).is_ok(),
                    "library {:?} accepted",
                    node.library
                );
                assert_ne!(node.queue_capacity, Some(0));
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
