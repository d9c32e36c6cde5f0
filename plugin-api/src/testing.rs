//! Test a node with `cargo test`: run it in-process, with no host.
//!
//! [`TestNode`] builds a node through the very root module its library exports to `hm` (what
//! [`export_node!`](crate::export_node) makes) and drives it through the same ABI objects the
//! host drives, with a recording host in place of `hm`. So what a test sees is what a hive sees:
//!
//! - a callback's `Err` or panic comes back as a [`TestError`] saying which, with the same
//!   message `hm` would log, and the panic's line (`panicked at src/lib.rs:12:5: ...`) is in
//!   the node's [`logs`](TestNode::logs) as it would be in its log file;
//! - what the node sends is refused for the same reasons as in a hive ([`SendErrorKind`]): too
//!   large for `max_payload_bytes` (1 MiB unless [set](TestNode::set_max_payload_bytes)), sent
//!   before the node started, or after it was [stopped](TestNode::stop);
//! - messages reach the subscriptions whose patterns match, in registration order, with the
//!   host's glob rules; an invalid pattern fails the build as it fails a node's start;
//! - a [`reload`](TestNode::reload) hands the state over as `hm dev` does when new code is
//!   swapped in: `save_state` on the old instance, `restore_state` on the new one, as JSON text.
//!
//! - requests: [`request`](TestNode::request) calls the node's request handlers as a hive's
//!   asker would; what the node itself asks is answered from canned replies
//!   ([`reply_to`](TestNode::reply_to), [`fail_to`](TestNode::fail_to)), or fails with
//!   [`NoResponder`](RequestErrorKind::NoResponder) as in a hive where nobody answers, and a
//!   blocking request from a delivery-thread callback is refused as in a hive.
//!
//! What differs, on purpose: nothing runs by itself. A service's loop runs one iteration per
//! [`run_service`](TestNode::run_service), a timer ticks on [`tick`](TestNode::tick), and
//! `sleep_for` returns at once (still running, unless the node was stopped) with the duration
//! recorded in [`sleeps`](TestNode::sleeps). The replies to an [`Asker`](crate::Asker)'s asks
//! wait until [`deliver_replies`](TestNode::deliver_replies).
//!
//! ```
//! use hivemind::prelude::*;
//! use hivemind::testing::TestNode;
//!
//! pub struct Greeter {
//!     greeting: String,
//!     out: Option<Service>,
//! }
//!
//! #[derive(Deserialize)]
//! struct Settings {
//!     greeting: String,
//! }
//!
//! impl Node for Greeter {
//!     fn new(context: &Context) -> Result<Self> {
//!         let settings: Settings = context.settings_as()?;
//!         Ok(Greeter { greeting: settings.greeting, out: None })
//!     }
//!
//!     fn services(&mut self, hive: &mut Services) {
//!         self.out = Some(hive.add_publisher("greetings"));
//!     }
//!
//!     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
//!         hive.add_subscription("names", |node: &mut Self, message: &Message| {
//!             let name = message.payload().as_str().ok_or("a name is a string")?;
//!             info!("greeting {name}");
//!             node.out.as_ref().unwrap().send(&format!("{}, {name}!", node.greeting))?;
//!             Ok(())
//!         });
//!     }
//! }
//!
//! hivemind::export_node!(Greeter);
//!
//! let mut node = TestNode::<Greeter>::with_json(r#"{"greeting": "Hello"}"#).unwrap();
//! assert_eq!(node.deliver("names", "Ada").unwrap(), 1);
//! assert_eq!(node.sent_on("greetings"), vec![json!("Hello, Ada!")]);
//! assert!(node.logs().iter().any(|line| line.message == "greeting Ada"));
//!
//! let error = node.deliver("names", &42).unwrap_err();
//! assert!(error.message().contains("a name is a string"));
//! ```

use crate::Level;
use crate::abi::{
    CallbackError, DeclaredSchemas, Host, HostBox, LogLevel, MessageView, NodeBox, NodeInit,
    NodeParts, ReplyData, RequestDecl, RequestErrorKind, RequestFailure, RequestOutcomes,
    RequestView, SendFailure, ServiceBox, TimerDecl,
};
use crate::glue::{NodeExport, mark_under_test, root_module};
use crate::outcome::{Flow, SendErrorKind};
use crate::pattern::Glob;
use crate::request::{RequestError, args_json};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The largest payload a test node may send unless told otherwise: the hive's default
/// `[messages] max_payload_bytes` (1 MiB).
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// let just_over = "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES);
/// // The JSON text of a string has its quotes: over the limit, refused as in a hive.
/// let error = node.deliver("in-big", &just_over).unwrap_err();
/// assert!(error.message().contains("max_payload_bytes"), "{error}");
/// ```
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// The name messages delivered by a test come from (as [`Message::node`](crate::Message::node)
/// and [`Message::host`](crate::Message::host)), unless [`TestNode::deliver_from`] says otherwise.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// node.deliver("in-a", "hi").unwrap();
/// assert_eq!(node.logs()[0].message, format!("echo hi from {TEST_SENDER}"));
/// ```
pub const TEST_SENDER: &str = "test";

/// One message the node sent.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// node.deliver("in-a", "hi").unwrap();
/// let sent = &node.sent()[0];
/// assert_eq!((sent.service.as_str(), sent.json.as_str()), ("out", r#""hi""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The service (or publisher) it was sent on.
    pub service: String,
    /// The payload as JSON text, exactly as it would travel.
    pub json: String,
}

impl Sent {
    /// The payload as a JSON value.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.sent()[0].payload(), json!("hi"));
    /// ```
    pub fn payload(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// One line the node wrote to its log (with [`info!`](crate::info) and the other macros, or
/// the host's report of a panic or a refused message).
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// node.deliver("in-a", "hi").unwrap();
/// assert_eq!(node.logs(), [LogLine { level: hivemind::Level::Info, message: "echo hi from test".into() }]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// How important it is.
    pub level: Level,
    /// The line.
    pub message: String,
}

/// What kind of failure a [`TestError`] is.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// assert_eq!(node.deliver("in-a", "fail").unwrap_err().kind(), TestErrorKind::Failed);
/// assert_eq!(node.deliver("in-a", "panic").unwrap_err().kind(), TestErrorKind::Panicked);
/// assert_eq!(node.run_service("nope").unwrap_err().kind(), TestErrorKind::Usage);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestErrorKind {
    /// The node's code returned an `Err`.
    Failed,
    /// The node's code panicked; the panic was caught in the node's glue, as in a hive.
    Panicked,
    /// The test asked for something the node does not have (a service or timer name), or gave
    /// settings or a payload that are not valid.
    Usage,
}

/// Why a call into a [`TestNode`] failed.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// let error: TestError = node.deliver("in-a", "fail").unwrap_err();
/// assert_eq!(error.to_string(), "subscription `in-*` failed: told to fail");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestError {
    kind: TestErrorKind,
    message: String,
}

impl TestError {
    fn usage(message: String) -> Self {
        Self {
            kind: TestErrorKind::Usage,
            message,
        }
    }

    fn from_callback(what: &str, error: &CallbackError) -> Self {
        let (kind, how) = if error.panicked {
            (TestErrorKind::Panicked, "panicked")
        } else {
            (TestErrorKind::Failed, "failed")
        };
        Self {
            kind,
            message: format!("{what} {how}: {}", error.message),
        }
    }

    /// What kind of failure it is.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.tick("no-such-timer").unwrap_err().kind(), TestErrorKind::Usage);
    /// ```
    pub fn kind(&self) -> TestErrorKind {
        self.kind
    }

    /// Whether the node's code panicked.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert!(node.deliver("in-a", "panic").unwrap_err().panicked());
    /// assert!(!node.deliver("in-a", "fail").unwrap_err().panicked());
    /// ```
    pub fn panicked(&self) -> bool {
        self.kind == TestErrorKind::Panicked
    }

    /// What went wrong: which callback, how, and the node's error or panic message.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// let error = node.deliver("in-a", "panic").unwrap_err();
    /// assert_eq!(error.message(), "subscription `in-*` panicked: told to panic");
    /// // The panic's line is in the node's log, as in its log file in a hive.
    /// assert!(node.logs().iter().any(|l| l.message.starts_with("panicked at ")));
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TestError {}

/// One request the node asked (with [`Service::request`](crate::Service::request) or an
/// [`Asker`](crate::Asker)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The request's name.
    pub name: String,
    /// The arguments as JSON text.
    pub json: String,
    /// The timeout it was asked with.
    pub timeout: Duration,
    /// Whether it asked every responder (`request_all`, `ask_all`).
    pub all: bool,
}

impl Asked {
    /// The arguments as a JSON value.
    pub fn args(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
}

/// What a test answers a request name the node asks with.
#[derive(Clone)]
enum Canned {
    Reply(String),
    Fail(RequestErrorKind, String),
}

/// What the recording host keeps.
#[derive(Default)]
struct Record {
    sent: Vec<Sent>,
    logs: Vec<LogLine>,
    sleeps: Vec<Duration>,
    asked: Vec<Asked>,
    canned: HashMap<String, Canned>,
    /// Outcomes of asks, waiting for [`TestNode::deliver_replies`].
    replies: Vec<(u64, RequestOutcomes)>,
    next_token: u64,
}

impl Record {
    /// Answers a request the node asked, from the canned replies.
    fn answer(&mut self, name: &str, args: &str, timeout: u64, all: bool) -> RequestOutcomes {
        self.asked.push(Asked {
            name: name.to_owned(),
            json: args.to_owned(),
            timeout: Duration::from_nanos(timeout),
            all,
        });
        let outcome = match self.canned.get(name) {
            None => {
                return RResult::RErr(RequestFailure {
                    kind: RequestErrorKind::NoResponder,
                    message: format!(
                        "no node answers request `{name}` (the test gave no reply_to for it)"
                    )
                    .into(),
                    node: RString::new(),
                    host: RString::new(),
                });
            }
            Some(Canned::Reply(json)) => RResult::ROk(ReplyData {
                node: TEST_SENDER.into(),
                host: TEST_SENDER.into(),
                json: json.as_str().into(),
            }),
            Some(Canned::Fail(kind, message)) => RResult::RErr(RequestFailure {
                kind: *kind,
                message: message.as_str().into(),
                node: TEST_SENDER.into(),
                host: TEST_SENDER.into(),
            }),
        };
        RResult::ROk(RVec::from(vec![outcome]))
    }
}

/// The recording host's state, shared by the node's [`HostBox`] clones and the [`TestNode`].
struct Recorder {
    /// Service names by id; empty until the node has been built (sends then fail as in a hive).
    services: Mutex<Vec<String>>,
    started: AtomicBool,
    running: AtomicBool,
    max_payload_bytes: AtomicUsize,
    record: Mutex<Record>,
}

impl Recorder {
    fn record(&self) -> MutexGuard<'_, Record> {
        // A panic inside a callback is caught while no lock is held; a poisoned lock can only
        // come from a test thread that panicked, and its record is still worth reading.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, level: Level, message: String) {
        self.record().logs.push(LogLine { level, message });
    }

    /// Refuses a message as the host does: logged as a warning, returned with its kind.
    fn refuse(&self, kind: SendErrorKind, message: String) -> RResult<(), SendFailure> {
        self.log(Level::Warn, message.clone());
        RResult::RErr(SendFailure {
            kind,
            message: message.into(),
        })
    }
}

/// The host a [`TestNode`] runs on.
#[derive(Clone)]
struct TestHost(Arc<Recorder>);

impl Host for TestHost {
    fn send(&self, service: u32, payload: RStr<'_>) -> RResult<(), SendFailure> {
        let recorder = &self.0;
        if !recorder.running.load(Ordering::Relaxed) {
            return RResult::RErr(SendFailure {
                kind: SendErrorKind::Stopping,
                message: "the node is stopping".into(),
            });
        }
        if !recorder.started.load(Ordering::Relaxed) {
            return recorder.refuse(
                SendErrorKind::NotStarted,
                "a message was sent before the node started (send from a service or a subscription, not from Node::new)".into(),
            );
        }
        let name = {
            let services = recorder
                .services
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            services.get(service as usize).cloned()
        };
        let Some(name) = name else {
            return recorder.refuse(
                SendErrorKind::UnknownService,
                format!("this node has no service number {service}"),
            );
        };
        let limit = recorder.max_payload_bytes.load(Ordering::Relaxed);
        if payload.len() > limit {
            return recorder.refuse(
                SendErrorKind::TooLarge,
                format!(
                    "service `{name}` sent a payload of {} bytes, over the hive's limit of {limit} bytes ([messages] max_payload_bytes in config/hive.toml); it was not sent",
                    payload.len()
                ),
            );
        }
        recorder.record().sent.push(Sent {
            service: name,
            json: payload.as_str().to_owned(),
        });
        RResult::ROk(())
    }

    fn sleep(&self, nanos: u64) -> bool {
        self.0.record().sleeps.push(Duration::from_nanos(nanos));
        self.is_running()
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let level = match level {
            LogLevel::Error => Level::Error,
            LogLevel::Warn => Level::Warn,
            LogLevel::Info => Level::Info,
            LogLevel::Debug => Level::Debug,
        };
        self.0.log(level, message.as_str().to_owned());
    }

    fn is_running(&self) -> bool {
        self.0.running.load(Ordering::Relaxed)
    }

    fn request(
        &self,
        name: RStr<'_>,
        args: RStr<'_>,
        timeout_nanos: u64,
        all: bool,
    ) -> RequestOutcomes {
        self.0
            .record()
            .answer(name.as_str(), args.as_str(), timeout_nanos, all)
    }

    fn ask(&self, name: RStr<'_>, args: RStr<'_>, timeout_nanos: u64, all: bool) -> u64 {
        let mut record = self.0.record();
        let outcome = record.answer(name.as_str(), args.as_str(), timeout_nanos, all);
        record.next_token += 1;
        let token = record.next_token;
        record.replies.push((token, outcome));
        token
    }
}

/// A recording host with nothing recorded yet, for the crate's own tests of the glue.
#[cfg(test)]
pub(crate) fn recording_host() -> HostBox {
    let recorder = Recorder {
        services: Mutex::new(Vec::new()),
        started: AtomicBool::new(false),
        running: AtomicBool::new(true),
        max_payload_bytes: AtomicUsize::new(DEFAULT_MAX_PAYLOAD_BYTES),
        record: Mutex::new(Record::default()),
    };
    HostBox::from_value(TestHost(Arc::new(recorder)), TD_Opaque)
}

/// A node of type `N` running in the test's own thread, with a recording host.
///
/// `N` is a node type exported with [`export_node!`](crate::export_node): the test builds it
/// through that export, as `hm` does.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::with_json(r#"{"loud": true}"#).unwrap();
/// assert_eq!(node.deliver("in-a", "hi").unwrap(), 1);
/// assert_eq!(node.sent_on("out"), [json!("HI")]);
/// let mut next = node.reload().unwrap();
/// assert_eq!(next.save_state().unwrap(), Some(json!({ "seen": 1 })));
/// ```
pub struct TestNode<N: NodeExport> {
    name: String,
    settings: Value,
    recorder: Arc<Recorder>,
    node: NodeBox,
    /// `(name, runner)`; a publisher has no runner.
    services: Vec<(String, Option<ServiceBox>)>,
    subscriptions: Vec<(String, Glob)>,
    timers: Vec<TimerDecl>,
    /// What the node declared, as the host receives it.
    schemas: DeclaredSchemas,
    requests: Vec<RequestDecl>,
    _node: PhantomData<fn() -> N>,
}

impl<N: NodeExport> TestNode<N> {
    /// Builds the node with no settings but `enabled = true`, named after its crate.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.name(), env!("CARGO_PKG_NAME"), "named after its crate");
    /// ```
    pub fn new() -> Result<Self, TestError> {
        Self::with_settings(N::CRATE_NAME, serde_json::json!({ "enabled": true }))
    }

    /// Builds the node with settings given as JSON text (an object), named after its crate.
    /// `enabled` is added as `true` when the object lacks it, as a hive runs only enabled nodes.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::with_json(r#"{"loud": true}"#).unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.sent_on("out"), [json!("HI")]);
    /// assert!(TestNode::<Echo>::with_json("[1]").is_err(), "settings are a table");
    /// ```
    pub fn with_json(settings: &str) -> Result<Self, TestError> {
        let settings: Value = serde_json::from_str(settings)
            .map_err(|e| TestError::usage(format!("the test's settings are not JSON: {e}")))?;
        Self::with_settings(N::CRATE_NAME, with_enabled(settings)?)
    }

    /// Builds the node with settings given as TOML text: the body of its `[nodes.NAME]` table
    /// in `config/hive.toml`, without the header. It reaches the node as JSON, converted as the
    /// host converts it. `enabled` is added as `true` when the text lacks it.
    ///
    /// Needs the crate's `toml` feature (`hivemind = { workspace = true, features = ["toml"] }`
    /// under `[dev-dependencies]`).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_toml("loud = true\nenabled = true").unwrap();
    /// assert_eq!(node.subscriptions(), ["in-*", "numbers"]);
    /// ```
    #[cfg(feature = "toml")]
    pub fn with_toml(settings: &str) -> Result<Self, TestError> {
        let table: toml::Table = settings
            .parse()
            .map_err(|e| TestError::usage(format!("the test's settings are not TOML: {e}")))?;
        let settings = serde_json::to_value(&table).map_err(|e| {
            TestError::usage(format!(
                "the test's settings cannot be handed over as JSON: {e}"
            ))
        })?;
        Self::with_settings(N::CRATE_NAME, with_enabled(settings)?)
    }

    /// Builds the node named `name` (its key under `[nodes]`) with exactly `settings`.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_settings("echo-1", json!({ "loud": false })).unwrap();
    /// assert_eq!(node.name(), "echo-1");
    /// ```
    pub fn with_settings(name: &str, settings: Value) -> Result<Self, TestError> {
        mark_under_test();
        let recorder = Arc::new(Recorder {
            services: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            running: AtomicBool::new(true),
            max_payload_bytes: AtomicUsize::new(DEFAULT_MAX_PAYLOAD_BYTES),
            record: Mutex::new(Record::default()),
        });
        let settings_json = settings.to_string();
        let host = HostBox::from_value(TestHost(recorder.clone()), TD_Opaque);
        let init = NodeInit {
            name: RStr::from_str(name),
            settings_json: RStr::from_str(&settings_json),
            host,
        };
        // The very function pointer `hm` calls after loading the library.
        let new_node = root_module::<N>().new_node();
        let NodeParts {
            node,
            services,
            subscriptions,
            timers,
            schemas,
            requests,
        } = new_node(init).into_result().map_err(|e| {
            TestError::from_callback(&format!("the constructor of node `{name}`"), &e)
        })?;
        let subscriptions = subscriptions
            .into_iter()
            .map(|pattern| {
                let glob = Glob::new(pattern.as_str())
                    .map_err(|reason| TestError::usage(format!("node `{name}`: {reason}")))?;
                Ok((pattern.into_string(), glob))
            })
            .collect::<Result<Vec<_>, TestError>>()?;
        let services: Vec<(String, Option<ServiceBox>)> = services
            .into_iter()
            .map(|decl| (decl.name.into_string(), decl.runner.into_option()))
            .collect();
        check_service_names(name, &services)?;
        *recorder
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            services.iter().map(|(name, _)| name.clone()).collect();
        recorder.started.store(true, Ordering::Relaxed);
        Ok(Self {
            name: name.to_owned(),
            settings,
            recorder,
            node,
            services,
            subscriptions,
            timers: timers.into_iter().collect(),
            schemas,
            requests: requests.into_iter().collect(),
            _node: PhantomData,
        })
    }

    /// The JSON Schema of the payload type the service (or publisher) `name` declared
    /// ([`Services::add_typed_service`](crate::Services::add_typed_service)), as the host gets
    /// it; `None` for an unknown name or a service that declared none.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.service_schema("out").unwrap()["type"], "string");
    /// assert_eq!(node.service_schema("count"), None, "an untyped service");
    /// ```
    pub fn service_schema(&self, name: &str) -> Option<Value> {
        let index = self.services.iter().position(|(n, _)| n == name)?;
        declared(self.schemas.services.get(index)?)
    }

    /// The JSON Schema of the payload type the subscription on `pattern` accepts
    /// ([`Subscriptions::add_typed_subscription`](crate::Subscriptions::add_typed_subscription));
    /// `None` for an unknown pattern or an untyped subscription. With several subscriptions on
    /// one pattern, the first typed one.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.subscription_schema("numbers").unwrap()["type"], "integer");
    /// assert_eq!(node.subscription_schema("in-*"), None);
    /// ```
    pub fn subscription_schema(&self, pattern: &str) -> Option<Value> {
        self.subscriptions
            .iter()
            .zip(self.schemas.subscriptions.iter())
            .filter(|((p, _), _)| p == pattern)
            .find_map(|(_, schema)| declared(schema))
    }

    /// The node's name.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_settings("porch", json!({})).unwrap();
    /// assert_eq!(node.name(), "porch");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the node's services, publishers included, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.services(), ["count", "out"]);
    /// ```
    pub fn services(&self) -> Vec<&str> {
        self.services
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The names of the node's publishers (services with no loop).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.publishers(), ["out"]);
    /// ```
    pub fn publishers(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, runner)| runner.is_none())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The node's subscription patterns, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.subscriptions(), ["in-*", "numbers"]);
    /// ```
    pub fn subscriptions(&self) -> Vec<&str> {
        self.subscriptions
            .iter()
            .map(|(pattern, _)| pattern.as_str())
            .collect()
    }

    /// The node's timers and their periods, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.timers(), [("tick", Duration::from_secs(5))]);
    /// ```
    pub fn timers(&self) -> Vec<(&str, Duration)> {
        self.timers
            .iter()
            .map(|t| (t.name.as_str(), Duration::from_nanos(t.period_nanos)))
            .collect()
    }

    /// The request names the node answers and their help lines, in registration order.
    pub fn requests(&self) -> Vec<(&str, &str)> {
        self.requests
            .iter()
            .map(|r| (r.name.as_str(), r.help.as_str()))
            .collect()
    }

    /// Asks the node's handler of request `name` with `args`, as the node [`TEST_SENDER`]
    /// would, and returns the reply as JSON. The errors are those the asker would get in a
    /// hive: [`HandlerError`](RequestErrorKind::HandlerError) and
    /// [`Panicked`](RequestErrorKind::Panicked) with the handler's message,
    /// [`InvalidArgs`](RequestErrorKind::InvalidArgs) for arguments that do not decode,
    /// [`NoResponder`](RequestErrorKind::NoResponder) for a name the node does not answer,
    /// [`TooLarge`](RequestErrorKind::TooLarge) for a reply over `max_payload_bytes`.
    pub fn request<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        args: &T,
    ) -> Result<Value, RequestError> {
        self.request_from(TEST_SENDER, name, args)
    }

    /// Like [`request`](Self::request), asked by node `node`.
    pub fn request_from<T: Serialize + ?Sized>(
        &mut self,
        node: &str,
        name: &str,
        args: &T,
    ) -> Result<Value, RequestError> {
        let json = args_json(name, args)?;
        let Some(index) = self.requests.iter().position(|r| r.name.as_str() == name) else {
            return Err(RequestError::new(
                RequestErrorKind::NoResponder,
                format!("node `{}` does not answer request `{name}`", self.name),
            ));
        };
        let host = RStr::from_str(TEST_SENDER);
        let view = RequestView {
            name: RStr::from_str(name),
            node: RStr::from_str(node),
            host,
            args: RStr::from_str(&json),
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match self.node.answer(index, view).into_result() {
            Ok(reply) => {
                let limit = self.recorder.max_payload_bytes.load(Ordering::Relaxed);
                if reply.len() > limit {
                    return Err(RequestError::new(
                        RequestErrorKind::TooLarge,
                        format!(
                            "the reply of node `{}` to request `{name}` is {} bytes, over the hive's limit of {limit} bytes ([messages] max_payload_bytes)",
                            self.name,
                            reply.len()
                        ),
                    ));
                }
                Ok(serde_json::from_str(reply.as_str()).unwrap_or(Value::Null))
            }
            Err(failure) => {
                let error = RequestError::from_failure(failure);
                self.recorder.log(
                    Level::Error,
                    format!("request `{name}` failed: {}", error.message()),
                );
                Err(error)
            }
        }
    }

    /// Answers every request named `name` that the node asks from now on with `reply`.
    pub fn reply_to<T: Serialize + ?Sized>(&mut self, name: &str, reply: &T) {
        let json = serde_json::to_string(reply).unwrap_or_else(|_| "null".to_owned());
        self.recorder
            .record()
            .canned
            .insert(name.to_owned(), Canned::Reply(json));
    }

    /// Fails every request named `name` that the node asks from now on, with `kind` and
    /// `message` (to test how the node takes a timeout, a restart, a handler's error).
    pub fn fail_to(&mut self, name: &str, kind: RequestErrorKind, message: &str) {
        self.recorder
            .record()
            .canned
            .insert(name.to_owned(), Canned::Fail(kind, message.to_owned()));
    }

    /// Every request the node has asked, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.recorder.record().asked.clone()
    }

    /// Runs the reply callbacks of the node's [`Asker`](crate::Asker) asks so far, in the order
    /// asked, as the node's delivery thread would; returns how many ran. The first callback's
    /// error is returned (the others still run).
    pub fn deliver_replies(&mut self) -> Result<usize, TestError> {
        let mut ran = 0;
        let mut first_error = None;
        loop {
            let replies = std::mem::take(&mut self.recorder.record().replies);
            if replies.is_empty() {
                break;
            }
            for (token, outcome) in replies {
                ran += 1;
                if let RResult::RErr(error) = self.node.replied(token, outcome) {
                    let error = TestError::from_callback("a reply callback", &error);
                    self.recorder.log(Level::Error, error.message.clone());
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(ran),
        }
    }

    /// Sets the largest payload the node may send (the hive's `[messages] max_payload_bytes`).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.set_max_payload_bytes(4);
    /// let error = node.deliver("in-a", "too long").unwrap_err();
    /// assert!(error.message().contains("over the hive's limit of 4 bytes"), "{error}");
    /// ```
    pub fn set_max_payload_bytes(&mut self, bytes: usize) {
        self.recorder
            .max_payload_bytes
            .store(bytes, Ordering::Relaxed);
    }

    /// Delivers `payload` (anything `Serialize`) as sent on `service` by the node
    /// [`TEST_SENDER`], to every subscription whose pattern matches, in registration order.
    /// Returns how many subscriptions received it.
    ///
    /// Every matching subscription runs even when one fails, as in a hive; each failure is
    /// logged as the host logs it, and the first is returned.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.deliver("in-a", "hi").unwrap(), 1, "one subscription matched");
    /// assert_eq!(node.deliver("elsewhere", "hi").unwrap(), 0);
    /// ```
    pub fn deliver<T: Serialize + ?Sized>(
        &mut self,
        service: &str,
        payload: &T,
    ) -> Result<usize, TestError> {
        let json = serde_json::to_string(payload)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        self.deliver_json_from(TEST_SENDER, service, &json)
    }

    /// Like [`deliver`](Self::deliver), with the message coming from node `node`.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver_from("keypad", "in-a", "hi").unwrap();
    /// assert_eq!(node.logs()[0].message, "echo hi from keypad");
    /// ```
    pub fn deliver_from<T: Serialize + ?Sized>(
        &mut self,
        node: &str,
        service: &str,
        payload: &T,
    ) -> Result<usize, TestError> {
        let json = serde_json::to_string(payload)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        self.deliver_json_from(node, service, &json)
    }

    /// Like [`deliver`](Self::deliver), with the payload as JSON text, passed on as it is (a
    /// hive only carries valid JSON; this is checked).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver_json("numbers", "41").unwrap();
    /// assert!(node.deliver_json("numbers", "{not json").is_err());
    /// ```
    pub fn deliver_json(&mut self, service: &str, json: &str) -> Result<usize, TestError> {
        self.deliver_json_from(TEST_SENDER, service, json)
    }

    fn deliver_json_from(
        &mut self,
        node: &str,
        service: &str,
        json: &str,
    ) -> Result<usize, TestError> {
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        let view = MessageView {
            service: RStr::from_str(service),
            node: RStr::from_str(node),
            payload: RStr::from_str(json),
            host: RStr::from_str(TEST_SENDER),
        };
        let mut matched = 0;
        let mut first_error = None;
        for (index, (pattern, glob)) in self.subscriptions.iter().enumerate() {
            if !glob.matches(service) {
                continue;
            }
            matched += 1;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if let RResult::RErr(error) = self.node.deliver(index, view) {
                let what = format!("subscription `{pattern}`");
                let error = TestError::from_callback(&what, &error);
                self.recorder.log(
                    Level::Error,
                    format!("{} (on a message from `{service}`)", error.message),
                );
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(matched),
        }
    }

    /// Runs one iteration of the service named `name` (a `sleep_for` inside returns at once);
    /// returns what it said: run again, or stop.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.run_service("count").unwrap(), Flow::Continue);
    /// assert_eq!(node.sent_on("count"), [json!(1)]);
    /// assert!(node.run_service("out").is_err(), "a publisher has no loop");
    /// ```
    pub fn run_service(&mut self, name: &str) -> Result<Flow, TestError> {
        let node = &self.name;
        let Some((_, runner)) = self.services.iter_mut().find(|(n, _)| n == name) else {
            return Err(TestError::usage(format!(
                "node `{node}` has no service `{name}`; it has: {}",
                self.services
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some(runner) = runner else {
            return Err(TestError::usage(format!(
                "`{name}` of node `{node}` is a publisher: it has no loop to run; send on it from a callback"
            )));
        };
        runner
            .step()
            .into_result()
            .map_err(|e| TestError::from_callback(&format!("service `{name}`"), &e))
    }

    /// Runs the timer named `name` once, as its period's end would.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &3).unwrap();
    /// node.tick("tick").unwrap();
    /// assert_eq!(node.logs()[0].message, "seen 3");
    /// ```
    pub fn tick(&mut self, name: &str) -> Result<(), TestError> {
        let Some(index) = self.timers.iter().position(|t| t.name.as_str() == name) else {
            return Err(TestError::usage(format!(
                "node `{}` has no timer `{name}`",
                self.name
            )));
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.node
            .tick(index)
            .into_result()
            .map_err(|e| TestError::from_callback(&format!("timer `{name}`"), &e))
    }

    /// Every message the node has sent, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.run_service("count").unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// let services: Vec<String> = node.sent().into_iter().map(|s| s.service).collect();
    /// assert_eq!(services, ["count", "out"]);
    /// ```
    pub fn sent(&self) -> Vec<Sent> {
        self.recorder.record().sent.clone()
    }

    /// Every message the node has sent, in order, forgetting them.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.take_sent().len(), 1);
    /// assert!(node.sent().is_empty());
    /// ```
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.recorder.record().sent)
    }

    /// The payloads the node has sent on `service`, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "one").unwrap();
    /// node.deliver("in-b", "two").unwrap();
    /// assert_eq!(node.sent_on("out"), [json!("one"), json!("two")]);
    /// ```
    pub fn sent_on(&self, service: &str) -> Vec<Value> {
        self.recorder
            .record()
            .sent
            .iter()
            .filter(|sent| sent.service == service)
            .map(Sent::payload)
            .collect()
    }

    /// Every line the node's log got, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.logs()[0].message, "echo hi from test");
    /// ```
    pub fn logs(&self) -> Vec<LogLine> {
        self.recorder.record().logs.clone()
    }

    /// Every line the node's log got, in order, forgetting them.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.take_logs().len(), 1);
    /// assert!(node.logs().is_empty());
    /// ```
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.recorder.record().logs)
    }

    /// Every duration the node's services asked to sleep for, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.run_service("count").unwrap(); // returns at once
    /// assert_eq!(node.sleeps(), [Duration::from_secs(1)]);
    /// ```
    pub fn sleeps(&self) -> Vec<Duration> {
        self.recorder.record().sleeps.clone()
    }

    /// Asks the node to stop, as a hive does before a reload or at its end: `sleep_for` and
    /// `is_running` return `false` from now on, and sends fail with
    /// [`SendErrorKind::Stopping`].
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.stop();
    /// let error = node.run_service("count").unwrap_err();
    /// assert!(error.message().contains("stopping"), "{error}");
    /// ```
    pub fn stop(&mut self) {
        self.recorder.running.store(false, Ordering::Relaxed);
    }

    /// Calls the node's `save_state`, as a hive does before swapping in new code.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &2).unwrap();
    /// assert_eq!(node.save_state().unwrap(), Some(json!({ "seen": 2 })));
    /// ```
    pub fn save_state(&mut self) -> Result<Option<Value>, TestError> {
        match self.node.save_state().into_result() {
            Ok(ROption::RSome(state)) => {
                serde_json::from_str(state.as_str()).map(Some).map_err(|e| {
                    TestError::usage(format!("save_state gave text that is not JSON: {e}"))
                })
            }
            Ok(ROption::RNone) => Ok(None),
            Err(error) => Err(TestError::from_callback("save_state", &error)),
        }
    }

    /// Calls the node's `restore_state` with `state`, as a hive does with what the previous
    /// instance saved.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.restore_state(&json!({ "seen": 7 })).unwrap();
    /// assert_eq!(node.save_state().unwrap(), Some(json!({ "seen": 7 })));
    /// assert!(node.restore_state(&json!("garbage")).is_err());
    /// ```
    pub fn restore_state(&mut self, state: &Value) -> Result<(), TestError> {
        let text = RString::from(state.to_string());
        self.node
            .restore_state(text.as_rstr())
            .into_result()
            .map_err(|e| TestError::from_callback("restore_state", &e))
    }

    /// Swaps this instance for a new one with the same name and settings, as `hm dev` does when
    /// the node's code changes: this one is stopped, its `save_state` runs, a new instance is
    /// built and its `restore_state` gets what was saved (when something was).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &5).unwrap();
    /// let mut next = node.reload().unwrap();
    /// assert_eq!(next.save_state().unwrap(), Some(json!({ "seen": 5 })));
    /// ```
    pub fn reload(self) -> Result<Self, TestError> {
        let settings = self.settings.clone();
        self.reload_with(settings)
    }

    /// Like [`reload`](Self::reload), with new settings (as when `config/hive.toml` changes).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// let mut loud = node.reload_with(json!({ "enabled": true, "loud": true })).unwrap();
    /// loud.deliver("in-a", "hi").unwrap();
    /// assert_eq!(loud.sent_on("out"), [json!("HI")]);
    /// ```
    pub fn reload_with(mut self, settings: Value) -> Result<Self, TestError> {
        self.stop();
        let state = self.save_state()?;
        let mut next = Self::with_settings(&self.name, settings)?;
        if let Some(state) = state {
            next.restore_state(&state)?;
        }
        Ok(next)
    }
}

impl<N: NodeExport> fmt::Debug for TestNode<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNode")
            .field("name", &self.name)
            .field("services", &self.services())
            .field("subscriptions", &self.subscriptions())
            .field("timers", &self.timers())
            .finish_non_exhaustive()
    }
}

/// A declared schema as a JSON value (`None`: none declared).
fn declared(schema: &ROption<RString>) -> Option<Value> {
    match schema {
        ROption::RSome(text) => serde_json::from_str(text.as_str()).ok(),
        ROption::RNone => None,
    }
}

/// `settings` with `enabled = true` added if it has no `enabled`; refuses a non-object.
fn with_enabled(mut settings: Value) -> Result<Value, TestError> {
    let Some(table) = settings.as_object_mut() else {
        return Err(TestError::usage(format!(
            "a node's settings are a table (a JSON object), not {settings}"
        )));
    };
    table.entry("enabled").or_insert(Value::Bool(true));
    Ok(settings)
}

/// The host's rules for service names: printable, non-empty, unique within the node.
fn check_service_names(
    node: &str,
    services: &[(String, Option<ServiceBox>)],
) -> Result<(), TestError> {
    for (index, (name, _)) in services.iter().enumerate() {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(TestError::usage(format!(
                "node `{node}` registered a service named {name:?}: service names must be non-empty and printable"
            )));
        }
        if services[..index].iter().any(|(other, _)| other == name) {
            return Err(TestError::usage(format!(
                "node `{node}` registered the service `{name}` twice: service names are unique within a node"
            )));
        }
    }
    Ok(())
}
