//! The [`Node`] trait and the registries its hooks fill in.

use crate::abi::HostBox;
use crate::outcome::Flow;
use crate::service::Service;
use crate::store::Store;
use crate::{Message, Requests, Result};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// A node: the unit the hive loads, runs, reloads and unloads.
///
/// Implement it on your node's type and export it with [`export_node!`](crate::export_node).
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Doorbell {
///     rings: u64,
/// }
///
/// impl Node for Doorbell {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Doorbell { rings: 0 })
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_subscription("button", |node: &mut Self, _: &Message| {
///             node.rings += 1;
///             Ok(())
///         });
///     }
///
///     fn save_state(&mut self) -> Result<Option<Value>> {
///         Ok(Some(json!(self.rings)))
///     }
///
///     fn restore_state(&mut self, state: Value) -> Result<()> {
///         self.rings = state.as_u64().ok_or("the state is a count")?;
///         Ok(())
///     }
/// }
/// hivemind::export_node!(Doorbell);
///
/// let mut node = TestNode::<Doorbell>::new().unwrap();
/// node.deliver("button", "press").unwrap();
/// let mut next = node.reload().unwrap(); // as `hm dev` does when the code changes
/// assert_eq!(next.save_state().unwrap(), Some(json!(1)));
/// ```
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

    /// Registers the requests the node answers with [`Requests::add_request`], and takes its
    /// [`Asker`](crate::Asker) with [`Requests::asker`] if it asks from its delivery thread.
    /// Called once, after `subscriptions`.
    fn requests(&mut self, hive: &mut Requests<Self>) {
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

    /// The SQL migrations of the node's [store](crate::store), oldest first: each runs once,
    /// in order, and the store remembers how many it has run. The host applies the new ones
    /// in one transaction before [`Node::new`] (at start and at each hot reload). A failing
    /// one is rolled back and fails the build (a reload then keeps the running instance); a
    /// library that lists fewer migrations than the store has run is refused. Only ever add
    /// at the end; never edit or remove one that has run. The default declares none.
    ///
    /// ```
    /// use hivemind::prelude::*;
    ///
    /// pub struct Ledger;
    ///
    /// impl Node for Ledger {
    ///     fn new(context: &Context) -> Result<Self> {
    ///         let _rows = context.store(); // the tables exist here already
    ///         Ok(Ledger)
    ///     }
    ///
    ///     fn migrations() -> Vec<&'static str> {
    ///         vec![
    ///             "CREATE TABLE entries (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)",
    ///             "ALTER TABLE entries ADD COLUMN note TEXT",
    ///         ]
    ///     }
    /// }
    /// hivemind::export_node!(Ledger);
    /// assert_eq!(Ledger::migrations().len(), 2);
    /// ```
    fn migrations() -> Vec<&'static str> {
        Vec::new()
    }
}

/// What a node is built from: its name and its settings.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Named {
///     label: String,
/// }
///
/// impl Node for Named {
///     fn new(context: &Context) -> Result<Self> {
///         let label = context.settings()["label"].as_str().unwrap_or(context.name());
///         Ok(Named { label: label.to_owned() })
///     }
///
///     fn save_state(&mut self) -> Result<Option<Value>> {
///         Ok(Some(json!(self.label)))
///     }
/// }
/// hivemind::export_node!(Named);
///
/// let mut plain = TestNode::<Named>::with_settings("porch", json!({ "enabled": true })).unwrap();
/// assert_eq!(plain.save_state().unwrap(), Some(json!("porch")));
/// let mut labelled = TestNode::<Named>::with_json(r#"{"label": "front door"}"#).unwrap();
/// assert_eq!(labelled.save_state().unwrap(), Some(json!("front door")));
/// ```
pub struct Context {
    name: String,
    settings: Value,
    store: Store,
}

impl Context {
    pub(crate) fn new(name: String, settings: Value, host: HostBox) -> Self {
        Self {
            name,
            settings,
            store: Store::new(host),
        }
    }

    /// The node's own [store](crate::store); keep it in the node to use it from callbacks.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The node's name in the hive (its key under `[nodes]` in `config/hive.toml`).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Hello;
    ///
    /// impl Node for Hello {
    ///     fn new(context: &Context) -> Result<Self> {
    ///         info!("I am {}", context.name());
    ///         Ok(Hello)
    ///     }
    /// }
    /// hivemind::export_node!(Hello);
    ///
    /// let node = TestNode::<Hello>::with_settings("hall-light", json!({})).unwrap();
    /// assert_eq!(node.logs()[0].message, "I am hall-light");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's table from `config/hive.toml` as JSON, `enabled` included.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Dimmer {
    ///     level: u64,
    /// }
    ///
    /// impl Node for Dimmer {
    ///     fn new(context: &Context) -> Result<Self> {
    ///         let level = context.settings()["level"].as_u64().unwrap_or(50);
    ///         Ok(Dimmer { level })
    ///     }
    ///
    ///     fn save_state(&mut self) -> Result<Option<Value>> {
    ///         Ok(Some(json!(self.level)))
    ///     }
    /// }
    /// hivemind::export_node!(Dimmer);
    ///
    /// let mut node = TestNode::<Dimmer>::with_json(r#"{"level": 80}"#).unwrap();
    /// assert_eq!(node.save_state().unwrap(), Some(json!(80)));
    /// ```
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// The node's settings decoded into your own type; unknown keys are up to your type.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// #[derive(Deserialize)]
    /// struct Settings {
    ///     #[serde(default)]
    ///     loud: bool,
    /// }
    ///
    /// pub struct Shouter {
    ///     loud: bool,
    /// }
    ///
    /// impl Node for Shouter {
    ///     fn new(context: &Context) -> Result<Self> {
    ///         let settings: Settings = context.settings_as()?;
    ///         Ok(Shouter { loud: settings.loud })
    ///     }
    /// }
    /// hivemind::export_node!(Shouter);
    ///
    /// // A setting of the wrong type is the constructor's error, naming the problem.
    /// let error = TestNode::<Shouter>::with_json(r#"{"loud": "yes"}"#).unwrap_err();
    /// assert!(error.message().contains("invalid type"), "{error}");
    /// ```
    pub fn settings_as<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(T::deserialize(&self.settings)?)
    }
}

pub(crate) type ServiceFn = Box<dyn FnMut(&Service) -> Result<Flow> + Send>;

/// One registered service or publisher.
pub(crate) struct ServiceEntry {
    pub(crate) service: Service,
    /// `None`: a publisher, which has no loop.
    pub(crate) run: Option<ServiceFn>,
    /// The JSON Schema (as JSON text) of the declared payload type, if one was declared.
    pub(crate) schema: Option<String>,
}

/// The JSON Schema of `T`, as JSON text.
pub(crate) fn schema_text<T: JsonSchema + ?Sized>() -> String {
    serde_json::to_string(&schemars::SchemaGenerator::default().into_root_schema_for::<T>())
        .unwrap_or_else(|_| "true".to_owned())
}

/// Where a node registers its services and publishers: [`Node::services`] gets it once.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Station {
///     alerts: Option<Service>,
/// }
///
/// impl Node for Station {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Station { alerts: None })
///     }
///
///     fn services(&mut self, hive: &mut Services) {
///         hive.add_service("weather", |service: &Service| {
///             service.send("sunny")?;
///             Ok(Flow::Stop)
///         });
///         self.alerts = Some(hive.add_publisher("alerts"));
///     }
/// }
/// hivemind::export_node!(Station);
///
/// let node = TestNode::<Station>::new().unwrap();
/// assert_eq!(node.services(), ["weather", "alerts"]);
/// assert_eq!(node.publishers(), ["alerts"]);
/// ```
pub struct Services {
    host: HostBox,
    /// In registration order (index = service id).
    pub(crate) registered: Vec<ServiceEntry>,
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
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    /// use std::time::Duration;
    ///
    /// pub struct Countdown;
    ///
    /// impl Node for Countdown {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Countdown)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         let mut left = 2;
    ///         hive.add_service("countdown", move |service: &Service| {
    ///             service.send(&left)?;
    ///             left -= 1;
    ///             service.sleep_for(Duration::from_secs(1));
    ///             Ok(if left == 0 { Flow::Stop } else { Flow::Continue })
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Countdown);
    ///
    /// let mut node = TestNode::<Countdown>::new().unwrap();
    /// assert_eq!(node.run_service("countdown").unwrap(), Flow::Continue);
    /// assert_eq!(node.run_service("countdown").unwrap(), Flow::Stop);
    /// assert_eq!(node.sent_on("countdown"), [json!(2), json!(1)]);
    /// assert_eq!(node.sleeps(), [Duration::from_secs(1); 2]);
    /// ```
    pub fn add_service<F>(&mut self, name: impl Into<String>, callback: F) -> Service
    where
        F: FnMut(&Service) -> Result<Flow> + Send + 'static,
    {
        self.register(name.into(), Some(Box::new(callback)), None)
    }

    /// Like [`add_service`](Self::add_service), declaring that the service sends payloads of
    /// type `T`: the host learns `T`'s JSON Schema (derive it with `#[derive(JsonSchema)]`).
    ///
    /// The host serves the schema (`GET /api/topics/{service}/schema`), builds the page's
    /// publish form from it, checks what is published on this service through the HTTP API or
    /// `hm send` against it (`[messages] check_schemas`), and warns once when a subscriber's
    /// declared type cannot accept it. Messages between nodes are not checked (that would slow
    /// every message down): what the node sends is up to its code, so send `T`.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize, JsonSchema)]
    /// struct Reading {
    ///     celsius: f64,
    /// }
    ///
    /// pub struct Sensor;
    ///
    /// impl Node for Sensor {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Sensor)
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         hive.add_typed_service::<Reading, _>("sensor-kitchen", |service: &Service| {
    ///             service.send(&Reading { celsius: 21.5 })?;
    ///             service.sleep_for(Duration::from_secs(1));
    ///             Ok(Flow::Continue)
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Sensor);
    ///
    /// let node = TestNode::<Sensor>::new().unwrap();
    /// let schema = node.service_schema("sensor-kitchen").unwrap();
    /// assert_eq!(schema["properties"]["celsius"]["type"], "number");
    /// ```
    pub fn add_typed_service<T, F>(&mut self, name: impl Into<String>, callback: F) -> Service
    where
        T: JsonSchema + ?Sized,
        F: FnMut(&Service) -> Result<Flow> + Send + 'static,
    {
        self.register(
            name.into(),
            Some(Box::new(callback)),
            Some(schema_text::<T>()),
        )
    }

    /// Adds a publisher named `name`: a service with no loop of its own. Keep the returned
    /// [`Service`] in the node and send from any callback (a subscription, a timer, another
    /// service). The page and the API show it as a publisher.
    ///
    /// ```
    /// use hivemind::prelude::*;
    ///
    /// struct Echo {
    ///     out: Option<Service>,
    /// }
    ///
    /// impl Node for Echo {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Echo { out: None })
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         self.out = Some(hive.add_publisher("echo"));
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("shout", |node: &mut Self, message: &Message| {
    ///             if let Some(out) = &node.out {
    ///                 out.send(message.payload())?;
    ///             }
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// # hivemind::export_node!(Echo);
    /// ```
    pub fn add_publisher(&mut self, name: impl Into<String>) -> Service {
        self.register(name.into(), None, None)
    }

    /// Like [`add_publisher`](Self::add_publisher), declaring that it sends payloads of type
    /// `T`, as [`add_typed_service`](Self::add_typed_service) does for a service.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// #[derive(Serialize, JsonSchema)]
    /// struct Report {
    ///     seen: u64,
    ///     note: Option<String>,
    /// }
    ///
    /// pub struct Reporter {
    ///     out: Option<Service>,
    /// }
    ///
    /// impl Node for Reporter {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Reporter { out: None })
    ///     }
    ///
    ///     fn services(&mut self, hive: &mut Services) {
    ///         self.out = Some(hive.add_typed_publisher::<Report>("reports"));
    ///     }
    /// }
    /// hivemind::export_node!(Reporter);
    ///
    /// let node = TestNode::<Reporter>::new().unwrap();
    /// assert_eq!(node.publishers(), ["reports"]);
    /// // `note` may be left out (it is an `Option`); `seen` may not.
    /// assert_eq!(node.service_schema("reports").unwrap()["required"], json!(["seen"]));
    /// ```
    pub fn add_typed_publisher<T: JsonSchema + ?Sized>(
        &mut self,
        name: impl Into<String>,
    ) -> Service {
        self.register(name.into(), None, Some(schema_text::<T>()))
    }

    fn register(
        &mut self,
        name: String,
        run: Option<ServiceFn>,
        schema: Option<String>,
    ) -> Service {
        let id = u32::try_from(self.registered.len()).expect("fewer than 2^32 services");
        let service = Service::new(self.host.clone(), id, name);
        self.registered.push(ServiceEntry {
            service: service.clone(),
            run,
            schema,
        });
        service
    }
}

pub(crate) type TimerFn<N> = Box<dyn FnMut(&mut N) -> Result<()> + Send>;

/// The shortest timer period (see [`Subscriptions::add_timer`]).
const MIN_TIMER_PERIOD: Duration = Duration::from_nanos(crate::abi::MIN_TIMER_PERIOD_NANOS);

pub(crate) type SubscriptionFn<N> = Box<dyn FnMut(&mut N, &Message<'_>) -> Result<()> + Send>;

/// Where a node registers what runs on its own delivery thread: subscriptions and timers.
/// [`Node::subscriptions`] gets it once.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
/// use std::time::Duration;
///
/// pub struct Meter {
///     total: f64,
/// }
///
/// impl Node for Meter {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Meter { total: 0.0 })
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_typed_subscription("usage-*", |node: &mut Self, kwh: f64, _: &Message| {
///             node.total += kwh;
///             Ok(())
///         });
///         hive.add_timer("report", Duration::from_secs(60), |node: &mut Self| {
///             info!("{} kWh", node.total);
///             Ok(())
///         });
///     }
/// }
/// hivemind::export_node!(Meter);
///
/// let mut node = TestNode::<Meter>::new().unwrap();
/// node.deliver("usage-oven", &1.5).unwrap();
/// node.tick("report").unwrap();
/// assert_eq!(node.logs()[0].message, "1.5 kWh");
/// ```
pub struct Subscriptions<N> {
    /// `(pattern, callback, schema of the accepted type as JSON text)`, by subscription id.
    pub(crate) registered: Vec<(String, SubscriptionFn<N>, Option<String>)>,
    pub(crate) timers: Vec<(String, Duration, TimerFn<N>)>,
}

impl<N: Node> Subscriptions<N> {
    pub(crate) fn new() -> Self {
        Self {
            registered: Vec::new(),
            timers: Vec::new(),
        }
    }

    /// Calls `callback` with the node itself every `every`, on the node's delivery thread:
    /// in order with its subscriptions (never at the same time as one), so it may change the
    /// node's state with no lock.
    ///
    /// The first tick comes `every` after the node starts. A tick that comes late (a long
    /// callback before it) runs once, and the next one is `every` after it: ticks do not pile
    /// up. Timers pause while the node is swapped for new code (the new instance's timers start
    /// afresh) and stop with the node. Periods below 1 ms are raised to 1 ms. An `Err` or a
    /// panic is logged to the node's log; the timer keeps ticking.
    ///
    /// Use a timer for periodic work on the node's state; use a service
    /// ([`Services::add_service`]) for work that must own a thread (blocking reads, long waits).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use std::time::Duration;
    ///
    /// struct Counter {
    ///     seen: u64,
    /// }
    ///
    /// impl Node for Counter {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Counter { seen: 0 })
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |node: &mut Self, _message: &Message| {
    ///             node.seen += 1;
    ///             Ok(())
    ///         });
    ///         hive.add_timer("status", Duration::from_secs(10), |node: &mut Self| {
    ///             info!("{} messages so far", node.seen);
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// # hivemind::export_node!(Counter);
    /// ```
    pub fn add_timer<F>(&mut self, name: impl Into<String>, every: Duration, callback: F)
    where
        F: FnMut(&mut N) -> Result<()> + Send + 'static,
    {
        self.timers
            .push((name.into(), every.max(MIN_TIMER_PERIOD), Box::new(callback)));
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
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Listener {
    ///     heard: Vec<String>,
    /// }
    ///
    /// impl Node for Listener {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Listener { heard: Vec::new() })
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("news-[a-z]*", |node: &mut Self, message: &Message| {
    ///             node.heard.push(message.service().to_owned());
    ///             Ok(())
    ///         });
    ///     }
    ///
    ///     fn save_state(&mut self) -> Result<Option<Value>> {
    ///         Ok(Some(json!(self.heard)))
    ///     }
    /// }
    /// hivemind::export_node!(Listener);
    ///
    /// let mut node = TestNode::<Listener>::new().unwrap();
    /// assert_eq!(node.deliver("news-sport", "goal").unwrap(), 1);
    /// assert_eq!(node.deliver("news-1", "no match").unwrap(), 0);
    /// assert_eq!(node.save_state().unwrap(), Some(json!(["news-sport"])));
    /// ```
    pub fn add_subscription<F>(&mut self, pattern: impl Into<String>, callback: F)
    where
        F: FnMut(&mut N, &Message<'_>) -> Result<()> + Send + 'static,
    {
        self.registered
            .push((pattern.into(), Box::new(callback), None));
    }

    /// Like [`add_subscription`](Self::add_subscription), with the payload decoded into `T`
    /// first. A payload that does not decode never reaches `callback`: it is counted as a
    /// failure of this subscription and logged to the node's log with the service and the
    /// reason, and the subscription keeps receiving.
    ///
    /// `T` is declared to the host with its JSON Schema (`#[derive(JsonSchema)]`; plain types
    /// such as `f64`, `String` or `serde_json::Value` have one already): when a service whose
    /// name matches `pattern` declares a payload type this one cannot accept (another JSON
    /// type, or a property this one requires that the service may leave out), the host warns
    /// once, naming both nodes.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// #[derive(Deserialize, JsonSchema)]
    /// struct Reading {
    ///     celsius: f64,
    /// }
    ///
    /// struct Thermostat {
    ///     last: f64,
    /// }
    ///
    /// impl Node for Thermostat {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Thermostat { last: 0.0 })
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_typed_subscription("sensor-*", |node: &mut Self, reading: Reading, _: &Message| {
    ///             node.last = reading.celsius;
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Thermostat);
    ///
    /// let mut node = TestNode::<Thermostat>::new().unwrap();
    /// node.deliver("sensor-hall", &json!({ "celsius": 19.0 })).unwrap();
    /// assert!(node.deliver("sensor-hall", "warm").is_err());
    /// assert_eq!(node.subscription_schema("sensor-*").unwrap()["required"], json!(["celsius"]));
    /// ```
    pub fn add_typed_subscription<T, F>(&mut self, pattern: impl Into<String>, mut callback: F)
    where
        T: DeserializeOwned + JsonSchema + 'static,
        F: FnMut(&mut N, T, &Message<'_>) -> Result<()> + Send + 'static,
    {
        let decode = move |node: &mut N, message: &Message<'_>| {
            let payload = message.decode::<T>()?;
            callback(node, payload, message)
        };
        self.registered
            .push((pattern.into(), Box::new(decode), Some(schema_text::<T>())));
    }
}
