//! Tests of the glue between a node type and the ABI, driven through [`crate::testing`] (which
//! calls the exported root module as `hm` does): panics are contained in every entry point,
//! state is handed over, settings are decoded, and refusals carry their kind.

use crate::Level;
use crate::abi::{NodeInit, NodeParts};
use crate::glue::{NodeExport, root_module};
use crate::prelude::*;
use crate::testing::{TestErrorKind, TestNode};
use abi_stable::std_types::RStr;
use std::collections::BTreeMap;
use std::time::Duration;

/// Names a test node type for export, as `export_node!` does in a node crate.
macro_rules! exported {
    ($node:ty) => {
        impl NodeExport for $node {
            const CRATE_NAME: &'static str = "glue_tests";
            const TYPE_NAME: &'static str = stringify!($node);
        }
    };
}

/// Which entry point panics.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PanicIn {
    #[default]
    Nowhere,
    New,
    Services,
    Subscriptions,
    Deliver,
    Step,
    Tick,
    SaveState,
    RestoreState,
}

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    panic_in: PanicIn,
    #[serde(default)]
    label: String,
}

/// A node that panics where its settings say, and otherwise counts, sends and keeps state.
struct Probe {
    panic_in: PanicIn,
    label: String,
    count: u64,
    out: Option<Service>,
}

exported!(Probe);

impl Node for Probe {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        if settings.panic_in == PanicIn::New {
            panic!("boom in new");
        }
        Ok(Probe {
            panic_in: settings.panic_in,
            label: settings.label,
            count: 0,
            out: None,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        if self.panic_in == PanicIn::Services {
            panic!("boom in services");
        }
        let panic_in = self.panic_in;
        hive.add_service("probe-loop", move |service: &Service| {
            if panic_in == PanicIn::Step {
                panic!("boom in step");
            }
            service.send("looped")?;
            service.sleep_for(Duration::from_millis(250));
            Ok(Flow::Stop)
        });
        self.out = Some(hive.add_publisher("probe-out"));
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        if self.panic_in == PanicIn::Subscriptions {
            panic!("boom in subscriptions");
        }
        hive.add_subscription("in-*", |node: &mut Self, message: &Message| {
            if node.panic_in == PanicIn::Deliver {
                panic!("boom in deliver");
            }
            if *message.payload() == "fail" {
                return Err("told to fail".into());
            }
            node.count += 1;
            let out = node.out.as_ref().ok_or("no publisher")?;
            out.send(&json!({ "count": node.count, "label": node.label, "from": message.node() }))?;
            Ok(())
        });
        hive.add_typed_subscription("typed", |node: &mut Self, n: u64, _: &Message| {
            node.count += n;
            Ok(())
        });
        hive.add_timer("probe-tick", Duration::from_nanos(1), |node: &mut Self| {
            if node.panic_in == PanicIn::Tick {
                panic!("boom in tick");
            }
            node.count += 100;
            Ok(())
        });
    }

    fn save_state(&mut self) -> Result<Option<Value>> {
        if self.panic_in == PanicIn::SaveState {
            panic!("boom in save_state");
        }
        Ok(Some(json!({ "count": self.count })))
    }

    fn restore_state(&mut self, state: Value) -> Result<()> {
        if self.panic_in == PanicIn::RestoreState {
            panic!("boom in restore_state");
        }
        self.count = state["count"].as_u64().ok_or("no count in the state")?;
        Ok(())
    }
}

fn probe(panic_in: &str) -> std::result::Result<TestNode<Probe>, crate::testing::TestError> {
    TestNode::<Probe>::with_json(&format!(r#"{{"panic_in": "{panic_in}"}}"#))
}

fn assert_panicked(error: &crate::testing::TestError, what: &str) {
    assert_eq!(error.kind(), TestErrorKind::Panicked, "{error}");
    assert!(error.message().contains(what), "{error}");
}

#[test]
fn a_panic_in_any_building_step_is_returned_as_a_panic() {
    for (step, what) in [
        ("new", "boom in new"),
        ("services", "boom in services"),
        ("subscriptions", "boom in subscriptions"),
    ] {
        let error = probe(step).unwrap_err();
        assert_panicked(&error, what);
        assert!(
            error
                .message()
                .starts_with("the constructor of node `glue_tests` panicked"),
            "{error}"
        );
    }
}

#[test]
fn a_panic_in_a_running_callback_is_caught_logged_and_the_node_goes_on() {
    let mut node = probe("deliver").unwrap();
    assert_panicked(&node.deliver("in-a", "x").unwrap_err(), "boom in deliver");
    let logs = node.logs();
    assert!(
        logs.iter().any(|l| l.level == Level::Error
            && l.message.contains("panicked at")
            && l.message.contains("glue_tests.rs")
            && l.message.contains("boom in deliver")),
        "the panic hook logs the place through the node's host: {logs:?}"
    );
    // The node is still usable after the panic.
    node.tick("probe-tick").unwrap();
    assert_eq!(node.save_state().unwrap(), Some(json!({ "count": 100 })));

    let mut node = probe("step").unwrap();
    assert_panicked(&node.run_service("probe-loop").unwrap_err(), "boom in step");
    let mut node = probe("tick").unwrap();
    assert_panicked(&node.tick("probe-tick").unwrap_err(), "boom in tick");
    let mut node = probe("save_state").unwrap();
    assert_panicked(&node.save_state().unwrap_err(), "boom in save_state");
    let mut node = probe("restore_state").unwrap();
    assert_panicked(
        &node.restore_state(&json!({ "count": 1 })).unwrap_err(),
        "boom in restore_state",
    );
}

#[test]
fn errors_are_failures_not_panics() {
    let mut node = probe("nowhere").unwrap();
    let error = node.deliver("in-a", "fail").unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Failed);
    assert_eq!(error.message(), "subscription `in-*` failed: told to fail");
    let error = node.restore_state(&json!({})).unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Failed);
    assert!(error.message().contains("no count in the state"), "{error}");
}

#[test]
fn state_is_handed_to_the_next_instance() {
    let mut node = probe("nowhere").unwrap();
    node.deliver("in-x", "hello").unwrap();
    node.deliver("in-y", "hello").unwrap();
    let mut next = node.reload().unwrap();
    assert_eq!(next.save_state().unwrap(), Some(json!({ "count": 2 })));
    // The new instance sends on its own; the old one's record is not carried over.
    next.deliver("in-z", "hello").unwrap();
    assert_eq!(next.sent_on("probe-out").len(), 1);
    assert_eq!(next.sent_on("probe-out")[0]["count"], 3);
}

#[test]
fn settings_are_decoded_and_bad_ones_refused() {
    let mut node = TestNode::<Probe>::with_json(r#"{"label": "north", "enabled": false}"#).unwrap();
    node.deliver_from("sender", "in-1", &1).unwrap();
    assert_eq!(
        node.sent_on("probe-out"),
        [json!({ "count": 1, "label": "north", "from": "sender" })]
    );

    let error = TestNode::<Probe>::with_json(r#"{"panic_in": "sideways"}"#).unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Failed);
    assert!(error.message().contains("sideways"), "{error}");
    let error = TestNode::<Probe>::with_json("[1, 2]").unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Usage);
}

#[test]
fn settings_text_that_is_not_json_is_refused_by_the_glue() {
    let new_node = root_module::<Probe>().new_node();
    let init = NodeInit {
        name: RStr::from_str("probe"),
        settings_json: RStr::from_str("{not json"),
        host: crate::testing::recording_host(),
    };
    let error = match new_node(init).into_result() {
        Ok(NodeParts { .. }) => panic!("settings that are not JSON were accepted"),
        Err(error) => error,
    };
    assert!(!error.panicked);
    assert!(
        error
            .message
            .as_str()
            .starts_with("the host passed settings that are not JSON"),
        "{}",
        error.message
    );
}

#[cfg(feature = "toml")]
#[test]
fn toml_settings_arrive_as_the_host_converts_them() {
    let mut node = TestNode::<Probe>::with_toml("label = \"south\"").unwrap();
    node.deliver("in-1", "x").unwrap();
    assert_eq!(node.sent_on("probe-out")[0]["label"], "south");
    let error = TestNode::<Probe>::with_toml("label = ").unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Usage);
}

#[test]
fn registrations_are_what_the_node_said() {
    let mut node = probe("nowhere").unwrap();
    assert_eq!(node.services(), ["probe-loop", "probe-out"]);
    assert_eq!(node.publishers(), ["probe-out"]);
    assert_eq!(node.subscriptions(), ["in-*", "typed"]);
    assert_eq!(
        node.timers(),
        [("probe-tick", Duration::from_millis(1))],
        "periods below 1 ms are raised to 1 ms"
    );
    assert_eq!(node.run_service("probe-loop").unwrap(), Flow::Stop);
    assert_eq!(node.sent_on("probe-loop"), [json!("looped")]);
    assert_eq!(node.sleeps(), [Duration::from_millis(250)]);
    let error = node.run_service("probe-out").unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Usage);
    assert!(error.message().contains("publisher"), "{error}");
    assert_eq!(
        node.run_service("nope").unwrap_err().kind(),
        TestErrorKind::Usage
    );
    assert_eq!(node.deliver("other", "x").unwrap(), 0);
}

#[test]
fn a_typed_subscription_counts_a_payload_that_does_not_decode_as_a_failure() {
    let mut node = probe("nowhere").unwrap();
    node.deliver("typed", &5).unwrap();
    let error = node.deliver("typed", "five").unwrap_err();
    assert_eq!(error.kind(), TestErrorKind::Failed);
    assert!(
        error
            .message()
            .contains("the payload from service `typed` does not decode"),
        "{error}"
    );
    assert_eq!(node.save_state().unwrap(), Some(json!({ "count": 5 })));
}

/// A node that sends at the wrong moments, to check each refusal's kind.
struct Sender {
    early: Option<SendErrorKind>,
    out: Option<Service>,
}

exported!(Sender);

impl Node for Sender {
    fn new(_context: &Context) -> Result<Self> {
        Ok(Sender {
            early: None,
            out: None,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        let out = hive.add_publisher("out");
        self.early = out.send("too early").err().map(|e| e.kind());
        self.out = Some(out);
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        hive.add_subscription("send", |node: &mut Self, message: &Message| {
            let out = node.out.as_ref().ok_or("no publisher")?;
            let outcome = match message.payload().as_str() {
                Some("big") => out.send(&"x".repeat(100)),
                Some("bad-keys") => out.send(&BTreeMap::from([(vec![1u8], 1)])),
                _ => out.send(message.payload()),
            };
            let kind = outcome.err().map(|e| format!("{:?}", e.kind()));
            out.send(&json!({ "kind": kind, "early": node.early.map(|k| format!("{k:?}")) }))
                .ok();
            Ok(())
        });
    }
}

#[test]
fn refused_sends_carry_a_kind_to_match_on() {
    let mut node = TestNode::<Sender>::new().unwrap();
    node.set_max_payload_bytes(50);
    for (payload, kind) in [
        ("small", None),
        ("big", Some("TooLarge")),
        ("bad-keys", Some("NotSerializable")),
    ] {
        node.take_sent();
        node.deliver("send", payload).unwrap();
        let report = node.sent_on("out").pop().unwrap();
        assert_eq!(report["kind"], json!(kind), "{payload}");
        assert_eq!(report["early"], "NotStarted");
    }
    assert!(
        node.logs()
            .iter()
            .any(|l| l.level == Level::Warn && l.message.contains("over the hive's limit of 50")),
        "the refusal is logged as the host logs it"
    );
    node.stop();
    node.take_sent();
    node.deliver("send", "small").unwrap();
    assert!(node.sent().is_empty(), "nothing is sent once stopping");
}

/// A payload type with a derived schema.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Reading {
    celsius: f64,
    room: Option<String>,
}

/// A node declaring types on some of its services and subscriptions, not on others.
struct Typed;

exported!(Typed);

impl Node for Typed {
    fn new(_context: &Context) -> Result<Self> {
        Ok(Typed)
    }

    fn services(&mut self, hive: &mut Services) {
        hive.add_publisher("plain");
        hive.add_typed_publisher::<Reading>("readings");
        hive.add_typed_service::<u32, _>("counts", |_: &Service| Ok(Flow::Stop));
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        hive.add_typed_subscription("readings", |_: &mut Self, _: Reading, _: &Message| Ok(()));
        hive.add_subscription("*", |_: &mut Self, _: &Message| Ok(()));
    }
}

/// A node that asks from its delivery thread (blocking, refused; and with an `Asker`) and from
/// a service, and answers one request that panics on demand.
struct Asking {
    out: Option<Service>,
    ask: Option<Asker<Self>>,
    heard: Vec<String>,
}

exported!(Asking);

impl Node for Asking {
    fn new(_context: &Context) -> Result<Self> {
        Ok(Asking {
            out: None,
            ask: None,
            heard: Vec::new(),
        })
    }

    fn services(&mut self, hive: &mut Services) {
        hive.add_service("poll", |service: &Service| {
            let reply =
                service.request("level", &json!({"of": "battery"}), Duration::from_secs(2))?;
            service.send(&reply.value())?;
            Ok(Flow::Stop)
        });
        self.out = Some(hive.add_publisher("out"));
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        hive.add_subscription("blocking", |node: &mut Self, _: &Message| {
            let out = node.out.as_ref().ok_or("no publisher")?;
            match out.request("level", &(), Duration::from_secs(1)) {
                Err(error) => node.heard.push(format!("{:?}", error.kind())),
                Ok(reply) => node.heard.push(reply.json().to_owned()),
            }
            Ok(())
        });
        hive.add_subscription("asking", |node: &mut Self, _: &Message| {
            let ask = node.ask.as_ref().ok_or("no asker")?;
            ask.ask(
                "level",
                &1,
                Duration::from_millis(300),
                |node: &mut Self, reply| {
                    match reply {
                        Ok(reply) => {
                            node.heard
                                .push(format!("{} from {}", reply.json(), reply.node()))
                        }
                        Err(error) => node.heard.push(format!("{:?}", error.kind())),
                    }
                    Ok(())
                },
            );
            Ok(())
        });
    }

    fn requests(&mut self, hive: &mut Requests<Self>) {
        self.ask = Some(hive.asker());
        hive.add_request(
            "heard",
            "what it heard",
            |node: &mut Self, request: &Request| {
                if request.args() == &json!("panic") {
                    panic!("asked to panic");
                }
                Ok(node.heard.clone())
            },
        );
        hive.add_typed_request(
            "add",
            "adds two numbers",
            |_: &mut Self, (a, b): (i64, i64), _: &Request| Ok(a + b),
        );
    }
}

#[test]
fn declared_types_reach_the_host_by_id_as_json_schemas() {
    let host = crate::testing::recording_host();
    let init = NodeInit {
        name: RStr::from_str("typed"),
        settings_json: RStr::from_str("{}"),
        host,
    };
    let parts = match (root_module::<Typed>().new_node())(init).into_result() {
        Ok(parts) => parts,
        Err(error) => panic!("{}", error.message),
    };
    let text = |schema: &abi_stable::std_types::ROption<abi_stable::std_types::RString>| {
        schema
            .as_ref()
            .map(|text| serde_json::from_str::<Value>(text.as_str()).unwrap())
            .into_option()
    };
    let services: Vec<Option<Value>> = parts.schemas.services.iter().map(text).collect();
    assert_eq!(services.len(), 3, "one entry per service, by id");
    assert_eq!(services[0], None, "an untyped publisher declares nothing");
    let reading = services[1].clone().unwrap();
    assert_eq!(reading["type"], "object");
    assert_eq!(reading["required"], json!(["celsius"]), "{reading}");
    assert_eq!(reading["properties"]["celsius"]["type"], "number");
    assert_eq!(services[2].as_ref().unwrap()["type"], "integer");

    let subscriptions: Vec<Option<Value>> = parts.schemas.subscriptions.iter().map(text).collect();
    assert_eq!(subscriptions, [Some(reading.clone()), None]);

    // `TestNode` shows the same, by name.
    let node = TestNode::<Typed>::new().unwrap();
    assert_eq!(node.service_schema("readings"), Some(reading.clone()));
    assert_eq!(node.service_schema("plain"), None);
    assert_eq!(node.service_schema("nope"), None);
    assert_eq!(node.subscription_schema("readings"), Some(reading));
    assert_eq!(node.subscription_schema("*"), None);
}

#[test]
fn a_blocking_request_from_the_delivery_thread_is_refused_and_an_asker_gets_its_reply_later() {
    let mut node = TestNode::<Asking>::new().unwrap();
    assert_eq!(
        node.requests(),
        [("heard", "what it heard"), ("add", "adds two numbers")]
    );
    node.reply_to("level", &json!(42));
    node.deliver("blocking", &()).unwrap();
    assert!(
        node.asked().is_empty(),
        "a refused request never reaches the host"
    );
    node.deliver("asking", &()).unwrap();
    assert_eq!(node.request("heard", &()).unwrap(), json!(["WouldBlock"]));
    assert_eq!(node.deliver_replies().unwrap(), 1);
    assert_eq!(
        node.request("heard", &()).unwrap(),
        json!(["WouldBlock", "42 from test"])
    );
    assert_eq!(node.asked()[0].timeout, Duration::from_millis(300));

    node.fail_to("level", RequestErrorKind::Timeout, "too slow");
    node.deliver("asking", &()).unwrap();
    node.deliver_replies().unwrap();
    assert_eq!(node.request("heard", &()).unwrap()[2], json!("Timeout"));

    let error = node.run_service("poll").unwrap_err();
    assert!(error.message().contains("too slow"), "{error}");
    node.reply_to("level", &json!(7));
    assert_eq!(node.run_service("poll").unwrap(), Flow::Stop);
    assert_eq!(node.sent_on("poll"), [json!(7)]);
    assert_eq!(
        node.asked().last().unwrap().args(),
        json!({"of": "battery"})
    );
}

#[test]
fn request_handlers_fail_with_their_kind() {
    let mut node = TestNode::<Asking>::new().unwrap();
    let error = node.request("heard", &"panic").unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::Panicked);
    assert!(error.message().contains("asked to panic"), "{error}");
    assert_eq!(node.request("add", &(2, 3)).unwrap(), json!(5));
    let error = node.request("add", &"two").unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::InvalidArgs);
    assert!(
        error
            .message()
            .contains("the arguments of request `add` do not decode"),
        "{error}"
    );
    let error = node.request("nothing", &()).unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::NoResponder);
    node.set_max_payload_bytes(3);
    assert_eq!(
        node.request("add", &(2000, 3000)).unwrap_err().kind(),
        RequestErrorKind::TooLarge
    );
}
