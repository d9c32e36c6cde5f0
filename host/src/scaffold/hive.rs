//! `hm new`: lays out a new hive, and finds the hive a command runs in.

use super::embedded::PLUGIN_API;
use super::files::write_new;
use super::names::check_hive_name;
use anyhow::{Context as _, Result, bail};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where a hive keeps its settings, relative to its root.
pub(super) const CONFIG_FILE: &str = "config/hive.toml";

/// Where a hive keeps its copy of the node API crate, relative to its root.
const VENDOR_DIR: &str = "vendor/hivemind";

/// Creates a new hive `<dir>/<name>/`; returns its path.
///
/// `dir` is made if it is missing. The hive is built in a temporary folder inside `dir` and
/// renamed into place at the end, so a failure leaves no half-made hive. The returned path is
/// absolute (`dir` made absolute, not canonicalized).
///
/// Refuses an empty `name`, one with a path separator or a control character, and a
/// `<dir>/<name>` that exists and is not an empty folder; it then writes nothing.
pub(crate) fn new_hive(name: &str, dir: &Path) -> Result<PathBuf> {
    check_hive_name(name)?;
    let dir = std::path::absolute(dir)
        .with_context(|| format!("could not make `{}` an absolute path", dir.display()))?;
    let target = dir.join(name);
    if is_taken(&target)? {
        bail!(already_exists(&target));
    }
    fs::create_dir_all(&dir)
        .with_context(|| format!("could not create the folder `{}`", dir.display()))?;

    let staging = tempfile::Builder::new()
        .prefix(".hm-new-")
        .tempdir_in(&dir)
        .with_context(|| format!("could not make a temporary folder in `{}`", dir.display()))?;
    // A plain folder inside the temporary one, so the hive gets the usual permissions.
    let hive = staging.path().join(name);
    fs::create_dir(&hive)
        .with_context(|| format!("could not create the folder `{}`", hive.display()))?;
    write_hive(&hive, name, &today()?)?;

    if is_taken(&target)? {
        bail!(already_exists(&target));
    }
    if target.is_dir() {
        // An empty folder: replace it. This fails if something appeared in it meanwhile.
        fs::remove_dir(&target).with_context(|| already_exists(&target))?;
    }
    fs::rename(&hive, &target).with_context(|| {
        format!(
            "could not move the new hive from `{}` to `{}`",
            hive.display(),
            target.display()
        )
    })?;
    Ok(target)
}

fn already_exists(target: &Path) -> String {
    format!(
        "a hive (or something else) already exists at {}; pick another name or --dir",
        target.display()
    )
}

/// Whether `path` holds anything a new hive must not replace: a file, a link, or a folder
/// with something in it.
fn is_taken(path: &Path) -> Result<bool> {
    let context = || format!("could not look at `{}`", path.display());
    match fs::symlink_metadata(path) {
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(context),
        Ok(metadata) if metadata.is_dir() => {
            Ok(fs::read_dir(path).with_context(context)?.next().is_some())
        }
        Ok(_) => Ok(true),
    }
}

/// Today's date (UTC) as `2026-11-28`.
fn today() -> Result<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc()
        .date()
        .format(&format)
        .context("could not format today's date")
}

/// Writes every file of a new hive named `name` into the existing, empty folder `root`.
fn write_hive(root: &Path, name: &str, date: &str) -> Result<()> {
    write_new(root, "Cargo.toml", WORKSPACE_CARGO_TOML)?;
    write_new(root, CONFIG_FILE, &hive_toml(name, date))?;
    write_new(root, "nodes/.gitkeep", "")?;
    write_new(root, "static/.gitkeep", "")?;
    write_new(root, ".gitignore", GITIGNORE)?;
    write_new(root, "README.md", &readme(name))?;
    for (path, contents) in PLUGIN_API {
        write_new(root, &format!("{VENDOR_DIR}/{path}"), contents)?;
    }
    Ok(())
}

const WORKSPACE_CARGO_TOML: &str = r#"# This hive is a Cargo workspace: each node is a crate under nodes/, listed in `members`
# (`hm create_node NAME` adds it). `hm dev` builds them with cargo and loads them.
[workspace]
resolver = "3"
members = []

# Nodes depend on the node API with `hivemind.workspace = true`. vendor/hivemind is a copy
# of that API taken from the `hm` that made this hive, so the nodes are built against exactly
# the API that `hm` loads, and the hive builds with plain `cargo build`, needing only crates.io.
[workspace.dependencies]
hivemind = { path = "vendor/hivemind" }
"#;

/// What a hive keeps out of git: builds, logs, installed libraries, the running-hive marker
/// (`.hm/running.json`, which `hm dev` writes while it runs) and the nodes' stores (`data/`,
/// live SQLite files: `hm data backup` copies them consistently).
const GITIGNORE: &str = "/target\n/logs\n/nodes/*.so\n/.hm\n/data\n";

/// `config/hive.toml` of a new hive.
fn hive_toml(name: &str, date: &str) -> String {
    let quoted = toml_string(name);
    format!(
        r#"# Hive settings for {name}, made by `hm new` on {date}.

[hive]
name = {quoted}
# Where the hive's web page listens: http://127.0.0.1:9476 (port 0 picks any free port).
bind = "127.0.0.1"
port = 9476

[log]
# Log files: root.log for the host, <node>.log for each node. Relative to the hive's folder.
location = "logs"
# Rotate a log file when it reaches this many bytes, keeping this many old files.
max_bytes = 5242880
backups = 2

[messages]
# Largest payload a service may send, in bytes of JSON.
max_payload_bytes = 1048576
# Messages waiting per subscribing node; when full, new ones are dropped and counted.
queue_capacity = 1024

# One table per node: `enabled` says whether `hm dev` runs it; every other key is the
# node's own settings, handed to the node as JSON when it starts.
"#
    )
}

/// `text` as a TOML basic string, quotes included.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A hivemind hive: nodes that send messages from services and receive them in subscriptions,
run together by `hm`.

- `config/hive.toml`: the hive's settings, and one `[nodes.NAME]` table per node.
- `nodes/`: one Rust crate per node.
- `static/`: files the hive's web page serves under `/static/`.
- `vendor/hivemind/`: the node API, copied from the `hm` that made this hive. Don't edit it.
- `logs/`: made by `hm dev`: `root.log` for the host, `NAME.log` for each node.

## Add a node

    hm create_node BatSignal

makes the crate `nodes/batsignal/`. Write your services and subscriptions in its
`src/lib.rs`, then enable it in `config/hive.toml`:

    [nodes.batsignal]
    enabled = true

## Run the hive

    hm dev

builds the enabled nodes and runs them. The hive's page is at http://127.0.0.1:9476, and the
logs are in `logs/`.
"#
    )
}

/// Walks up from `start` to the first directory holding `config/hive.toml` (like cargo finds Cargo.toml).
///
/// `start` is canonicalized first, so the returned root is absolute and free of symlinks.
pub(crate) fn find_hive_root(start: &Path) -> Result<PathBuf> {
    let start = fs::canonicalize(start)
        .with_context(|| format!("could not find the folder `{}`", start.display()))?;
    for dir in start.ancestors() {
        if dir.join(CONFIG_FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "could not find `{CONFIG_FILE}` in `{}` or any parent directory; run this inside a \
         hive (make one with `hm new NAME`)",
        start.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Every entry below `dir` (files with their bytes, folders as `None`), by relative path.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(next) = todo.pop() {
            for entry in fs::read_dir(&next).unwrap() {
                let path = entry.unwrap().path();
                let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                if path.is_dir() {
                    out.insert(relative, None);
                    todo.push(path);
                } else {
                    out.insert(relative, Some(fs::read(&path).unwrap()));
                }
            }
        }
        out
    }

    #[test]
    fn new_hive_lays_out_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        assert_eq!(hive, dir.path().join("gotham"));
        for file in [
            "Cargo.toml",
            "config/hive.toml",
            "nodes/.gitkeep",
            "static/.gitkeep",
            ".gitignore",
            "README.md",
            "vendor/hivemind/Cargo.toml",
            "vendor/hivemind/src/lib.rs",
        ] {
            assert!(hive.join(file).is_file(), "{file} is missing");
        }
        // Nothing else next to the hive: the staging folder is gone.
        let beside: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(beside.len(), 1);

        let gitignore = fs::read_to_string(hive.join(".gitignore")).unwrap();
        assert_eq!(
            gitignore.lines().collect::<Vec<_>>(),
            ["/target", "/logs", "/nodes/*.so", "/.hm", "/data"]
        );
        let readme = fs::read_to_string(hive.join("README.md")).unwrap();
        for needle in [
            "hm create_node",
            "config/hive.toml",
            "hm dev",
            "http://127.0.0.1:9476",
        ] {
            assert!(readme.contains(needle), "README lacks {needle}");
        }
    }

    #[test]
    fn new_hive_config_parses_with_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        let text = fs::read_to_string(hive.join(CONFIG_FILE)).unwrap();
        assert!(text.starts_with("# Hive settings for gotham, made by `hm new` on 20"));
        let config: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(config["hive"]["name"].as_str(), Some("gotham"));
        assert_eq!(config["hive"]["bind"].as_str(), Some("127.0.0.1"));
        assert_eq!(config["hive"]["port"].as_integer(), Some(9476));
        assert_eq!(config["log"]["location"].as_str(), Some("logs"));
        assert_eq!(config["log"]["max_bytes"].as_integer(), Some(5_242_880));
        assert_eq!(config["log"]["backups"].as_integer(), Some(2));
        assert_eq!(
            config["messages"]["max_payload_bytes"].as_integer(),
            Some(1_048_576)
        );
        assert_eq!(
            config["messages"]["queue_capacity"].as_integer(),
            Some(1024)
        );
        assert!(config.get("nodes").is_none());
    }

    #[test]
    fn hive_toml_has_exactly_the_documented_shape() {
        let expected = "\
# Hive settings for gotham, made by `hm new` on 2026-11-28.

[hive]
name = \"gotham\"
# Where the hive's web page listens: http://127.0.0.1:9476 (port 0 picks any free port).
bind = \"127.0.0.1\"
port = 9476

[log]
# Log files: root.log for the host, <node>.log for each node. Relative to the hive's folder.
location = \"logs\"
# Rotate a log file when it reaches this many bytes, keeping this many old files.
max_bytes = 5242880
backups = 2

[messages]
# Largest payload a service may send, in bytes of JSON.
max_payload_bytes = 1048576
# Messages waiting per subscribing node; when full, new ones are dropped and counted.
queue_capacity = 1024

# One table per node: `enabled` says whether `hm dev` runs it; every other key is the
# node's own settings, handed to the node as JSON when it starts.
";
        assert_eq!(hive_toml("gotham", "2026-11-28"), expected);
        let date = today().unwrap();
        assert_eq!(date.len(), 10);
        assert_eq!(date.as_bytes()[4], b'-');
    }

    #[test]
    fn toml_string_escapes_round_trip() {
        for name in [
            "plain",
            "a \"quoted\" name",
            "back\\slash",
            "tab\there",
            "ünï 'x'",
        ] {
            let text = format!("name = {}\n", toml_string(name));
            let table: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(table["name"].as_str(), Some(name), "{text}");
        }
    }

    #[test]
    fn vendored_api_is_byte_identical_to_plugin_api() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
        let vendored = snapshot(&hive.join(VENDOR_DIR));
        assert_eq!(vendored, snapshot(&api));
    }

    #[test]
    fn second_new_hive_refuses_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        fs::write(hive.join("nodes/mine.txt"), "keep me").unwrap();
        let before = snapshot(dir.path());
        let err = format!("{:#}", new_hive("gotham", dir.path()).unwrap_err());
        assert_eq!(
            err,
            format!(
                "a hive (or something else) already exists at {}; pick another name or --dir",
                hive.display()
            )
        );
        assert_eq!(snapshot(dir.path()), before);
    }

    #[test]
    fn new_hive_refuses_a_file_but_fills_an_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("taken"), "").unwrap();
        let err = format!("{:#}", new_hive("taken", dir.path()).unwrap_err());
        assert!(err.contains("already exists"), "{err}");

        fs::create_dir(dir.path().join("empty")).unwrap();
        let hive = new_hive("empty", dir.path()).unwrap();
        assert!(hive.join(CONFIG_FILE).is_file());
    }

    #[test]
    fn new_hive_takes_names_with_spaces_dashes_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["Gotham City", "bat-cave", "the \"narrows\""] {
            let hive = new_hive(name, dir.path()).unwrap();
            assert_eq!(hive.file_name().unwrap(), name);
            let text = fs::read_to_string(hive.join(CONFIG_FILE)).unwrap();
            let config: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(config["hive"]["name"].as_str(), Some(name));
        }
    }

    #[test]
    fn new_hive_refuses_bad_names_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "a/b", "a\0b", "a\nb", ".."] {
            assert!(new_hive(name, dir.path()).is_err(), "{name:?} accepted");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn new_hive_makes_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", &dir.path().join("repos/deep")).unwrap();
        assert!(hive.join(CONFIG_FILE).is_file());
    }

    #[test]
    fn find_hive_root_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        let hive = new_hive("gotham", dir.path()).unwrap();
        let nested = hive.join("nodes/batsignal/src");
        fs::create_dir_all(&nested).unwrap();
        let root = fs::canonicalize(&hive).unwrap();
        assert_eq!(find_hive_root(&nested).unwrap(), root);
        assert_eq!(find_hive_root(&hive).unwrap(), root);
    }

    #[test]
    fn find_hive_root_outside_a_hive_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", find_hive_root(dir.path()).unwrap_err());
        assert!(err.contains("could not find `config/hive.toml`"), "{err}");
        assert!(err.contains("hm new"), "{err}");
        let missing = dir.path().join("nope");
        let err = format!("{:#}", find_hive_root(&missing).unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }
}
