//! Fault injection for the end-to-end tests: with `HM_INJECT_PANIC=<place>` in its environment,
//! `hm` panics at that place when the config asks for it (a node table named
//! `hm-inject-panic`), so the tests can show that the hive survives a panic there. Without the
//! variable (any normal run) nothing here ever fires.
//!
//! Places: `reconcile` (the reconciler, while applying a config change) and `control` (the
//! control thread, while applying a config).

use crate::config::HiveConfig;

/// The node name that arms an injected panic.
pub(crate) const TRIGGER: &str = "hm-inject-panic";

/// Panics if `HM_INJECT_PANIC` names `place` and `config` holds the trigger table.
pub(crate) fn maybe_panic(place: &str, config: &HiveConfig) {
    let armed = std::env::var("HM_INJECT_PANIC").is_ok_and(|value| value == place);
    if armed && config.nodes.contains_key(TRIGGER) {
        panic!("injected panic in {place} (HM_INJECT_PANIC)");
    }
}
