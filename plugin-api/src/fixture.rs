//! The example node that the doctests of [`testing`](crate::testing) share, so that each shows
//! only its own lines: a doctest names it with a hidden `# use hivemind::fixture::Echo;`.
//!
//! Not part of the API (hidden from the docs, never used by the crate itself). It is compiled
//! with the crate because doctests link the library as it is built for node crates, where an
//! item behind `cfg(doctest)` or `cfg(test)` does not exist; a node library that never names
//! it carries none of its code (nothing exported reaches it). It implements the export trait
//! by hand, not with [`export_node!`](crate::export_node): the macro's root-module symbol would
//! then be in every node library, beside the node's own.
//!
//! What [`Echo`] has, for the doctests to drive:
//! - settings: `loud` (bool, default false);
//! - a service `count`: sends `1`, sleeps one second, runs again;
//! - a publisher `out` declared as sending strings;
//! - a subscription on `in-*`: a payload `"panic"` panics (`told to panic`), `"fail"` fails
//!   (`told to fail`); any other payload counts as seen, is logged as `echo TEXT from NODE`
//!   and sent on `out` (upper-cased when loud);
//! - a typed subscription on `numbers` (`u64`): adds the number to the seen count;
//! - a timer `tick` every five seconds: logs `seen N`;
//! - state: `{"seen": N}`, saved and restored across a reload.

use crate::glue::NodeExport;
use crate::prelude::*;
use std::time::Duration;

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    loud: bool,
}

/// The doctests' example node (see the module's docs for what it does).
pub struct Echo {
    out: Option<Service>,
    seen: u64,
    loud: bool,
}

impl Node for Echo {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        Ok(Echo {
            out: None,
            seen: 0,
            loud: settings.loud,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        hive.add_service("count", |service: &Service| {
            service.send(&1)?;
            service.sleep_for(Duration::from_secs(1));
            Ok(Flow::Continue)
        });
        self.out = Some(hive.add_typed_publisher::<String>("out"));
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        hive.add_subscription("in-*", |node: &mut Self, message: &Message| {
            if message.payload() == "panic" {
                panic!("told to panic")
            }
            if message.payload() == "fail" {
                return Err("told to fail".into());
            }
            node.seen += 1;
            let text = message.payload().as_str().unwrap_or_default().to_owned();
            let text = if node.loud { text.to_uppercase() } else { text };
            info!("echo {text} from {}", message.node());
            node.out.as_ref().ok_or("no publisher")?.send(&text)?;
            Ok(())
        });
        hive.add_typed_subscription("numbers", |node: &mut Self, n: u64, _: &Message| {
            node.seen += n;
            Ok(())
        });
        hive.add_timer("tick", Duration::from_secs(5), |node: &mut Self| {
            info!("seen {}", node.seen);
            Ok(())
        });
    }

    fn save_state(&mut self) -> Result<Option<Value>> {
        Ok(Some(json!({ "seen": self.seen })))
    }

    fn restore_state(&mut self, state: Value) -> Result<()> {
        self.seen = state["seen"].as_u64().ok_or("no seen")?;
        Ok(())
    }
}

impl NodeExport for Echo {
    const CRATE_NAME: &'static str = env!("CARGO_PKG_NAME");
    const TYPE_NAME: &'static str = "Echo";
}
