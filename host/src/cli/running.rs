//! The running-hive marker: while `hm dev` or `hm run` runs a hive, the file
//! `<hive>/.hm/running.json` says so (`{"pid", "mode", "url"}`), so that other commands run in
//! that hive (`hm create_node`, `hm list`, `hm send`) can tell that it runs, how, and where.
//!
//! Guarantees: the file is written once the hive serves and removed when it stops; a marker
//! left by a hive that was killed is ignored (its process is gone) and replaced by the next
//! start. Reading it never fails a command: a missing, stale or unreadable marker means "not
//! running".

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the marker says about the hive that runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RunningHive {
    /// The `hm` process's id.
    pub pid: u32,
    /// `dev` or `run`.
    pub mode: String,
    /// Where its page and API are, like `http://127.0.0.1:9476`.
    pub url: String,
}

/// The marker of a running hive; removes its file when dropped.
pub(super) struct Marker {
    path: PathBuf,
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn marker_path(root: &Path) -> PathBuf {
    root.join(".hm").join("running.json")
}

/// Writes the marker of this process running the hive at `root`.
pub(super) fn mark(root: &Path, mode: &str, url: &str) -> Result<Marker> {
    let path = marker_path(root);
    let dir = path.parent().expect("the marker is in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let running = RunningHive {
        pid: std::process::id(),
        mode: mode.to_owned(),
        url: url.to_owned(),
    };
    let text = serde_json::to_string(&running).expect("the marker serializes");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Marker { path })
}

/// The hive running at `root`, if a live `hm` says it runs it.
pub(super) fn find(root: &Path) -> Option<RunningHive> {
    let text = std::fs::read_to_string(marker_path(root)).ok()?;
    let running: RunningHive = serde_json::from_str(&text).ok()?;
    let alive = Path::new("/proc").join(running.pid.to_string()).is_dir();
    alive.then_some(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_says_who_runs_the_hive_until_it_is_dropped() {
        let hive = tempfile::tempdir().unwrap();
        assert_eq!(find(hive.path()), None);
        let marker = mark(hive.path(), "dev", "http://127.0.0.1:9476").unwrap();
        let found = find(hive.path()).expect("a live process runs it");
        assert_eq!(found.pid, std::process::id());
        assert_eq!(found.mode, "dev");
        assert_eq!(found.url, "http://127.0.0.1:9476");
        drop(marker);
        assert_eq!(find(hive.path()), None);
    }

    #[test]
    fn a_marker_left_by_a_dead_process_is_ignored() {
        let hive = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(hive.path().join(".hm")).unwrap();
        // Beyond the kernel's largest pid (4194304): no such process.
        std::fs::write(
            hive.path().join(".hm/running.json"),
            r#"{"pid": 4194305, "mode": "dev", "url": "http://127.0.0.1:1"}"#,
        )
        .unwrap();
        assert_eq!(find(hive.path()), None);
    }
}
