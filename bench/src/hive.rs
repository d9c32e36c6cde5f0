//! Temporary hives for the benchmarks: a folder laid out as `hm new` would, with chosen node
//! libraries installed, and the host's controller over it.

use anyhow::{Context as _, Result};
use hivemind_host::{CONFIG_FILE, load_config};
use hivemind_host::{Controller, Selection};
use hivemind_host::{LogSettings, Logs};
use std::path::Path;
use tempfile::TempDir;

/// A hive folder with `lib<name>.so` for each of `libraries` installed from `built` and
/// `config` as its `config/hive.toml`.
pub fn folder(built: &Path, libraries: &[&str], config: &str) -> Result<TempDir> {
    let dir = tempfile::Builder::new().prefix("hm-bench-").tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("config"))?;
    std::fs::create_dir_all(root.join("nodes"))?;
    for name in libraries {
        let file = format!("lib{name}.so");
        std::fs::copy(built.join(&file), root.join("nodes").join(&file))
            .with_context(|| format!("cannot install {file}"))?;
    }
    std::fs::write(root.join(CONFIG_FILE), config)?;
    Ok(dir)
}

/// A controller over the hive in `root` (not started), logging into `root/logs`.
pub fn controller(root: &Path) -> Result<Controller> {
    let config = load_config(root)?;
    let logs = Logs::new(LogSettings {
        dir: root.join("logs"),
        max_bytes: 1 << 20,
        backups: 1,
        verbose: false,
    });
    Controller::new(config, Selection::Enabled, logs)
}
