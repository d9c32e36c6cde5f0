//! Requests and replies: a node answers named requests ([`Requests::add_request`]) and asks
//! other nodes ([`Service::request`](crate::Service::request) from a service thread,
//! [`Asker::ask`] from anywhere, its reply arriving later as a callback on the node's own
//! thread).
//!
//! The contract: a handler runs on the answering node's delivery thread, one at a time with its
//! subscriptions and timers, and is called at most once per request; every request ends in
//! exactly one outcome for the asker (a reply or a [`RequestError`]), never in a wait past
//! its timeout.

use crate::Result;
use crate::abi::{HostBox, ReplyData, RequestFailure, RequestOutcome, RequestOutcomes};
use abi_stable::std_types::{RResult, RStr, RString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use crate::outcome::RequestErrorKind;

/// The timeout a request gets when the caller has no better idea: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest timeout the host keeps: 60 s. A longer one is shortened to it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// One request, as its handler sees it: the arguments and who asked.
pub struct Request<'a> {
    name: &'a str,
    node: &'a str,
    host: &'a str,
    json: &'a str,
    parsed: OnceCell<Value>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(name: &'a str, node: &'a str, host: &'a str, json: &'a str) -> Self {
        Self {
            name,
            node,
            host,
            json,
            parsed: OnceCell::new(),
        }
    }

    /// The request's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The node that asked (`api` for `POST /api/request/...`, `cli` for `hm call`).
    pub fn node(&self) -> &str {
        self.node
    }

    /// The host the asker runs on (this host's own name for a local asker).
    pub fn host(&self) -> &str {
        self.host
    }

    /// The arguments as JSON text, exactly as they travelled.
    pub fn json(&self) -> &str {
        self.json
    }

    /// The arguments as a JSON value (parsed on first use, then kept).
    pub fn args(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(self.json).unwrap_or(Value::Null))
    }

    /// The arguments decoded into your own type. Returned from the handler with `?`, the
    /// error reaches the asker as [`RequestErrorKind::InvalidArgs`] (HTTP 400), naming the
    /// request and the reason.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_str(self.json).map_err(|source| DecodeError {
            what: format!("the arguments of request `{}`", self.name),
            args: true,
            source,
        })
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("name", &self.name)
            .field("node", &self.node)
            .field("host", &self.host)
            .field("json", &self.json)
            .finish()
    }
}

/// Arguments or a reply that did not decode into the requested type.
#[derive(Debug)]
pub struct DecodeError {
    what: String,
    /// The request's arguments (not a reply): the asker's mistake.
    pub(crate) args: bool,
    source: serde_json::Error,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} do not decode: {}", self.what, self.source)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A reply: its JSON and who answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    name: String,
    node: String,
    host: String,
    json: String,
}

impl Reply {
    pub(crate) fn new(name: &str, data: ReplyData) -> Self {
        Self {
            name: name.to_owned(),
            node: data.node.into_string(),
            host: data.host.into_string(),
            json: data.json.into_string(),
        }
    }

    /// The node that answered.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The host that node runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The reply as JSON text, exactly as it travelled.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The reply as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The reply decoded into your own type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_str(&self.json).map_err(|source| DecodeError {
            what: format!(
                "the reply of node `{}` to request `{}`",
                self.node, self.name
            ),
            args: false,
            source,
        })
    }
}

/// Why a request got no reply: a [`kind`](RequestError::kind) to match on, a message for
/// people (its `Display`), and the responder involved, if one was.
///
/// ```
/// use hivemind::{RequestError, RequestErrorKind};
///
/// fn advice(error: &RequestError) -> &'static str {
///     match error.kind() {
///         RequestErrorKind::NoResponder => "enable the node that answers it",
///         RequestErrorKind::Timeout => "ask again later, or wait longer",
///         RequestErrorKind::Restarted => "the responder restarted: ask again",
///         _ => "see the message",
///     }
/// }
/// # let _ = advice;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    kind: RequestErrorKind,
    message: String,
    node: Option<String>,
    host: Option<String>,
}

impl RequestError {
    pub(crate) fn new(kind: RequestErrorKind, message: String) -> Self {
        Self {
            kind,
            message,
            node: None,
            host: None,
        }
    }

    pub(crate) fn from_failure(failure: RequestFailure) -> Self {
        let some = |text: RString| Some(text.into_string()).filter(|t| !t.is_empty());
        Self {
            kind: failure.kind,
            message: failure.message.into_string(),
            node: some(failure.node),
            host: some(failure.host),
        }
    }

    /// What went wrong, for code to match on.
    pub fn kind(&self) -> RequestErrorKind {
        self.kind
    }

    /// What went wrong, for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The node that failed to answer, when one was asked.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// That node's host, when one was asked.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

/// The outcome of [`Service::request_all`](crate::Service::request_all) and
/// [`Asker::ask_all`]: every responder's reply or error, or why nobody was asked.
pub type AllReplies = Result<Vec<Result<Reply, RequestError>>, RequestError>;

/// The JSON text of `args`, or why it has none.
pub(crate) fn args_json<T: Serialize + ?Sized>(
    name: &str,
    args: &T,
) -> Result<String, RequestError> {
    serde_json::to_string(args).map_err(|e| {
        RequestError::new(
            RequestErrorKind::NotSerializable,
            format!("request `{name}`: the arguments are not serialisable as JSON: {e}"),
        )
    })
}

pub(crate) fn nanos(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)
}

fn one(outcome: RequestOutcome, name: &str) -> Result<Reply, RequestError> {
    match outcome {
        RResult::ROk(data) => Ok(Reply::new(name, data)),
        RResult::RErr(failure) => Err(RequestError::from_failure(failure)),
    }
}

/// `outcomes` as one reply (the first responder's).
pub(crate) fn single(outcomes: RequestOutcomes, name: &str) -> Result<Reply, RequestError> {
    match outcomes {
        RResult::ROk(list) => match list.into_iter().next() {
            Some(outcome) => one(outcome, name),
            None => Err(no_responder(name)),
        },
        RResult::RErr(failure) => Err(RequestError::from_failure(failure)),
    }
}

/// `outcomes` as every responder's.
pub(crate) fn all(outcomes: RequestOutcomes, name: &str) -> AllReplies {
    match outcomes {
        RResult::ROk(list) => Ok(list.into_iter().map(|o| one(o, name)).collect()),
        RResult::RErr(failure) => Err(RequestError::from_failure(failure)),
    }
}

fn no_responder(name: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::NoResponder,
        format!("no node answers request `{name}`"),
    )
}

/// The refusal of a blocking request on the delivery thread.
pub(crate) fn would_block(name: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::WouldBlock,
        format!(
            "request `{name}` was asked with a blocking call from the node's delivery thread (a subscription, timer, request handler or reply callback), which would stall the node: use an Asker (`hive.asker()` in `Node::requests`) there, or ask from a service"
        ),
    )
}

pub(crate) type HandlerFn<N> =
    Box<dyn FnMut(&mut N, &Request<'_>) -> Result<String, RequestFailure> + Send>;

pub(crate) type ReplyFn<N> = Box<dyn FnOnce(&mut N, RequestOutcomes) -> Result<()> + Send>;

/// Callbacks waiting for the outcome of an [`Asker`]'s asks, by token.
pub(crate) struct Waiting<N> {
    pub(crate) callbacks: Mutex<HashMap<u64, ReplyFn<N>>>,
}

impl<N> Waiting<N> {
    pub(crate) fn take(&self, token: u64) -> Option<ReplyFn<N>> {
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token)
    }
}

/// Where a node registers the requests it answers, and gets its [`Asker`].
pub struct Requests<N> {
    pub(crate) registered: Vec<(String, String, HandlerFn<N>)>,
    pub(crate) waiting: Arc<Waiting<N>>,
    host: HostBox,
}

impl<N> Requests<N> {
    pub(crate) fn new(host: HostBox) -> Self {
        Self {
            registered: Vec::new(),
            waiting: Arc::new(Waiting {
                callbacks: Mutex::new(HashMap::new()),
            }),
            host,
        }
    }

    /// Answers requests named `name` with `handler`; `help` is one line for people (the page
    /// and `GET /api/requests` show it).
    ///
    /// The handler gets the node itself and the [`Request`] (its arguments and who asked) and
    /// returns the reply: anything `Serialize`, sent as JSON. It runs on the node's delivery
    /// thread, one at a time with its subscriptions and timers, so it may change the node's
    /// state with no lock; it must not block for long (a long handler delays every message of
    /// the node). An `Err` reaches the asker as [`RequestErrorKind::HandlerError`] with its
    /// message, a panic as [`RequestErrorKind::Panicked`]; the node keeps running either way.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Battery {
    ///     level: u8,
    /// }
    ///
    /// impl Node for Battery {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Battery { level: 80 })
    ///     }
    ///
    ///     fn requests(&mut self, hive: &mut Requests<Self>) {
    ///         hive.add_request("battery/level", "the charge left, in percent", |node: &mut Self, _: &Request| {
    ///             Ok(node.level)
    ///         });
    ///         hive.add_request("battery/drain", "uses {\"percent\": n} of the charge", |node: &mut Self, request: &Request| {
    ///             #[derive(Deserialize)]
    ///             struct Drain { percent: u8 }
    ///             let drain: Drain = request.decode()?;
    ///             node.level = node.level.checked_sub(drain.percent).ok_or("not that much left")?;
    ///             Ok(json!({ "left": node.level }))
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Battery);
    ///
    /// let mut node = TestNode::<Battery>::new().unwrap();
    /// assert_eq!(node.request("battery/level", &()).unwrap(), json!(80));
    /// assert_eq!(node.request("battery/drain", &json!({ "percent": 30 })).unwrap(), json!({ "left": 50 }));
    /// let error = node.request("battery/drain", &json!({ "percent": 90 })).unwrap_err();
    /// assert_eq!(error.kind(), RequestErrorKind::HandlerError);
    /// assert!(error.message().contains("not that much left"), "{error}");
    /// let error = node.request("battery/drain", &"lots").unwrap_err();
    /// assert_eq!(error.kind(), RequestErrorKind::InvalidArgs);
    /// ```
    pub fn add_request<R, F>(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        mut handler: F,
    ) where
        R: Serialize,
        F: FnMut(&mut N, &Request<'_>) -> Result<R> + Send + 'static,
    {
        let name = name.into();
        let handler = move |node: &mut N, request: &Request<'_>| {
            let reply = handler(node, request).map_err(|error| {
                let kind = match error.downcast_ref::<DecodeError>() {
                    Some(decode) if decode.args => RequestErrorKind::InvalidArgs,
                    _ => RequestErrorKind::HandlerError,
                };
                failure(kind, error.to_string())
            })?;
            serde_json::to_string(&reply).map_err(|e| {
                failure(
                    RequestErrorKind::HandlerError,
                    format!(
                        "the reply to request `{}` is not serialisable as JSON: {e}",
                        request.name()
                    ),
                )
            })
        };
        self.registered.push((name, help.into(), Box::new(handler)));
    }

    /// Like [`add_request`](Self::add_request), with the arguments decoded into `T` first;
    /// arguments that do not decode never reach `handler`: the asker gets
    /// [`RequestErrorKind::InvalidArgs`] with the reason.
    pub fn add_typed_request<T, R, F>(
        &mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        mut handler: F,
    ) where
        T: DeserializeOwned + 'static,
        R: Serialize,
        F: FnMut(&mut N, T, &Request<'_>) -> Result<R> + Send + 'static,
    {
        self.add_request(name, help, move |node: &mut N, request: &Request<'_>| {
            let args = request.decode::<T>()?;
            handler(node, args, request)
        });
    }

    /// A handle that asks other nodes without blocking, for the node's delivery thread (keep it
    /// in the node): see [`Asker`].
    pub fn asker(&self) -> Asker<N> {
        Asker {
            host: self.host.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

pub(crate) fn failure(kind: RequestErrorKind, message: String) -> RequestFailure {
    RequestFailure {
        kind,
        message: message.into(),
        node: RString::new(),
        host: RString::new(),
    }
}

/// Asks other nodes without blocking: the reply comes later, as a callback with the node
/// itself on the node's own delivery thread (in order with its subscriptions), exactly once per
/// ask: with the reply, or with the error (a timeout included). Made by
/// [`Requests::asker`]; keep it in the node.
///
/// Callbacks of an instance that is replaced (a reload) before its replies come are dropped
/// with it: the new instance never sees them.
///
/// ```
/// use hivemind::prelude::*;
/// use std::time::Duration;
///
/// struct Batman {
///     ask: Option<Asker<Self>>,
/// }
///
/// impl Node for Batman {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Batman { ask: None })
///     }
///
///     fn requests(&mut self, hive: &mut Requests<Self>) {
///         self.ask = Some(hive.asker());
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_subscription("bat-signal-*", |node: &mut Self, _: &Message| {
///             let ask = node.ask.as_ref().ok_or("no asker yet")?;
///             ask.ask("alfred/advice", &(), Duration::from_secs(1), |_: &mut Self, reply| {
///                 info!("Alfred says {}", reply?.value());
///                 Ok(())
///             });
///             Ok(())
///         });
///     }
/// }
/// # hivemind::export_node!(Batman);
/// ```
pub struct Asker<N> {
    host: HostBox,
    waiting: Arc<Waiting<N>>,
}

impl<N> Clone for Asker<N> {
    fn clone(&self) -> Self {
        Self {
            host: self.host.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl<N> Asker<N> {
    /// Asks request `name` with `args` and returns at once; `callback` runs later on the node's
    /// delivery thread with the node and the reply (or the error), once `timeout` at most has
    /// passed (shortened to [`MAX_TIMEOUT`]).
    pub fn ask<T, F>(&self, name: &str, args: &T, timeout: Duration, callback: F)
    where
        T: Serialize + ?Sized,
        F: FnOnce(&mut N, Result<Reply, RequestError>) -> Result<()> + Send + 'static,
    {
        let owned = name.to_owned();
        self.send(name, args, timeout, false, move |node, outcomes| {
            callback(node, single(outcomes, &owned))
        });
    }

    /// Like [`ask`](Self::ask), of every node that answers `name`: the callback gets every
    /// reply or error once all have answered or `timeout` has passed (those that had not
    /// answered then are [`RequestErrorKind::Timeout`]s).
    pub fn ask_all<T, F>(&self, name: &str, args: &T, timeout: Duration, callback: F)
    where
        T: Serialize + ?Sized,
        F: FnOnce(&mut N, AllReplies) -> Result<()> + Send + 'static,
    {
        let owned = name.to_owned();
        self.send(name, args, timeout, true, move |node, outcomes| {
            callback(node, all(outcomes, &owned))
        });
    }

    fn send<T, F>(&self, name: &str, args: &T, timeout: Duration, every: bool, callback: F)
    where
        T: Serialize + ?Sized,
        F: FnOnce(&mut N, RequestOutcomes) -> Result<()> + Send + 'static,
    {
        // Not serialisable: the host carries the failure back like any other, so that the
        // callback still runs exactly once, later.
        let (args, broken) = match args_json(name, args) {
            Ok(json) => (json, None),
            Err(error) => ("null".to_owned(), Some(error)),
        };
        let mut callbacks = self
            .waiting
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match broken {
            None => {
                let token = self.host.ask(
                    RStr::from_str(name),
                    RStr::from_str(&args),
                    nanos(timeout),
                    every,
                );
                callbacks.insert(token, Box::new(callback));
            }
            Some(error) => {
                // Asked of a name no node can have, so that the host answers at once; the
                // callback gets the real reason.
                let token = self
                    .host
                    .ask(RStr::from_str(""), RStr::from_str("null"), 0, every);
                let message = error.message().to_owned();
                callbacks.insert(
                    token,
                    Box::new(move |node: &mut N, _| {
                        callback(
                            node,
                            RResult::RErr(failure(RequestErrorKind::NotSerializable, message)),
                        )
                    }),
                );
            }
        }
    }
}
