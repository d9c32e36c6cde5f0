//! Host logging: routes the host's events to `root.log` and each node's lines to `<node>.log`,
//! with size rotation, and shows what matters on the terminal.
//!
//! - [`init`] installs the process-wide `tracing` subscriber. Host events (`tracing::info!` and
//!   friends in `hm`) go to stderr (compact) and to `<dir>/root.log`.
//! - [`Logs::node`] gives a node its [`NodeLog`]: lines go to `<dir>/<node>.log`; warnings and
//!   errors are also shown on stderr as `[batman] WARN message`.
//! - Every file uses the record layout of [`line`] (`2026-11-28T02:42:44.123456Z  INFO message`),
//!   so files can later be merged by timestamp. Files and their directory are created at the
//!   first line; a file that cannot be written is reported once on stderr and never panics.
//!
//! Levels: without `verbose`, files get INFO and up; with it, DEBUG too (for the host, DEBUG of
//! the host's own crates only, so that dependencies such as the web server do not flood the log).
//! The terminal shows host events at the same levels (or as `RUST_LOG` says, if set) and node
//! lines at WARN and up.

mod file;
pub(crate) mod line;
mod root;

pub(crate) use file::RotatingFile;

use anyhow::{Context, Result};
use file::SharedFile;
use hivemind::abi::LogLevel;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Where logs go and how big they may grow.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The log directory (created at the first line written).
    pub dir: PathBuf,
    /// Rotate a file before it would grow past this many bytes (`0`: never rotate).
    pub max_bytes: u64,
    /// How many rotated files to keep (`name.log.1` newest … `name.log.N`); `0` truncates.
    pub backups: u32,
    /// Write DEBUG lines too.
    pub verbose: bool,
}

/// The name of the host's own log: `<dir>/root.log`.
pub(crate) const ROOT: &str = "root";

/// Installs the global `tracing` subscriber: host events go to the terminal (stderr) and to
/// root.log. Returns the handle nodes' logs are made from. Call once per process.
///
/// A `RUST_LOG` that does not parse is ignored with a warning; the default filter is used instead.
pub(crate) fn init(settings: LogSettings) -> Result<Logs> {
    let verbose = settings.verbose;
    let logs = Logs::new(settings);
    let (terminal_filter, bad_rust_log) = terminal_filter(verbose);
    let terminal = fmt::layer()
        .compact()
        .without_time()
        .with_target(verbose)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_filter(terminal_filter);
    tracing_subscriber::registry()
        .with(terminal)
        .with(root::layer(logs.file(ROOT), verbose))
        .try_init()
        .context("cannot install the logging subscriber (was logging::init called twice?)")?;
    if let Some((value, error)) = bad_rust_log {
        tracing::warn!("ignoring RUST_LOG={value:?}: {error}");
    }
    Ok(logs)
}

/// Filter directives for host events when `RUST_LOG` does not say otherwise. Zenoh (the
/// mesh) says only what goes wrong: its own start-up lines repeat what the host reports.
fn default_directives(verbose: bool) -> &'static str {
    if verbose {
        "info,zenoh=warn,hm=debug,hivemind_host=debug,hivemind=debug"
    } else {
        "info,zenoh=warn"
    }
}

fn default_targets(verbose: bool) -> Targets {
    default_directives(verbose)
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(Level::INFO))
}

/// The terminal's filter: `RUST_LOG` if set, else the defaults; plus `RUST_LOG`'s value and
/// parse error if it was set but invalid.
fn terminal_filter(verbose: bool) -> (EnvFilter, Option<(String, String)>) {
    let default = || EnvFilter::new(default_directives(verbose));
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::builder().parse(&value) {
            Ok(filter) => (filter, None),
            Err(error) => (default(), Some((value, error.to_string()))),
        },
        _ => (default(), None),
    }
}

/// The set of log files in one directory: makes each node's [`NodeLog`].
///
/// Clones share the files. Asking twice for the same node gives the same file handle.
#[derive(Debug, Clone)]
pub struct Logs(Arc<LogsInner>);

#[derive(Debug)]
struct LogsInner {
    settings: LogSettings,
    /// Open (or yet to be opened) files by name, `root` included.
    files: Mutex<HashMap<String, SharedFile>>,
    /// In an isolated node's process: where node lines go instead of files (the host writes them).
    forward: Option<LineSink>,
}

/// Takes a node's log lines in a process that does not own the log files.
pub(crate) type LineSink = crossbeam_channel::Sender<(LogLevel, String)>;

impl Logs {
    /// Logs in `settings.dir` without installing any subscriber (for tests and tools; [`init`]
    /// uses this). Touches nothing on disk.
    pub fn new(settings: LogSettings) -> Self {
        Logs(Arc::new(LogsInner {
            settings,
            files: Mutex::new(HashMap::new()),
            forward: None,
        }))
    }

    /// Logs whose node lines all go to `sink` (at the levels `verbose` says) instead of files:
    /// an isolated node's process hands its lines to the host, which owns the files.
    pub fn forwarding(sink: LineSink, verbose: bool) -> Self {
        Logs(Arc::new(LogsInner {
            settings: LogSettings {
                dir: PathBuf::new(),
                max_bytes: 0,
                backups: 0,
                verbose,
            },
            files: Mutex::new(HashMap::new()),
            forward: Some(sink),
        }))
    }

    /// The log of node `name`: `<dir>/<name>.log`. Cheap to clone, Send + Sync.
    ///
    /// Characters that cannot be in a file name (`/`, `\`, control characters, …) become `_` in
    /// the file's name; a node named `root` shares root.log.
    pub fn node(&self, name: &str) -> NodeLog {
        let target = match &self.0.forward {
            Some(sink) => Target::Forward(sink.clone()),
            None => Target::File(self.file(&file_stem(name))),
        };
        NodeLog {
            name: Arc::from(name),
            target,
            max_level: if self.0.settings.verbose {
                LogLevel::Debug
            } else {
                LogLevel::Info
            },
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.0.settings.dir
    }

    /// The file `<dir>/<stem>.log`, shared with every other user of it.
    fn file(&self, stem: &str) -> SharedFile {
        let settings = &self.0.settings;
        self.0
            .files
            .lock()
            .entry(stem.to_owned())
            .or_insert_with(|| {
                let path = settings.dir.join(format!("{stem}.log"));
                SharedFile::new(RotatingFile::new(
                    path,
                    settings.max_bytes,
                    settings.backups,
                ))
            })
            .clone()
    }
}

/// `name`, made safe as a file name.
fn file_stem(name: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
    };
    if name.is_empty() || name == "." || name == ".." {
        Cow::Borrowed("_")
    } else if name.contains(bad) {
        Cow::Owned(name.replace(bad, "_"))
    } else {
        Cow::Borrowed(name)
    }
}

/// One node's log file. Cheap to clone; clones share the file.
#[derive(Debug, Clone)]
pub struct NodeLog {
    name: Arc<str>,
    target: Target,
    max_level: LogLevel,
}

/// Where a node's lines go.
#[derive(Debug, Clone)]
enum Target {
    File(SharedFile),
    /// To the host that owns the file (see [`Logs::forwarding`]); it also does the terminal.
    Forward(LineSink),
}

impl NodeLog {
    /// Appends one line at `level` to the node's file (Debug only when verbose).
    /// Warn and Error lines are also shown on the terminal, prefixed with the node name.
    pub fn write(&self, level: LogLevel, message: &str) {
        if let Target::Forward(sink) = &self.target {
            if level <= self.max_level {
                let _ = sink.send((level, message.to_owned()));
            }
            return;
        }
        if !self.write_to_file(level, message) || level > LogLevel::Warn {
            return;
        }
        let label = if level == LogLevel::Error {
            "ERROR"
        } else {
            "WARN"
        };
        let message = line::Indented(message, "    ");
        // Nothing useful to do if stderr itself is gone.
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{}] {label} {message}",
            self.name
        );
    }

    /// Appends one line to the node's file only, for what the host also reports itself.
    /// Returns false if `level` is filtered out.
    pub fn write_to_file(&self, level: LogLevel, message: &str) -> bool {
        if level > self.max_level {
            return false;
        }
        let file = match &self.target {
            Target::File(file) => file,
            Target::Forward(sink) => {
                let _ = sink.send((level, message.to_owned()));
                return true;
            }
        };
        file.write_with(|buf| {
            line::format_line(
                buf,
                OffsetDateTime::now_utc(),
                tracing_level(level),
                message,
            );
        });
        true
    }

    #[cfg(test)]
    fn file(&self) -> &SharedFile {
        match &self.target {
            Target::File(file) => file,
            Target::Forward(_) => panic!("a forwarding log has no file"),
        }
    }

    /// The node's name, as given to [`Logs::node`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn tracing_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
    }
}

#[cfg(test)]
mod init_tests;
#[cfg(test)]
mod tests;
