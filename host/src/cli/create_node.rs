//! `hm create_node`: generate a new node within a hive.

use super::running;
use crate::scaffold;
use anyhow::Result;
use clap::Args;

/// Generate a new node within a hive.
///
/// Run it anywhere inside the hive. Creates nodes/<name>/ (a Rust crate built as a node
/// library) and adds [nodes.<name>] to config/hive.toml, disabled until you enable it.
#[derive(Debug, Args)]
pub(super) struct CreateNodeArgs {
    /// The name of this node, e.g. BatSignal (its type) → batsignal (its crate and config key).
    name: String,
    /// Provide additional feedback.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `hm create_node`.
pub(super) fn run(args: CreateNodeArgs) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let node = scaffold::create_node(&root, &args.name)?;
    println!("New node `{}` at: {}", node.name, node.dir.display());
    let name = &node.name;
    match running::find(&root) {
        Some(hive) if hive.mode == "dev" => println!(
            "`hm dev` (pid {}, {}) runs this hive: it has picked the new crate up and builds it now. \
             Start the node with `hm enable {name}` (or enabled = true under [nodes.{name}] in config/hive.toml).",
            hive.pid, hive.url
        ),
        Some(hive) => println!(
            "`hm run` (pid {}, {}) runs this hive; it builds nothing: build the library \
             (cargo build -p {name}, then copy target/debug/lib{lib}.so into nodes/) and start the node with \
             `hm enable {name}`.",
            hive.pid,
            hive.url,
            lib = name.replace('-', "_")
        ),
        None => println!(
            "Enable it in config/hive.toml ([nodes.{name}] enabled = true, or `hm enable {name}`), then run `hm dev`."
        ),
    }
    if args.verbose {
        println!("Its code is in {}", node.dir.join("src/lib.rs").display());
    }
    Ok(())
}
