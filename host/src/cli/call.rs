//! `hm call`: ask a request of the running hive through its HTTP API (`POST /api/request/NAME`)
//! and print the reply; a failure exits with a code per kind (see [`CallFailed::exit_code`]).

use super::send::Target;
use crate::requests::{DEFAULT_TIMEOUT, FailureKind, MAX_TIMEOUT, MIN_TIMEOUT, kind_from_name};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::io::Read as _;
use std::time::Duration;

/// Ask a request of the running hive and print the reply (JSON, one line).
///
/// A node of the hive that answers NAME gets ARGS; its reply is printed on stdout. Its asker
/// is `cli`. A failure is printed on stderr and exits non-zero: 3 nobody answers NAME, 4 no
/// reply before the timeout, 5 the handler failed (an error, a panic, arguments it cannot
/// decode), 6 the responder restarted or is far behind (ask again), 7 too large, 1 anything
/// else (the hive is not reachable, the key is wrong). Example: hm call alfred/advice '"joker"'
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The request's name.
    name: String,
    /// The arguments: any JSON value (quote it for the shell), `-` to read them from stdin;
    /// none: `null`.
    #[arg(allow_hyphen_values = true)]
    json: Option<String>,
    /// How long to wait for the reply, in milliseconds (1 to 60000).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT.as_millis() as u64)]
    timeout: u64,
    /// Ask every node that answers NAME; prints one line per responder.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    target: Target,
}

/// A request that the hive answered with a failure: its kind and message.
#[derive(Debug, thiserror::Error)]
#[error("request `{name}` failed ({kind}): {message}")]
pub struct CallFailed {
    name: String,
    kind: String,
    message: String,
}

impl CallFailed {
    /// The process's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        if self.kind == "invalid_reply" {
            return 5;
        }
        match kind_from_name(&self.kind) {
            Some(FailureKind::NoResponder) => 3,
            Some(FailureKind::Timeout) => 4,
            Some(FailureKind::HandlerError | FailureKind::Panicked | FailureKind::InvalidArgs) => 5,
            Some(FailureKind::Restarted | FailureKind::Busy | FailureKind::Stopping) => 6,
            Some(FailureKind::TooLarge) => 7,
            _ => 1,
        }
    }
}

/// Runs `hm call`.
pub(crate) fn run(args: CallArgs) -> Result<()> {
    let timeout = Duration::from_millis(args.timeout);
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        bail!(
            "--timeout {} is out of bounds: give 1 to {} milliseconds",
            args.timeout,
            MAX_TIMEOUT.as_millis()
        );
    }
    let body = match args.json.as_deref() {
        None => "null".to_owned(),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the arguments from stdin")?;
            text
        }
        Some(text) => text.to_owned(),
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
        bail!(
            "the arguments are not valid JSON: {e}\nhelp: a string needs JSON quotes inside the shell's, like '\"joker\"'"
        );
    }
    let hive = args
        .target
        .hive()?
        .waiting(timeout + Duration::from_secs(5));
    let path = format!(
        "/api/request/{}?client=cli&timeout_ms={}{}",
        super::send::percent_encode(&args.name),
        args.timeout,
        if args.all { "&all=true" } else { "" }
    );
    let (status, value) = hive.post_status(&path, &body)?;
    if let Some(kind) = value["kind"].as_str().filter(|_| status >= 400) {
        return Err(CallFailed {
            name: args.name,
            kind: kind.to_owned(),
            message: value["error"].as_str().unwrap_or_default().to_owned(),
        }
        .into());
    }
    if status >= 400 {
        bail!(
            "the hive at {} answered {status}: {}",
            hive.url,
            value["error"].as_str().unwrap_or("no reason given")
        );
    }
    if args.all {
        for part in value["replies"].as_array().into_iter().flatten() {
            println!("{part}");
        }
    } else {
        println!("{}", value["reply"]);
    }
    Ok(())
}
