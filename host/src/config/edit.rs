//! Edits a hive's `config/hive.toml` in place, keeping its comments and layout.

use super::CONFIG_FILE;
use crate::scaffold::files;
use anyhow::{Context as _, Result, anyhow, bail};
use std::path::Path;
use toml_edit::DocumentMut;

/// Sets `enabled` in the `[nodes.<name>]` table of the hive at `root`; returns whether the file
/// changed. The file is replaced at once, so a watcher never reads half of it.
pub(crate) fn set_enabled(root: &Path, name: &str, enabled: bool) -> Result<bool> {
    let path = root.join(CONFIG_FILE);
    let text = files::read(&path)?;
    let mut config: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| {
            anyhow!(
                "{}",
                super::secrets::redact_source_error(&text, &e.to_string())
            )
        })
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let Some(table) = config
        .get_mut("nodes")
        .and_then(|nodes| nodes.get_mut(name))
        .and_then(|node| node.as_table_like_mut())
    else {
        bail!(
            "there is no [nodes.{name}] in {}; create the node with `hm create_node {name}`",
            path.display()
        );
    };
    if table.get("enabled").and_then(|v| v.as_bool()) == Some(enabled) {
        return Ok(false);
    }
    match table
        .get_mut("enabled")
        .and_then(|item| item.as_value_mut())
    {
        // Keep the comment that may follow the value on its line.
        Some(value) => {
            let decor = value.decor().clone();
            *value = enabled.into();
            *value.decor_mut() = decor;
        }
        None => {
            table.insert("enabled", toml_edit::value(enabled));
        }
    }
    files::replace(&path, &config.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hive(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), config).unwrap();
        dir
    }

    fn read(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap()
    }

    #[test]
    fn toggles_enabled_and_keeps_comments_and_layout() {
        let dir = hive(
            "# my hive\n[hive]\nport = 9476 # the page\n\n# the signal\n[nodes.batsignal]\nenabled = false # off for now\ninterval_secs = 5\n\n[nodes.batman]\nenabled = true\n",
        );
        assert!(set_enabled(dir.path(), "batsignal", true).unwrap());
        assert_eq!(
            read(&dir),
            "# my hive\n[hive]\nport = 9476 # the page\n\n# the signal\n[nodes.batsignal]\nenabled = true # off for now\ninterval_secs = 5\n\n[nodes.batman]\nenabled = true\n"
        );
        assert!(
            !set_enabled(dir.path(), "batsignal", true).unwrap(),
            "no change, no write"
        );
        assert!(set_enabled(dir.path(), "batman", false).unwrap());
        assert!(read(&dir).ends_with("[nodes.batman]\nenabled = false\n"));
    }

    #[test]
    fn adds_a_missing_enabled_key() {
        let dir = hive("[nodes.robin]\nlibrary = \"sidekick\"\n");
        assert!(set_enabled(dir.path(), "robin", true).unwrap());
        let config = crate::config::parse(dir.path(), &read(&dir)).unwrap();
        assert!(config.nodes["robin"].enabled);
        assert_eq!(config.nodes["robin"].library, "sidekick");
    }

    #[test]
    fn an_unknown_node_says_how_to_create_it() {
        let dir = hive("[nodes.batman]\nenabled = true\n");
        let error = set_enabled(dir.path(), "joker", true)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[nodes.joker]") && error.contains("hm create_node joker"),
            "{error}"
        );
        assert_eq!(read(&dir), "[nodes.batman]\nenabled = true\n");
    }
}
