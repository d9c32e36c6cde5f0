//! `hm create_node`: generate a new node within a hive.

use crate::scaffold;
use anyhow::Result;
use clap::Args;

/// Generate a new node within a hive.
///
/// Run it anywhere inside the hive. Creates nodes/<name>/ (a Rust crate built as a node
/// library) and adds [nodes.<name>] to config/hive.toml, disabled until you enable it.
#[derive(Debug, Args)]
pub struct CreateNodeArgs {
    /// The name of this node, e.g. BatSignal (its type) → batsignal (its crate and config key).
    name: String,
    /// Provide additional feedback.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `hm create_node`.
pub fn run(args: CreateNodeArgs) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let node = scaffold::create_node(&root, &args.name)?;
    println!("New node `{}` at: {}", node.name, node.dir.display());
    println!(
        "Enable it in config/hive.toml ([nodes.{}] enabled = true), then run `hm dev`.",
        node.name
    );
    if args.verbose {
        println!("Its code is in {}", node.dir.join("src/lib.rs").display());
    }
    Ok(())
}
