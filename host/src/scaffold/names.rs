//! The rules for hive names and node names.

use anyhow::{Result, bail};

/// Refuses a hive name that can't be one folder name, or can't sit in a TOML comment.
pub(super) fn check_hive_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the hive name is empty; give the name of the folder to make, e.g. `hm new gotham`");
    }
    if name.chars().any(std::path::is_separator) {
        bail!(
            "the hive name `{name}` contains a path separator; give a plain folder name and \
             choose where it goes with --dir"
        );
    }
    if name.chars().any(char::is_control) {
        bail!("the hive name {name:?} contains a control character (NUL, newline, ...); remove it");
    }
    if name == "." || name == ".." {
        bail!("the hive name `{name}` is not a folder name; pick another name");
    }
    Ok(())
}

/// The names of a new node, worked out from what the user typed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NodeNames {
    /// Crate, folder, config table and log name: `batsignal`, `bat_cave`.
    pub(super) name: String,
    /// The node's Rust type: `BatSignal`, `BatCave`.
    pub(super) type_name: String,
}

/// Rust keywords (strict and reserved, up to edition 2024): no crate may be named after one.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names cargo refuses or warns about: its own, and Windows' reserved file names.
const CARGO_RESERVED: &[&str] = &[
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Type names that `use hivemind::prelude::*` brings into a node's `lib.rs`; a node type of
/// the same name would shadow them and the generated code would not compile.
pub(super) const PRELUDE_TYPES: &[&str] = &[
    "AllReplies",
    "Asker",
    "Context",
    "Error",
    "Flow",
    "Message",
    "Node",
    "Reply",
    "Request",
    "RequestError",
    "RequestErrorKind",
    "Requests",
    "Result",
    "SendError",
    "SendErrorKind",
    "Service",
    "Services",
    "Store",
    "StoreError",
    "StoreErrorKind",
    "Subscriptions",
];

/// Works out a node's names from `raw` (`BatSignal`, `bat-cave`, `bat signal`), or says
/// which rule it breaks.
pub(super) fn node_names(raw: &str) -> Result<NodeNames> {
    let raw = raw.trim();
    let name: String = raw
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        bail!(
            "invalid node name `{raw}`: it must start with a letter and hold only ASCII letters, \
             digits, `_`, `-` and spaces (it becomes the crate name `{name}`, which must match \
             `^[a-z][a-z0-9_]*$`)"
        );
    }
    if KEYWORDS.contains(&name.as_str()) || CARGO_RESERVED.contains(&name.as_str()) {
        bail!(
            "invalid node name `{raw}`: `{name}` is a Rust keyword or a name cargo reserves; \
             pick another name"
        );
    }
    if name == "hivemind" {
        bail!("invalid node name `{raw}`: `hivemind` is the node API crate; pick another name");
    }
    if name == "root" {
        bail!(
            "invalid node name `{raw}`: `root` is the host's own log (logs/root.log); \
             pick another name"
        );
    }

    let type_name: String = raw
        .split([' ', '-', '_'])
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars)
        })
        .collect();
    let mut chars = type_name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if !identifier || type_name == "Self" {
        bail!("invalid node name `{raw}`: its type name `{type_name}` is not a Rust identifier");
    }
    if PRELUDE_TYPES.contains(&type_name.as_str()) {
        bail!(
            "invalid node name `{raw}`: its type `{type_name}` would clash with \
             `hivemind::prelude::{type_name}`; pick another name"
        );
    }
    Ok(NodeNames { name, type_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(raw: &str) -> (String, String) {
        let names = node_names(raw).unwrap();
        (names.name, names.type_name)
    }

    fn refused(raw: &str) -> String {
        match node_names(raw) {
            Ok(names) => panic!("`{raw}` was accepted as {names:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn node_names_follow_the_tutorial() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(names("BatSignal"), pair("batsignal", "BatSignal"));
        assert_eq!(names("batman"), pair("batman", "Batman"));
        assert_eq!(names("bat signal"), pair("bat_signal", "BatSignal"));
        assert_eq!(names("bat-cave"), pair("bat_cave", "BatCave"));
        assert_eq!(names("bat_cave"), pair("bat_cave", "BatCave"));
        assert_eq!(names("robin2"), pair("robin2", "Robin2"));
        assert_eq!(names("bat 2"), pair("bat_2", "Bat2"));
        assert_eq!(names("  alfred "), pair("alfred", "Alfred"));
        assert_eq!(names("HTTPServer"), pair("httpserver", "HTTPServer"));
    }

    #[test]
    fn bad_node_names_are_refused_with_the_rule() {
        for raw in [
            "",
            "  ",
            "2bat",
            "_bat",
            "-bat",
            "bat.signal",
            "bät",
            "bat/cave",
            "a\tb",
        ] {
            let err = refused(raw);
            assert!(err.contains("^[a-z][a-z0-9_]*$"), "{raw}: {err}");
        }
        for raw in ["test", "Self", "fn", "core", "proc-macro", "gen", "CON"] {
            let err = refused(raw);
            assert!(
                err.contains("keyword or a name cargo reserves"),
                "{raw}: {err}"
            );
        }
        assert!(refused("hivemind").contains("node API crate"));
        assert!(refused("Root").contains("root.log"));
        assert!(refused("node").contains("hivemind::prelude::Node"));
        assert!(refused("context").contains("hivemind::prelude::Context"));
    }

    #[test]
    fn prelude_types_match_the_api_prelude() {
        let lib = super::super::embedded::PLUGIN_API
            .iter()
            .find(|(path, _)| *path == "src/lib.rs")
            .unwrap()
            .1;
        let start = lib.find("pub mod prelude").unwrap();
        let block = &lib[start..start + lib[start..].find("};").unwrap()];
        let block = &block[block.find('{').unwrap() + 1..];
        let block = &block[block.find('{').unwrap() + 1..];
        let mut types: Vec<&str> = block
            .split(',')
            .map(str::trim)
            .filter(|item| item.starts_with(|c: char| c.is_ascii_uppercase()))
            .collect();
        types.sort_unstable();
        assert_eq!(types, PRELUDE_TYPES);
    }

    #[test]
    fn hive_names() {
        for good in [
            "gotham",
            "Gotham City",
            "bat-cave",
            "a\"quoted\"",
            "ünïcode",
            ".hidden",
        ] {
            check_hive_name(good).unwrap();
        }
        let err = |name: &str| format!("{:#}", check_hive_name(name).unwrap_err());
        assert!(err("").contains("empty"));
        assert!(err("a/b").contains("path separator"));
        assert!(err("a\0b").contains("control character"));
        assert!(err("a\nb").contains("control character"));
        assert!(err("..").contains("not a folder name"));
        assert!(err(".").contains("not a folder name"));
    }
}
