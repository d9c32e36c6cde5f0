//! # hivemind: write nodes for an `hm` hive
//!
//! A **node** is a Rust library that the `hm` host loads into a running hive. It offers
//! **services** (loops, each on its own thread, that send JSON payloads under the service's name)
//! and **subscriptions** (callbacks on a glob pattern over service names). The host's
//! **controller** routes every message from a service to each matching subscription.
//!
//! ```no_run
//! use hivemind::prelude::*;
//! use std::time::Duration;
//!
//! pub struct BatSignal;
//!
//! impl Node for BatSignal {
//!     fn new(_context: &Context) -> Result<Self> {
//!         Ok(BatSignal)
//!     }
//!
//!     fn services(&mut self, hive: &mut Services) {
//!         hive.add_service("bat-signal-main", |service: &Service| {
//!             service.send("Batman! We need help!")?;
//!             service.sleep_for(Duration::from_secs(5));
//!             Ok(Flow::Continue)
//!         });
//!     }
//! }
//!
//! hivemind::export_node!(BatSignal);
//! ```
//!
//! ## The contract
//!
//! - [`Node::new`] builds the node from its settings (its `[nodes.<name>]` table in
//!   `config/hive.toml`). Then [`Node::services`] and [`Node::subscriptions`] register what it
//!   offers. Registration happens once, before any message flows.
//! - A service callback runs in a loop on its own thread until it returns [`Flow::Stop`], returns
//!   an error, panics, or the node stops. Use [`Service::sleep_for`], never `std::thread::sleep`:
//!   it wakes at once when the node stops. A publisher ([`Services::add_publisher`]) is a
//!   service with no loop: the node sends on it from its other callbacks.
//! - Subscription callbacks get `&mut` access to the node and a [`Message`]; so do timers
//!   ([`Subscriptions::add_timer`]). They run one at a time on a thread the host owns for this
//!   node, so node state needs no locks. Messages of one service arrive in the order they were
//!   sent. [`Subscriptions::add_typed_subscription`] decodes the payload into your type first.
//! - A panic in any callback is caught inside the library, logged to the node's log and counted
//!   by the host; it never takes the hive down.
//! - Log with [`info!`], [`warn!`], [`error!`] and [`debug!`]: the lines go to the node's own log
//!   file. `println!` goes to the terminal.
//! - When the host swaps in a new build of the node (or restarts it with new settings), it asks
//!   the old instance for [`Node::save_state`] and hands that to the new one's
//!   [`Node::restore_state`] before the new one receives anything. Messages sent to the node
//!   meanwhile wait in its queue and are delivered, in order, to the new instance.
//!
//! - A node answers named **requests** ([`Requests::add_request`], in [`Node::requests`]) on
//!   its delivery thread, in order with its subscriptions, and asks other nodes: blocking from
//!   a service ([`Service::request`]), or with an [`Asker`] from anywhere, the reply then
//!   arriving later as a callback with `&mut self`. Every request ends in exactly one reply or
//!   [`RequestError`], at its timeout at the latest. See [`request`].
//! - [`testing`] runs a node in a plain `cargo test`, through the same glue the host drives.
//! - Payload and settings types derive [`Serialize`] and [`Deserialize`] (re-exported from
//!   [`serde`], and in the prelude). serde's derives name the `serde` crate, so a node crate
//!   lists `serde` in its `Cargo.toml` (the crate `hm create_node` makes does), or puts
//!   `#[serde(crate = "hivemind::serde")]` on each derived type.
//! - A payload type that also derives [`JsonSchema`] (re-exported from [`schemars`]) can be
//!   declared: [`Services::add_typed_service`] and [`Services::add_typed_publisher`] say what a
//!   service sends, [`Subscriptions::add_typed_subscription`] what a subscription accepts. The
//!   host then serves the schema (`GET /api/topics/{service}/schema`), builds the page's
//!   publish form from it, checks what is published from outside against it, and warns when a
//!   subscriber cannot accept what a publisher declares. The derive names the `schemars`
//!   crate as serde's does (`schemars = "1"` in `Cargo.toml`, or
//!   `#[schemars(crate = "hivemind::schemars")]`).
//!
//! The ABI between node and host lives in [`abi`]; node code never needs it. Its types change
//! only with the crate's minor version (before 1.0), and `hm` loads only libraries built against
//! its own: after updating `hm`, rebuild your nodes (`hm dev` does).
//!
//! The guide "Writing nodes" (`docs/NODES.md` in the repository) walks through all of it.

#![deny(missing_docs)]

pub mod abi;
mod current;
#[doc(hidden)]
pub mod fixture;
mod glue;
#[cfg(test)]
mod glue_tests;
mod log;
mod message;
pub mod names;
mod node;
mod outcome;
mod pattern;
pub mod request;
mod service;
pub mod store;
pub mod testing;

/// The guide's snippets, compiled and run as doctests in this repository (`cargo test
/// --workspace`, or `cargo test -p hivemind --features guide --doc`); a hive's vendored copy
/// has no guide and never enables the feature.
#[cfg(all(doctest, feature = "guide"))]
#[doc = include_str!("../../docs/NODES.md")]
mod nodes_guide {}

pub use log::Level;
pub use message::{Message, PayloadError};
pub use node::{Context, Node, Services, Subscriptions};
pub use outcome::{Flow, SendErrorKind};
pub use request::{
    AllReplies, Asker, DecodeError, Reply, Request, RequestError, RequestErrorKind, Requests,
};
pub use service::{SendError, Service};
pub use store::{Executed, Store, StoreError, StoreErrorKind};

/// Any error a callback or constructor may return; `?` converts most errors into it.
///
/// ```
/// fn parse(text: &str) -> Result<u32, hivemind::Error> {
///     if text.is_empty() {
///         return Err("empty".into()); // from a string
///     }
///     Ok(text.parse()?) // from any std::error::Error
/// }
/// assert_eq!(parse("42").unwrap(), 42);
/// assert_eq!(parse("").unwrap_err().to_string(), "empty");
/// ```
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
///
/// ```
/// fn half(n: u32) -> hivemind::Result<u32> {
///     if n % 2 == 1 {
///         return Err(format!("{n} is odd").into());
///     }
///     Ok(n / 2)
/// }
/// assert_eq!(half(4).unwrap(), 2);
/// assert!(half(3).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The JSON library payloads and settings go through, re-exported so that node crates need
/// no dependency of their own for it.
///
/// ```
/// let value = hivemind::serde_json::json!({ "level": 3 });
/// assert_eq!(value.to_string(), r#"{"level":3}"#);
/// ```
pub use serde_json;

/// The serialisation library payloads, settings and state go through, re-exported so that
/// node code can name it (`#[serde(crate = "hivemind::serde")]`) without a dependency of its own.
///
/// ```
/// use hivemind::Deserialize;
///
/// #[derive(Deserialize)]
/// #[serde(crate = "hivemind::serde")]
/// struct Settings {
///     loud: bool,
/// }
///
/// let settings: Settings = hivemind::serde_json::from_str(r#"{"loud": true}"#).unwrap();
/// assert!(settings.loud);
/// ```
pub use serde;

/// Derives for payload, settings and state types (serde's own).
///
/// ```
/// use hivemind::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Reading {
///     celsius: f64,
/// }
///
/// let text = hivemind::serde_json::to_string(&Reading { celsius: 20.5 }).unwrap();
/// assert_eq!(text, r#"{"celsius":20.5}"#);
/// ```
pub use serde::{Deserialize, Serialize};

/// The JSON Schema library that declared payload types go through
/// ([`Services::add_typed_service`], [`Subscriptions::add_typed_subscription`]), re-exported so
/// that node code can name it (`#[schemars(crate = "hivemind::schemars")]`) without a
/// dependency of its own.
///
/// ```
/// use hivemind::JsonSchema;
///
/// #[derive(JsonSchema)]
/// #[schemars(crate = "hivemind::schemars")]
/// struct Level(u8);
///
/// let schema = hivemind::schemars::schema_for!(Level);
/// assert_eq!(schema.as_value()["type"], "integer");
/// ```
pub use schemars;

/// The derive (and trait) for declared payload types: `#[derive(JsonSchema)]` next to
/// `Serialize`/`Deserialize` gives the host the type's JSON Schema.
///
/// ```
/// use hivemind::prelude::*;
///
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// struct Reading {
///     celsius: f64,
/// }
///
/// let schema = hivemind::schemars::schema_for!(Reading);
/// assert_eq!(schema.as_value()["required"], json!(["celsius"]));
/// ```
pub use schemars::JsonSchema;

/// Everything a node needs, in one import: `use hivemind::prelude::*;`.
///
/// ```
/// use hivemind::prelude::*;
///
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// struct Ping {
///     n: u32,
/// }
///
/// let value: Value = json!({ "n": 1 });
/// let ping: Ping = serde_json::from_value(value).unwrap();
/// assert_eq!(ping.n, 1);
/// ```
pub mod prelude {
    pub use crate::{
        AllReplies, Asker, Context, Error, Flow, Message, Node, Reply, Request, RequestError,
        RequestErrorKind, Requests, Result, SendError, SendErrorKind, Service, Services, Store,
        StoreError, StoreErrorKind, Subscriptions, debug, error, info, warn,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// Exports a [`Node`] type as this library's node. Put it once in the node crate's `lib.rs`.
///
/// ```
/// use hivemind::prelude::*;
///
/// pub struct BatSignal;
///
/// impl Node for BatSignal {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(BatSignal)
///     }
/// }
///
/// hivemind::export_node!(BatSignal);
/// ```
#[macro_export]
macro_rules! export_node {
    ($node:ty) => {
        impl $crate::__private::NodeExport for $node {
            const CRATE_NAME: &'static str = env!("CARGO_PKG_NAME");
            const TYPE_NAME: &'static str = stringify!($node);
        }

        /// The root-module header that `hm` looks up when it loads this library.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader =
            $crate::__private::lib_header::<$node>();
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::glue::{NodeExport, lib_header};
    pub use crate::log::write as write_log;
    pub use abi_stable::library::LibHeader;
}
