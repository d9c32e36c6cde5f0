//! Applies what the watcher reports to the running hive: rebuilds node crates (`hm dev`),
//! reloads libraries that changed, unloads those removed, and applies config edits.
//!
//! Guarantees:
//! - A config is applied only once it is whole: the file must read the same (size, modification
//!   time and content) twice, [`CONFIG_QUIET`] apart, so a file written in place in pieces is
//!   never applied half-written. A file renamed into place (an editor's atomic save, `hm enable`)
//!   is whole by construction and is applied at once.
//! - A config with an error is reported (line and column) and the last good one stays in force
//!   until the file is fixed; the fix is said in one line. A failed build prints cargo's
//!   errors, ties them to their nodes ([`crate::builds`]) and leaves the running versions in
//!   place.
//! - A library that cannot be read (too many open files, permissions) is logged and tried
//!   again with backoff ([`FIRST_RETRY`], doubling to [`LONGEST_RETRY`]) until it reads or is
//!   removed. A bad file (a FIFO, a device, a bad link, too large) is reported once per change.
//! - A panic while applying a batch is caught, reported as an event, and the next batch is
//!   applied as usual: the reconciler never dies of one bad change.

use crate::build;
use crate::config;
use crate::controller::Controller;
use crate::events::EventKind;
use crate::loader::{self, LoadErrorKind};
use crate::watch::Change;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long `config/hive.toml` must stay unchanged before a file written in place is applied.
pub(crate) const CONFIG_QUIET: Duration = Duration::from_millis(150);
/// How long a config that keeps changing is waited for before the reconciler reports it.
const CONFIG_PATIENCE: Duration = Duration::from_secs(10);
/// The first wait before reading a library again after a failed read.
pub(crate) const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between two reads of a library that keeps failing.
pub(crate) const LONGEST_RETRY: Duration = Duration::from_secs(10);

/// How `hm dev` rebuilds the hive's nodes when their sources change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rebuild {
    /// Build with cargo's release profile.
    pub release: bool,
}

/// A library to read again.
struct Retry {
    attempts: u32,
    at: Instant,
}

/// The reconciler's memory between batches.
#[derive(Default)]
struct Reconciler {
    /// Libraries whose last read failed, by path.
    retries: BTreeMap<PathBuf, Retry>,
    /// The config file as last applied: (device, inode), to tell a renamed-in file.
    config_identity: Option<(u64, u64)>,
    /// Whether the last read of the config failed, to say so once it is fixed.
    config_broken: bool,
}

/// Applies every batch from `changes` until the channel closes.
pub(crate) fn run(
    controller: &Arc<Controller>,
    changes: &Receiver<BTreeSet<Change>>,
    rebuild: Option<Rebuild>,
) {
    let mut reconciler = Reconciler {
        config_identity: identity(&controller.root().join(config::CONFIG_FILE)),
        ..Reconciler::default()
    };
    loop {
        let next_retry = reconciler.retries.values().map(|r| r.at).min();
        let batch = match next_retry {
            Some(at) => match changes.recv_deadline(at) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => BTreeSet::new(),
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match changes.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            },
        };
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reconciler.apply(controller, &batch, rebuild);
            reconciler.retry_due(controller);
        }));
        if let Err(panic) = step {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let message = format!(
                "applying a change to the hive's files panicked ({text}); the reconciler goes on with the next change: save the file again to retry"
            );
            tracing::error!("{message}");
            controller.events().emit(EventKind::Hive, None, message);
        }
    }
}

impl Reconciler {
    fn apply(
        &mut self,
        controller: &Controller,
        batch: &BTreeSet<Change>,
        rebuild: Option<Rebuild>,
    ) {
        if let Some(rebuild) = rebuild
            && batch.contains(&Change::Sources)
        {
            rebuild_nodes(controller, rebuild);
        }
        if batch.contains(&Change::Config) {
            self.apply_config(controller);
        }
        for change in batch {
            if let Change::Library(path) = change {
                self.retries.remove(path);
                self.library(controller, path, 0);
            }
        }
    }

    fn apply_config(&mut self, controller: &Controller) {
        let path = controller.root().join(config::CONFIG_FILE);
        let renamed_in = identity(&path).is_some_and(|id| Some(id) != self.config_identity);
        let text = if renamed_in {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        } else {
            read_settled(&path)
        };
        self.config_identity = identity(&path);
        // A config that would expose the hive (its key removed while it listens beyond
        // loopback) is refused like a broken one: the running config and key stay.
        let parsed = text.and_then(|text| {
            let config = config::parse(controller.root(), &text)
                .map_err(|e| format!("{} is not a valid hive config: {e:#}", path.display()))?;
            config::check_live_change(&controller.config(), &config)?;
            Ok(config)
        });
        match parsed {
            Ok(config) => {
                crate::inject::maybe_panic("reconcile", &config);
                if std::mem::take(&mut self.config_broken) {
                    let message = "config/hive.toml is valid again: applied";
                    tracing::info!("{message}");
                    controller.events().emit(EventKind::Hive, None, message);
                }
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                    controller
                        .events()
                        .emit(EventKind::Hive, None, warning.clone());
                }
                // A change that lowers protection is applied only loudly: terminal, log, page.
                for lowered in config::lowered_protection(&controller.config(), &config) {
                    tracing::warn!("{lowered}");
                    controller.events().emit(EventKind::Hive, None, lowered);
                }
                controller.apply_config(config);
            }
            Err(error) => {
                let message = format!(
                    "{error}\nThe hive keeps running on the last good config until the file is fixed."
                );
                tracing::error!("{message}");
                controller.events().emit(EventKind::Hive, None, message);
                self.config_broken = true;
            }
        }
    }

    /// Hands a changed library to the controller; schedules a retry if it could not be read.
    fn library(&mut self, controller: &Controller, path: &Path, attempts: u32) {
        if !loader::library_exists(path) {
            controller.library_removed(path);
            return;
        }
        match controller.library_changed(path) {
            Ok(()) => {}
            Err(error) if matches!(error.kind, LoadErrorKind::Unreadable(_)) => {
                let delay = FIRST_RETRY
                    .saturating_mul(1 << attempts.min(16))
                    .min(LONGEST_RETRY);
                // The 1st, 2nd, 4th, 8th... failure is logged, not every one.
                if (attempts + 1).is_power_of_two() {
                    tracing::warn!(
                        "{error} (read {} time(s)); trying again in {} ms",
                        attempts + 1,
                        delay.as_millis()
                    );
                }
                self.retries.insert(
                    path.to_path_buf(),
                    Retry {
                        attempts: attempts + 1,
                        at: Instant::now() + delay,
                    },
                );
            }
            // A bad file was reported by the controller; a new change brings it back here.
            Err(_) => {}
        }
    }

    fn retry_due(&mut self, controller: &Controller) {
        let now = Instant::now();
        let due: Vec<(PathBuf, u32)> = self
            .retries
            .iter()
            .filter(|(_, retry)| retry.at <= now)
            .map(|(path, retry)| (path.clone(), retry.attempts))
            .collect();
        for (path, attempts) in due {
            self.retries.remove(&path);
            self.library(controller, &path, attempts);
        }
    }
}

/// The file's (device, inode), which changes when another file is renamed over it.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Reads `path` once it has stayed the same for [`CONFIG_QUIET`]: same size, modification time
/// and content in two reads that far apart.
fn read_settled(path: &Path) -> Result<String, String> {
    let read = || -> Result<(u64, Option<SystemTime>, String), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok((meta.len(), meta.modified().ok(), text))
    };
    let started = Instant::now();
    let mut last = read()?;
    loop {
        std::thread::sleep(CONFIG_QUIET);
        let now = read()?;
        if now == last {
            return Ok(now.2);
        }
        if started.elapsed() > CONFIG_PATIENCE {
            return Err(format!(
                "{} kept changing for {} s; it is applied once it stays unchanged for {} ms",
                path.display(),
                CONFIG_PATIENCE.as_secs(),
                CONFIG_QUIET.as_millis()
            ));
        }
        last = now;
    }
}

fn rebuild_nodes(controller: &Controller, rebuild: Rebuild) {
    let root = controller.root();
    let crates = match build::node_crates(root) {
        Ok(crates) => crates,
        Err(error) => {
            let message = format!("{error:#}; the running versions stay");
            tracing::error!("{message}");
            controller.events().emit(EventKind::Hive, None, message);
            return;
        }
    };
    let outcome = build::build_and_install(root, &crates, rebuild.release);
    controller
        .builds()
        .report(&outcome, &controller.config(), controller.events());
    // Reload at once rather than wait for the watcher to see the installed files.
    for (_, library) in &outcome.built {
        let _ = controller.library_changed(library);
    }
}
