//! `hm new`: set up a new hive.

use crate::scaffold;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Set up a new hive!
///
/// Creates DIR/NAME/ with config/hive.toml, nodes/, static/, a Cargo workspace for the hive's
/// node crates, and the hivemind API crate they build against (vendor/hivemind).
#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The name of the new hive (and of its folder).
    name: String,
    /// The directory to place it in (the current directory by default).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Provide additional feedback.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs `hm new`.
pub(super) fn run(args: NewArgs) -> Result<()> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    let hive = scaffold::new_hive(&args.name, &dir)?;
    println!("New hive at: {}", hive.display());
    if args.verbose {
        println!(
            "Next: cd {} && hm create_node NAME, then hm dev",
            hive.display()
        );
    }
    Ok(())
}
