//! The `hm` command line: one module per subcommand, each with its help beside its code.

mod call;
mod create_node;
mod data;
mod dev;
mod enable;
mod list;
mod logs;
mod mesh;
mod new;
mod running;
mod send;

pub use call::CallFailed;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Hivemind utility belt: start new hives and nodes, and run them.
#[derive(Debug, Parser)]
#[command(name = "hm", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    New(new::NewArgs),
    #[command(name = "create_node", visible_alias = "create-node")]
    CreateNode(create_node::CreateNodeArgs),
    Dev(dev::DevArgs),
    Run(dev::RunArgs),
    Enable(enable::EnableArgs),
    /// Switch a node off in config/hive.toml (comments kept); a running hive stops it at once.
    Disable(enable::EnableArgs),
    Send(send::SendArgs),
    Call(call::CallArgs),
    Data(data::DataArgs),
    List(list::ListArgs),
    Logs(logs::LogsArgs),
    Mesh(mesh::MeshArgs),
    /// Runs one isolated node for the host at the other end of stdin (started by `hm` itself).
    #[command(name = "__isolated", hide = true)]
    Isolated,
}

/// Runs the command the user typed.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::New(args) => new::run(args),
        Command::CreateNode(args) => create_node::run(args),
        Command::Dev(args) => dev::run_dev(args),
        Command::Run(args) => dev::run_prod(args),
        Command::Enable(args) => enable::run(args, true),
        Command::Disable(args) => enable::run(args, false),
        Command::Send(args) => send::run(args),
        Command::Call(args) => call::run(args),
        Command::Data(args) => data::run(args),
        Command::List(args) => list::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Mesh(args) => mesh::run(args),
        Command::Isolated => crate::runtime::child_main(),
    }
}
