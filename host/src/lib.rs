//! The `hm` host: loads node libraries into a hive and carries their messages.
//!
//! One way for data to flow: file → `loader` → `runtime` (the instance seam, with its in-process
//! driver beside `isolate`, the driver for `isolate = true`) → `bus` → `runtime` → node. The
//! `controller` owns the bus and the nodes' instances; `web` shows them; `cli` is the `hm`
//! command; `build` compiles node crates for `hm dev`; `scaffold` writes new hives and nodes;
//! `logging` writes root.log and each node's log; `watch` sees files change and `reconcile`
//! applies those changes to the running hive through the controller; `mesh` bridges the bus to
//! the other hosts of the hive over Zenoh; `schemas` keeps the payload types nodes declared,
//! checks what is published from outside against them and compares publishers with
//! subscribers.
//!
//! Every module is private. What is public is the façade below: the `hm` command ([`Cli`],
//! [`run`]), a [`Controller`] with its bus and snapshots for `hivemind-bench`, the config parser
//! for the fuzz targets, and the entry point of an isolated node's process. `unreachable_pub`
//! keeps everything else crate-private and `missing_docs` keeps the façade documented.

#![warn(unreachable_pub, missing_docs)]

mod build;
mod builds;
mod bus;
mod cli;
mod config;
mod controller;
mod events;
mod inject;
mod loader;
mod logging;
mod mesh;
mod names;
mod reconcile;
mod requests;
mod runtime;
mod scaffold;
mod schemas;
mod store;
mod watch;
mod web;

// The façade: all that the `hm` binary, `hivemind-bench` and the fuzz targets use. Everything
// else is crate-private (`unreachable_pub` keeps it so).

pub use bus::{
    Bus, Delivery, Doorbell, Incoming, Message, Overflow, Pattern, QueueSender, Subscription,
    SubscriptionStats, Tap, Topic, TopicInfo,
};
pub use cli::{CallFailed, Cli, run};
pub use config::{CONFIG_FILE, HiveConfig, load as load_config, parse as parse_config};
pub use controller::{Controller, HiveSnapshot, Selection};
pub use logging::{LogSettings, Logs};
pub use names::check_node_name;
pub use runtime::{CHILD_COMMAND, NodeQueue, NodeSnapshot, NodeStatus, child_main};

/// Entry points for the `cargo fuzz` targets in `fuzz/` that the public API does not offer. Not
/// part of the host's API: no stability promised.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::loader::ElfError;
    pub use crate::loader::elf::check as check_elf;
}

/// Asking a node's request handler from outside any node, for `hivemind-bench`: through the
/// host's request router, the path a node's `Service::request` takes. Not part of the host's
/// API: no stability promised.
#[doc(hidden)]
pub mod benching {
    use crate::controller::Controller;
    use crate::requests::Ask;
    use std::time::Duration;

    /// Asks request `name` with `args` (JSON text) of one responder, waiting up to `timeout`;
    /// the reply as JSON text, or why there is none.
    pub fn request(
        controller: &Controller,
        name: &str,
        args: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let router = controller.router();
        let ask = Ask {
            name: name.to_owned(),
            args: args.to_owned(),
            from_node: "bench".into(),
            from_host: router.host(),
            timeout,
            all: false,
        };
        match router.ask_blocking(ask) {
            Ok(parts) => match parts.into_iter().next() {
                Some(Ok(answer)) => Ok(answer.json),
                Some(Err(failure)) => Err(failure.message),
                None => Err(format!("request `{name}` got no part")),
            },
            Err(failure) => Err(failure.message),
        }
    }
}
