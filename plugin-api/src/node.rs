//! The [`Node`] trait and the registries its hooks fill in.

use crate::abi::HostBox;
use crate::service::{Flow, Service};
use crate::{Message, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A node: the unit the hive loads, runs, reloads and unloads.
///
/// Implement it on your node's type and export it with [`export_node!`](crate::export_node).
pub trait Node: Send + Sized + 'static {
    /// Builds the node. `context` holds its name and its settings from `config/hive.toml`.
    /// An error here is reported by the host and the node is not started.
    fn new(context: &Context) -> Result<Self>;

    /// Registers the node's services with [`Services::add_service`]. Called once, after `new`.
    fn services(&mut self, hive: &mut Services) {
        let _ = hive;
    }

    /// Registers the node's subscriptions with [`Subscriptions::add_subscription`]. Called once,
    /// after `services`.
    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        let _ = hive;
    }

    /// Called on the running instance when the node is about to be replaced (new code, or new
    /// settings), after its services have stopped: return the state the next instance should
    /// start from. The default keeps nothing.
    fn save_state(&mut self) -> Result<Option<Value>> {
        Ok(None)
    }

    /// Called on the new instance with what the previous one saved, after `new`, `services` and
    /// `subscriptions` and before any message or service runs. An error is logged and the node
    /// runs on with the state `new` gave it.
    fn restore_state(&mut self, state: Value) -> Result<()> {
        let _ = state;
        Ok(())
    }
}

/// What a node is built from: its name and its settings.
pub struct Context {
    name: String,
    settings: Value,
}

impl Context {
    pub(crate) fn new(name: String, settings: Value) -> Self {
        Self { name, settings }
    }

    /// The node's name in the hive (its key under `[nodes]` in `config/hive.toml`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's table from `config/hive.toml` as JSON, `enabled` included.
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// The node's settings decoded into your own type; unknown keys are up to your type.
    pub fn settings_as<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(T::deserialize(&self.settings)?)
    }
}

pub(crate) type ServiceFn = Box<dyn FnMut(&Service) -> Result<Flow> + Send>;

/// Where a node registers its services.
pub struct Services {
    host: HostBox,
    pub(crate) registered: Vec<(Service, ServiceFn)>,
}

impl Services {
    pub(crate) fn new(host: HostBox) -> Self {
        Self {
            host,
            registered: Vec::new(),
        }
    }

    /// Adds a service named `name` whose `callback` runs in a loop on its own thread.
    ///
    /// The callback returns `Ok(Flow::Continue)` to run again or `Ok(Flow::Stop)` to end this
    /// service. An `Err` (use `?` freely) or a panic is logged to the node's log and the host
    /// restarts the service with backoff (100 ms, doubling to 30 s), or, with
    /// `on_service_failure = "stop"` in the node's table, leaves it stopped and shows its error.
    /// The node's other services and subscriptions keep running either way.
    ///
    /// The returned [`Service`] sends under this name from anywhere in the node, for example
    /// from a subscription callback.
    pub fn add_service<F>(&mut self, name: impl Into<String>, callback: F) -> Service
    where
        F: FnMut(&Service) -> Result<Flow> + Send + 'static,
    {
        let id = u32::try_from(self.registered.len()).expect("fewer than 2^32 services");
        let service = Service::new(self.host.clone(), id, name.into());
        self.registered.push((service.clone(), Box::new(callback)));
        service
    }
}

pub(crate) type SubscriptionFn<N> = Box<dyn FnMut(&mut N, &Message<'_>) -> Result<()> + Send>;

/// Where a node registers its subscriptions.
pub struct Subscriptions<N> {
    pub(crate) registered: Vec<(String, SubscriptionFn<N>)>,
}

impl<N: Node> Subscriptions<N> {
    pub(crate) fn new() -> Self {
        Self {
            registered: Vec::new(),
        }
    }

    /// Calls `callback` with every message sent on a service whose name matches `pattern`.
    ///
    /// Patterns are shell globs matched against the whole service name, case-sensitively:
    /// `*` matches any run of characters (`-` and `/` included), `?` one character, `[abc]` one of
    /// the listed characters, `[a-z]` one in the range, `[!abc]` one not listed. The host refuses
    /// an invalid pattern when the node starts.
    ///
    /// The callback gets the node itself and the message. An `Err` it returns (use `?` freely)
    /// is logged to the node's log and counted, and so is a panic; the subscription keeps
    /// receiving.
    pub fn add_subscription<F>(&mut self, pattern: impl Into<String>, callback: F)
    where
        F: FnMut(&mut N, &Message<'_>) -> Result<()> + Send + 'static,
    {
        self.registered.push((pattern.into(), Box::new(callback)));
    }
}
