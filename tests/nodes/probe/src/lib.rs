//! The integration tests' node: its settings say what to send, what to subscribe to, where to
//! record what it receives, and where to fail.
//!
//! ```toml
//! [nodes.sender]
//! enabled = true
//! library = "probe"
//! record = "/tmp/x/sender.jsonl"          # one JSON line per event
//! subscriptions = ["bat-signal-*"]         # records every message received
//! panic_on_payload = "boom"                # a subscription panics on this payload
//! fail_on_payload = "oops"                 # a subscription returns Err on this payload
//! echo_to = "pong"                         # re-send every received payload on service "pong"
//! publish_to = "relay"                     # the same, on a publisher (a service with no loop)
//! tick_ms = 20                             # a timer: records {"event": "tick", "total": n}
//! tick_panics = true                       # the timer panics on every tick
//! slow_ms = 20                             # block 20 ms on every message (a slow subscriber)
//! hang_on_payload = "hang"                 # block hang_ms on this payload (a stuck callback)
//! hang_ms = 1500
//! panic_in_state_hooks = true              # save_state and restore_state panic
//! panic_in_constructor = false
//! hang_in_constructor_ms = 30000          # the constructor blocks this long (a hanging node)
//! crash_on_payload = "die"                # the whole process dies on this payload, as
//! crash_how = "segfault"                   # "segfault" (invalid write), "abort" or "exit"
//! forge_on_payload = "forge"               # on this payload, write a forged frame to every
//! forge = "huge_header"                    # socket of the process (an isolated node's link
//! forge_service = "bat-signal-main"        # to its host): "huge_header" or "not_json"
//! publisher_type = "reading"               # publish_to declares this payload type
//! typed_subscriptions = [{ pattern = "readings", payload_type = "room_reading" }]
//!                                          # typed subscriptions: record what they decode
//! [[nodes.sender.services]]
//! name = "bat-signal-main"
//! payloads = ["a", 1, { b = 2 }]          # sent in order, then the service stops
//! payloads_json = '[null, {"b": null}]'    # more payloads, as JSON text (TOML has no null)
//! count = 100                              # or: send {"seq": i} this many times
//! pad_bytes = 1024                         # with count: add "pad", this many bytes of text
//! interval_ms = 0
//! start_file = "/tmp/x/go"                 # wait until this file exists before sending
//! sleep_secs = 60.0                        # or: sleep this long once, record how it woke
//! panic = true                             # or: panic on the first step
//! busy = true                              # or: loop without ever sleeping
//! payload_type = "reading"                 # declare this payload type (see `PayloadType`)
//! ```

use hivemind::prelude::*;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    services: Vec<ServiceSpec>,
    #[serde(default)]
    subscriptions: Vec<String>,
    record: Option<PathBuf>,
    #[serde(default)]
    panic_in_constructor: bool,
    /// The constructor blocks this long before it returns (a node that hangs while built).
    #[serde(default)]
    hang_in_constructor_ms: u64,
    panic_on_payload: Option<String>,
    fail_on_payload: Option<String>,
    /// Re-sends every received payload on this service (one of its own, with no other job).
    echo_to: Option<String>,
    /// Re-sends every received payload on this publisher.
    publish_to: Option<String>,
    /// A timer with this period records the number of messages received so far.
    tick_ms: Option<u64>,
    /// The timer panics on every tick.
    #[serde(default)]
    tick_panics: bool,
    /// A subscription blocks this long on every message (a slow subscriber).
    #[serde(default)]
    slow_ms: u64,
    /// A subscription blocks `hang_ms` on this payload (a callback that seems stuck).
    hang_on_payload: Option<String>,
    #[serde(default)]
    hang_ms: u64,
    /// `save_state` and `restore_state` panic.
    #[serde(default)]
    panic_in_state_hooks: bool,
    /// The process dies on this payload (what `isolate = true` is for).
    crash_on_payload: Option<String>,
    #[serde(default)]
    crash_how: CrashHow,
    /// On this payload the probe acts as a hostile process: it writes `forge` to its sockets.
    forge_on_payload: Option<String>,
    #[serde(default)]
    forge: Forge,
    /// The service a forged `not_json` message claims to be from.
    #[serde(default)]
    forge_service: String,
    /// The payload type `publish_to` declares.
    publisher_type: Option<PayloadType>,
    /// Subscriptions that decode (and declare) a payload type.
    #[serde(default)]
    typed_subscriptions: Vec<TypedSpec>,
}

/// The payload types the probe can declare, by name in its settings.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum PayloadType {
    /// [`Reading`].
    Reading,
    /// [`RoomReading`].
    RoomReading,
    /// A whole number (`u64`).
    Count,
}

/// A temperature reading; the room may be left out.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Reading {
    /// Degrees Celsius.
    celsius: f64,
    /// Where it was taken.
    room: Option<String>,
    /// Whether the sensor thinks it is broken.
    #[serde(default)]
    faulty: bool,
}

/// A reading that must name its room: it cannot accept every [`Reading`].
#[derive(Serialize, Deserialize, JsonSchema)]
struct RoomReading {
    celsius: f64,
    room: String,
}

/// One typed subscription.
#[derive(Deserialize, Clone)]
struct TypedSpec {
    pattern: String,
    payload_type: PayloadType,
}

/// What a hostile isolated process writes to its host.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Forge {
    /// A frame header announcing 256 MiB, then a few bytes, then nothing.
    #[default]
    HugeHeader,
    /// A well-formed message whose payload is not JSON.
    NotJson,
}

impl Forge {
    /// The bytes of the forged frame (the host's wire format: length, tag 13 = a publish,
    /// then the service and the payload as length-prefixed text).
    fn frame(self, service: &str) -> Vec<u8> {
        const PUBLISH: u8 = 13;
        match self {
            Forge::HugeHeader => {
                let mut frame = (256u32 << 20).to_le_bytes().to_vec();
                frame.push(PUBLISH);
                frame.extend_from_slice(&[b'x'; 16]);
                frame
            }
            Forge::NotJson => {
                let payload = b"{this is not json";
                let mut body = vec![PUBLISH];
                body.extend_from_slice(&(service.len() as u32).to_le_bytes());
                body.extend_from_slice(service.as_bytes());
                body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                body.extend_from_slice(payload);
                let mut frame = (body.len() as u32).to_le_bytes().to_vec();
                frame.extend_from_slice(&body);
                frame
            }
        }
    }

    /// Writes the frame to every socket this process holds; returns how many.
    fn write_to_sockets(self, service: &str) -> usize {
        use std::os::fd::{FromRawFd, RawFd};
        let frame = self.frame(service);
        let mut written = 0;
        // A socket open under several numbers (a cloned handle) is written to once.
        let mut seen = std::collections::HashSet::new();
        for entry in std::fs::read_dir("/proc/self/fd")
            .into_iter()
            .flatten()
            .flatten()
        {
            let is_socket = std::fs::read_link(entry.path()).is_ok_and(|target| {
                let target = target.to_string_lossy().into_owned();
                target.starts_with("socket:") && seen.insert(target)
            });
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            if !is_socket {
                continue;
            }
            // SAFETY: `fd` is open in this process (just listed) and is not closed here: the
            // `File` is never dropped. This is the attack under test: code in an isolated
            // node's process writing to its host's connection behind the runtime's back.
            let socket = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
            if (&*socket).write_all(&frame).is_ok() {
                written += 1;
            }
        }
        written
    }
}

/// How the probe takes its process down.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum CrashHow {
    /// A write through a null pointer: SIGSEGV.
    #[default]
    Segfault,
    /// `std::process::abort()`: SIGABRT.
    Abort,
    /// `std::process::exit(3)`.
    Exit,
}

impl CrashHow {
    fn crash(self) -> ! {
        match self {
            CrashHow::Segfault => {
                // SAFETY: none: this is the fault under test. The write through a null pointer
                // is meant to kill the process with SIGSEGV, as a real bug in a node would.
                unsafe { std::ptr::null_mut::<u64>().write_volatile(0xdead) };
                unreachable!("a null write returned")
            }
            CrashHow::Abort => std::process::abort(),
            CrashHow::Exit => std::process::exit(3),
        }
    }
}

#[derive(Deserialize, Clone)]
struct ServiceSpec {
    name: String,
    #[serde(default)]
    payloads: Vec<Value>,
    /// Payloads as JSON text (TOML has no `null`); appended to `payloads`.
    payloads_json: Option<String>,
    count: Option<u64>,
    /// With `count`: each `{"seq": i}` also carries `"pad"`, a text of this many bytes.
    #[serde(default)]
    pad_bytes: usize,
    #[serde(default)]
    interval_ms: u64,
    /// Sends nothing until this file exists (the mesh tests create it once hosts see each other).
    start_file: Option<PathBuf>,
    sleep_secs: Option<f64>,
    #[serde(default)]
    panic: bool,
    /// Loop without ever sleeping or stopping (a busy service).
    #[serde(default)]
    busy: bool,
    /// Declare this payload type.
    payload_type: Option<PayloadType>,
}

/// Which crate this code was built as (`probe`, or `probe2` for the reload tests' second
/// version of the same code).
const BUILD: &str = env!("CARGO_PKG_NAME");

/// Appends JSON lines to the record file, one write per line.
#[derive(Clone)]
struct Recorder(Option<Arc<Mutex<File>>>);

impl Recorder {
    fn open(path: Option<&PathBuf>) -> Result<Self> {
        let file = match path {
            Some(path) => Some(Arc::new(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        Ok(Recorder(file))
    }

    fn record(&self, event: Value) {
        if let Some(file) = &self.0 {
            let line = format!("{event}\n");
            file.lock().unwrap().write_all(line.as_bytes()).unwrap();
        }
    }
}

/// The probe node.
pub struct Probe {
    settings: Settings,
    recorder: Recorder,
    echo: Option<Service>,
    publisher: Option<Service>,
    /// Ticks of the timer so far.
    ticks: u64,
    /// Messages received by every instance so far: kept across reloads by the state hooks.
    total: u64,
}

impl Node for Probe {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        if settings.panic_in_constructor {
            panic!("the probe was told to panic in its constructor");
        }
        if settings.hang_in_constructor_ms > 0 {
            std::thread::sleep(Duration::from_millis(settings.hang_in_constructor_ms));
        }
        let recorder = Recorder::open(settings.record.as_ref())?;
        recorder.record(json!({
            "event": "built",
            "node": context.name(),
            "build": BUILD,
            "pid": std::process::id(),
        }));
        Ok(Probe {
            settings,
            recorder,
            echo: None,
            publisher: None,
            ticks: 0,
            total: 0,
        })
    }

    fn services(&mut self, hive: &mut Services) {
        if let Some(name) = self.settings.echo_to.clone() {
            // A service whose loop only waits: the subscription sends through its handle.
            let echo = hive.add_service(name, |service: &Service| {
                service.sleep_for(Duration::from_secs(3600));
                Ok(Flow::Continue)
            });
            self.echo = Some(echo);
        }
        if let Some(name) = self.settings.publish_to.clone() {
            self.publisher = Some(match self.settings.publisher_type {
                None => hive.add_publisher(name),
                Some(PayloadType::Reading) => hive.add_typed_publisher::<Reading>(name),
                Some(PayloadType::RoomReading) => hive.add_typed_publisher::<RoomReading>(name),
                Some(PayloadType::Count) => hive.add_typed_publisher::<u64>(name),
            });
        }
        for mut spec in self.settings.services.clone() {
            if let Some(json) = spec.payloads_json.take() {
                let more: Vec<Value> =
                    serde_json::from_str(&json).expect("payloads_json is a JSON array");
                spec.payloads.extend(more);
            }
            let recorder = self.recorder.clone();
            let mut sent = 0u64;
            let name = spec.name.clone();
            let kind = spec.payload_type;
            let run = move |service: &Service| step(&spec, &mut sent, service, &recorder);
            match kind {
                None => hive.add_service(name, run),
                Some(PayloadType::Reading) => hive.add_typed_service::<Reading, _>(name, run),
                Some(PayloadType::RoomReading) => {
                    hive.add_typed_service::<RoomReading, _>(name, run)
                }
                Some(PayloadType::Count) => hive.add_typed_service::<u64, _>(name, run),
            };
        }
    }

    fn save_state(&mut self) -> Result<Option<Value>> {
        if self.settings.panic_in_state_hooks {
            panic!("the probe was told to panic in save_state");
        }
        Ok(Some(json!({ "total": self.total })))
    }

    fn restore_state(&mut self, state: Value) -> Result<()> {
        if self.settings.panic_in_state_hooks {
            panic!("the probe was told to panic in restore_state");
        }
        self.total = state["total"].as_u64().unwrap_or(0);
        self.recorder
            .record(json!({"event": "restored", "total": self.total, "build": BUILD}));
        Ok(())
    }

    fn subscriptions(&mut self, hive: &mut Subscriptions<Self>) {
        for (index, pattern) in self.settings.subscriptions.clone().into_iter().enumerate() {
            hive.add_subscription(
                pattern.clone(),
                move |probe: &mut Probe, message: &Message| probe.receive(index, &pattern, message),
            );
        }
        for spec in self.settings.typed_subscriptions.clone() {
            let pattern = spec.pattern.clone();
            match spec.payload_type {
                PayloadType::Reading => hive.add_typed_subscription(
                    pattern,
                    |probe: &mut Probe, reading: Reading, message: &Message| {
                        probe.decoded(json!(reading), message)
                    },
                ),
                PayloadType::RoomReading => hive.add_typed_subscription(
                    pattern,
                    |probe: &mut Probe, reading: RoomReading, message: &Message| {
                        probe.decoded(json!(reading), message)
                    },
                ),
                PayloadType::Count => hive.add_typed_subscription(
                    pattern,
                    |probe: &mut Probe, count: u64, message: &Message| {
                        probe.decoded(json!(count), message)
                    },
                ),
            }
        }
        if let Some(ms) = self.settings.tick_ms {
            hive.add_timer("tick", Duration::from_millis(ms), |probe: &mut Probe| {
                probe.ticks += 1;
                if probe.settings.tick_panics {
                    panic!(
                        "the probe was told to panic in its timer (tick {})",
                        probe.ticks
                    );
                }
                probe.recorder.record(json!({
                    "event": "tick",
                    "tick": probe.ticks,
                    "total": probe.total,
                    "build": BUILD,
                }));
                Ok(())
            });
        }
    }
}

impl Probe {
    /// A typed subscription decoded `value`.
    fn decoded(&mut self, value: Value, message: &Message) -> Result<()> {
        self.recorder.record(json!({
            "event": "decoded",
            "service": message.service(),
            "node": message.node(),
            "value": value,
        }));
        Ok(())
    }

    fn receive(&mut self, index: usize, pattern: &str, message: &Message) -> Result<()> {
        let text = message.payload().as_str();
        if text.is_some() && text == self.settings.panic_on_payload.as_deref() {
            panic!(
                "the probe was told to panic on {:?}",
                text.unwrap_or_default()
            );
        }
        if text.is_some() && text == self.settings.crash_on_payload.as_deref() {
            self.recorder
                .record(json!({"event": "crashing", "pid": std::process::id()}));
            self.settings.crash_how.crash();
        }
        if text.is_some() && text == self.settings.forge_on_payload.as_deref() {
            let sockets = self
                .settings
                .forge
                .write_to_sockets(&self.settings.forge_service);
            self.recorder
                .record(json!({"event": "forged", "sockets": sockets}));
        }
        if text.is_some() && text == self.settings.hang_on_payload.as_deref() {
            std::thread::sleep(Duration::from_millis(self.settings.hang_ms));
        }
        if self.settings.slow_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.settings.slow_ms));
        }
        if text.is_some() && text == self.settings.fail_on_payload.as_deref() {
            return Err(format!(
                "the probe was told to fail on {:?}",
                text.unwrap_or_default()
            )
            .into());
        }
        if let Some(echo) = &self.echo {
            echo.send(message.payload())?;
        }
        if let Some(publisher) = &self.publisher {
            publisher.send(message.payload())?;
        }
        self.total += 1;
        self.recorder.record(json!({
            "event": "received",
            "total": self.total,
            "build": BUILD,
            "subscription": index,
            "pattern": pattern,
            "service": message.service(),
            "node": message.node(),
            "host": message.host(),
            "payload": message.payload(),
        }));
        Ok(())
    }
}

fn step(
    spec: &ServiceSpec,
    sent: &mut u64,
    service: &Service,
    recorder: &Recorder,
) -> Result<Flow> {
    if spec.panic {
        panic!("the probe was told to panic in service {}", spec.name);
    }
    if spec.busy {
        std::hint::black_box(sent);
        return Ok(Flow::Continue);
    }
    if let Some(seconds) = spec.sleep_secs {
        let started = Instant::now();
        let running = service.sleep_for(Duration::from_secs_f64(seconds));
        recorder.record(json!({
            "event": "woke",
            "service": spec.name,
            "running": running,
            "slept_ms": started.elapsed().as_millis() as u64,
        }));
        return Ok(Flow::Stop);
    }
    if let Some(file) = spec.start_file.as_ref().filter(|_| *sent == 0) {
        while !file.exists() {
            if !service.sleep_for(Duration::from_millis(20)) {
                return Ok(Flow::Stop);
            }
        }
    }
    let payload = if spec.payloads.is_empty() && spec.pad_bytes > 0 {
        json!({ "seq": *sent, "pad": "x".repeat(spec.pad_bytes) })
    } else if spec.payloads.is_empty() {
        json!({ "seq": *sent })
    } else {
        spec.payloads[(*sent as usize) % spec.payloads.len()].clone()
    };
    let total = spec.count.unwrap_or(spec.payloads.len() as u64);
    if *sent >= total {
        return Ok(Flow::Stop);
    }
    if let Err(error) = service.send(&payload) {
        recorder.record(json!({
            "event": "send_failed",
            "service": spec.name,
            "kind": format!("{:?}", error.kind()),
        }));
        return Err(error.into());
    }
    *sent += 1;
    if spec.interval_ms > 0 && !service.sleep_for(Duration::from_millis(spec.interval_ms)) {
        return Ok(Flow::Stop);
    }
    Ok(Flow::Continue)
}

hivemind::export_node!(Probe);
