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
//!   its own host thread; a publisher has none), the subscription patterns and the timers.
//!   Indices into those lists are the ids used on the wire.
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
//! stable `Flow` and `SendErrorKind` enums, publishers, timers. 0.5.0, requests: the
//! [`RequestDecl`]s at the end of [`NodeParts`], [`Host::request`] and [`Host::ask`] at the end
//! of [`Host`], [`NodeObject::answer`] and [`NodeObject::replied`] at the end of
//! [`NodeObject`].)
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

pub use crate::service::{Flow, SendErrorKind};

/// The root module a node library exports.
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
    /// The request names the node answers, in registration order (index = request id). (0.5.0)
    pub requests: RVec<RequestDecl>,
}

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

/// What kind of failure a request met. It crosses the ABI as this enum; new kinds may come
/// with a new API version, so match with a `_` arm. (0.5.0)
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// No node answers that name (known at once, not after the timeout).
    NoResponder = 1,
    /// No reply came before the caller's timeout.
    Timeout = 2,
    /// The handler returned an error (its message).
    HandlerError = 3,
    /// The handler panicked (its message); the node keeps running.
    Panicked = 4,
    /// The answering node was reloaded, crashed or was disabled with the request in hand or
    /// queued, and the request was not answered. Asking again reaches the new instance.
    Restarted = 5,
    /// The arguments or the reply are larger than the hive's `[messages] max_payload_bytes`.
    TooLarge = 6,
    /// A blocking request from the node's delivery thread (a subscription, timer, request
    /// handler or reply callback), which would stall it: use the non-blocking `Asker` there.
    WouldBlock = 7,
    /// The arguments do not decode into the handler's type.
    InvalidArgs = 8,
    /// The arguments are not serialisable as JSON.
    NotSerializable = 9,
    /// The asking node or the hive is stopping.
    Stopping = 10,
    /// The responder's queue of requests is full: it is far behind.
    Busy = 11,
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
pub const MIN_TIMER_PERIOD_NANOS: u64 = 1_000_000;

/// One registered service.
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
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SendFailure {
    /// What went wrong, for code to match on.
    pub kind: SendErrorKind,
    /// What went wrong, for a person: names the service and the fix.
    pub message: RString,
}

/// Log levels a node can write at.
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
    #[sabi(last_prefix_field)]
    fn ask(&self, name: RStr<'_>, args: RStr<'_>, timeout_nanos: u64, all: bool) -> u64;
}

/// A node instance, as the host holds it.
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
#[sabi_trait]
pub trait ServiceObject: Send {
    /// Runs the callback once; returns whether to run it again.
    #[sabi(last_prefix_field)]
    fn step(&mut self) -> RResult<Flow, CallbackError>;
}

/// The host, as a node holds it.
pub type HostBox = Host_TO<RBox<()>>;
/// A node instance, as the host holds it.
pub type NodeBox = NodeObject_TO<'static, RBox<()>>;
/// A service callback, as the host holds it.
pub type ServiceBox = ServiceObject_TO<'static, RBox<()>>;
