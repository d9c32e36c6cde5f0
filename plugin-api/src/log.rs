//! Node-side logging: lines go through the host into the node's own log file.
//!
//! A node library has its own copy of every static (`tracing`'s included), so the host's
//! subscriber never sees a node's `tracing` events. These macros hand each line to the host
//! instead, which writes it to `<log location>/<node name>.log`.

use crate::abi::LogLevel;
use std::fmt;

/// How important a log line is.
///
/// ```
/// use hivemind::Level;
/// use hivemind::testing::LogLine;
///
/// let line = LogLine { level: Level::Warn, message: "low battery".into() };
/// assert!(matches!(line.level, Level::Warn | Level::Error));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// Normal operation.
    Info,
    /// Detail, written only under `hm dev -v`.
    Debug,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Error => LogLevel::Error,
            Level::Warn => LogLevel::Warn,
            Level::Info => LogLevel::Info,
            Level::Debug => LogLevel::Debug,
        }
    }
}

/// Writes one line to the log of the node whose callback is running on this thread.
///
/// Outside a callback (on a thread the node started itself) there is no node to log for; the
/// line then goes to stderr.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    let line = args.to_string();
    if !crate::current::log_to_current_node(level.into(), &line) {
        eprintln!("[{level:?}] (outside a node callback) {line}");
    }
}

/// Logs at info level to the node's log file: `info!("saw {n} signals")`.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Greeter;
///
/// impl Node for Greeter {
///     fn new(context: &Context) -> Result<Self> {
///         info!("{} is up", context.name());
///         Ok(Greeter)
///     }
/// }
/// hivemind::export_node!(Greeter);
///
/// let node = TestNode::<Greeter>::with_settings("greeter", json!({})).unwrap();
/// assert_eq!(node.logs()[0].level, hivemind::Level::Info);
/// assert_eq!(node.logs()[0].message, "greeter is up");
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Info, $($arg)+) };
}

/// Logs at warning level to the node's log file.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Watcher;
///
/// impl Node for Watcher {
///     fn new(_context: &Context) -> Result<Self> {
///         warn!("odd reading {}", 42);
///         Ok(Watcher)
///     }
/// }
/// hivemind::export_node!(Watcher);
///
/// let node = TestNode::<Watcher>::new().unwrap();
/// assert_eq!(node.logs()[0].level, hivemind::Level::Warn);
/// assert_eq!(node.logs()[0].message, "odd reading 42");
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Warn, $($arg)+) };
}

/// Logs at error level to the node's log file.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Watcher;
///
/// impl Node for Watcher {
///     fn new(_context: &Context) -> Result<Self> {
///         error!("sensor gone {}", 42);
///         Ok(Watcher)
///     }
/// }
/// hivemind::export_node!(Watcher);
///
/// let node = TestNode::<Watcher>::new().unwrap();
/// assert_eq!(node.logs()[0].level, hivemind::Level::Error);
/// assert_eq!(node.logs()[0].message, "sensor gone 42");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Error, $($arg)+) };
}

/// Logs at debug level to the node's log file (written under `hm dev -v`).
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Watcher;
///
/// impl Node for Watcher {
///     fn new(_context: &Context) -> Result<Self> {
///         debug!("raw value {}", 42);
///         Ok(Watcher)
///     }
/// }
/// hivemind::export_node!(Watcher);
///
/// let node = TestNode::<Watcher>::new().unwrap();
/// assert_eq!(node.logs()[0].level, hivemind::Level::Debug);
/// assert_eq!(node.logs()[0].message, "raw value 42");
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)+) => {
        $crate::__private::write_log($level, format_args!($($arg)+))
    };
}
