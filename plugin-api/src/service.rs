//! Services: the handle a service callback sends through, and what its callback returns.

use crate::abi::HostBox;
use crate::outcome::SendErrorKind;
use crate::request::{self, AllReplies, Reply, RequestError};
use abi_stable::std_types::RStr;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A service of this node: sends JSON payloads under the service's name.
///
/// The service callback receives it on every iteration; [`Services::add_service`] returns a clone
/// to keep in the node, so that other callbacks can send under this service's name too.
///
/// [`Services::add_service`]: crate::Services::add_service
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Relay {
///     out: Option<Service>,
/// }
///
/// impl Node for Relay {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Relay { out: None })
///     }
///
///     fn services(&mut self, hive: &mut Services) {
///         // Kept in the node: its subscription sends through it.
///         self.out = Some(hive.add_publisher("relayed"));
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_subscription("raw", |node: &mut Self, message: &Message| {
///             let out = node.out.as_ref().ok_or("no publisher")?;
///             out.send(message.payload())?;
///             Ok(())
///         });
///     }
/// }
/// hivemind::export_node!(Relay);
///
/// let mut node = TestNode::<Relay>::new().unwrap();
/// node.deliver("raw", &json!({ "n": 1 })).unwrap();
/// assert_eq!(node.sent_on("relayed"), [json!({ "n": 1 })]);
/// ```
#[derive(Clone)]
pub struct Service {
    host: HostBox,
    id: u32,
    name: Arc<str>,
}

impl Service {
    pub(crate) fn host(&self) -> &HostBox {
        &self.host
    }

    pub(crate) fn new(host: HostBox, id: u32, name: String) -> Self {
        Self {
            host,
            id,
            name: name.into(),
        }
    }

    /// The node's own [store](crate::store), for a service's loop.
    pub fn store(&self) -> crate::store::Store {
        crate::store::Store::new(self.host.clone())
    }

    /// The service's name: the topic its messages go out on.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Named;
    ///
    /// impl Node for Named {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Named)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_service("hello", |service: &Service| {
    ///             service.send(&format!("sent on {}", service.name()))?;
    ///             Ok(Flow::Stop)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Named);
    ///
    /// let mut node = TestNode::<Named>::new().unwrap();
    /// node.run_service("hello").unwrap();
    /// assert_eq!(node.sent_on("hello"), [json!("sent on hello")]);
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `payload` (anything `serde::Serialize`; it travels as JSON) to every subscription
    /// whose pattern matches this service's name.
    ///
    /// It returns at once: delivery happens on each subscriber's own thread. The error says why a
    /// message was not accepted (not serialisable, too large, the hive is stopping); the host
    /// also writes it to the node's log, so ignoring it loses nothing silently.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// #[derive(Serialize)]
    /// struct Alarm {
    ///     level: u8,
    /// }
    ///
    /// pub struct Panel;
    ///
    /// impl Node for Panel {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Panel)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_service("alarm", |service: &Service| {
    ///             service.send(&Alarm { level: 3 })?; // a struct
    ///             service.send("and a string")?;      // anything Serialize
    ///             Ok(Flow::Stop)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Panel);
    ///
    /// let mut node = TestNode::<Panel>::new().unwrap();
    /// node.run_service("alarm").unwrap();
    /// assert_eq!(node.sent_on("alarm"), [json!({ "level": 3 }), json!("and a string")]);
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, payload: &T) -> Result<(), SendError> {
        // Encoded into a fresh `String`: a buffer kept per thread would need a thread-local
        // with a destructor, which pins this library in memory until the thread ends (glibc
        // counts such destructors against unloading), and a node's delivery thread outlives
        // its library across reloads.
        let json = serde_json::to_string(payload).map_err(|e| SendError {
            kind: SendErrorKind::NotSerializable,
            reason: format!(
                "service `{}`: the payload is not serialisable as JSON: {e}",
                self.name
            ),
        })?;
        self.host
            .send(self.id, RStr::from_str(&json))
            .into_result()
            .map_err(|failure| SendError {
                kind: failure.kind,
                reason: failure.message.into_string(),
            })
    }

    /// Sleeps for `duration`, or less if the node is stopping. Returns `true` if the node is
    /// still running, `false` if it has been asked to stop (then return from the callback).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    /// use std::time::Duration;
    ///
    /// pub struct Pacer;
    ///
    /// impl Node for Pacer {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Pacer)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_service("pace", |service: &Service| {
    ///             if !service.sleep_for(Duration::from_secs(2)) {
    ///                 return Ok(Flow::Stop); // the node is stopping
    ///             }
    ///             Ok(Flow::Continue)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Pacer);
    ///
    /// let mut node = TestNode::<Pacer>::new().unwrap();
    /// assert_eq!(node.run_service("pace").unwrap(), Flow::Continue);
    /// node.stop();
    /// assert_eq!(node.run_service("pace").unwrap(), Flow::Stop);
    /// assert_eq!(node.sleeps(), [Duration::from_secs(2); 2]);
    /// ```
    pub fn sleep_for(&self, duration: Duration) -> bool {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.host.sleep(nanos)
    }

    /// Whether the node is still running.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Busy;
    ///
    /// impl Node for Busy {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Busy)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_service("work", |service: &Service| {
    ///             // A long job checks between steps whether to go on.
    ///             for _step in 0..3 {
    ///                 if !service.is_running() {
    ///                     return Ok(Flow::Stop);
    ///                 }
    ///             }
    ///             Ok(Flow::Continue)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Busy);
    ///
    /// let mut node = TestNode::<Busy>::new().unwrap();
    /// assert_eq!(node.run_service("work").unwrap(), Flow::Continue);
    /// node.stop();
    /// assert_eq!(node.run_service("work").unwrap(), Flow::Stop);
    /// ```
    pub fn is_running(&self) -> bool {
        self.host.is_running()
    }

    /// Asks request `name` with `args` and waits for the reply, `timeout` at most (shortened
    /// to [`MAX_TIMEOUT`](crate::request::MAX_TIMEOUT)). A node of this host answers if one
    /// can; otherwise one on another host of the mesh.
    ///
    /// It blocks, so it is for service loops only: called from the node's delivery thread (a
    /// subscription, timer, request handler or reply callback) it fails at once with
    /// [`RequestErrorKind::WouldBlock`](crate::RequestErrorKind::WouldBlock) instead of
    /// stalling the node; use an [`Asker`](crate::Asker) there.
    ///
    /// ```no_run
    /// use hivemind::prelude::*;
    /// use std::time::Duration;
    ///
    /// fn poll(service: &Service) -> Result<Flow> {
    ///     match service.request("battery/level", &(), Duration::from_secs(1)) {
    ///         Ok(reply) => info!("{}% left (said {})", reply.decode::<u8>()?, reply.node()),
    ///         Err(error) if error.kind() == RequestErrorKind::NoResponder => {}
    ///         Err(error) => warn!("{error}"),
    ///     }
    ///     service.sleep_for(Duration::from_secs(10));
    ///     Ok(Flow::Continue)
    /// }
    /// # let _ = poll;
    /// ```
    pub fn request<T: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &T,
        timeout: Duration,
    ) -> Result<Reply, RequestError> {
        let args = self.blocking_args(name, args)?;
        let outcomes = self.host.request(
            RStr::from_str(name),
            RStr::from_str(&args),
            request::nanos(timeout),
            false,
        );
        request::single(outcomes, name)
    }

    /// Like [`request`](Self::request), of every node that answers `name` (on every host):
    /// waits until all have answered or `timeout` has passed, and returns each one's reply or
    /// error (a [`Timeout`](crate::RequestErrorKind::Timeout) for those that had not answered
    /// by then). The outer error says why nobody was asked.
    pub fn request_all<T: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &T,
        timeout: Duration,
    ) -> AllReplies {
        let args = self.blocking_args(name, args)?;
        let outcomes = self.host.request(
            RStr::from_str(name),
            RStr::from_str(&args),
            request::nanos(timeout),
            true,
        );
        request::all(outcomes, name)
    }

    fn blocking_args<T: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &T,
    ) -> Result<String, RequestError> {
        if crate::current::on_delivery_thread() {
            let error = request::would_block(name);
            crate::current::log_to_current_node(crate::abi::LogLevel::Error, error.message());
            return Err(error);
        }
        request::args_json(name, args)
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service").field("name", &self.name).finish()
    }
}

/// Why [`Service::send`] did not accept a message: a [`kind`](SendError::kind) to match on and
/// a message for people (its `Display`).
///
/// ```
/// use hivemind::{SendError, SendErrorKind};
///
/// fn report(error: &SendError) -> &'static str {
///     match error.kind() {
///         SendErrorKind::Stopping => "the hive is stopping: return from the callback",
///         SendErrorKind::TooLarge => "send less at a time",
///         _ => "a bug in this node",
///     }
/// }
/// # let _ = report;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    kind: SendErrorKind,
    reason: String,
}

impl SendError {
    /// What went wrong, for code to match on.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Big;
    ///
    /// impl Node for Big {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Big)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_service("big", |service: &Service| {
    ///             match service.send(&"x".repeat(100)) {
    ///                 Err(e) if e.kind() == SendErrorKind::TooLarge => service.send("too big")?,
    ///                 other => other?,
    ///             }
    ///             Ok(Flow::Stop)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Big);
    ///
    /// let mut node = TestNode::<Big>::new().unwrap();
    /// node.set_max_payload_bytes(64);
    /// node.run_service("big").unwrap();
    /// assert_eq!(node.sent_on("big"), [json!("too big")]);
    /// ```
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SendError {}
