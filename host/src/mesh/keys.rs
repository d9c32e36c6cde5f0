//! Names a hive's traffic on Zenoh: one key space per hive, one key chunk per name.
//!
//! | key                            | what it carries                                    |
//! |--------------------------------|----------------------------------------------------|
//! | `hivemind/<hive>/batch/<host>` | the messages a host sends, in batches (`envelope`) |
//! | `hivemind/<hive>/host/<host>`  | a liveliness token: the host is up                 |
//! | `hivemind/<hive>/view/<host>`  | a queryable: the host's nodes and their counters   |
//! | `hivemind/<hive>/ask/<host>`   | a queryable: requests to the host's nodes          |
//!
//! Hive, host and service names become single key chunks: ASCII letters, digits, `-`, `_`, `.`
//! and `~` stay as they are, every other byte is written `%XX`. So `bat-signal-main` travels as
//! itself, `sensors/temp` as `sensors%2Ftemp`, and no name can reach into another's key space
//! (`*`, `$`, `#`, `?` and `/` all have meanings in Zenoh key expressions).
//!
//! Mesh format 1 put each message on `hivemind/<hive>/msg/<service>`; a host still listens
//! there only to refuse (and count) what an older hm sends.

/// The keys of one hive.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The key space of hive `hive`.
    pub(crate) fn new(hive: &str) -> Self {
        Self {
            prefix: format!("hivemind/{}", encode(hive)),
        }
    }

    /// Where `host` puts its batches of messages.
    pub(crate) fn batch(&self, host: &str) -> String {
        format!("{}/batch/{}", self.prefix, encode(host))
    }

    /// Every host's batches.
    pub(crate) fn all_batches(&self) -> String {
        format!("{}/batch/*", self.prefix)
    }

    /// The host a batch key names; `None` for a key outside this hive's batches or one that
    /// is not an encoded name.
    pub(crate) fn batch_host_of(&self, key: &str) -> Option<String> {
        let chunk = key.strip_prefix(&self.prefix)?.strip_prefix("/batch/")?;
        decode(chunk)
    }

    /// Where mesh format 1 put every service's messages (only listened to, to refuse them).
    pub(crate) fn format_1_messages(&self) -> String {
        format!("{}/msg/*", self.prefix)
    }

    /// `host`'s liveliness token.
    pub(crate) fn host(&self, host: &str) -> String {
        format!("{}/host/{}", self.prefix, encode(host))
    }

    /// Every host's liveliness token.
    pub(crate) fn all_hosts(&self) -> String {
        format!("{}/host/*", self.prefix)
    }

    /// The host a liveliness token names.
    pub(crate) fn host_of(&self, key: &str) -> Option<String> {
        let chunk = key.strip_prefix(&self.prefix)?.strip_prefix("/host/")?;
        decode(chunk)
    }

    /// `host`'s view queryable.
    pub(crate) fn view(&self, host: &str) -> String {
        format!("{}/view/{}", self.prefix, encode(host))
    }

    /// The host a view key names.
    pub(crate) fn view_host_of(&self, key: &str) -> Option<String> {
        let chunk = key.strip_prefix(&self.prefix)?.strip_prefix("/view/")?;
        decode(chunk)
    }

    /// Every host's view.
    pub(crate) fn all_views(&self) -> String {
        format!("{}/view/*", self.prefix)
    }

    /// `host`'s request queryable (one per host; the request's name and node travel in the
    /// query's envelope, see `mesh::requests`).
    pub(crate) fn ask(&self, host: &str) -> String {
        format!("{}/ask/{}", self.prefix, encode(host))
    }
}

/// `name` as one key chunk (see the module's rules).
pub(crate) fn encode(name: &str) -> String {
    let mut chunk = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            chunk.push(byte as char);
        } else {
            chunk.push_str(&format!("%{byte:02X}"));
        }
    }
    chunk
}

/// The name a chunk made by [`encode`] stands for; `None` if it is not one.
pub(crate) fn decode(chunk: &str) -> Option<String> {
    let bytes = chunk.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                name.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'/' => return None,
            byte => {
                name.push(byte);
                i += 1;
            }
        }
    }
    if name.is_empty() {
        return None;
    }
    String::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_one_chunk() {
        for name in [
            "bat-signal-main",
            "sensors/temp",
            "a*b",
            "$x",
            "q?#",
            "100%",
            "Gotham's 蝙蝠 🦇",
            "with space",
            "..",
        ] {
            let chunk = encode(name);
            assert!(!chunk.contains(['/', '*', '$', '#', '?']), "{chunk}");
            assert_eq!(decode(&chunk).as_deref(), Some(name), "{chunk}");
        }
        assert_eq!(encode("bat-signal-main"), "bat-signal-main");
        assert_eq!(encode("sensors/temp"), "sensors%2Ftemp");
    }

    #[test]
    fn keys_are_per_hive() {
        let gotham = Keys::new("gotham");
        assert_eq!(gotham.batch("manor"), "hivemind/gotham/batch/manor");
        assert_eq!(gotham.all_batches(), "hivemind/gotham/batch/*");
        assert_eq!(gotham.format_1_messages(), "hivemind/gotham/msg/*");
        assert_eq!(gotham.host("manor"), "hivemind/gotham/host/manor");
        assert_eq!(gotham.view("manor"), "hivemind/gotham/view/manor");
        assert_eq!(gotham.ask("man or"), "hivemind/gotham/ask/man%20or");
        assert_eq!(
            gotham
                .batch_host_of("hivemind/gotham/batch/man%20or")
                .as_deref(),
            Some("man or")
        );
        assert_eq!(gotham.batch_host_of("hivemind/metropolis/batch/x"), None);
        assert_eq!(gotham.batch_host_of("hivemind/gotham/host/x"), None);
        assert_eq!(
            gotham.host_of("hivemind/gotham/host/manor").as_deref(),
            Some("manor")
        );
        assert_eq!(
            Keys::new("my hive").all_views(),
            "hivemind/my%20hive/view/*"
        );
    }

    #[test]
    fn broken_chunks_are_refused() {
        for chunk in ["", "%", "%4", "%zz", "a/b", "%FF"] {
            assert_eq!(decode(chunk), None, "{chunk}");
        }
    }
}
