//! The planner: from the config in force, a new config and what runs now, the steps that make
//! the hive match the new config. Pure: it reads no file, loads no library and runs no node
//! code, so every rule is unit-tested here without a hive.
//!
//! Rules: a node that should run and does not is started; one that runs and should not is
//! stopped; one that runs and should, whose restart-worthy settings (everything but `enabled`)
//! changed, is restarted with them. Every other node is left alone. Steps come in node-name
//! order, stops and restarts before starts, so that freed resources are freed first.

use crate::config::{HiveConfig, NodeConfig};
use std::collections::BTreeSet;

/// Which nodes should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Those enabled in the config.
    Enabled,
    /// Exactly these (`hm dev -n`), enabled or not.
    Only(Vec<String>),
}

impl Selection {
    /// Whether `name` should run under `config`.
    pub(crate) fn wants(&self, config: &HiveConfig, name: &str) -> bool {
        match self {
            Selection::Only(names) => names.iter().any(|n| n == name),
            Selection::Enabled => config.nodes.get(name).is_some_and(|n| n.enabled),
        }
    }

    /// Every node that should run under `config`, in name order for `Enabled`, as named for
    /// `Only`.
    pub(crate) fn wanted(&self, config: &HiveConfig) -> Vec<String> {
        match self {
            Selection::Only(names) => names.clone(),
            Selection::Enabled => config
                .nodes
                .iter()
                .filter(|(_, node)| node.enabled)
                .map(|(name, _)| name.clone())
                .collect(),
        }
    }
}

/// One thing to do to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Build and start it. `enabled`: it was switched on by this change (say so).
    Start {
        /// The node.
        name: String,
        /// Whether the change switched it on.
        enabled: bool,
    },
    /// Stop it and close its library.
    Stop {
        /// The node.
        name: String,
        /// Why, for people.
        why: String,
    },
    /// Swap in a new instance with the new settings (the old one runs on if that fails).
    Restart {
        /// The node.
        name: String,
        /// Why, for people.
        why: String,
    },
}

/// The steps from `old` to `new` for the nodes in `running`.
pub(crate) fn plan(
    old: &HiveConfig,
    new: &HiveConfig,
    selection: &Selection,
    running: &BTreeSet<String>,
) -> Vec<Step> {
    let names: BTreeSet<&String> = old.nodes.keys().chain(new.nodes.keys()).collect();
    let mut changes = Vec::new();
    let mut starts = Vec::new();
    for name in names {
        let wanted = selection.wants(new, name);
        let before = old.nodes.get(name);
        let after = new.nodes.get(name);
        match (running.contains(name), wanted) {
            (false, true) => starts.push(Step::Start {
                name: name.clone(),
                enabled: before.is_none_or(|b| !b.enabled) && after.is_some_and(|a| a.enabled),
            }),
            (true, false) => changes.push(Step::Stop {
                name: name.clone(),
                why: if after.is_none() {
                    "removed from config/hive.toml".to_owned()
                } else {
                    "disabled in config/hive.toml".to_owned()
                },
            }),
            (true, true) if settings_changed(before, after) => changes.push(Step::Restart {
                name: name.clone(),
                why: "its settings changed".to_owned(),
            }),
            _ => {}
        }
    }
    changes.extend(starts);
    changes
}

/// The hive-level parts of `new` that differ from `old` and cannot apply while `hm` runs.
pub(crate) fn restart_needed(old: &HiveConfig, new: &HiveConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.bind != new.bind || old.port != new.port {
        changed.push("the address ([hive] bind, port)");
    }
    if old.name != new.name {
        changed.push("the hive's name");
    }
    if old.log != new.log {
        changed.push("[log]");
    }
    if old.messages.max_payload_bytes != new.messages.max_payload_bytes {
        changed.push("[messages] max_payload_bytes");
    }
    if old.mesh != new.mesh {
        changed.push("[mesh]");
    }
    if old.data != new.data {
        changed.push("[data]");
    }
    changed
}

/// Whether a node's restart-worthy settings differ (everything but `enabled`).
fn settings_changed(before: Option<&NodeConfig>, after: Option<&NodeConfig>) -> bool {
    let strip = |config: Option<&NodeConfig>| {
        config.map(|c| {
            let mut settings = c.settings.clone();
            if let Some(table) = settings.as_object_mut() {
                table.remove("enabled");
            }
            (
                c.library.clone(),
                c.queue_capacity,
                c.spin_us,
                c.overflow,
                settings,
            )
        })
    };
    strip(before) != strip(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> HiveConfig {
        crate::config::parse(Path::new("/hives/plan"), text).unwrap()
    }

    fn running(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn start(name: &str, enabled: bool) -> Step {
        Step::Start {
            name: name.into(),
            enabled,
        }
    }

    #[test]
    fn enabling_and_disabling_start_and_stop_only_those_nodes() {
        let old = config("[nodes.a]\nenabled = true\n[nodes.b]\nenabled = false\n");
        let new = config("[nodes.a]\nenabled = false\n[nodes.b]\nenabled = true\n");
        let steps = plan(&old, &new, &Selection::Enabled, &running(&["a"]));
        assert_eq!(
            steps,
            vec![
                Step::Stop {
                    name: "a".into(),
                    why: "disabled in config/hive.toml".into()
                },
                start("b", true),
            ]
        );
    }

    #[test]
    fn a_settings_change_restarts_and_enabled_alone_does_not() {
        let old = config("[nodes.a]\nenabled = true\nthreshold = 1\n[nodes.b]\nenabled = true\n");
        let new = config("[nodes.a]\nenabled = true\nthreshold = 2\n[nodes.b]\nenabled = true\n");
        let steps = plan(&old, &new, &Selection::Enabled, &running(&["a", "b"]));
        assert_eq!(
            steps,
            vec![Step::Restart {
                name: "a".into(),
                why: "its settings changed".into()
            }]
        );
        assert!(plan(&new, &new, &Selection::Enabled, &running(&["a", "b"])).is_empty());
    }

    #[test]
    fn a_node_that_should_run_but_does_not_is_started_again() {
        // A node that failed to build is not running: any applied config retries it, without
        // calling it newly enabled.
        let both = config("[nodes.a]\nenabled = true\n");
        assert_eq!(
            plan(&both, &both, &Selection::Enabled, &running(&[])),
            vec![start("a", false)]
        );
    }

    #[test]
    fn removed_tables_stop_and_only_selections_ignore_enabled() {
        let old = config("[nodes.a]\nenabled = true\n[nodes.c]\nenabled = false\n");
        let new = config("[nodes.c]\nenabled = false\n");
        assert_eq!(
            plan(&old, &new, &Selection::Enabled, &running(&["a"])),
            vec![Step::Stop {
                name: "a".into(),
                why: "removed from config/hive.toml".into()
            }]
        );
        let only = Selection::Only(vec!["c".into()]);
        assert_eq!(
            plan(&old, &new, &only, &running(&[])),
            vec![start("c", false)]
        );
        assert_eq!(only.wanted(&new), vec!["c".to_owned()]);
        assert!(!only.wants(&old, "a"));
    }

    #[test]
    fn hive_level_changes_are_named_as_needing_a_restart() {
        let old = config("[hive]\nport = 1\n");
        let new = config("[hive]\nport = 2\n[log]\nbackups = 3\n");
        assert_eq!(
            restart_needed(&old, &new),
            vec!["the address ([hive] bind, port)", "[log]"]
        );
        assert!(restart_needed(&old, &old).is_empty());
        let stores = config("[hive]\nport = 1\n[data]\nmax_bytes = 65536\n");
        assert_eq!(restart_needed(&old, &stores), vec!["[data]"]);
    }
}
