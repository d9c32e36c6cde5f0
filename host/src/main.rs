//! `hm`: the hivemind command. All the work is in the `hivemind_host` library.

use clap::Parser;
use hivemind_host::{CallFailed, Cli, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            // `hm call`: a code per kind of failure (its help lists them).
            match error.downcast_ref::<CallFailed>() {
                Some(failed) => ExitCode::from(failed.exit_code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}
