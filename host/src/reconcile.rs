//! Applies what the watcher reports to the running hive: rebuilds node crates (`hm dev`),
//! reloads libraries that changed, unloads those removed, and applies config edits.
//!
//! A config with an error is reported (line and column) and the last good one stays in force
//! until the file is fixed. A failed build prints cargo's errors and leaves the running
//! versions in place.

use crate::build;
use crate::config;
use crate::controller::Controller;
use crate::events::EventKind;
use crate::watch::Change;
use crossbeam_channel::Receiver;
use std::collections::BTreeSet;
use std::sync::Arc;

/// How `hm dev` rebuilds the hive's nodes when their sources change.
#[derive(Debug, Clone, Copy)]
pub struct Rebuild {
    /// Build with cargo's release profile.
    pub release: bool,
}

/// Applies every batch from `changes` until the channel closes.
pub fn run(
    controller: &Arc<Controller>,
    changes: &Receiver<BTreeSet<Change>>,
    rebuild: Option<Rebuild>,
) {
    while let Ok(batch) = changes.recv() {
        apply(controller, &batch, rebuild);
    }
}

fn apply(controller: &Controller, batch: &BTreeSet<Change>, rebuild: Option<Rebuild>) {
    if let Some(rebuild) = rebuild
        && batch.contains(&Change::Sources)
    {
        rebuild_nodes(controller, rebuild);
    }
    if batch.contains(&Change::Config) {
        // A config that would expose the hive (its key removed while it listens beyond
        // loopback) is refused like a broken one: the running config and key stay.
        let loaded = config::load(controller.root()).and_then(|config| {
            config::check_live_change(&controller.config(), &config).map_err(anyhow::Error::msg)?;
            Ok(config)
        });
        match loaded {
            Ok(config) => {
                for warning in &config.warnings {
                    tracing::warn!("{warning}");
                    controller
                        .events()
                        .emit(EventKind::Hive, None, warning.clone());
                }
                controller.apply_config(config);
            }
            Err(error) => {
                let message = format!(
                    "{error:#}\nThe hive keeps running on the last good config until the file is fixed."
                );
                tracing::error!("{message}");
                controller.events().emit(EventKind::Hive, None, message);
            }
        }
    }
    for change in batch {
        if let Change::Library(path) = change {
            if path.exists() {
                controller.library_changed(path);
            } else {
                controller.library_removed(path);
            }
        }
    }
}

fn rebuild_nodes(controller: &Controller, rebuild: Rebuild) {
    let root = controller.root();
    let built = build::node_crates(root)
        .and_then(|crates| build::build_and_install(root, &crates, rebuild.release));
    match built {
        // Reload at once rather than wait for the watcher to see the installed files.
        Ok(installed) => {
            for library in installed {
                controller.library_changed(&library);
            }
        }
        Err(error) => {
            let message = format!("{error:#}; the running versions stay");
            tracing::error!("{message}");
            controller.events().emit(EventKind::Hive, None, message);
        }
    }
}
