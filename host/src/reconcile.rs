//! Applies what the watcher reports to the running hive: rebuilds node crates (`hm dev`),
//! reloads libraries that changed, unloads those removed, and applies config edits.
//!
//! A config with an error is reported (line and column) and the last good one stays in force
//! until the file is fixed; the fix is said in one line. A failed build prints cargo's errors,
//! ties them to their nodes ([`crate::builds`]) and leaves the running versions in place.

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
    // Whether the last read of config/hive.toml failed, to say so when it is fixed.
    let mut config_broken = false;
    while let Ok(batch) = changes.recv() {
        apply(controller, &batch, rebuild, &mut config_broken);
    }
}

fn apply(
    controller: &Controller,
    batch: &BTreeSet<Change>,
    rebuild: Option<Rebuild>,
    config_broken: &mut bool,
) {
    if let Some(rebuild) = rebuild
        && batch.contains(&Change::Sources)
    {
        rebuild_nodes(controller, rebuild);
    }
    if batch.contains(&Change::Config) {
        match config::load(controller.root()) {
            Ok(config) => {
                if std::mem::take(config_broken) {
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
                controller.apply_config(config);
            }
            Err(error) => {
                let message = format!(
                    "{error:#}\nThe hive keeps running on the last good config until the file is fixed."
                );
                tracing::error!("{message}");
                controller.events().emit(EventKind::Hive, None, message);
                *config_broken = true;
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
        controller.library_changed(library);
    }
}
