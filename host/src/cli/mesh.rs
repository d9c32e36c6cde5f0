//! `hm mesh`: setting up the mesh between hosts.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Set up the mesh between hosts: `hm mesh certs HOST...`.
#[derive(Debug, Args)]
pub(super) struct MeshArgs {
    #[command(subcommand)]
    command: MeshCommand,
}

#[derive(Debug, Subcommand)]
enum MeshCommand {
    /// Create the hive's certificate authority (once) and a certificate per host, for mutual
    /// TLS between hosts; prints the [mesh] lines for each host's config/hive.toml.
    ///
    /// Run it in the hive's folder: the files go to config/mesh/ (or --dir). Existing files are
    /// kept, so run it again with a new name to add a host.
    Certs {
        /// The hosts' names, as each one's [mesh] host.
        #[arg(required = true)]
        hosts: Vec<String>,
        /// Where to write the files (relative to the hive's folder, as the config names them).
        #[arg(long, default_value = "config/mesh")]
        dir: PathBuf,
    },
}

/// Runs `hm mesh`.
pub(super) fn run(args: MeshArgs) -> Result<()> {
    match args.command {
        MeshCommand::Certs { hosts, dir } => certs(&hosts, &dir),
    }
}

#[cfg(feature = "mesh")]
fn certs(hosts: &[String], dir: &std::path::Path) -> Result<()> {
    let shown = dir.to_string_lossy();
    print!("{}", crate::mesh::certs::create(dir, &shown, hosts)?);
    Ok(())
}

#[cfg(not(feature = "mesh"))]
fn certs(_hosts: &[String], _dir: &std::path::Path) -> Result<()> {
    anyhow::bail!(
        "this hm was built without its `mesh` feature: rebuild it with default features (`cargo install --path host`)"
    )
}
