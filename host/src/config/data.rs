//! `[data]`: where each node's store lives and what one store may cost. Each number has a
//! documented bound (in `super::BOUNDS`); a value outside it is refused with its range.
//!
//! | key | default | bounds | what |
//! |---|---|---|---|
//! | `location` | `"data"` | a path | the folder of the stores (`<node>.db` each), relative to the hive |
//! | `max_bytes` | 1 GiB | 64 KiB ..= 1 TiB | largest a node's store file may grow |
//! | `call_timeout_ms` | 5,000 | 1 ..= 600,000 | longest one store call may run (or wait for another caller's transaction) |

use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[data] max_bytes` unless set.
pub(super) const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// `[data] call_timeout_ms` unless set.
pub(super) const DEFAULT_CALL_TIMEOUT_MS: u64 = 5_000;

/// The nodes' stores (`[data]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataConfig {
    /// The folder holding one `<node>.db` per node, resolved against the hive root.
    pub location: PathBuf,
    /// Largest a node's store file may grow, in bytes.
    pub max_bytes: u64,
    /// Longest one store call may run, or wait for another caller's open transaction.
    pub call_timeout: Duration,
}

impl DataConfig {
    /// The defaults for a hive at `root`.
    pub fn at(root: &Path) -> Self {
        Self {
            location: root.join("data"),
            max_bytes: DEFAULT_MAX_BYTES,
            call_timeout: Duration::from_millis(DEFAULT_CALL_TIMEOUT_MS),
        }
    }
}

/// The raw `[data]` table, as read.
#[derive(Deserialize, Default)]
pub(super) struct RawData {
    location: Option<PathBuf>,
    max_bytes: Option<u64>,
    call_timeout_ms: Option<u64>,
}

pub(super) fn data_config(root: &Path, raw: RawData) -> Result<DataConfig> {
    let max_bytes = super::bounded(
        "[data]",
        "[data] max_bytes",
        raw.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
    )?;
    let call_timeout_ms = super::bounded(
        "[data]",
        "[data] call_timeout_ms",
        raw.call_timeout_ms.unwrap_or(DEFAULT_CALL_TIMEOUT_MS),
    )?;
    Ok(DataConfig {
        location: root.join(raw.location.unwrap_or_else(|| PathBuf::from("data"))),
        max_bytes,
        call_timeout: Duration::from_millis(call_timeout_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn data_is_read_defaulted_and_bounded() {
        let root = Path::new("/hive");
        let config = parse(root, "").unwrap();
        assert_eq!(config.data.location, root.join("data"));
        assert_eq!(config.data.max_bytes, 1 << 30);
        assert_eq!(config.data.call_timeout, Duration::from_secs(5));
        let config = parse(
            root,
            "[data]\nlocation = \"state\"\nmax_bytes = 65536\ncall_timeout_ms = 1\n",
        )
        .unwrap();
        assert_eq!(config.data.location, root.join("state"));
        assert_eq!(config.data.max_bytes, 65536);
        assert_eq!(config.data.call_timeout, Duration::from_millis(1));
        for (text, key) in [
            ("max_bytes = 65535", "[data] max_bytes = 65535"),
            ("max_bytes = 1099511627777", "[data] max_bytes"),
            ("call_timeout_ms = 0", "[data] call_timeout_ms = 0"),
            ("call_timeout_ms = 600001", "[data] call_timeout_ms"),
        ] {
            let error = parse(root, &format!("[data]\n{text}\n")).unwrap_err();
            let error = format!("{error:#}");
            assert!(error.contains(key), "{error}");
            assert!(error.contains("fix it in config/hive.toml"), "{error}");
        }
    }
}
