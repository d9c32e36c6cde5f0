//! The stable ABI between the `hm` host and a node library.
//!
//! Node authors never touch this module: [`export_node!`](crate::export_node) and the safe layer
//! in the crate root build everything here. The host (`hm`) uses it to load and drive nodes.
//!
//! # The contract
//!
//! - A node library exports one symbol, abi_stable's root-module header, whose module is a
//!   [`NodeLib_Ref`]: the node's crate name, its type name and a constructor.
//! - The host calls [`NodeLib::new_node`] once per node instance, on a thread it owns for that
//!   node, with a [`NodeInit`]: the instance name, its settings as JSON text and a [`HostBox`].
//! - The constructor returns [`NodeParts`]: the node object (subscription deliveries and timer
//!   ticks), one [`ServiceDecl`] per registered service (a loop's [`ServiceBox`] is stepped on
//!   its own host thread; a publisher has none), the subscription patterns, the timers and
//!   the schemas of declared payload types ([`DeclaredSchemas`]). Indices into those lists are
//!   the ids used on the wire.
//! - Timers fire on the node's own thread, between deliveries: [`NodeObject::tick`] is never
//!   called at the same time as [`NodeObject::deliver`].
//! - Outcomes cross as stable enums ([`Flow`], [`SendErrorKind`]), never as raw integers or as
//!   text to be parsed.
//! - Every string crosses as `RStr`/`RString`; payloads are JSON text. The host copies what it
//!   keeps, so nothing made by a library outlives it.
//! - Every entry point catches panics inside the library and returns them as `RErr`; a panic
//!   never unwinds across the boundary.
//! - On a reload the host asks the old instance for its state ([`NodeObject::save_state`]) and
//!   hands it to the new one ([`NodeObject::restore_state`]) before the new one receives
//!   anything. Both are JSON text.
//!
//! Any change to a type here changes the layout that the host checks at load time; bump the
//! crate's minor version with it, so that the refusal names the versions involved. (0.4.0:
//! stable `Flow` and `SendErrorKind` enums, publishers, timers. 0.5.0: [`DeclaredSchemas`],
//! the JSON Schemas of declared payload types, and the [`RequestDecl`]s, at the end of
//! [`NodeParts`]; [`Host::request`] and [`Host::ask`] at the end of [`Host`],
//! [`NodeObject::answer`] and [`NodeObject::replied`] at the end of [`NodeObject`]. 0.6.0:
//! [`Host::store`], each node's data store, at the end of [`Host`].)
//!
//! How `hm` loads a node library and builds its node, in outline:
//!
//! ```no_run
//! use abi_stable::library::RootModule;
//! use abi_stable::sabi_trait::TD_Opaque;
//! use abi_stable::std_types::{RResult, RStr};
//! use hivemind::abi::{Host, HostBox, LogLevel, NodeInit, NodeLib_Ref, SendFailure};
//!
//! #[derive(Clone)]
//! struct Printer;
//!
//! impl Host for Printer {
//!     fn send(&self, service: u32, payload: RStr<'_>) -> RResult<(), SendFailure> {
//!         println!("service {service}: {payload}");
//!         RResult::ROk(())
//!     }
//!     fn sleep(&self, nanos: u64) -> bool {
//!         std::thread::sleep(std::time::Duration::from_nanos(nanos));
//!         true
//!     }
//!     fn log(&self, level: LogLevel, message: RStr<'_>) {
//!         println!("{level:?} {message}");
//!     }
//!     fn is_running(&self) -> bool {
//!         true
//!     }
//!     fn request(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> hivemind::abi::RequestOutcomes {
//!         abi_stable::std_types::RResult::ROk(abi_stable::std_types::RVec::new())
//!     }
//!     fn ask(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> u64 {
//!         0
//!     }
//!     fn store(&self, _call: RStr<'_>) -> abi_stable::std_types::RString {
//!         r#"{"error":{"kind":"unavailable","message":"no store here"}}"#.into()
//!     }
//! }
//!
//! // Checks the library's layout against this crate's: a node built against another API
//! // version is refused here.
//! let lib = NodeLib_Ref::load_from_file("nodes/libbatsignal.so".as_ref()).unwrap();
//! let init = NodeInit {
//!     name: RStr::from_str("batsignal"),
//!     settings_json: RStr::from_str(r#"{"enabled": true}"#),
//!     host: HostBox::from_value(Printer, TD_Opaque),
//! };
//! let parts = lib.new_node()(init).unwrap();
//! println!("{} registered {} services", lib.type_name(), parts.services.len());
//! ```
//!
//! # Requests (0.5.0)
//!
//! - A node declares the request names it answers ([`NodeParts::requests`]); the host calls
//!   [`NodeObject::answer`] on the node's own thread, between deliveries, with a
//!   [`RequestView`]; the reply is JSON text, a failure a [`RequestFailure`].
//! - A node asks through [`Host::request`] (blocking: from a service thread only; the node's
//!   glue refuses it on the delivery thread) or [`Host::ask`], which returns a token at once;
//!   the outcome comes back later through [`NodeObject::replied`] with that token, on the
//!   node's own thread, exactly once for every token (a timeout included).
//! - Either way the outcome is a [`RequestOutcomes`]: the call's own failure, or one
//!   [`RequestOutcome`] per responder asked (one for a plain request; every responder's for
//!   `all = true`).

#![allow(non_camel_case_types, non_local_definitions)] // names made by abi_stable's macros

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
};

pub use crate::outcome::{Flow, RequestErrorKind, SendErrorKind};

/// The root module a node library exports (see the module's example for loading one).
///
/// ```no_run
/// use abi_stable::library::RootModule;
/// use hivemind::abi::NodeLib_Ref;
///
/// let lib = NodeLib_Ref::load_from_file("nodes/libbatman.so".as_ref()).unwrap();
/// assert_eq!(lib.crate_name().as_str(), "batman");
/// ```
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = NodeLib_Ref)))]
#[sabi(missing_field(panic))]
pub struct NodeLib {
    /// The node crate's package name (`batsignal`), which names its library file.
    pub crate_name: RStr<'static>,
    /// The Rust type implementing the node (`BatSignal`).
    pub type_name: RStr<'static>,
    /// Builds one node instance and collects its registrations.
    #[sabi(last_prefix_field)]
    pub new_node: extern "C" fn(init: NodeInit<'_>) -> RResult<NodeParts, CallbackError>,
}

impl RootModule for NodeLib_Ref {
    declare_root_module_statics! {NodeLib_Ref}
    const BASE_NAME: &'static str = "hivemind_node";
    const NAME: &'static str = "hivemind node";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// What the host hands a node's constructor.
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{RResult, RStr};
/// use hivemind::abi::{Host, HostBox, LogLevel, SendFailure};
///
/// #[derive(Clone)]
/// struct Quiet;
///
/// impl Host for Quiet {
///     fn send(&self, _service: u32, _payload: RStr<'_>) -> RResult<(), SendFailure> {
///         RResult::ROk(())
///     }
///     fn sleep(&self, _nanos: u64) -> bool {
///         true
///     }
///     fn log(&self, _level: LogLevel, _message: RStr<'_>) {}
///     fn is_running(&self) -> bool {
///         true
///     }
///     fn request(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> hivemind::abi::RequestOutcomes {
///         abi_stable::std_types::RResult::ROk(abi_stable::std_types::RVec::new())
///     }
///     fn ask(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> u64 {
///         0
///     }
///     fn store(&self, _call: RStr<'_>) -> abi_stable::std_types::RString {
///         r#"{"error":{"kind":"unavailable","message":"no store here"}}"#.into()
///     }
/// }
///
/// let host: HostBox = HostBox::from_value(Quiet, TD_Opaque);
/// use hivemind::abi::NodeInit;
///
/// let init = NodeInit {
///     name: RStr::from_str("batsignal"),
///     settings_json: RStr::from_str(r#"{"enabled": true, "interval_secs": 5}"#),
///     host,
/// };
/// assert_eq!(init.name.as_str(), "batsignal");
/// ```
#[repr(C)]
#[derive(StableAbi)]
pub struct NodeInit<'a> {
    /// The instance name from `config/hive.toml` (`[nodes.<name>]`).
    pub name: RStr<'a>,
    /// The node's table from `config/hive.toml`, as JSON text.
    pub settings_json: RStr<'a>,
    /// The node's way back into the host.
    pub host: HostBox,
}

/// What a node's constructor returns.
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{ROption, RResult, RStr, RString};
/// use hivemind::abi::{CallbackError, MessageView, NodeBox, NodeObject};
///
/// struct Counter(u32);
///
/// impl NodeObject for Counter {
///     fn deliver(&mut self, _subscription: u32, _message: MessageView<'_>) -> RResult<(), CallbackError> {
///         self.0 += 1;
///         RResult::ROk(())
///     }
///     fn save_state(&mut self) -> RResult<ROption<RString>, CallbackError> {
///         RResult::ROk(ROption::RSome(self.0.to_string().into()))
///     }
///     fn restore_state(&mut self, state: RStr<'_>) -> RResult<(), CallbackError> {
///         self.0 = state.as_str().parse().unwrap_or(0);
///         RResult::ROk(())
///     }
///     fn tick(&mut self, _timer: u32) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
///     fn answer(&mut self, _request: u32, _view: hivemind::abi::RequestView<'_>) -> RResult<abi_stable::std_types::RString, hivemind::abi::RequestFailure> {
///         RResult::ROk("null".into())
///     }
///     fn replied(&mut self, _token: u64, _outcome: hivemind::abi::RequestOutcomes) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
/// }
///
/// let mut node: NodeBox = NodeBox::from_value(Counter(0), TD_Opaque);
/// use abi_stable::std_types::RVec;
/// use hivemind::abi::{DeclaredSchemas, NodeParts};
///
/// let parts = NodeParts {
///     node,
///     services: RVec::new(),
///     subscriptions: vec![RString::from("bat-signal-*")].into(),
///     timers: RVec::new(),
///     schemas: DeclaredSchemas {
///         services: RVec::new(),
///         subscriptions: vec![ROption::RNone].into(), // one per subscription
///     },
///     requests: RVec::new(),
/// };
/// assert_eq!(parts.subscriptions.len(), parts.schemas.subscriptions.len());
/// ```
#[repr(C)]
#[derive(StableAbi)]
pub struct NodeParts {
    /// Receives the node's subscription deliveries, on the node's own host thread.
    pub node: NodeBox,
    /// The node's services, in registration order (index = service id).
    pub services: RVec<ServiceDecl>,
    /// The node's subscription patterns, in registration order (index = subscription id).
    pub subscriptions: RVec<RString>,
    /// The node's timers, in registration order (index = timer id).
    pub timers: RVec<TimerDecl>,
    /// The JSON Schemas of the payload types its services and subscriptions declared (0.5.0).
    pub schemas: DeclaredSchemas,
    /// The request names the node answers, in registration order (index = request id). (0.5.0)
    pub requests: RVec<RequestDecl>,
}

/// The payload types a node declared, as JSON Schema documents (JSON text), by id: what a
/// service sends ([`Services::add_typed_service`](crate::Services::add_typed_service)) and what
/// a subscription accepts
/// ([`Subscriptions::add_typed_subscription`](crate::Subscriptions::add_typed_subscription)).
///
/// Both lists have one entry per service and per subscription, `RNone` where no type was
/// declared. The host uses them to check what is published from outside (the HTTP API, `hm
/// send`) and to compare publishers with subscribers; the message path between nodes never
/// looks at them. The host ignores (with a warning in root.log) a schema longer than
/// [`MAX_SCHEMA_BYTES`], or one that is not JSON or not a valid JSON Schema.
///
/// ```
/// use abi_stable::std_types::{ROption, RString};
/// use hivemind::abi::DeclaredSchemas;
///
/// let mut schemas = DeclaredSchemas::default();
/// schemas.services.push(ROption::RSome(RString::from(r#"{"type": "string"}"#)));
/// schemas.services.push(ROption::RNone); // a service that declares nothing
/// assert!(schemas.services[0].is_some());
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct DeclaredSchemas {
    /// By service id: the schema of what the service sends.
    pub services: RVec<ROption<RString>>,
    /// By subscription id: the schema of the payloads the subscription decodes.
    pub subscriptions: RVec<ROption<RString>>,
}

/// The longest schema text the host keeps (256 KiB); a declared type's schema is a few KiB.
///
/// ```
/// use hivemind::prelude::*;
///
/// #[derive(JsonSchema)]
/// struct Reading {
///     celsius: f64,
/// }
///
/// let text = serde_json::to_string(&hivemind::schemars::schema_for!(Reading)).unwrap();
/// assert!(text.len() < hivemind::abi::MAX_SCHEMA_BYTES);
/// ```
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// One request name a node answers: [`NodeObject::answer`] runs its handler. (0.5.0)
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RequestDecl {
    /// The request's name (`battery/level`).
    pub name: RString,
    /// One line for people: what it answers (shown by the page and `/api/requests`).
    pub help: RString,
}

/// A request as a handler sees it; borrowed from the host for one call. (0.5.0)
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request's name.
    pub name: RStr<'a>,
    /// The node that asked (`api` for the HTTP API, `cli` for `hm call`).
    pub node: RStr<'a>,
    /// The host the asker runs on.
    pub host: RStr<'a>,
    /// The arguments, as JSON text.
    pub args: RStr<'a>,
}

/// Why a request failed, as the host or a handler reports it. (0.5.0)
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RequestFailure {
    /// What went wrong, for code to match on.
    pub kind: RequestErrorKind,
    /// What went wrong, for a person: names the request and the fix.
    pub message: RString,
    /// The node that failed to answer (empty when no node was involved).
    pub node: RString,
    /// Its host (empty when no node was involved).
    pub host: RString,
}

/// A reply, as it reaches the node that asked. (0.5.0)
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ReplyData {
    /// The node that answered.
    pub node: RString,
    /// The host it runs on.
    pub host: RString,
    /// The reply, as JSON text.
    pub json: RString,
}

/// One responder's outcome. (0.5.0)
pub type RequestOutcome = RResult<ReplyData, RequestFailure>;

/// A whole request's outcome: the call's own failure (no responder, too large, refused), or one
/// outcome per responder asked. (0.5.0)
pub type RequestOutcomes = RResult<RVec<RequestOutcome>, RequestFailure>;

/// One registered timer: [`NodeObject::tick`] runs it on the node's own thread.
///
/// ```
/// use hivemind::abi::{MIN_TIMER_PERIOD_NANOS, TimerDecl};
///
/// let timer = TimerDecl { name: "status".into(), period_nanos: 10_000_000_000 };
/// assert!(timer.period_nanos >= MIN_TIMER_PERIOD_NANOS);
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct TimerDecl {
    /// The timer's name, for the node's log.
    pub name: RString,
    /// Nanoseconds between two ticks. The host raises anything below [`MIN_TIMER_PERIOD_NANOS`]
    /// to it.
    pub period_nanos: u64,
}

/// The shortest timer period the host keeps (1 ms): a shorter one would starve the node's
/// deliveries.
///
/// ```
/// use hivemind::abi::MIN_TIMER_PERIOD_NANOS;
/// use std::time::Duration;
///
/// let asked = Duration::from_micros(10);
/// let kept = asked.max(Duration::from_nanos(MIN_TIMER_PERIOD_NANOS));
/// assert_eq!(kept, Duration::from_millis(1));
/// ```
pub const MIN_TIMER_PERIOD_NANOS: u64 = 1_000_000;

/// One registered service.
///
/// ```
/// use abi_stable::std_types::ROption;
/// use hivemind::abi::ServiceDecl;
///
/// // A publisher: a name and no loop.
/// let decl = ServiceDecl { name: "alerts".into(), runner: ROption::RNone };
/// assert!(decl.runner.is_none());
/// ```
#[repr(C)]
#[derive(StableAbi)]
pub struct ServiceDecl {
    /// The service name, which is the topic its messages go out on.
    pub name: RString,
    /// Runs one iteration of the service's callback; `RNone` for a publisher, which has no
    /// loop and sends only from the node's other callbacks.
    pub runner: ROption<ServiceBox>,
}

/// A message as a subscription callback sees it; borrowed from the host for one call.
///
/// ```
/// use abi_stable::std_types::RStr;
/// use hivemind::abi::MessageView;
///
/// let view = MessageView {
///     service: RStr::from_str("bat-signal-main"),
///     node: RStr::from_str("batsignal"),
///     payload: RStr::from_str(r#""Batman! We need help!""#),
///     host: RStr::from_str("gotham-1"),
/// };
/// assert_eq!(view.payload.as_str(), r#""Batman! We need help!""#);
/// ```
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct MessageView<'a> {
    /// The service the message was sent on.
    pub service: RStr<'a>,
    /// The node that sent it (or `api` for messages published through the host).
    pub node: RStr<'a>,
    /// The payload, as JSON text.
    pub payload: RStr<'a>,
    /// The host it was sent on (its name on the mesh; this host's own name for local messages).
    pub host: RStr<'a>,
}

/// Why a call into node code failed.
///
/// ```
/// use hivemind::abi::CallbackError;
///
/// let error = CallbackError { panicked: true, message: "index out of bounds".into() };
/// let how = if error.panicked { "panicked" } else { "failed" };
/// assert_eq!(format!("{how}: {}", error.message), "panicked: index out of bounds");
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CallbackError {
    /// True if the code panicked (the panic was caught inside the library); false if it returned
    /// an error.
    pub panicked: bool,
    /// The error or panic message.
    pub message: RString,
}

/// Why the host refused a message, as [`Host::send`] reports it.
///
/// ```
/// use hivemind::abi::{SendErrorKind, SendFailure};
///
/// let failure = SendFailure {
///     kind: SendErrorKind::Stopping,
///     message: "node `batsignal` is stopping: the message was not sent".into(),
/// };
/// assert_eq!(failure.kind, SendErrorKind::Stopping);
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SendFailure {
    /// What went wrong, for code to match on.
    pub kind: SendErrorKind,
    /// What went wrong, for a person: names the service and the fix.
    pub message: RString,
}

/// Log levels a node can write at.
///
/// ```
/// use hivemind::abi::LogLevel;
///
/// // Lower is more important: `hm dev -v` shows everything up to `Debug`.
/// assert!(LogLevel::Error < LogLevel::Warn && LogLevel::Info < LogLevel::Debug);
/// assert_eq!(LogLevel::from(hivemind::Level::Warn), LogLevel::Warn);
/// ```
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation.
    Info = 3,
    /// Detail for `hm dev -v`.
    Debug = 4,
}

/// The host's side of a node: implemented by `hm`, called by node code.
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{RResult, RStr};
/// use hivemind::abi::{Host, HostBox, LogLevel, SendFailure};
///
/// #[derive(Clone)]
/// struct Quiet;
///
/// impl Host for Quiet {
///     fn send(&self, _service: u32, _payload: RStr<'_>) -> RResult<(), SendFailure> {
///         RResult::ROk(())
///     }
///     fn sleep(&self, _nanos: u64) -> bool {
///         true
///     }
///     fn log(&self, _level: LogLevel, _message: RStr<'_>) {}
///     fn is_running(&self) -> bool {
///         true
///     }
///     fn request(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> hivemind::abi::RequestOutcomes {
///         abi_stable::std_types::RResult::ROk(abi_stable::std_types::RVec::new())
///     }
///     fn ask(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> u64 {
///         0
///     }
///     fn store(&self, _call: RStr<'_>) -> abi_stable::std_types::RString {
///         r#"{"error":{"kind":"unavailable","message":"no store here"}}"#.into()
///     }
/// }
///
/// let host: HostBox = HostBox::from_value(Quiet, TD_Opaque);
/// assert!(host.is_running());
/// assert!(host.send(0, RStr::from_str("1")).is_ok());
/// ```
#[sabi_trait]
pub trait Host: Clone + Send + Sync + 'static {
    /// Publishes `payload` (JSON text) on the node's service number `service`.
    fn send(&self, service: u32, payload: RStr<'_>) -> RResult<(), SendFailure>;

    /// Sleeps up to `nanos`, waking early when the node stops. Returns whether the node still runs.
    fn sleep(&self, nanos: u64) -> bool;

    /// Writes a line to the node's log.
    fn log(&self, level: LogLevel, message: RStr<'_>);

    /// Whether the node is still running (false once it has been asked to stop).
    fn is_running(&self) -> bool;

    /// Asks request `name` with `args` (JSON text) and waits up to `timeout_nanos` for the
    /// outcome: one responder's (the host's own nodes first), or every responder's with `all`.
    /// Blocks the calling thread; the node's glue never calls it on the delivery thread. (0.5.0)
    fn request(
        &self,
        name: RStr<'_>,
        args: RStr<'_>,
        timeout_nanos: u64,
        all: bool,
    ) -> RequestOutcomes;

    /// Like [`Host::request`] without waiting: returns a token at once, and the outcome comes
    /// back through [`NodeObject::replied`] with it, on the node's own thread, exactly once
    /// (a failure of the call itself included). (0.5.0)
    fn ask(&self, name: RStr<'_>, args: RStr<'_>, timeout_nanos: u64, all: bool) -> u64;

    /// Runs one call on the node's own data store and answers it: `call` and the answer are
    /// JSON text in the host's store call language (`{"op": "get", "key": "..."}` ...;
    /// `{"ok": ...}` or `{"error": {"kind": ..., "message": ...}}`), which the node API's
    /// `hivemind::store` speaks so that node code never does. Blocks the calling thread for
    /// at most the hive's `[data] call_timeout_ms`. (0.6.0)
    #[sabi(last_prefix_field)]
    fn store(&self, call: RStr<'_>) -> RString;
}

/// A node instance, as the host holds it.
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{ROption, RResult, RStr, RString};
/// use hivemind::abi::{CallbackError, MessageView, NodeBox, NodeObject};
///
/// struct Counter(u32);
///
/// impl NodeObject for Counter {
///     fn deliver(&mut self, _subscription: u32, _message: MessageView<'_>) -> RResult<(), CallbackError> {
///         self.0 += 1;
///         RResult::ROk(())
///     }
///     fn save_state(&mut self) -> RResult<ROption<RString>, CallbackError> {
///         RResult::ROk(ROption::RSome(self.0.to_string().into()))
///     }
///     fn restore_state(&mut self, state: RStr<'_>) -> RResult<(), CallbackError> {
///         self.0 = state.as_str().parse().unwrap_or(0);
///         RResult::ROk(())
///     }
///     fn tick(&mut self, _timer: u32) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
///     fn answer(&mut self, _request: u32, _view: hivemind::abi::RequestView<'_>) -> RResult<abi_stable::std_types::RString, hivemind::abi::RequestFailure> {
///         RResult::ROk("null".into())
///     }
///     fn replied(&mut self, _token: u64, _outcome: hivemind::abi::RequestOutcomes) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
/// }
///
/// let mut node: NodeBox = NodeBox::from_value(Counter(0), TD_Opaque);
/// let view = MessageView {
///     service: RStr::from_str("s"),
///     node: RStr::from_str("n"),
///     payload: RStr::from_str("1"),
///     host: RStr::from_str("h"),
/// };
/// assert!(node.deliver(0, view).is_ok());
/// assert_eq!(node.save_state().unwrap(), ROption::RSome(RString::from("1")));
/// ```
#[sabi_trait]
pub trait NodeObject: Send {
    /// Runs subscription number `subscription`'s callback on `message`.
    fn deliver(
        &mut self,
        subscription: u32,
        message: MessageView<'_>,
    ) -> RResult<(), CallbackError>;

    /// Before a reload: the state to hand to the next instance, as JSON text (none: `RNone`).
    fn save_state(&mut self) -> RResult<ROption<RString>, CallbackError>;

    /// After a reload, before any message or service: the state the previous instance saved.
    fn restore_state(&mut self, state: RStr<'_>) -> RResult<(), CallbackError>;

    /// Runs timer number `timer`'s callback once.
    fn tick(&mut self, timer: u32) -> RResult<(), CallbackError>;

    /// Runs the handler of request number `request` (index into [`NodeParts::requests`]);
    /// returns the reply as JSON text, or why there is none. (0.5.0)
    fn answer(&mut self, request: u32, view: RequestView<'_>) -> RResult<RString, RequestFailure>;

    /// Runs the callback waiting for the outcome of the [`Host::ask`] that returned `token`.
    /// An unknown token (an ask of a previous instance) is ignored. (0.5.0)
    #[sabi(last_prefix_field)]
    fn replied(&mut self, token: u64, outcome: RequestOutcomes) -> RResult<(), CallbackError>;
}

/// One service's callback, as the host holds it.
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::RResult;
/// use hivemind::abi::{CallbackError, Flow, ServiceBox, ServiceObject};
///
/// struct Thrice(u8);
///
/// impl ServiceObject for Thrice {
///     fn step(&mut self) -> RResult<Flow, CallbackError> {
///         self.0 += 1;
///         RResult::ROk(if self.0 == 3 { Flow::Stop } else { Flow::Continue })
///     }
/// }
///
/// let mut service: ServiceBox = ServiceBox::from_value(Thrice(0), TD_Opaque);
/// let flows: Vec<Flow> = (0..3).map(|_| service.step().unwrap()).collect();
/// assert_eq!(flows, [Flow::Continue, Flow::Continue, Flow::Stop]);
/// ```
#[sabi_trait]
pub trait ServiceObject: Send {
    /// Runs the callback once; returns whether to run it again.
    #[sabi(last_prefix_field)]
    fn step(&mut self) -> RResult<Flow, CallbackError>;
}

/// The host, as a node holds it (see [`Host`] for one made by hand).
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{RResult, RStr};
/// use hivemind::abi::{Host, HostBox, LogLevel, SendFailure};
///
/// #[derive(Clone)]
/// struct Quiet;
///
/// impl Host for Quiet {
///     fn send(&self, _service: u32, _payload: RStr<'_>) -> RResult<(), SendFailure> {
///         RResult::ROk(())
///     }
///     fn sleep(&self, _nanos: u64) -> bool {
///         true
///     }
///     fn log(&self, _level: LogLevel, _message: RStr<'_>) {}
///     fn is_running(&self) -> bool {
///         true
///     }
///     fn request(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> hivemind::abi::RequestOutcomes {
///         abi_stable::std_types::RResult::ROk(abi_stable::std_types::RVec::new())
///     }
///     fn ask(&self, _name: RStr<'_>, _args: RStr<'_>, _timeout_nanos: u64, _all: bool) -> u64 {
///         0
///     }
///     fn store(&self, _call: RStr<'_>) -> abi_stable::std_types::RString {
///         r#"{"error":{"kind":"unavailable","message":"no store here"}}"#.into()
///     }
/// }
///
/// let host: HostBox = HostBox::from_value(Quiet, TD_Opaque);
/// let copy = host.clone(); // every service handle holds one
/// assert!(copy.sleep(1));
/// ```
pub type HostBox = Host_TO<RBox<()>>;
/// A node instance, as the host holds it (see [`NodeObject`]).
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::{ROption, RResult, RStr, RString};
/// use hivemind::abi::{CallbackError, MessageView, NodeBox, NodeObject};
///
/// struct Counter(u32);
///
/// impl NodeObject for Counter {
///     fn deliver(&mut self, _subscription: u32, _message: MessageView<'_>) -> RResult<(), CallbackError> {
///         self.0 += 1;
///         RResult::ROk(())
///     }
///     fn save_state(&mut self) -> RResult<ROption<RString>, CallbackError> {
///         RResult::ROk(ROption::RSome(self.0.to_string().into()))
///     }
///     fn restore_state(&mut self, state: RStr<'_>) -> RResult<(), CallbackError> {
///         self.0 = state.as_str().parse().unwrap_or(0);
///         RResult::ROk(())
///     }
///     fn tick(&mut self, _timer: u32) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
///     fn answer(&mut self, _request: u32, _view: hivemind::abi::RequestView<'_>) -> RResult<abi_stable::std_types::RString, hivemind::abi::RequestFailure> {
///         RResult::ROk("null".into())
///     }
///     fn replied(&mut self, _token: u64, _outcome: hivemind::abi::RequestOutcomes) -> RResult<(), CallbackError> {
///         RResult::ROk(())
///     }
/// }
///
/// let mut node: NodeBox = NodeBox::from_value(Counter(0), TD_Opaque);
/// assert!(node.tick(0).is_ok());
/// ```
pub type NodeBox = NodeObject_TO<'static, RBox<()>>;
/// A service callback, as the host holds it (see [`ServiceObject`]).
///
/// ```
/// use abi_stable::sabi_trait::TD_Opaque;
/// use abi_stable::std_types::RResult;
/// use hivemind::abi::{CallbackError, Flow, ServiceBox, ServiceObject};
///
/// struct Once;
///
/// impl ServiceObject for Once {
///     fn step(&mut self) -> RResult<Flow, CallbackError> {
///         RResult::ROk(Flow::Stop)
///     }
/// }
///
/// let mut service: ServiceBox = ServiceBox::from_value(Once, TD_Opaque);
/// assert_eq!(service.step().unwrap(), Flow::Stop);
/// ```
pub type ServiceBox = ServiceObject_TO<'static, RBox<()>>;
