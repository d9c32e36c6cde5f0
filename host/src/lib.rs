//! The `hm` host: loads node libraries into a hive and carries their messages.
//!
//! One way for data to flow: file → [`loader`] → [`runtime`] → [`bus`] → [`runtime`] → node.
//! The [`controller`] owns the bus and the nodes' runtimes; [`web`] shows them; [`cli`] is the
//! `hm` command; [`build`] compiles node crates for `hm dev`; [`scaffold`] writes new hives and
//! nodes; [`logging`] writes root.log and each node's log; [`watch`] sees files change and
//! [`reconcile`] applies those changes to the running hive through the controller; [`mesh`]
//! bridges the bus to the other hosts of the hive over Zenoh; [`isolate`] runs a node in a process
//! of its own when its config says `isolate = true`.

pub mod build;
pub mod builds;
pub mod bus;
pub mod cli;
pub mod config;
pub mod controller;
pub mod events;
#[doc(hidden)]
pub mod inject;
pub mod isolate;
pub mod loader;
pub mod logging;
pub mod mesh;
pub mod reconcile;
pub mod requests;
pub mod runtime;
pub mod scaffold;
pub mod watch;
pub mod web;

/// Entry points for the `cargo fuzz` targets in `fuzz/` that the public API does not offer. Not
/// part of the host's API: no stability promised.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::loader::elf::check as check_elf;

    /// Whether `pattern` matches `service` by its regex alone, without the literal and prefix
    /// shortcuts that [`Pattern::matches`](crate::bus::Pattern::matches) takes first.
    pub fn pattern_matches_by_regex(pattern: &crate::bus::Pattern, service: &str) -> bool {
        pattern.matches_by_regex(service)
    }
}
