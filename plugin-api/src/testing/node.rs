//! The test node: [`TestNode`] builds a node through its library's exported root module, as
//! `hm` does, and says what it registered (services, publishers, subscriptions, timers,
//! requests, declared schemas); it stops, saves, restores and reloads it as a hive does. What
//! a test then does to the running node is in `super::drive`.

use super::error::TestError;
use super::host::{Recorder, TestHost};
use crate::abi::{
    DeclaredSchemas, HostBox, NodeBox, NodeInit, NodeParts, RequestDecl, ServiceBox, TimerDecl,
};
use crate::glue::{NodeExport, mark_under_test, root_module};
use crate::names::{Pattern, check_service_names};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RStr, RString};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// A node of type `N` running in the test's own thread, with a recording host.
///
/// `N` is a node type exported with [`export_node!`](crate::export_node): the test builds it
/// through that export, as `hm` does.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::with_json(r#"{"loud": true}"#).unwrap();
/// assert_eq!(node.deliver("in-a", "hi").unwrap(), 1);
/// assert_eq!(node.sent_on("out"), [json!("HI")]);
/// let mut next = node.reload().unwrap();
/// assert_eq!(next.save_state().unwrap(), Some(json!({ "seen": 1 })));
/// ```
pub struct TestNode<N: NodeExport> {
    pub(super) name: String,
    pub(super) settings: Value,
    pub(super) recorder: Arc<Recorder>,
    pub(super) node: NodeBox,
    /// `(name, runner)`; a publisher has no runner.
    pub(super) services: Vec<(String, Option<ServiceBox>)>,
    pub(super) subscriptions: Vec<Pattern>,
    pub(super) timers: Vec<TimerDecl>,
    /// What the node declared, as the host receives it.
    pub(super) schemas: DeclaredSchemas,
    pub(super) requests: Vec<RequestDecl>,
    pub(super) _node: PhantomData<fn() -> N>,
}

impl<N: NodeExport> TestNode<N> {
    /// Builds the node with no settings but `enabled = true`, named after its crate.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.name(), env!("CARGO_PKG_NAME"), "named after its crate");
    /// ```
    pub fn new() -> Result<Self, TestError> {
        Self::with_settings(N::CRATE_NAME, serde_json::json!({ "enabled": true }))
    }

    /// Builds the node with settings given as JSON text (an object), named after its crate.
    /// `enabled` is added as `true` when the object lacks it, as a hive runs only enabled nodes.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::with_json(r#"{"loud": true}"#).unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.sent_on("out"), [json!("HI")]);
    /// assert!(TestNode::<Echo>::with_json("[1]").is_err(), "settings are a table");
    /// ```
    pub fn with_json(settings: &str) -> Result<Self, TestError> {
        let settings: Value = serde_json::from_str(settings)
            .map_err(|e| TestError::usage(format!("the test's settings are not JSON: {e}")))?;
        Self::with_settings(N::CRATE_NAME, with_enabled(settings)?)
    }

    /// Builds the node with settings given as TOML text: the body of its `[nodes.NAME]` table
    /// in `config/hive.toml`, without the header. It reaches the node as JSON, converted as the
    /// host converts it. `enabled` is added as `true` when the text lacks it.
    ///
    /// Needs the crate's `toml` feature (`hivemind = { workspace = true, features = ["toml"] }`
    /// under `[dev-dependencies]`).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_toml("loud = true\nenabled = true").unwrap();
    /// assert_eq!(node.subscriptions(), ["in-*", "numbers"]);
    /// ```
    #[cfg(feature = "toml")]
    pub fn with_toml(settings: &str) -> Result<Self, TestError> {
        let table: toml::Table = settings
            .parse()
            .map_err(|e| TestError::usage(format!("the test's settings are not TOML: {e}")))?;
        let settings = serde_json::to_value(&table).map_err(|e| {
            TestError::usage(format!(
                "the test's settings cannot be handed over as JSON: {e}"
            ))
        })?;
        Self::with_settings(N::CRATE_NAME, with_enabled(settings)?)
    }

    /// Builds the node named `name` (its key under `[nodes]`) with exactly `settings`.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_settings("echo-1", json!({ "loud": false })).unwrap();
    /// assert_eq!(node.name(), "echo-1");
    /// ```
    pub fn with_settings(name: &str, settings: Value) -> Result<Self, TestError> {
        Self::build(name, settings, Arc::default())
    }

    /// The node's [store](crate::store), as its code sees it: what the node stored, for the
    /// test to check, or values put there before a delivery. It lives as long as the test
    /// node and its [reloads](Self::reload).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// node.store().put("greeting", "hi").unwrap();
    /// let next = node.reload().unwrap();
    /// assert_eq!(next.store().get::<String>("greeting").unwrap().as_deref(), Some("hi"));
    /// ```
    pub fn store(&self) -> crate::Store {
        crate::Store::new(HostBox::from_value(
            TestHost(self.recorder.clone()),
            TD_Opaque,
        ))
    }

    fn build(
        name: &str,
        settings: Value,
        store: Arc<super::store::MemoryStore>,
    ) -> Result<Self, TestError> {
        mark_under_test();
        let recorder = Arc::new(Recorder::new(store));
        let settings_json = settings.to_string();
        let host = HostBox::from_value(TestHost(recorder.clone()), TD_Opaque);
        let init = NodeInit {
            name: RStr::from_str(name),
            settings_json: RStr::from_str(&settings_json),
            host,
        };
        // The very function pointer `hm` calls after loading the library.
        let new_node = root_module::<N>().new_node();
        let NodeParts {
            node,
            services,
            subscriptions,
            timers,
            schemas,
            requests,
        } = new_node(init).into_result().map_err(|e| {
            TestError::from_callback(&format!("the constructor of node `{name}`"), &e)
        })?;
        let subscriptions = subscriptions
            .into_iter()
            .map(|pattern| {
                Pattern::new(pattern.as_str())
                    .map_err(|e| TestError::usage(format!("node `{name}`: {e}")))
            })
            .collect::<Result<Vec<_>, TestError>>()?;
        let services: Vec<(String, Option<ServiceBox>)> = services
            .into_iter()
            .map(|decl| (decl.name.into_string(), decl.runner.into_option()))
            .collect();
        check_service_names(name, services.iter().map(|(service, _)| service.as_str()))
            .map_err(|e| TestError::usage(e.to_string()))?;
        *recorder
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            services.iter().map(|(name, _)| name.clone()).collect();
        recorder.started.store(true, Ordering::Relaxed);
        Ok(Self {
            name: name.to_owned(),
            settings,
            recorder,
            node,
            services,
            subscriptions,
            timers: timers.into_iter().collect(),
            schemas,
            requests: requests.into_iter().collect(),
            _node: PhantomData,
        })
    }

    /// The JSON Schema of the payload type the service (or publisher) `name` declared
    /// ([`Services::add_typed_service`](crate::Services::add_typed_service)), as the host gets
    /// it; `None` for an unknown name or a service that declared none.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.service_schema("out").unwrap()["type"], "string");
    /// assert_eq!(node.service_schema("count"), None, "an untyped service");
    /// ```
    pub fn service_schema(&self, name: &str) -> Option<Value> {
        let index = self.services.iter().position(|(n, _)| n == name)?;
        declared(self.schemas.services.get(index)?)
    }

    /// The JSON Schema of the payload type the subscription on `pattern` accepts
    /// ([`Subscriptions::add_typed_subscription`](crate::Subscriptions::add_typed_subscription));
    /// `None` for an unknown pattern or an untyped subscription. With several subscriptions on
    /// one pattern, the first typed one.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.subscription_schema("numbers").unwrap()["type"], "integer");
    /// assert_eq!(node.subscription_schema("in-*"), None);
    /// ```
    pub fn subscription_schema(&self, pattern: &str) -> Option<Value> {
        self.subscriptions
            .iter()
            .zip(self.schemas.subscriptions.iter())
            .filter(|(p, _)| p.as_str() == pattern)
            .find_map(|(_, schema)| declared(schema))
    }

    /// The node's name.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::with_settings("porch", json!({})).unwrap();
    /// assert_eq!(node.name(), "porch");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the node's services, publishers included, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.services(), ["count", "out"]);
    /// ```
    pub fn services(&self) -> Vec<&str> {
        self.services
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The names of the node's publishers (services with no loop).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.publishers(), ["out"]);
    /// ```
    pub fn publishers(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, runner)| runner.is_none())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The node's subscription patterns, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.subscriptions(), ["in-*", "numbers"]);
    /// ```
    pub fn subscriptions(&self) -> Vec<&str> {
        self.subscriptions.iter().map(Pattern::as_str).collect()
    }

    /// The node's timers and their periods, in registration order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.timers(), [("tick", Duration::from_secs(5))]);
    /// ```
    pub fn timers(&self) -> Vec<(&str, Duration)> {
        self.timers
            .iter()
            .map(|t| (t.name.as_str(), Duration::from_nanos(t.period_nanos)))
            .collect()
    }

    /// The request names the node answers and their help lines, in registration order.
    pub fn requests(&self) -> Vec<(&str, &str)> {
        self.requests
            .iter()
            .map(|r| (r.name.as_str(), r.help.as_str()))
            .collect()
    }

    /// Asks the node to stop, as a hive does before a reload or at its end: `sleep_for` and
    /// `is_running` return `false` from now on, and sends fail with
    /// [`SendErrorKind::Stopping`](crate::SendErrorKind::Stopping).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.stop();
    /// let error = node.run_service("count").unwrap_err();
    /// assert!(error.message().contains("stopping"), "{error}");
    /// ```
    pub fn stop(&mut self) {
        self.recorder.running.store(false, Ordering::Relaxed);
    }

    /// Calls the node's `save_state`, as a hive does before swapping in new code.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &2).unwrap();
    /// assert_eq!(node.save_state().unwrap(), Some(json!({ "seen": 2 })));
    /// ```
    pub fn save_state(&mut self) -> Result<Option<Value>, TestError> {
        match self.node.save_state().into_result() {
            Ok(ROption::RSome(state)) => {
                serde_json::from_str(state.as_str()).map(Some).map_err(|e| {
                    TestError::usage(format!("save_state gave text that is not JSON: {e}"))
                })
            }
            Ok(ROption::RNone) => Ok(None),
            Err(error) => Err(TestError::from_callback("save_state", &error)),
        }
    }

    /// Calls the node's `restore_state` with `state`, as a hive does with what the previous
    /// instance saved.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.restore_state(&json!({ "seen": 7 })).unwrap();
    /// assert_eq!(node.save_state().unwrap(), Some(json!({ "seen": 7 })));
    /// assert!(node.restore_state(&json!("garbage")).is_err());
    /// ```
    pub fn restore_state(&mut self, state: &Value) -> Result<(), TestError> {
        let text = RString::from(state.to_string());
        self.node
            .restore_state(text.as_rstr())
            .into_result()
            .map_err(|e| TestError::from_callback("restore_state", &e))
    }

    /// Swaps this instance for a new one with the same name and settings, as `hm dev` does when
    /// the node's code changes: this one is stopped, its `save_state` runs, a new instance is
    /// built and its `restore_state` gets what was saved (when something was).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &5).unwrap();
    /// let mut next = node.reload().unwrap();
    /// assert_eq!(next.save_state().unwrap(), Some(json!({ "seen": 5 })));
    /// ```
    pub fn reload(self) -> Result<Self, TestError> {
        let settings = self.settings.clone();
        self.reload_with(settings)
    }

    /// Like [`reload`](Self::reload), with new settings (as when `config/hive.toml` changes).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let node = TestNode::<Echo>::new().unwrap();
    /// let mut loud = node.reload_with(json!({ "enabled": true, "loud": true })).unwrap();
    /// loud.deliver("in-a", "hi").unwrap();
    /// assert_eq!(loud.sent_on("out"), [json!("HI")]);
    /// ```
    pub fn reload_with(mut self, settings: Value) -> Result<Self, TestError> {
        self.stop();
        let state = self.save_state()?;
        let mut next = Self::build(&self.name, settings, self.recorder.store.clone())?;
        if let Some(state) = state {
            next.restore_state(&state)?;
        }
        Ok(next)
    }
}

impl<N: NodeExport> fmt::Debug for TestNode<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestNode")
            .field("name", &self.name)
            .field("services", &self.services())
            .field("subscriptions", &self.subscriptions())
            .field("timers", &self.timers())
            .finish_non_exhaustive()
    }
}

/// A declared schema as a JSON value (`None`: none declared).
fn declared(schema: &ROption<RString>) -> Option<Value> {
    match schema {
        ROption::RSome(text) => serde_json::from_str(text.as_str()).ok(),
        ROption::RNone => None,
    }
}

/// `settings` with `enabled = true` added if it has no `enabled`; refuses a non-object.
fn with_enabled(mut settings: Value) -> Result<Value, TestError> {
    let Some(table) = settings.as_object_mut() else {
        return Err(TestError::usage(format!(
            "a node's settings are a table (a JSON object), not {settings}"
        )));
    };
    table.entry("enabled").or_insert(Value::Bool(true));
    Ok(settings)
}
