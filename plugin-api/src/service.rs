//! Services: the handle a service callback sends through, and what its callback returns.

use crate::abi::HostBox;
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
            reason: format!("the payload is not serialisable as JSON: {e}"),
        })?;
        self.host
            .send(self.id, RStr::from_str(&json))
            .into_result()
            .map_err(|reason| SendError {
                reason: reason.into_string(),
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

/// Why [`Service::send`] did not accept a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    reason: String,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SendError {}

/// What a service callback tells the host after one iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Run the callback again (after it returns; sleep inside it to pace the loop).
    Continue,
    /// This service is done; the node's other services and subscriptions keep running.
    Stop,
}
