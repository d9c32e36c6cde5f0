//! Test a node with `cargo test`: run it in-process, with no host.
//!
//! [`TestNode`] builds a node through the very root module its library exports to `hm` (what
//! [`export_node!`](crate::export_node) makes) and drives it through the same ABI objects the
//! host drives, with a recording host in place of `hm`. So what a test sees is what a hive sees:
//!
//! - a callback's `Err` or panic comes back as a [`TestError`] saying which, with the same
//!   message `hm` would log, and the panic's line (`panicked at src/lib.rs:12:5: ...`) is in
//!   the node's [`logs`](TestNode::logs) as it would be in its log file;
//! - what the node sends is refused for the same reasons as in a hive
//!   ([`SendErrorKind`](crate::SendErrorKind)): too large for `max_payload_bytes` (1 MiB
//!   unless [set](TestNode::set_max_payload_bytes)), sent before the node started, or after it
//!   was [stopped](TestNode::stop);
//! - messages reach the subscriptions whose patterns match, in registration order, with the
//!   host's glob rules; an invalid pattern fails the build as it fails a node's start;
//! - a [`reload`](TestNode::reload) hands the state over as `hm dev` does when new code is
//!   swapped in: `save_state` on the old instance, `restore_state` on the new one, as JSON text.
//!
//! - requests: [`request`](TestNode::request) calls the node's request handlers as a hive's
//!   asker would; what the node itself asks is answered from canned replies
//!   ([`reply_to`](TestNode::reply_to), [`fail_to`](TestNode::fail_to)), or fails with
//!   [`NoResponder`](crate::RequestErrorKind::NoResponder) as in a hive where nobody answers, and a
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

// The parts: `node` builds a TestNode and says what its node registered; `drive` is what a
// test does to it (messages, service iterations, timer ticks, requests) and reads back;
// `host` is the recording host in place of `hm`; `records` the plain records it keeps;
// `error` a failed call's error. The example node of the doctests is `crate::fixture`.

mod drive;
mod error;
mod host;
mod node;
mod records;
mod store;

pub use error::{TestError, TestErrorKind};
pub use host::{DEFAULT_MAX_PAYLOAD_BYTES, TEST_SENDER};
pub use node::TestNode;
pub use records::{Asked, LogLine, Sent};

/// A recording host with nothing recorded yet, for the crate's own tests of the glue.
#[cfg(test)]
pub(crate) use host::recording_host;
