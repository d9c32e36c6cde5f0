//! Watches a hive's files and reports what changed, in batches: node libraries in `nodes/`,
//! `config/hive.toml`, and (for `hm dev`) the node crates' sources.
//!
//! Events are debounced: a batch is sent once the files have been quiet for
//! [`QUIET`], or [`LONGEST_WAIT`] after its first event, whichever comes first. The folders are
//! watched rather than the files, so that editors' and cargo's write-then-rename saves and
//! libraries that appear later are all seen.

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use notify::{Event, RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the files must stay quiet before a batch goes out.
pub(crate) const QUIET: Duration = Duration::from_millis(40);
/// The longest a batch waits after its first event.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_millis(100);

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// `config/hive.toml` was written.
    Config,
    /// A node library `nodes/lib<name>.so` appeared, changed or disappeared.
    Library(PathBuf),
    /// A source file of a node crate changed.
    Sources,
}

/// A running watch; dropping it stops it and closes its channel.
pub(crate) struct Watch {
    _watcher: notify::RecommendedWatcher,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// The debouncing thread, for whoever watches that it keeps running (once).
    pub(crate) fn thread(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.thread.take()
    }
}

/// Starts watching the hive at `root` (with `sources`, the node crates' sources too); returns
/// the watch and the channel its batches arrive on.
pub(crate) fn watch(root: &Path, sources: bool) -> Result<(Watch, Receiver<BTreeSet<Change>>)> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let (events, raw) = crossbeam_channel::unbounded::<notify::Result<Event>>();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })
    .context("cannot watch the hive's files")?;
    let nodes = root.join("nodes");
    std::fs::create_dir_all(&nodes)
        .with_context(|| format!("cannot create {}", nodes.display()))?;
    let mode = if sources {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher
        .watch(&nodes, mode)
        .with_context(|| format!("cannot watch {}", nodes.display()))?;
    let config = root.join("config");
    watcher
        .watch(&config, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", config.display()))?;
    let (batches, changes) = crossbeam_channel::unbounded();
    let thread = std::thread::Builder::new()
        .name("hm-watch".into())
        .spawn(move || {
            // A panic in one batch is reported and the watcher goes on with the next.
            while let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                debounce(&raw, &batches, &root, sources)
            })) {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!("the file watcher panicked ({text}); it goes on");
            }
        })
        .context("cannot start the watcher thread")?;
    Ok((
        Watch {
            _watcher: watcher,
            thread: Some(thread),
        },
        changes,
    ))
}

fn debounce(
    raw: &Receiver<notify::Result<Event>>,
    batches: &Sender<BTreeSet<Change>>,
    root: &Path,
    sources: bool,
) {
    while let Ok(first) = raw.recv() {
        let started = Instant::now();
        let mut batch = BTreeSet::new();
        classify_event(first, root, sources, &mut batch);
        loop {
            let left = LONGEST_WAIT.saturating_sub(started.elapsed());
            match raw.recv_timeout(QUIET.min(left)) {
                Ok(event) => classify_event(event, root, sources, &mut batch),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if left.is_zero() {
                break;
            }
        }
        if !batch.is_empty() && batches.send(batch).is_err() {
            return;
        }
    }
}

fn classify_event(
    event: notify::Result<Event>,
    root: &Path,
    sources: bool,
    batch: &mut BTreeSet<Change>,
) {
    let Ok(event) = event else { return };
    if event.kind.is_access() {
        return;
    }
    batch.extend(
        event
            .paths
            .iter()
            .filter_map(|p| classify(p, root, sources)),
    );
}

/// What a changed path means for the hive, if anything.
pub(crate) fn classify(path: &Path, root: &Path, sources: bool) -> Option<Change> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str().unwrap_or(""),
            _ => "",
        })
        .collect();
    match parts.as_slice() {
        ["config", "hive.toml"] => Some(Change::Config),
        ["nodes", file] if crate::loader::is_library_file_name(file) => {
            Some(Change::Library(path.to_path_buf()))
        }
        ["nodes", _crate, rest @ ..] if sources && is_source(rest) => Some(Change::Sources),
        _ => None,
    }
}

/// A file cargo builds from: `.rs` sources and manifests, outside build output and hidden
/// folders.
fn is_source(inside_crate: &[&str]) -> bool {
    let Some(file) = inside_crate.last() else {
        return false;
    };
    let hidden_or_built = inside_crate
        .iter()
        .any(|part| part.starts_with('.') || *part == "target");
    !hidden_or_built && (file.ends_with(".rs") || *file == "Cargo.toml" || *file == "build.rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_their_place_in_the_hive() {
        let root = Path::new("/hives/gotham");
        let at = |p: &str| classify(&root.join(p), root, true);
        assert_eq!(at("config/hive.toml"), Some(Change::Config));
        assert_eq!(
            at("nodes/libbatman.so"),
            Some(Change::Library(root.join("nodes/libbatman.so")))
        );
        assert_eq!(at("nodes/batman/src/lib.rs"), Some(Change::Sources));
        assert_eq!(at("nodes/batman/Cargo.toml"), Some(Change::Sources));
        assert_eq!(at("nodes/batman/src/deep/mod.rs"), Some(Change::Sources));
        assert_eq!(at("nodes/.installing-x1y2"), None);
        assert_eq!(at("nodes/batman/target/debug/x.rs"), None);
        assert_eq!(at("nodes/batman/.hidden/x.rs"), None);
        assert_eq!(at("nodes/batman/notes.txt"), None);
        assert_eq!(at("config/hive.toml~"), None);
        assert_eq!(at("logs/batman.log"), None);
        assert_eq!(
            classify(&root.join("nodes/batman/src/lib.rs"), root, false),
            None
        );
    }

    #[test]
    fn changes_arrive_in_debounced_batches() {
        let hive = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(hive.path().join("config")).unwrap();
        let (_watch, changes) = watch(hive.path(), false).unwrap();
        let root = hive.path().canonicalize().unwrap();
        std::fs::write(root.join("nodes/libbatman.so"), b"one").unwrap();
        std::fs::write(root.join("nodes/libbatman.so"), b"two").unwrap();
        std::fs::write(root.join("config/hive.toml"), b"").unwrap();
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.len() < 2 && Instant::now() < deadline {
            if let Ok(batch) = changes.recv_timeout(Duration::from_millis(200)) {
                seen.extend(batch);
            }
        }
        let expected: BTreeSet<Change> = [
            Change::Config,
            Change::Library(root.join("nodes/libbatman.so")),
        ]
        .into();
        assert_eq!(seen, expected);
    }
}
