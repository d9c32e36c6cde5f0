//! Keeping secrets out of everything the hive says: errors, events, logs and API answers.
//!
//! Guarantees:
//! - [`Secret`] (the hive key) never prints: its `Debug` and `Display` say `<redacted>`.
//! - [`redact_source_error`] takes an error about a config text and removes every secret value
//!   of that text from it: the TOML parser quotes the offending line, and a mistake on the key's
//!   line would otherwise put the key into `/api/events`, the dashboard's feed, `root.log` and
//!   the terminal. A secret line is `key` under `[hive]`, or any key whose name says it is
//!   secret ([`is_secret_name`]: it contains `key`, `token`, `secret`, `passw`), in any table.
//! - [`redact_settings`] gives a node's settings as the API shows them: values under secret
//!   names (at any depth) replaced with `"<redacted>"`. The node itself gets the real ones.
//! - [`check_exposure`] and [`check_live_change`] keep the exposure rule (no hive beyond
//!   loopback without a key) at start and for every config applied while the hive runs.

use super::HiveConfig;
use std::fmt;

/// What a secret is replaced with wherever the hive shows it.
pub(crate) const REDACTED: &str = "<redacted>";

/// The hive key: compared and sent, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for comparing it or sending it (`hm send`).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Secret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Whether a setting's name says it holds a secret: it contains `key`, `token`, `secret` or
/// `passw` (password, passwd), in any case. Over-matching (`keyboard`) only hides a value.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "token", "secret", "passw"]
        .iter()
        .any(|word| name.contains(word))
}

/// A node's settings as the API shows them: every value under a secret name replaced.
pub(crate) fn redact_settings(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(name, value)| {
                let shown = if is_secret_name(name) {
                    serde_json::Value::String(REDACTED.to_owned())
                } else {
                    redact_settings(value)
                };
                (name.clone(), shown)
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.iter().map(redact_settings).collect(),
        other => other.clone(),
    }
}

/// The secret lines of a config text: for each, its number (from 1) and the value's text (what
/// follows `=`, possibly over several lines for a multi-line string or array).
fn secret_lines(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut table = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at].trim();
        if line.starts_with('[') {
            table = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned();
            at += 1;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            at += 1;
            continue;
        };
        let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
        let last = name.rsplit('.').next().unwrap_or(name).trim();
        let secret = is_secret_name(last) || (table == "hive" && last == "key");
        if !secret {
            at += 1;
            continue;
        }
        // The value may go on over several lines: a multi-line string, or an array or table
        // whose brackets close later.
        let mut span = vec![(at + 1, value.to_owned())];
        let mut open = Unclosed::after(value);
        while open.is_open() && at + 1 < lines.len() {
            at += 1;
            open = open.then(lines[at]);
            span.push((at + 1, lines[at].to_owned()));
        }
        found.extend(span);
        at += 1;
    }
    found
}

/// What a value left open at the end of a line.
#[derive(Clone, Copy)]
enum Unclosed {
    Nothing,
    String(&'static str),
    Brackets(i32),
}

impl Unclosed {
    fn after(value: &str) -> Self {
        Self::Nothing.then(value)
    }

    fn is_open(self) -> bool {
        !matches!(self, Unclosed::Nothing)
    }

    /// The state after one more line of the value.
    fn then(self, line: &str) -> Self {
        match self {
            Unclosed::String(quote) => {
                if line.contains(quote) {
                    Unclosed::Nothing
                } else {
                    self
                }
            }
            Unclosed::Nothing | Unclosed::Brackets(_) => {
                let mut depth = match self {
                    Unclosed::Brackets(depth) => depth,
                    _ => 0,
                };
                let trimmed = line.trim_start();
                for quote in ["\"\"\"", "'''"] {
                    if depth == 0 && trimmed.starts_with(quote) && !trimmed[3..].contains(quote) {
                        return Unclosed::String(quote);
                    }
                }
                let mut in_string: Option<char> = None;
                for c in line.chars() {
                    match (in_string, c) {
                        (None, '"' | '\'') => in_string = Some(c),
                        (Some(q), c) if c == q => in_string = None,
                        (None, '[' | '{') => depth += 1,
                        (None, ']' | '}') => depth -= 1,
                        (None, '#') => break,
                        _ => {}
                    }
                }
                if depth > 0 {
                    Unclosed::Brackets(depth)
                } else {
                    Unclosed::Nothing
                }
            }
        }
    }
}

/// `message` (an error about the config `text`) with every secret value of `text` removed: the
/// lines the parser quotes (`2 | key = "..."`) lose their value, and each secret value found
/// elsewhere in the message is replaced (a value under 4 characters only where it is quoted, as
/// in ``invalid type: integer `12` ``: anywhere, it would also hit line numbers).
pub(crate) fn redact_source_error(text: &str, message: &str) -> String {
    let secrets = secret_lines(text);
    if secrets.is_empty() {
        return message.to_owned();
    }
    let mut out: Vec<String> = Vec::new();
    for line in message.lines() {
        out.push(redact_quoted_line(line, &secrets));
    }
    let mut redacted = out.join("\n");
    if message.ends_with('\n') {
        redacted.push('\n');
    }
    let mut values: Vec<String> = Vec::new();
    for (_, value) in &secrets {
        let raw = value.trim().trim_end_matches(',').trim();
        let raw = raw.split(" #").next().unwrap_or(raw).trim();
        values.push(raw.to_owned());
        values.push(raw.trim_matches(|c| c == '"' || c == '\'').to_owned());
    }
    values.retain(|v| !v.is_empty());
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        if value.chars().count() >= 4 {
            redacted = redacted.replace(&value, REDACTED);
        } else {
            // A short value only where the parser quotes one (`invalid type: integer `12``).
            for quoted in [
                format!("`{value}`"),
                format!("\"{value}\""),
                format!("'{value}'"),
            ] {
                redacted = redacted.replace(&quoted, &format!("`{REDACTED}`"));
            }
        }
    }
    redacted
}

/// One line of a parser's message: a quoted source line (`12 | text`) that is a secret line
/// keeps what precedes the value (`key =`) and loses the rest.
fn redact_quoted_line(line: &str, secrets: &[(usize, String)]) -> String {
    let Some((number, rest)) = line.split_once('|') else {
        return line.to_owned();
    };
    let Ok(number) = number.trim().parse::<usize>() else {
        return line.to_owned();
    };
    let Some((_, value)) = secrets.iter().find(|(n, _)| *n == number) else {
        return line.to_owned();
    };
    let kept = match rest.find(value.as_str()) {
        Some(at) if !value.trim().is_empty() => &rest[..at],
        _ => "",
    };
    format!("{number} |{} {REDACTED}", kept.trim_end())
}

/// Refuses a config that would expose the hive: an empty key, or a bind beyond loopback with
/// no key. The error says how to fix it and suggests a fresh random key.
pub(crate) fn check_exposure(config: &HiveConfig) -> Result<(), String> {
    if config.key.as_deref() == Some("") {
        return Err(format!(
            "[hive] key in config/hive.toml is empty: set it to a long random string, for example key = \"{}\", or remove it",
            fresh_key()
        ));
    }
    if !config.bind.is_loopback() && config.key.is_none() {
        return Err(format!(
            "the hive would listen on {}, beyond this machine, with no hive key: anyone who reaches it could read its settings, logs and messages, publish and switch nodes.\nhelp: add a key under [hive] in config/hive.toml, for example\n  key = \"{}\"\nand send it with each request as the header `X-Hive-Key` (hm send and hm list do so; the dashboard asks for it once); or bind to 127.0.0.1",
            config.bind,
            fresh_key()
        ));
    }
    Ok(())
}

/// Whether `new` may replace `old` while the hive runs. The address does not change until `hm`
/// restarts, so a hive that was bound beyond loopback (or will be) keeps needing a key: a
/// config that removes or empties it is refused, and the hive keeps the old config (and key).
pub(crate) fn check_live_change(old: &HiveConfig, new: &HiveConfig) -> Result<(), String> {
    let mut effective = new.clone();
    if !old.bind.is_loopback() {
        effective.bind = old.bind;
    }
    check_exposure(&effective).map_err(|reason| {
        format!(
            "SECURITY: {reason}\nThe change to config/hive.toml is not applied: the hive keeps its running config and its old key until the file is fixed (or until a restart, which refuses the keyless config)."
        )
    })
}

/// What a live change from `old` to `new` (already allowed by [`check_live_change`]) takes away
/// from the hive's protection, one `SECURITY:` sentence each, with what it means and the fix:
/// the key removed (changes through the API need none any more), or names added to
/// `[hive] hosts` (pages reached by those names may use the hive).
pub(crate) fn lowered_protection(old: &HiveConfig, new: &HiveConfig) -> Vec<String> {
    let mut lowered = Vec::new();
    if old.key.is_some() && new.key.is_none() {
        lowered.push(
            "SECURITY: [hive] key was removed from config/hive.toml while the hive runs, and the change is applied: from now on, publishing, requests and switching nodes through the API need no key, so any program or user on this machine can do them. If that was not meant, put the key back under [hive] (it applies at once)".to_owned(),
        );
    }
    let added: Vec<&str> = new
        .web
        .hosts
        .iter()
        .filter(|h| !old.web.hosts.contains(h))
        .map(String::as_str)
        .collect();
    if !added.is_empty() {
        lowered.push(format!(
            "SECURITY: [hive] hosts now also lists {}: the hive answers to pages reached by those names. If that was not meant, remove them from [hive] hosts in config/hive.toml",
            added.join(", ")
        ));
    }
    lowered
}

/// A random 128-bit key in hex, for an error message to suggest.
pub(crate) fn fresh_key() -> String {
    hex(&random_bytes::<16>())
}

/// `N` random bytes from the kernel (`/dev/urandom`).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read as _;
    let mut bytes = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: mix the clock and the process id (only ever a fallback).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = (nanos ^ u128::from(std::process::id())).to_le_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seed[i % seed.len()].wrapping_add(i as u8);
        }
    }
    bytes
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> HiveConfig {
        super::super::parse(Path::new("/hives/gotham"), text).unwrap()
    }

    #[test]
    fn secret_names() {
        for name in [
            "key",
            "api_key",
            "API_TOKEN",
            "client-secret",
            "password",
            "db_passwd",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["enabled", "interval_secs", "queue_capacity", "host"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn settings_hide_secret_values_at_any_depth() {
        let settings = serde_json::json!({
            "enabled": true, "api_token": "t0k3n",
            "db": {"user": "bruce", "password": "alfred"},
            "list": [{"secret": 1}]
        });
        let shown = redact_settings(&settings);
        assert_eq!(shown["enabled"], true);
        assert_eq!(shown["api_token"], REDACTED);
        assert_eq!(shown["db"]["user"], "bruce");
        assert_eq!(shown["db"]["password"], REDACTED);
        assert_eq!(shown["list"][0]["secret"], REDACTED);
        assert!(!shown.to_string().contains("alfred"));
    }

    #[test]
    fn a_parse_error_on_the_key_line_does_not_show_the_key() {
        for text in [
            "[hive]\nkey = \"hunter2-the-key\n",
            "[hive]\nkey = hunter2-the-key\n",
            "[hive]\nname = \"x\"\nkey = \"hunter2-the-key\" junk\n",
            "[hive]\nkey = 'hunter2-the-key\n",
            "[nodes.a]\napi_token = \"\"\"hunter2\nthe-key\n",
            "[nodes.a]\nsecrets = [\"hunter2-the-key\",\n  oops\n]\n",
        ] {
            let error = format!(
                "{:#}",
                super::super::parse(Path::new("/h"), text).unwrap_err()
            );
            assert!(!error.contains("hunter2"), "{text:?} gave:\n{error}");
            assert!(!error.contains("the-key"), "{text:?} gave:\n{error}");
            assert!(error.contains("line"), "{error}");
        }
        // A mistake elsewhere keeps its quoted line.
        let error = format!(
            "{:#}",
            super::super::parse(
                Path::new("/h"),
                "[hive]\nkey = \"k3y-value\"\nport = 94 76\n"
            )
            .unwrap_err()
        );
        assert!(error.contains("port = 94 76"), "{error}");
        assert!(!error.contains("k3y-value"), "{error}");
    }

    #[test]
    fn the_key_never_prints() {
        let config = config("[hive]\nkey = \"hunter2-the-key\"\n");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.key.as_deref(), Some("hunter2-the-key"));
    }

    #[test]
    fn a_hive_beyond_loopback_needs_a_key() {
        assert!(check_exposure(&config("")).is_ok());
        assert!(check_exposure(&config("[hive]\nbind = \"::1\"\n")).is_ok());
        let open = check_exposure(&config("[hive]\nbind = \"0.0.0.0\"\n")).unwrap_err();
        assert!(
            open.contains("0.0.0.0") && open.contains("key = \""),
            "{open}"
        );
        assert!(check_exposure(&config("[hive]\nbind = \"0.0.0.0\"\nkey = \"k\"\n")).is_ok());
        assert!(check_exposure(&config("[hive]\nkey = \"\"\n")).is_err());
    }

    #[test]
    fn a_live_config_cannot_drop_the_key_of_a_hive_beyond_loopback() {
        let keyed = config("[hive]\nbind = \"0.0.0.0\"\nkey = \"k\"\n");
        let unkeyed = config("[hive]\nbind = \"0.0.0.0\"\n");
        let back_home = config("[hive]\nbind = \"127.0.0.1\"\n");
        let error = check_live_change(&keyed, &unkeyed).unwrap_err();
        assert!(error.contains("old key"), "{error}");
        // Moving the bind back takes a restart: until then the key stays required.
        assert!(check_live_change(&keyed, &back_home).is_err());
        assert!(check_live_change(&keyed, &keyed).is_ok());
        assert!(check_live_change(&config(""), &config("")).is_ok());
        assert!(check_live_change(&config(""), &config("[hive]\nkey = \"\"\n")).is_err());
        assert!(error.starts_with("SECURITY: "), "{error}");
        // On loopback the key may go, but loudly.
        let local = config("[hive]\nkey = \"k\"\n");
        assert!(check_live_change(&local, &config("")).is_ok());
        let lowered = lowered_protection(&local, &config(""));
        assert_eq!(lowered.len(), 1);
        assert!(lowered[0].starts_with("SECURITY: [hive] key was removed"));
        assert!(lowered_protection(&local, &local).is_empty());
        assert!(lowered_protection(&config(""), &local).is_empty());
        let named = config("[hive]\nkey = \"k\"\nhosts = [\"gotham.local\"]\n");
        assert!(lowered_protection(&local, &named)[0].contains("gotham.local"));
        assert!(lowered_protection(&named, &local).is_empty());
    }

    #[test]
    fn suggested_keys_differ() {
        let (a, b) = (fresh_key(), fresh_key());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
