//! Ties a node's complaint about its settings to the setting in `config/hive.toml`.
//!
//! A node reads its settings with serde (`context.settings_as::<T>()`), whose errors name the
//! value and the type expected but not the key: `invalid type: string "three", expected u64`.
//! [`explain_setting_error`] finds the setting of the node's table that holds that value and
//! says its key, file and line. It never guesses: no match, no explanation.

use std::path::Path;
use toml_edit::{Document, Item, Value};

/// The value a serde "invalid type" error quotes.
#[derive(Debug, PartialEq)]
enum Quoted {
    Str(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Sequence,
    Map,
}

impl Quoted {
    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Quoted::Str(s), Value::String(v)) => v.value() == s,
            (Quoted::Integer(i), Value::Integer(v)) => v.value() == i,
            (Quoted::Float(f), Value::Float(v)) => v.value() == f,
            (Quoted::Bool(b), Value::Boolean(v)) => v.value() == b,
            (Quoted::Sequence, Value::Array(_)) => true,
            (Quoted::Map, Value::InlineTable(_)) => true,
            _ => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Quoted::Str(_) => "a string",
            Quoted::Integer(_) => "an integer",
            Quoted::Float(_) => "a number with a fraction",
            Quoted::Bool(_) => "a boolean",
            Quoted::Sequence => "an array",
            Quoted::Map => "a table",
        }
    }
}

/// Reads serde's `invalid type: <unexpected>, expected <what>`.
fn parse_error(error: &str) -> Option<(Quoted, String)> {
    let rest = &error[error.find("invalid type: ")? + "invalid type: ".len()..];
    let (unexpected, expected) = rest.split_once(", expected ")?;
    let expected = expected.lines().next()?.trim().to_owned();
    let ticked = |prefix: &str| {
        unexpected
            .strip_prefix(prefix)
            .and_then(|v| v.strip_prefix('`'))
            .and_then(|v| v.strip_suffix('`'))
            .map(str::to_owned)
    };
    let quoted = if let Some(text) = unexpected.strip_prefix("string ") {
        Quoted::Str(serde_json::from_str(text).ok()?)
    } else if let Some(n) = ticked("integer ") {
        Quoted::Integer(n.parse().ok()?)
    } else if let Some(f) = ticked("floating point ") {
        Quoted::Float(f.parse().ok()?)
    } else if let Some(b) = ticked("boolean ") {
        Quoted::Bool(b.parse().ok()?)
    } else if unexpected == "sequence" {
        Quoted::Sequence
    } else if unexpected == "map" {
        Quoted::Map
    } else {
        return None;
    };
    Some((quoted, expected))
}

/// If `error` (a node's constructor error) is serde's "invalid type" about a value of
/// `[nodes.<node>]` in the hive's `config/hive.toml`, says which setting: its key, the file,
/// the line, what it is and what the node expects.
pub(crate) fn explain_setting_error(root: &Path, node: &str, error: &str) -> Option<String> {
    let (quoted, expected) = parse_error(error)?;
    let text = std::fs::read_to_string(root.join("config/hive.toml")).ok()?;
    let document = Document::parse(text.as_str()).ok()?;
    let table = document.get("nodes")?.get(node)?.as_table_like()?;
    let mut found = Vec::new();
    for (key, item) in table.iter() {
        find(key, item, &quoted, &mut found);
    }
    let [(key, at)] = found.as_slice() else {
        return None;
    };
    let line = text[..*at].matches('\n').count() + 1;
    Some(format!(
        "setting `{key}` of node `{node}` (config/hive.toml, line {line}) is {}, but the node expects {expected}",
        quoted.kind()
    ))
}

/// Collects the dotted keys (with their byte offsets) of the values under `item` that match.
fn find(key: &str, item: &Item, quoted: &Quoted, found: &mut Vec<(String, usize)>) {
    match item {
        Item::Value(value) => {
            if quoted.matches(value)
                && let Some(span) = value.span()
            {
                found.push((key.to_owned(), span.start));
            }
            if let Value::InlineTable(table) = value {
                for (inner, value) in table.iter() {
                    find(
                        &format!("{key}.{inner}"),
                        &Item::Value(value.clone()),
                        quoted,
                        found,
                    );
                }
            }
        }
        Item::Table(table) => {
            for (inner, item) in table.iter() {
                find(&format!("{key}.{inner}"), item, quoted, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hive(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/hive.toml"), config).unwrap();
        dir
    }

    #[test]
    fn names_the_key_the_line_and_the_type_expected() {
        let dir = hive(
            "[hive]\nname = \"gotham\"\n\n[nodes.gordon]\nenabled = true\nthreshold = \"three\"\nname = \"Jim\"\n",
        );
        let said = explain_setting_error(
            dir.path(),
            "gordon",
            "the constructor of node `gordon` failed: invalid type: string \"three\", expected u64",
        )
        .unwrap();
        assert_eq!(
            said,
            "setting `threshold` of node `gordon` (config/hive.toml, line 6) is a string, but the node expects u64"
        );
        let said = explain_setting_error(
            dir.path(),
            "gordon",
            "invalid type: boolean `true`, expected a string",
        );
        assert!(
            said.unwrap().contains("`enabled`"),
            "the one boolean of the table"
        );
    }

    #[test]
    fn never_guesses() {
        let dir = hive("[nodes.gordon]\na = 3\nb = 3\n");
        let ambiguous = "invalid type: integer `3`, expected a string";
        assert_eq!(explain_setting_error(dir.path(), "gordon", ambiguous), None);
        assert_eq!(
            explain_setting_error(dir.path(), "gordon", "something else broke"),
            None
        );
        assert_eq!(
            explain_setting_error(dir.path(), "robin", ambiguous),
            None,
            "no such node table"
        );
    }
}
