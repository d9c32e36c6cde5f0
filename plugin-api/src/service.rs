//! Services: the handle a service callback sends through, and what its callback returns.

use crate::abi::HostBox;
use abi_stable::StableAbi;
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

    /// The service's name: the topic its messages go out on.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `payload` (anything `serde::Serialize`; it travels as JSON) to every subscription
    /// whose pattern matches this service's name.
    ///
    /// It returns at once: delivery happens on each subscriber's own thread. The error says why a
    /// message was not accepted (not serialisable, too large, the hive is stopping); the host
    /// also writes it to the node's log, so ignoring it loses nothing silently.
    pub fn send<T: Serialize + ?Sized>(&self, payload: &T) -> Result<(), SendError> {
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
    pub fn sleep_for(&self, duration: Duration) -> bool {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.host.sleep(nanos)
    }

    /// Whether the node is still running.
    pub fn is_running(&self) -> bool {
        self.host.is_running()
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
    pub fn kind(&self) -> SendErrorKind {
        self.kind
    }
}

/// What kind of failure a [`SendError`] is. It crosses the ABI as this enum; new kinds may come
/// with a new API version, so match with a `_` arm.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The node has been asked to stop (the hive stops, or the node is being reloaded): the
    /// message was not sent. Return from the callback.
    Stopping = 1,
    /// The payload's JSON is larger than the hive's `[messages] max_payload_bytes`.
    TooLarge = 2,
    /// Sent before the node started: from `Node::new`, `services` or `subscriptions`.
    NotStarted = 3,
    /// The payload could not be turned into JSON (its `Serialize` failed, or a map had
    /// non-string keys).
    NotSerializable = 4,
    /// The host knows no such service of this node (a handle from another instance).
    UnknownService = 5,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SendError {}

/// What a service callback tells the host after one iteration. It crosses the ABI as this enum.
///
/// ```
/// use hivemind::Flow;
/// let mut left = 3;
/// let mut step = || {
///     left -= 1;
///     if left == 0 { Flow::Stop } else { Flow::Continue }
/// };
/// assert_eq!((step(), step(), step()), (Flow::Continue, Flow::Continue, Flow::Stop));
/// ```
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Run the callback again (after it returns; sleep inside it to pace the loop).
    Continue = 0,
    /// This service is done; the node's other services and subscriptions keep running.
    Stop = 1,
}
