//! Messages as subscription callbacks receive them.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::OnceCell;
use std::fmt;

/// One message delivered to a subscription: its payload and where it came from.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Audit {
///     seen: Vec<String>,
/// }
///
/// impl Node for Audit {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Audit { seen: Vec::new() })
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_subscription("door-*", |node: &mut Self, message: &Message| {
///             node.seen.push(format!("{} by {}: {}", message.service(), message.node(), message.json()));
///             Ok(())
///         });
///     }
///
///     fn save_state(&mut self) -> Result<Option<Value>> {
///         Ok(Some(json!(self.seen)))
///     }
/// }
/// hivemind::export_node!(Audit);
///
/// let mut node = TestNode::<Audit>::new().unwrap();
/// node.deliver_from("keypad", "door-front", "open").unwrap();
/// assert_eq!(node.save_state().unwrap(), Some(json!([r#"door-front by keypad: "open""#])));
/// ```
pub struct Message<'a> {
    service: &'a str,
    node: &'a str,
    host: &'a str,
    json: &'a str,
    parsed: OnceCell<Value>,
}

impl<'a> Message<'a> {
    pub(crate) fn new(service: &'a str, node: &'a str, host: &'a str, json: &'a str) -> Self {
        Self {
            service,
            node,
            host,
            json,
            parsed: OnceCell::new(),
        }
    }

    /// The name of the service that sent the message.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Log;
    ///
    /// impl Node for Log {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Log)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |_: &mut Self, message: &Message| {
    ///             info!("on {}", message.service());
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Log);
    ///
    /// let mut node = TestNode::<Log>::new().unwrap();
    /// node.deliver("weather", "rain").unwrap();
    /// assert_eq!(node.logs()[0].message, "on weather");
    /// ```
    pub fn service(&self) -> &str {
        self.service
    }

    /// The name of the node that sent the message (`api` when it was published through the
    /// host's HTTP API).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Log;
    ///
    /// impl Node for Log {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Log)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |_: &mut Self, message: &Message| {
    ///             info!("from {}", message.node());
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Log);
    ///
    /// let mut node = TestNode::<Log>::new().unwrap();
    /// node.deliver_from("station", "weather", "rain").unwrap();
    /// assert_eq!(node.logs()[0].message, "from station");
    /// ```
    pub fn node(&self) -> &str {
        self.node
    }

    /// The name of the host the message was sent on: this host's own name for a message from
    /// this process, another host's for one that came over the mesh (`[mesh]` in
    /// config/hive.toml).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Log;
    ///
    /// impl Node for Log {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Log)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |_: &mut Self, message: &Message| {
    ///             info!("via {}", message.host());
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Log);
    ///
    /// let mut node = TestNode::<Log>::new().unwrap();
    /// node.deliver("weather", "rain").unwrap();
    /// // A test's messages come from the host `test`.
    /// assert_eq!(node.logs()[0].message, "via test");
    /// ```
    pub fn host(&self) -> &str {
        self.host
    }

    /// The payload as JSON text, exactly as it travelled.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Log;
    ///
    /// impl Node for Log {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Log)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |_: &mut Self, message: &Message| {
    ///             info!("{}", message.json());
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Log);
    ///
    /// let mut node = TestNode::<Log>::new().unwrap();
    /// node.deliver_json("weather", r#"{"rain":true}"#).unwrap();
    /// assert_eq!(node.logs()[0].message, r#"{"rain":true}"#);
    /// ```
    pub fn json(&self) -> &str {
        self.json
    }

    /// The payload as a JSON value (parsed on first use, then kept).
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// pub struct Log;
    ///
    /// impl Node for Log {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Log)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("*", |_: &mut Self, message: &Message| {
    ///             let mm = message.payload()["mm"].as_f64().ok_or("no mm")?;
    ///             info!("{mm} mm");
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Log);
    ///
    /// let mut node = TestNode::<Log>::new().unwrap();
    /// node.deliver("rain", &json!({ "mm": 2.5 })).unwrap();
    /// assert_eq!(node.logs()[0].message, "2.5 mm");
    /// assert!(node.deliver("rain", "lots").is_err());
    /// ```
    pub fn payload(&self) -> &Value {
        // The host only carries valid JSON; `Null` covers a foreign sender that broke the rule.
        self.parsed
            .get_or_init(|| serde_json::from_str(self.json).unwrap_or(Value::Null))
    }

    /// The payload decoded into your own type.
    ///
    /// ```
    /// use hivemind::prelude::*;
    /// use hivemind::testing::TestNode;
    ///
    /// #[derive(Deserialize)]
    /// struct Alarm {
    ///     level: u8,
    /// }
    ///
    /// pub struct Siren;
    ///
    /// impl Node for Siren {
    ///     fn new(_context: &Context) -> Result<Self> {
    ///         Ok(Siren)
    ///     }
    ///
    ///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
    ///         hive.add_subscription("alarm", |_: &mut Self, message: &Message| {
    ///             let alarm: Alarm = message.decode()?;
    ///             info!("level {} from {}", alarm.level, message.node());
    ///             Ok(())
    ///         });
    ///     }
    /// }
    /// hivemind::export_node!(Siren);
    ///
    /// let mut node = TestNode::<Siren>::new().unwrap();
    /// node.deliver_from("panel", "alarm", &json!({ "level": 3 })).unwrap();
    /// assert_eq!(node.logs()[0].message, "level 3 from panel");
    /// let error = node.deliver("alarm", "loud").unwrap_err();
    /// assert!(error.message().contains("the payload from service `alarm` does not decode"));
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_str(self.json).map_err(|source| PayloadError {
            service: self.service.to_owned(),
            source,
        })
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("service", &self.service)
            .field("node", &self.node)
            .field("host", &self.host)
            .field("json", &self.json)
            .finish()
    }
}

/// A payload that did not decode into the requested type.
///
/// ```
/// use hivemind::prelude::*;
/// use hivemind::testing::TestNode;
///
/// pub struct Strict;
///
/// impl Node for Strict {
///     fn new(_context: &Context) -> Result<Self> {
///         Ok(Strict)
///     }
///
///     fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
///         hive.add_subscription("count", |_: &mut Self, message: &Message| {
///             match message.decode::<u32>() {
///                 Ok(n) => info!("count {n}"),
///                 Err(error) => warn!("{error}"), // names the service and the reason
///             }
///             Ok(())
///         });
///     }
/// }
/// hivemind::export_node!(Strict);
///
/// let mut node = TestNode::<Strict>::new().unwrap();
/// node.deliver("count", "seven").unwrap();
/// assert!(node.logs()[0].message.starts_with("the payload from service `count` does not decode"));
/// ```
#[derive(Debug)]
pub struct PayloadError {
    service: String,
    source: serde_json::Error,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the payload from service `{}` does not decode: {}",
            self.service, self.source
        )
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
