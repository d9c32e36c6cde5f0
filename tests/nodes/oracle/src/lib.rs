//! The request tests' node: it answers a fixed set of requests under its `prefix` (each one a
//! behaviour under test), and asks what its settings and messages say, recording every outcome.
//!
//! ```toml
//! [nodes.alfred]
//! enabled = true
//! library = "oracle"
//! prefix = "alfred"                 # default: the node's name
//! record = "/tmp/x/alfred.jsonl"     # one JSON line per event
//! shared = true                      # also answers `shared/who` (request_all)
//! # What it answers, under the prefix:
//! #   PREFIX/echo    the arguments, as they are          PREFIX/add   [a, b] -> a + b (typed)
//! #   PREFIX/fail    an error                            PREFIX/panic a panic
//! #   PREFIX/sleep   {"ms": n}: blocks n ms, then "slept"
//! #   PREFIX/whoami  {"node", "asker", "asker_host", "generation"}
//! #   PREFIX/big     n: a string of n bytes              PREFIX/count the requests it answered
//! #   PREFIX/crash   the process dies of a segfault (for isolate = true)
//! #   PREFIX/deep    n: a reply nested n arrays deep ([[...[1]...]])
//! generation = 1                     # shown by whoami: tells instances apart across reloads
//! # Its subscriptions ask: a message on `ask-async` with {"name", "args", "timeout_ms", "all"}
//! # asks with an Asker (the reply is recorded as {"event": "reply", ...}); one on
//! # `ask-blocking` asks with a blocking call from the subscription (refused, recorded).
//! # Its service asks each of `service_asks` once `go_file` exists, blocking, and records each.
//! go_file = "/tmp/x/go"
//! service_asks = [{ name = "alfred/echo", args = 1, timeout_ms = 500, all = false }]
//! ```

use hivemind::prelude::*;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Deserialize)]
struct Settings {
    prefix: Option<String>,
    record: Option<PathBuf>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    generation: u64,
    go_file: Option<PathBuf>,
    #[serde(default)]
    service_asks: Vec<AskSpec>,
}

#[derive(Deserialize, Serialize, Clone, JsonSchema)]
struct AskSpec {
    name: String,
    #[serde(default)]
    args: Value,
    /// The arguments as JSON text (TOML has no null); overrides `args`.
    args_json: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    all: bool,
}

fn default_timeout() -> u64 {
    1000
}

/// Appends JSON lines to the record file, one write per line.
#[derive(Clone)]
struct Recorder(Option<Arc<Mutex<File>>>);

impl Recorder {
    fn record(&self, event: Value) {
        if let Some(file) = &self.0 {
            let line = format!("{event}\n");
            file.lock().unwrap().write_all(line.as_bytes()).unwrap();
        }
    }
}

/// One outcome as a record: the reply (with who answered) or the error's kind and message.
fn outcome(result: &Result<Reply, RequestError>) -> Value {
    match result {
        Ok(reply) => json!({ "reply": reply.value(), "node": reply.node(), "host": reply.host() }),
        Err(error) => json!({
            "kind": format!("{:?}", error.kind()),
            "error": error.message(),
            "node": error.node(),
        }),
    }
}

fn outcomes(result: &AllReplies) -> Value {
    match result {
        Ok(list) => json!({ "all": list.iter().map(outcome).collect::<Vec<_>>() }),
        Err(error) => outcome(&Err(error.clone())),
    }
}

/// The oracle node.
pub struct Oracle {
    name: String,
    prefix: String,
    generation: u64,
    shared: bool,
    recorder: Recorder,
    answered: u64,
    out: Option<Service>,
    ask: Option<Asker<Self>>,
    go_file: Option<PathBuf>,
    service_asks: Vec<AskSpec>,
}

impl Node for Oracle {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        let recorder = Recorder(match &settings.record {
            Some(path) => Some(Arc::new(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        });
        Ok(Oracle {
            name: context.name().to_owned(),
            prefix: settings.prefix.unwrap_or_else(|| context.name().to_owned()),
            generation: settings.generation,
            shared: settings.shared,
            recorder,
            answered: 0,
            out: None,
            ask: None,
            go_file: settings.go_file,
            service_asks: settings.service_asks,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        self.out = Some(hive.add_publisher(format!("{}-out", self.prefix)));
        if self.service_asks.is_empty() {
            return;
        }
        let asks = self.service_asks.clone();
        let go = self.go_file.clone();
        let recorder = self.recorder.clone();
        hive.add_service(format!("{}-asker", self.prefix), move |service: &Service| {
            if let Some(go) = &go {
                while !go.exists() {
                    if !service.sleep_for(Duration::from_millis(20)) {
                        return Ok(Flow::Stop);
                    }
                }
            }
            for ask in &asks {
                let args: Value = match &ask.args_json {
                    Some(text) => serde_json::from_str(text)?,
                    None => ask.args.clone(),
                };
                let timeout = Duration::from_millis(ask.timeout_ms);
                let result = if ask.all {
                    outcomes(&service.request_all(&ask.name, &args, timeout))
                } else {
                    outcome(&service.request(&ask.name, &args, timeout))
                };
                recorder.record(json!({ "event": "asked", "from": "service", "name": ask.name, "outcome": result }));
            }
            Ok(Flow::Stop)
        });
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        hive.add_typed_subscription("ask-async", |node: &mut Self, ask: AskSpec, _: &Message| {
            let asker = node.ask.clone().ok_or("no asker")?;
            let timeout = Duration::from_millis(ask.timeout_ms);
            let name = ask.name.clone();
            if ask.all {
                asker.ask_all(
                    &ask.name,
                    &ask.args,
                    timeout,
                    move |node: &mut Self, result| {
                        node.recorder.record(
                            json!({ "event": "reply", "name": name, "outcome": outcomes(&result) }),
                        );
                        Ok(())
                    },
                );
            } else {
                asker.ask(
                    &ask.name,
                    &ask.args,
                    timeout,
                    move |node: &mut Self, result| {
                        node.recorder.record(
                            json!({ "event": "reply", "name": name, "outcome": outcome(&result) }),
                        );
                        Ok(())
                    },
                );
            }
            Ok(())
        });
        hive.add_typed_subscription(
            "ask-blocking",
            |node: &mut Self, ask: AskSpec, _: &Message| {
                let out = node.out.as_ref().ok_or("no publisher")?;
                let result =
                    out.request(&ask.name, &ask.args, Duration::from_millis(ask.timeout_ms));
                node.recorder.record(
                    json!({ "event": "blocking", "name": ask.name, "outcome": outcome(&result) }),
                );
                Ok(())
            },
        );
    }

    fn requests(&mut self, hive: &mut Requests<Self>) {
        self.ask = Some(hive.asker());
        let p = self.prefix.clone();
        hive.add_request(
            format!("{p}/echo"),
            "the arguments, as they are",
            |node: &mut Self, request: &Request| {
                node.answered += 1;
                Ok(request.args().clone())
            },
        );
        hive.add_typed_request(
            format!("{p}/add"),
            "[a, b]: their sum",
            |node: &mut Self, (a, b): (i64, i64), _: &Request| {
                node.answered += 1;
                Ok(a + b)
            },
        );
        hive.add_request(
            format!("{p}/fail"),
            "always an error",
            |_: &mut Self, _: &Request| -> Result<()> { Err("the oracle was told to fail".into()) },
        );
        hive.add_request(
            format!("{p}/panic"),
            "always a panic",
            |_: &mut Self, _: &Request| -> Result<()> { panic!("the oracle was told to panic") },
        );
        hive.add_request(
            format!("{p}/sleep"),
            "{\"ms\": n}: blocks n ms, then answers",
            |node: &mut Self, request: &Request| {
                #[derive(Deserialize)]
                struct Sleep {
                    ms: u64,
                }
                let sleep: Sleep = request.decode()?;
                node.recorder.record(
                    json!({ "event": "sleeping", "ms": sleep.ms, "generation": node.generation }),
                );
                std::thread::sleep(Duration::from_millis(sleep.ms));
                node.answered += 1;
                node.recorder.record(
                    json!({ "event": "slept", "ms": sleep.ms, "generation": node.generation }),
                );
                Ok(json!({ "slept": sleep.ms, "generation": node.generation }))
            },
        );
        hive.add_request(
            format!("{p}/whoami"),
            "who answers, and who asked",
            |node: &mut Self, request: &Request| {
                node.answered += 1;
                Ok(json!({
                    "node": node.name,
                    "asker": request.node(),
                    "asker_host": request.host(),
                    "generation": node.generation,
                }))
            },
        );
        hive.add_typed_request(
            format!("{p}/big"),
            "n: a string of n bytes",
            |_: &mut Self, n: usize, _: &Request| Ok("x".repeat(n)),
        );
        hive.add_typed_request(
            format!("{p}/deep"),
            "n: a reply nested n arrays deep",
            |_: &mut Self, n: usize, _: &Request| {
                let mut reply = json!(1);
                for _ in 0..n.min(1_000) {
                    reply = Value::Array(vec![reply]);
                }
                Ok(reply)
            },
        );
        hive.add_request(
            format!("{p}/count"),
            "how many requests it answered",
            |node: &mut Self, _: &Request| {
                node.answered += 1;
                Ok(node.answered)
            },
        );
        hive.add_request(
            format!("{p}/crash"),
            "the process dies (SIGSEGV)",
            |_: &mut Self, _: &Request| -> Result<()> {
                // SAFETY: none: this is the fault under test. The write through a null pointer
                // is meant to kill the process with SIGSEGV, as a real bug in a node would.
                unsafe { std::ptr::null_mut::<u64>().write_volatile(0xdead) };
                unreachable!("a null write returned")
            },
        );
        if self.shared {
            hive.add_request(
                "shared/who",
                "each node says its name",
                |node: &mut Self, _: &Request| Ok(node.name.clone()),
            );
        }
    }
}

hivemind::export_node!(Oracle);
