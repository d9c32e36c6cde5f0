//! What the last build of each node's crate said (`hm dev`), and how each build is reported.
//!
//! Guarantees:
//! - A node whose crate does not build carries that failure (the compiler's errors, as cargo
//!   renders them) in its snapshot until a later build of the crate succeeds; the page shows it
//!   on the node.
//! - Each failure is said once per build, in one place per audience: the terminal and
//!   `root.log` (one line: which crate, how many errors, what keeps running, that saving the fix
//!   rebuilds; the errors themselves were printed by cargo just before) and the feed (an event
//!   of the node).
//! - When a crate that failed builds again, a `build` event says so, also when its new library
//!   is identical to the one running (nothing reloads then): the feed never ends on a stale
//!   failure.

use crate::build::{BuildOutcome, NodeCrate};
use crate::config::HiveConfig;
use crate::events::{EventKind, Events};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A node crate's last build failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFailure {
    /// When (RFC 3339 UTC).
    pub time: String,
    /// How many compiler errors (0: not built for another reason, said in `rendered`).
    pub errors: usize,
    /// The compiler's errors as cargo renders them (file, line, caret).
    pub rendered: String,
    /// Whether an earlier library of the node is there to run meanwhile.
    pub running_last_good: bool,
}

/// The last build failure of each node (by node name), cleared when its crate builds again.
#[derive(Debug, Default)]
pub struct BuildResults {
    failures: Mutex<BTreeMap<String, BuildFailure>>,
}

impl BuildResults {
    /// The last build failure of `node`, if its crate does not build now.
    pub fn failure(&self, node: &str) -> Option<BuildFailure> {
        self.failures.lock().get(node).cloned()
    }

    /// Records `outcome` of a build of the hive at `root` and reports it (terminal, `root.log`,
    /// the feed).
    pub fn report(&self, outcome: &BuildOutcome, config: &HiveConfig, events: &Events) {
        let now = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let mut failures = self.failures.lock();
        for failure in &outcome.failed {
            let library = config.root.join("nodes").join(failure.node.library_file());
            let last_good = library.is_file();
            let what = if failure.errors > 0 {
                format!(
                    "{} error{} (shown above)",
                    failure.errors,
                    if failure.errors == 1 { "" } else { "s" }
                )
            } else {
                failure.rendered.clone()
            };
            let keeps = if last_good {
                "running the last good version"
            } else {
                "it cannot start until it builds"
            };
            tracing::error!(
                "node crate `{}` ({}) does not build: {what}; {keeps}. Fix the errors: saving the fix rebuilds.",
                failure.node.package,
                relative(&failure.node.dir, &config.root)
            );
            for node in nodes_of(&failure.node, config) {
                failures.insert(
                    node.clone(),
                    BuildFailure {
                        time: now.clone(),
                        errors: failure.errors,
                        rendered: failure.rendered.clone(),
                        running_last_good: last_good,
                    },
                );
                events.emit(
                    EventKind::Build,
                    Some(&node),
                    format!(
                        "build failed: source does not build ({}); {keeps}. Fix the errors: saving the fix rebuilds.",
                        if failure.errors > 0 {
                            format!(
                                "{} error{}",
                                failure.errors,
                                if failure.errors == 1 { "" } else { "s" }
                            )
                        } else {
                            failure.rendered.clone()
                        }
                    ),
                );
            }
        }
        for (node_crate, _) in &outcome.built {
            for node in nodes_of(node_crate, config) {
                if failures.remove(&node).is_some() {
                    tracing::info!("node crate `{}` builds again", node_crate.package);
                    events.emit(
                        EventKind::Build,
                        Some(&node),
                        "build ok: the source builds again",
                    );
                }
            }
        }
        if let Some(error) = &outcome.error {
            let message = format!(
                "cannot build the hive's node crates: {error}\nThe running versions stay. Fix it: saving a file rebuilds."
            );
            tracing::error!("{message}");
            events.emit(EventKind::Hive, None, message);
        }
    }
}

/// The nodes that run `node_crate`'s library: those of the config whose `library` it is, or
/// (when none is configured) the node named like the crate.
fn nodes_of(node_crate: &NodeCrate, config: &HiveConfig) -> Vec<String> {
    let file = node_crate.library_file();
    let configured: Vec<String> = config
        .nodes
        .iter()
        .filter(|(_, node)| crate::loader::library_file_name(&node.library) == file)
        .map(|(name, _)| name.clone())
        .collect();
    if configured.is_empty() {
        vec![node_crate.package.clone()]
    } else {
        configured
    }
}

/// `path` relative to the hive's folder, for messages.
fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::CrateFailure;

    fn hive() -> (tempfile::TempDir, HiveConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("config/hive.toml"),
            "[hive]\nname = \"t\"\n[nodes.batman]\nenabled = true\n",
        )
        .unwrap();
        let config = crate::config::load(dir.path()).unwrap();
        (dir, config)
    }

    #[test]
    fn a_failure_stays_on_its_node_until_the_crate_builds_again() {
        let (dir, config) = hive();
        let node = NodeCrate {
            package: "batman".into(),
            dir: dir.path().join("nodes/batman"),
        };
        let results = BuildResults::default();
        let events = Events::default();
        let failed = BuildOutcome {
            failed: vec![CrateFailure {
                node: node.clone(),
                errors: 2,
                rendered: "error[E0425]: cannot find value `x`".into(),
            }],
            ..BuildOutcome::default()
        };
        results.report(&failed, &config, &events);
        let failure = results
            .failure("batman")
            .expect("the failure is on the node");
        assert_eq!(failure.errors, 2);
        assert!(failure.rendered.contains("E0425"));
        assert!(!failure.running_last_good, "no library was built before");
        let said = events.recent();
        assert_eq!(said.len(), 1);
        assert_eq!(said[0].node.as_deref(), Some("batman"));
        assert!(said[0].message.contains("2 errors"), "{}", said[0].message);
        assert!(said[0].message.contains("saving the fix rebuilds"));
        assert!(!said[0].message.contains("hm dev"), "{}", said[0].message);

        // Built again (even to an identical library): cleared, and said.
        let built = BuildOutcome {
            built: vec![(node.clone(), dir.path().join("nodes/libbatman.so"))],
            ..BuildOutcome::default()
        };
        results.report(&built, &config, &events);
        assert_eq!(results.failure("batman"), None);
        let last = events.recent().pop().unwrap();
        assert!(last.message.starts_with("build ok"), "{}", last.message);
        // Another good build says nothing more.
        results.report(&built, &config, &events);
        assert_eq!(events.recent().len(), 2);
    }
}
