//! `hm enable` and `hm disable`: switch a node on or off in config/hive.toml.

use crate::{config, scaffold};
use anyhow::Result;
use clap::Args;

/// Switch a node on in config/hive.toml (comments kept); a running hive starts it at once.
#[derive(Debug, Args)]
pub(super) struct EnableArgs {
    /// The node's name (its [nodes.<name>] table).
    name: String,
}

/// Runs `hm enable` (`enabled` true) or `hm disable` (false).
pub(super) fn run(args: EnableArgs, enabled: bool) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let changed = config::set_enabled(&root, &args.name, enabled)?;
    let state = if enabled { "enabled" } else { "disabled" };
    if changed {
        println!(
            "Node `{}` {state} in config/hive.toml; a running hive applies it at once.",
            args.name
        );
    } else {
        println!("Node `{}` was already {state}.", args.name);
    }
    Ok(())
}
