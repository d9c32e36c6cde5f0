//! NodeTemplate node for hive_name.
//!
//! Build and run the hive with `hm dev`; enable this node in `config/hive.toml` first
//! (`[nodes.node_template]`, `enabled = true`). `cargo test -p node_template` runs the tests
//! at the end of this file, with no hive.

use hivemind::prelude::*;

/// NodeTemplate implementation.
pub struct NodeTemplate {
    /// Messages handled so far: kept across reloads by `save_state` and `restore_state`.
    handled: u64,
}

impl Node for NodeTemplate {
    /// Builds the node; `context.settings()` holds its table from `config/hive.toml`.
    fn new(_context: &Context) -> Result<Self> {
        Ok(NodeTemplate { handled: 0 })
    }

    /// Register any default services:
    ///
    /// ```ignore
    /// hive.add_service("my-service", |service: &Service| {
    ///     service.send("hello")?;                  // any serde::Serialize value
    ///     service.sleep_for(Duration::from_secs(1)); // wakes at once when the hive stops
    ///     Ok(Flow::Continue)                       // Flow::Stop ends this service
    /// });
    /// ```
    ///
    /// Declare what a service sends with `hive.add_typed_service::<Reading, _>(...)`, where
    /// `Reading` derives `Serialize` and `JsonSchema`: the hive's page then offers a form for
    /// it and checks what is published on it from outside (docs/NODES.md, "Typed payloads").
    fn services(&mut self, hive: &mut Services) {
        let _ = hive;
    }

    /// Register any default subscriptions:
    ///
    /// ```ignore
    /// hive.add_subscription("my-*", |node: &mut Self, message: &Message| {
    ///     info!("{} sent {}", message.service(), message.payload());
    ///     Ok(())
    /// });
    /// ```
    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        let _ = hive;
    }

    /// `hm dev` swaps in your new code when you save a file. What this returns is handed to the
    /// new instance's `restore_state`, so state survives the swap.
    fn save_state(&mut self) -> Result<Option<Value>> {
        Ok(Some(json!({ "handled": self.handled })))
    }

    /// Takes back what the previous instance saved, before any message arrives.
    fn restore_state(&mut self, state: Value) -> Result<()> {
        self.handled = state["handled"].as_u64().unwrap_or(0);
        Ok(())
    }
}

hivemind::export_node!(NodeTemplate);

#[cfg(test)]
mod tests {
    use super::*;
    use hivemind::testing::TestNode;

    /// Builds the node with settings written as in `config/hive.toml`, swaps it for a new
    /// instance as `hm dev` does when the code changes, and checks that the count survived.
    ///
    /// Test what you add the same way: `node.deliver("my-service", "hello")` runs the matching
    /// subscriptions, `node.run_service("my-service")` one iteration of a service, and
    /// `node.sent_on("my-service")` and `node.logs()` show what the node sent and logged.
    #[test]
    fn the_count_survives_a_reload() {
        let mut node = TestNode::<NodeTemplate>::with_toml("enabled = true").unwrap();
        node.restore_state(&json!({ "handled": 41 })).unwrap();
        let mut next = node.reload().unwrap();
        assert_eq!(next.save_state().unwrap(), Some(json!({ "handled": 41 })));
    }
}
