//! The names every layer shares: what a node, a host and a sender may be called, and the names
//! that stand for senders that are not nodes. The bottom of the host's layers: it imports nothing
//! of the crate, and any module may import it.
//!
//! Guarantees:
//! - A node name is plain ASCII (letters, digits, `_`, `-`, starting with a letter or digit), so
//!   it is safe as a file name (`<name>.log`, `lib<name>.so`, `data/<name>.db`) and never equals
//!   [`API`] or [`CLI`] in a way that matters: those two are accepted as senders only where this
//!   module's [`is_sender_name`] says so, never as node names in the config.
//! - A host name is 1 to 64 letters, digits, `-`, `_` and `.` (the rule for `[mesh] host` and for
//!   every host name that arrives from the mesh).

use anyhow::{Result, bail};

/// The sending node of messages published from outside the nodes (the HTTP API, `hm send`), and
/// the asker's name of requests from the HTTP API.
pub(crate) const API: &str = "api";

/// The asker's name of requests from `hm call` (which adds `client=cli` to the query; no other
/// name can be claimed, so an HTTP client never passes for a node).
pub(crate) const CLI: &str = "cli";

/// Longest host name, in bytes.
pub(crate) const MAX_HOST_NAME: usize = 64;

/// Checks a node name: node names become file names (`<name>.log`, `lib<name>.so`), so they are
/// kept plain.
pub fn check_node_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        bail!(
            "`{name}` is not a valid node name: use letters, digits, `_` and `-`, starting with a letter or digit"
        );
    }
    Ok(())
}

/// Whether `name` may send a message or ask a request: a node name, [`API`] or [`CLI`] (the
/// mesh checks every asker it hears of with it).
#[cfg_attr(not(feature = "mesh"), allow(dead_code))]
pub(crate) fn is_sender_name(name: &str) -> bool {
    name == API || name == CLI || check_node_name(name).is_ok()
}

/// Whether `c` may appear in a host name.
pub(crate) fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Whether `name` is a valid host name: 1 to [`MAX_HOST_NAME`] letters, digits, `-`, `_` and
/// `.`.
pub(crate) fn is_host_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_HOST_NAME && name.chars().all(is_host_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_plain() {
        for good in ["batman", "bat-signal", "a_1", "9lives"] {
            assert!(check_node_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "..", "é", "a.b"] {
            let err = check_node_name(bad).unwrap_err().to_string();
            assert!(err.contains("is not a valid node name"), "{bad}: {err}");
        }
    }

    #[test]
    fn senders_are_nodes_or_the_two_outside_names() {
        assert!(is_sender_name(API) && is_sender_name(CLI) && is_sender_name("batman"));
        assert!(!is_sender_name("a b") && !is_sender_name(""));
    }

    #[test]
    fn host_names_are_bounded() {
        assert!(is_host_name("gotham-1.local"));
        assert!(is_host_name(&"h".repeat(MAX_HOST_NAME)));
        assert!(!is_host_name(&"h".repeat(MAX_HOST_NAME + 1)));
        assert!(!is_host_name("") && !is_host_name("a b") && !is_host_name("a/b"));
    }
}
