//! The plain records a test node keeps of what its node did: a message it sent ([`Sent`]), a
//! line it logged ([`LogLine`]), a request it asked ([`Asked`]). The recording host
//! (`super::host`) fills them in; [`TestNode`](super::TestNode)'s methods hand out copies.

use crate::Level;
use serde_json::Value;
use std::time::Duration;

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
