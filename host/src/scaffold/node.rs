//! `hm create_node`: renders the node template into a hive and registers the new crate.

use super::embedded::{TEMPLATE_CARGO_TOML, TEMPLATE_LIB_RS};
use super::files::{read, replace, write_new};
use super::hive::CONFIG_FILE;
use super::names::node_names;
use anyhow::{Context as _, Result, anyhow, bail};
use std::fs;
use std::path::{Path, PathBuf};
use toml_edit::{Array, DocumentMut, Item, RawString, Table, Value};

/// A node crate that [`create_node`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewNode {
    /// Crate, folder, `[nodes.NAME]` table and log name, e.g. `batsignal`.
    pub name: String,
    /// The node's Rust type, e.g. `BatSignal`.
    pub type_name: String,
    /// The crate's folder: `hive_root` as given, joined with `nodes/<name>`.
    pub dir: PathBuf,
}

/// Adds node `name` to the hive whose root is `hive_root`; returns the new crate's directory.
///
/// `name` may be written as the user likes (`BatSignal`, `bat-cave`, `bat signal`): the crate
/// is its lowercase form with `-` and spaces as `_`, the type its UpperCamelCase form. Writes
/// `nodes/<name>/{Cargo.toml,src/lib.rs}`, then adds `"nodes/<name>"` to the workspace members
/// in `Cargo.toml` and a disabled `[nodes.<name>]` table to `config/hive.toml`, keeping their
/// comments. Refuses a node that exists; a failed step leaves the hive as it was.
pub(crate) fn create_node(hive_root: &Path, name: &str) -> Result<NewNode> {
    let names = node_names(name)?;
    let node = names.name;

    let config_path = hive_root.join(CONFIG_FILE);
    if !config_path.is_file() {
        bail!(
            "no `{CONFIG_FILE}` in `{}`; is it a hive? (`hm new NAME` makes one)",
            hive_root.display()
        );
    }
    let config_text = read(&config_path)?;
    let mut config = parse(&config_text, &config_path)?;
    let cargo_path = hive_root.join("Cargo.toml");
    let cargo_text = read(&cargo_path)?;
    let mut cargo = parse(&cargo_text, &cargo_path)?;

    let dir = hive_root.join("nodes").join(&node);
    if fs::symlink_metadata(&dir).is_ok() {
        bail!(
            "node `{node}` already exists at `{}`; pick another name",
            dir.display()
        );
    }
    let has_table = config
        .get("nodes")
        .and_then(Item::as_table_like)
        .is_some_and(|nodes| nodes.contains_key(&node));
    if has_table {
        bail!(
            "node `{node}` already has a `[nodes.{node}]` table in `{}`; pick another name, or \
             remove that table first",
            config_path.display()
        );
    }

    // Every edit is worked out before anything is written.
    let hive_name = hive_name(&config, hive_root);
    add_member(&mut cargo, &format!("nodes/{node}"), &cargo_path)?;
    add_node_table(&mut config, &node, &config_path)?;

    let render = |template: &str| render(template, &node, &names.type_name, &hive_name);
    let nodes_dir = hive_root.join("nodes");
    fs::create_dir_all(&nodes_dir)
        .with_context(|| format!("could not create the folder `{}`", nodes_dir.display()))?;
    fs::create_dir(&dir)
        .with_context(|| format!("could not create the folder `{}`", dir.display()))?;
    let written = write_new(&dir, "Cargo.toml", &render(TEMPLATE_CARGO_TOML))
        .and_then(|()| write_new(&dir, "src/lib.rs", &render(TEMPLATE_LIB_RS)));
    if let Err(err) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(err);
    }

    apply_edits(
        &dir,
        &[
            Edit {
                path: &cargo_path,
                old: &cargo_text,
                new: cargo.to_string(),
            },
            Edit {
                path: &config_path,
                old: &config_text,
                new: config.to_string(),
            },
        ],
    )?;
    Ok(NewNode {
        name: node,
        type_name: names.type_name,
        dir,
    })
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut> {
    text.parse()
        .with_context(|| format!("could not parse `{}` as TOML", path.display()))
}

/// The hive's name: `[hive] name`, else the name of its folder.
fn hive_name(config: &DocumentMut, hive_root: &Path) -> String {
    let from_config = config
        .get("hive")
        .and_then(|hive| hive.get("name"))
        .and_then(Item::as_str)
        .map(str::to_owned);
    let from_folder = || {
        std::path::absolute(hive_root)
            .ok()
            .and_then(|root| root.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "this hive".to_owned())
    };
    // It lands in a `//!` comment: keep it on one line.
    from_config
        .unwrap_or_else(from_folder)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Fills the template's tokens in one pass, so a value that looks like a token stays as it is.
fn render(template: &str, name: &str, type_name: &str, hive_name: &str) -> String {
    let tokens = regex::Regex::new("node_template|NodeTemplate|hive_name").expect("valid regex");
    tokens
        .replace_all(template, |found: &regex::Captures<'_>| match &found[0] {
            "node_template" => name.to_owned(),
            "NodeTemplate" => type_name.to_owned(),
            _ => hive_name.to_owned(),
        })
        .into_owned()
}

/// Adds `member` to `[workspace] members`, in the layout the array already has.
fn add_member(cargo: &mut DocumentMut, member: &str, path: &Path) -> Result<()> {
    let workspace = cargo
        .entry("workspace")
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or_else(|| {
            anyhow!(
                "`workspace` in `{}` is not a table; a hive's Cargo.toml needs a `[workspace]` table",
                path.display()
            )
        })?;
    let members = workspace
        .entry("members")
        .or_insert_with(|| Item::Value(Value::Array(Array::new())))
        .as_array_mut()
        .ok_or_else(|| {
            anyhow!(
                "`workspace.members` in `{}` is not a list; write it as \
                 `members = [\"nodes/NAME\", ...]`",
                path.display()
            )
        })?;
    if !members.iter().any(|m| m.as_str() == Some(member)) {
        push_keeping_layout(members, member);
    }
    Ok(())
}

/// Pushes `text` onto `array`: on its own line if the array is empty or already one item a
/// line (comments stay where they were), else inline.
fn push_keeping_layout(array: &mut Array, text: &str) {
    let raw = |s: Option<&RawString>| s.and_then(RawString::as_str).unwrap_or("").to_owned();
    let multiline = array.is_empty()
        || raw(Some(array.trailing())).contains('\n')
        || array.iter().any(|v| {
            raw(v.decor().prefix()).contains('\n') || raw(v.decor().suffix()).contains('\n')
        });
    if !multiline {
        array.push(text);
        return;
    }

    let mut value = Value::from(text);
    let mut trailing = raw(Some(array.trailing()));
    let Some(last) = array.iter_mut().last() else {
        // Comments in an empty array stay above the first item.
        let above = format!("{}\n", trailing.trim_end());
        value.decor_mut().set_prefix(format!("{above}    "));
        array.set_trailing("\n");
        array.set_trailing_comma(true);
        array.push_formatted(value);
        return;
    };
    let last_prefix = raw(last.decor().prefix());
    let indent = last_prefix
        .rsplit('\n')
        .next()
        .filter(|indent| indent.chars().all(|c| c == ' ' || c == '\t'))
        .unwrap_or("    ")
        .to_owned();
    if !array.trailing_comma() {
        // Without a trailing comma, what follows the last item is its suffix: move it after
        // the comma this push adds.
        let last = array.iter_mut().last().expect("the array is not empty");
        trailing = format!("{}{trailing}", raw(last.decor().suffix()));
        last.decor_mut().set_suffix("");
    }
    // The first line of `trailing` ends the last item's line (maybe with a comment); the rest
    // (comments above `]`, the indent of `]`) stays at the end.
    let (line_end, rest) = match trailing.find('\n') {
        Some(at) => trailing.split_at(at + 1),
        None => ("", trailing.as_str()),
    };
    let line_end = if line_end.trim().is_empty() {
        "\n"
    } else {
        line_end
    };
    value.decor_mut().set_prefix(format!("{line_end}{indent}"));
    array.set_trailing(format!("\n{rest}"));
    array.set_trailing_comma(true);
    array.push_formatted(value);
}

/// Adds an `[nodes.<node>]` table with `enabled = false` at the end of `config/hive.toml`.
fn add_node_table(config: &mut DocumentMut, node: &str, path: &Path) -> Result<()> {
    let position = last_position(config.as_table()).map_or(0, |p| p + 1);
    let trailing = config.trailing().as_str().unwrap_or("").to_owned();
    let nodes = config.entry("nodes").or_insert_with(|| {
        let mut nodes = Table::new();
        nodes.set_implicit(true);
        Item::Table(nodes)
    });
    let nodes = nodes.as_table_mut().ok_or_else(|| {
        anyhow!(
            "`nodes` in `{}` is not a table; write each node as its own `[nodes.NAME]` table",
            path.display()
        )
    })?;

    let mut table = Table::new();
    table.insert("enabled", toml_edit::value(false));
    table.set_position(Some(position));
    // The comments at the end of the file introduce the node tables: keep them above.
    let prefix = if trailing.trim().is_empty() {
        "\n".to_owned()
    } else {
        format!("{}\n\n", trailing.trim_end())
    };
    table.decor_mut().set_prefix(prefix);
    nodes.insert(node, Item::Table(table));
    config.set_trailing("");
    Ok(())
}

/// The largest document position of any table in `table`.
fn last_position(table: &Table) -> Option<isize> {
    let mut last = table.position();
    let mut see = |p: Option<isize>| last = last.max(p);
    for (_, item) in table.iter() {
        match item {
            Item::Table(t) => see(last_position(t)),
            Item::ArrayOfTables(tables) => tables.iter().for_each(|t| see(last_position(t))),
            _ => {}
        }
    }
    last
}

/// A whole-file replacement, with the old contents to put back if a later one fails.
struct Edit<'a> {
    path: &'a Path,
    old: &'a str,
    new: String,
}

/// Writes `edits` in order. If one fails, the earlier ones are undone and `crate_dir` removed.
fn apply_edits(crate_dir: &Path, edits: &[Edit<'_>]) -> Result<()> {
    for (done, edit) in edits.iter().enumerate() {
        if let Err(err) = replace(edit.path, &edit.new) {
            for undo in &edits[..done] {
                let _ = replace(undo.path, undo.old);
            }
            let _ = fs::remove_dir_all(crate_dir);
            return Err(err.context(format!(
                "the node was not added; `{}` was removed again",
                crate_dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::hive::new_hive;
    use super::*;

    fn new_gotham() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        (dir, hive)
    }

    fn text(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn err(result: Result<NewNode>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn create_node_renders_the_tutorials_nodes() {
        let (_dir, hive) = new_gotham();
        let bat_signal = create_node(&hive, "BatSignal").unwrap();
        assert_eq!(
            bat_signal,
            NewNode {
                name: "batsignal".into(),
                type_name: "BatSignal".into(),
                dir: hive.join("nodes/batsignal"),
            }
        );
        let batman = create_node(&hive, "batman").unwrap();
        assert_eq!(
            (batman.name.as_str(), batman.type_name.as_str()),
            ("batman", "Batman")
        );
        assert_eq!(batman.dir, hive.join("nodes/batman"));

        let lib = text(&bat_signal.dir.join("src/lib.rs"));
        assert!(lib.contains("pub struct BatSignal"), "{lib}");
        assert!(lib.contains("hivemind::export_node!(BatSignal);"), "{lib}");
        assert!(lib.contains("//! BatSignal node for gotham."), "{lib}");
        assert!(lib.contains("[nodes.batsignal]"), "{lib}");
        for token in ["NodeTemplate", "node_template", "hive_name"] {
            assert!(!lib.contains(token), "{token} left in {lib}");
        }
        let manifest: toml::Table =
            toml::from_str(&text(&bat_signal.dir.join("Cargo.toml"))).unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("batsignal"));
        assert_eq!(manifest["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        assert_eq!(
            manifest["dependencies"]["hivemind"]["workspace"].as_bool(),
            Some(true)
        );
        assert!(!text(&batman.dir.join("src/lib.rs")).contains("node_template"));
    }

    #[test]
    fn create_node_registers_the_node_in_config_and_workspace() {
        let (_dir, hive) = new_gotham();
        let config_before = text(&hive.join(CONFIG_FILE));
        let cargo_before = text(&hive.join("Cargo.toml"));
        create_node(&hive, "BatSignal").unwrap();
        create_node(&hive, "batman").unwrap();

        let config = text(&hive.join(CONFIG_FILE));
        // Every line of the original survives, comments included, in order, before the nodes.
        assert_eq!(
            config,
            format!(
                "{}\n[nodes.batsignal]\nenabled = false\n\n[nodes.batman]\nenabled = false\n",
                config_before
            )
        );
        let parsed: toml::Table = toml::from_str(&config).unwrap();
        assert_eq!(
            parsed["nodes"]["batsignal"]["enabled"].as_bool(),
            Some(false)
        );
        assert_eq!(parsed["nodes"]["batman"]["enabled"].as_bool(), Some(false));

        let cargo = text(&hive.join("Cargo.toml"));
        let expected = cargo_before.replace(
            "members = []",
            "members = [\n    \"nodes/batsignal\",\n    \"nodes/batman\",\n]",
        );
        assert_eq!(cargo, expected);
        let parsed: toml::Table = toml::from_str(&cargo).unwrap();
        assert_eq!(parsed["workspace"]["resolver"].as_str(), Some("3"));
    }

    #[test]
    fn create_node_refuses_a_duplicate_and_writes_nothing() {
        let (_dir, hive) = new_gotham();
        create_node(&hive, "BatSignal").unwrap();
        let config = text(&hive.join(CONFIG_FILE));
        let cargo = text(&hive.join("Cargo.toml"));
        let lib = text(&hive.join("nodes/batsignal/src/lib.rs"));

        let message = err(create_node(&hive, "batsignal"));
        assert!(
            message.contains("node `batsignal` already exists"),
            "{message}"
        );
        assert_eq!(text(&hive.join(CONFIG_FILE)), config);
        assert_eq!(text(&hive.join("Cargo.toml")), cargo);
        assert_eq!(text(&hive.join("nodes/batsignal/src/lib.rs")), lib);

        // The table alone is enough to refuse, and the crate folder is not made.
        fs::remove_dir_all(hive.join("nodes/batsignal")).unwrap();
        let message = err(create_node(&hive, "BatSignal"));
        assert!(message.contains("[nodes.batsignal]"), "{message}");
        assert!(!hive.join("nodes/batsignal").exists());
        assert_eq!(text(&hive.join(CONFIG_FILE)), config);
    }

    #[test]
    fn create_node_refuses_bad_names() {
        let (_dir, hive) = new_gotham();
        assert!(err(create_node(&hive, "2bat")).contains("^[a-z][a-z0-9_]*$"));
        assert!(err(create_node(&hive, "test")).contains("reserves"));
        assert_eq!(fs::read_dir(hive.join("nodes")).unwrap().count(), 1);
    }

    #[test]
    fn malformed_files_are_named_with_line_and_column() {
        let (_dir, hive) = new_gotham();
        fs::write(hive.join(CONFIG_FILE), "[hive]\nname = \n").unwrap();
        let message = err(create_node(&hive, "batman"));
        assert!(message.contains("config/hive.toml"), "{message}");
        assert!(message.contains("line 2, column"), "{message}");
        assert!(!hive.join("nodes/batman").exists());

        let (_dir, hive) = new_gotham();
        fs::write(hive.join("Cargo.toml"), "[workspace\n").unwrap();
        let message = err(create_node(&hive, "batman"));
        assert!(message.contains("Cargo.toml"), "{message}");
        assert!(message.contains("line 1, column"), "{message}");
        assert!(!hive.join("nodes/batman").exists());
    }

    #[test]
    fn outside_a_hive_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let message = err(create_node(dir.path(), "batman"));
        assert!(message.contains("no `config/hive.toml`"), "{message}");
        assert!(message.contains("hm new"), "{message}");
    }

    #[test]
    fn hive_name_falls_back_to_the_folder() {
        let (_dir, hive) = new_gotham();
        let config = text(&hive.join(CONFIG_FILE)).replace("name = \"gotham\"\n", "");
        fs::write(hive.join(CONFIG_FILE), config).unwrap();
        let node = create_node(&hive, "batman").unwrap();
        assert!(text(&node.dir.join("src/lib.rs")).contains("//! Batman node for gotham."));
    }

    #[test]
    fn rendering_is_one_pass() {
        let out = render(
            "node_template NodeTemplate hive_name",
            "hive_name",
            "NodeTemplate",
            "x",
        );
        assert_eq!(out, "hive_name NodeTemplate x");
    }

    fn members_after(cargo: &str, member: &str) -> String {
        let mut doc: DocumentMut = cargo.parse().unwrap();
        add_member(&mut doc, member, Path::new("Cargo.toml")).unwrap();
        let out = doc.to_string();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        let members = parsed["workspace"]["members"].as_array().unwrap();
        assert_eq!(members.last().unwrap().as_str(), Some(member), "{out}");
        out
    }

    #[test]
    fn members_keep_their_layout_and_comments() {
        let cases = [
            // Inline stays inline.
            (
                "[workspace]\nmembers = [\"a\"] # ok\n",
                "[workspace]\nmembers = [\"a\", \"b\"] # ok\n",
            ),
            // One a line, with comments on and between items and above `]`.
            (
                "[workspace]\nmembers = [\n  # first\n  \"a\", # the a\n  # more here\n]\n",
                "[workspace]\nmembers = [\n  # first\n  \"a\", # the a\n  \"b\",\n  # more here\n]\n",
            ),
            // No trailing comma.
            (
                "[workspace]\nmembers = [\n    \"a\" # the a\n]\n",
                "[workspace]\nmembers = [\n    \"a\", # the a\n    \"b\",\n]\n",
            ),
            // Empty, with a comment inside.
            (
                "[workspace]\nmembers = [\n    # nodes go here\n]\n",
                "[workspace]\nmembers = [\n    # nodes go here\n    \"b\",\n]\n",
            ),
            // Missing: made.
            (
                "# top\n[workspace]\nresolver = \"3\"\n",
                "# top\n[workspace]\nresolver = \"3\"\nmembers = [\n    \"b\",\n]\n",
            ),
            // Already there: unchanged.
            (
                "[workspace]\nmembers = [\"b\"]\n",
                "[workspace]\nmembers = [\"b\"]\n",
            ),
        ];
        for (before, after) in cases {
            assert_eq!(members_after(before, "b"), after, "from:\n{before}");
        }
    }

    #[test]
    fn members_that_are_not_a_list_are_an_error() {
        let mut doc: DocumentMut = "[workspace]\nmembers = 3\n".parse().unwrap();
        let message = format!(
            "{:#}",
            add_member(&mut doc, "b", Path::new("x/Cargo.toml")).unwrap_err()
        );
        assert!(message.contains("x/Cargo.toml"), "{message}");
    }

    #[test]
    fn node_tables_go_last_as_header_tables() {
        let before = "[hive]\nname = \"g\"\n\n[nodes.a]\nenabled = true # on\n\n[later]\nx = 1\n";
        let mut doc: DocumentMut = before.parse().unwrap();
        add_node_table(&mut doc, "b", Path::new("hive.toml")).unwrap();
        assert_eq!(
            doc.to_string(),
            format!("{before}\n[nodes.b]\nenabled = false\n")
        );

        let mut doc: DocumentMut = "[nodes]\nx = 1\n# the end\n".parse().unwrap();
        add_node_table(&mut doc, "b", Path::new("hive.toml")).unwrap();
        assert_eq!(
            doc.to_string(),
            "[nodes]\nx = 1\n# the end\n\n[nodes.b]\nenabled = false\n"
        );

        let mut doc: DocumentMut = "nodes = { a = {} }\n".parse().unwrap();
        let message = format!(
            "{:#}",
            add_node_table(&mut doc, "b", Path::new("hive.toml")).unwrap_err()
        );
        assert!(message.contains("[nodes.NAME]"), "{message}");
    }

    #[test]
    fn a_failed_edit_undoes_the_earlier_ones_and_removes_the_crate() {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = dir.path().join("nodes/x");
        fs::create_dir_all(crate_dir.join("src")).unwrap();
        let first = dir.path().join("Cargo.toml");
        fs::write(&first, "old").unwrap();
        let missing = dir.path().join("no/such/hive.toml");
        let result = apply_edits(
            &crate_dir,
            &[
                Edit {
                    path: &first,
                    old: "old",
                    new: "new".into(),
                },
                Edit {
                    path: &missing,
                    old: "",
                    new: "new".into(),
                },
            ],
        );
        let message = format!("{:#}", result.unwrap_err());
        assert!(message.contains("no/such/hive.toml"), "{message}");
        assert!(message.contains("was removed again"), "{message}");
        assert_eq!(text(&first), "old");
        assert!(!crate_dir.exists());
    }
}
