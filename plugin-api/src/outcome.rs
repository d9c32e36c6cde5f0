//! The outcome enums every layer shares: what a service callback says after one iteration
//! ([`Flow`]), why a message was not sent ([`SendErrorKind`]) and why a request failed
//! ([`RequestErrorKind`]).
//!
//! They cross the ABI as they are (stable `#[repr(u8)]` enums, never integers or text to
//! parse), and node code matches on them, so both [`abi`](crate::abi) and the safe layer
//! ([`Service`](crate::Service), [`request`](crate::request)) use them from here. This module
//! names no other module of the crate: it sits at the bottom of its import graph.

use abi_stable::StableAbi;

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

/// What kind of failure a [`SendError`](crate::SendError) is. It crosses the ABI as this enum; new kinds may come
/// with a new API version, so match with a `_` arm.
///
/// ```
/// use hivemind::SendErrorKind;
///
/// fn worth_retrying(kind: SendErrorKind) -> bool {
///     match kind {
///         SendErrorKind::Stopping | SendErrorKind::NotStarted => false,
///         SendErrorKind::TooLarge | SendErrorKind::NotSerializable => false,
///         _ => true,
///     }
/// }
/// assert!(!worth_retrying(SendErrorKind::TooLarge));
/// ```
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
