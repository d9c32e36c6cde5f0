//! The keys the hive knows, for the warning a misspelled one gets.
//!
//! Contract: a hive-level key the parser does not know is ignored, never refused, and never
//! silent: [`unknown_key_warning`] names the file, the line it is on and, within two edits, the
//! key that was probably meant (from [`KNOWN_KEYS`]). Node tables' own keys are free.

use super::CONFIG_FILE;

/// The hive-level keys, by section, for "did you mean" hints.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", &["hive", "log", "messages", "mesh", "data", "nodes"]),
    ("data", &["location", "max_bytes", "call_timeout_ms"]),
    (
        "mesh",
        &[
            "enabled",
            "host",
            "listen",
            "connect",
            "multicast",
            "lease_ms",
            "queue_capacity",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "forget_after_s",
        ],
    ),
    (
        "hive",
        &[
            "name",
            "bind",
            "port",
            "key",
            "max_streams",
            "write_timeout_ms",
            "hosts",
            "header_timeout_ms",
            "idle_timeout_ms",
            "max_connections",
            "max_connections_per_address",
            "max_requests_per_address",
            "ws_max_message_bytes",
            "build_timeout_ms",
        ],
    ),
    ("log", &["location", "max_bytes", "backups"]),
    (
        "messages",
        &[
            "max_payload_bytes",
            "queue_capacity",
            "spin_us",
            "check_schemas",
        ],
    ),
];

/// `config/hive.toml line 3: unknown key `hive.prot` is ignored (did you mean `port`?)`.
pub(super) fn unknown_key_warning(text: &str, path: &str) -> String {
    let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
    let header = format!("[{path}");
    let line = text
        .lines()
        .map(str::trim_start)
        .position(|line| {
            let assignment = line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            let table = line
                .strip_prefix(&header)
                .is_some_and(|rest| rest.starts_with(']') || rest.starts_with('.'));
            assignment || table
        })
        .map(|n| format!(" line {}", n + 1))
        .unwrap_or_default();
    let known = KNOWN_KEYS
        .iter()
        .find(|(name, _)| *name == section)
        .map_or(&[][..], |(_, keys)| *keys);
    let hint = known
        .iter()
        .map(|candidate| (strsim::levenshtein(candidate, key), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, candidate)| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default();
    format!("{CONFIG_FILE}{line}: unknown key `{path}` is ignored{hint}")
}

#[cfg(test)]
mod tests {
    use crate::config::DEFAULT_PORT;
    use crate::config::parse_ok;

    #[test]
    fn a_misspelled_key_is_ignored_with_a_warning_that_says_where() {
        let config = parse_ok("[hive]\nname = \"x\"\nprot = 9000\n\n[logs]\nlocation = \"x\"\n");
        assert_eq!(
            config.port, DEFAULT_PORT,
            "the misspelled key changes nothing"
        );
        assert_eq!(
            config.warnings,
            vec![
                "config/hive.toml line 3: unknown key `hive.prot` is ignored (did you mean `port`?)",
                "config/hive.toml line 5: unknown key `logs` is ignored (did you mean `log`?)",
            ]
        );
        assert!(
            parse_ok("[nodes.a]\nanything = 1\n").warnings.is_empty(),
            "node settings are free"
        );
    }
}
