//! The recording host a [`TestNode`](super::TestNode) runs on in place of `hm`: it keeps what
//! the node sends, logs, sleeps and asks ([`super::records`]), refuses a message for the
//! reasons a hive does (too large, sent before the start or after the stop, an unknown
//! service), and answers the node's requests from the test's canned replies.

use super::records::{Asked, LogLine, Sent};
use super::store::MemoryStore;
use crate::Level;
use crate::abi::{Host, LogLevel, ReplyData, RequestFailure, RequestOutcomes, SendFailure};
use crate::outcome::{RequestErrorKind, SendErrorKind};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The largest payload a test node may send unless told otherwise: the hive's default
/// `[messages] max_payload_bytes` (1 MiB).
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// let just_over = "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES);
/// // The JSON text of a string has its quotes: over the limit, refused as in a hive.
/// let error = node.deliver("in-big", &just_over).unwrap_err();
/// assert!(error.message().contains("max_payload_bytes"), "{error}");
/// ```
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// The name messages delivered by a test come from (as [`Message::node`](crate::Message::node)
/// and [`Message::host`](crate::Message::host)), unless
/// [`TestNode::deliver_from`](super::TestNode::deliver_from) says otherwise.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// node.deliver("in-a", "hi").unwrap();
/// assert_eq!(node.logs()[0].message, format!("echo hi from {TEST_SENDER}"));
/// ```
pub const TEST_SENDER: &str = "test";

/// What a test answers a request name the node asks with.
#[derive(Clone)]
pub(super) enum Canned {
    Reply(String),
    Fail(RequestErrorKind, String),
}

/// What the recording host keeps.
#[derive(Default)]
pub(super) struct Record {
    pub(super) sent: Vec<Sent>,
    pub(super) logs: Vec<LogLine>,
    pub(super) sleeps: Vec<Duration>,
    pub(super) asked: Vec<Asked>,
    pub(super) canned: HashMap<String, Canned>,
    /// Outcomes of asks, waiting for
    /// [`TestNode::deliver_replies`](super::TestNode::deliver_replies).
    pub(super) replies: Vec<(u64, RequestOutcomes)>,
    pub(super) next_token: u64,
}

impl Record {
    /// Answers a request the node asked, from the canned replies.
    fn answer(&mut self, name: &str, args: &str, timeout: u64, all: bool) -> RequestOutcomes {
        self.asked.push(Asked {
            name: name.to_owned(),
            json: args.to_owned(),
            timeout: Duration::from_nanos(timeout),
            all,
        });
        let outcome = match self.canned.get(name) {
            None => {
                return RResult::RErr(RequestFailure {
                    kind: RequestErrorKind::NoResponder,
                    message: format!(
                        "no node answers request `{name}` (the test gave no reply_to for it)"
                    )
                    .into(),
                    node: RString::new(),
                    host: RString::new(),
                });
            }
            Some(Canned::Reply(json)) => RResult::ROk(ReplyData {
                node: TEST_SENDER.into(),
                host: TEST_SENDER.into(),
                json: json.as_str().into(),
            }),
            Some(Canned::Fail(kind, message)) => RResult::RErr(RequestFailure {
                kind: *kind,
                message: message.as_str().into(),
                node: TEST_SENDER.into(),
                host: TEST_SENDER.into(),
            }),
        };
        RResult::ROk(RVec::from(vec![outcome]))
    }
}

/// The recording host's state, shared by the node's [`HostBox`](crate::abi::HostBox) clones
/// and the [`TestNode`](super::TestNode).
pub(super) struct Recorder {
    /// Service names by id; empty until the node has been built (sends then fail as in a hive).
    pub(super) services: Mutex<Vec<String>>,
    pub(super) started: AtomicBool,
    pub(super) running: AtomicBool,
    pub(super) max_payload_bytes: AtomicUsize,
    pub(super) record: Mutex<Record>,
    /// The node's store, kept across reloads.
    pub(super) store: Arc<MemoryStore>,
}

impl Recorder {
    /// A recorder with nothing recorded, for a node not built yet: running, not started, at
    /// the default payload limit.
    pub(super) fn new(store: Arc<MemoryStore>) -> Self {
        Self {
            store,
            services: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            running: AtomicBool::new(true),
            max_payload_bytes: AtomicUsize::new(DEFAULT_MAX_PAYLOAD_BYTES),
            record: Mutex::new(Record::default()),
        }
    }

    pub(super) fn record(&self) -> MutexGuard<'_, Record> {
        // A panic inside a callback is caught while no lock is held; a poisoned lock can only
        // come from a test thread that panicked, and its record is still worth reading.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn log(&self, level: Level, message: String) {
        self.record().logs.push(LogLine { level, message });
    }

    /// Refuses a message as the host does: logged as a warning, returned with its kind.
    fn refuse(&self, kind: SendErrorKind, message: String) -> RResult<(), SendFailure> {
        self.log(Level::Warn, message.clone());
        RResult::RErr(SendFailure {
            kind,
            message: message.into(),
        })
    }
}

/// The host a [`TestNode`](super::TestNode) runs on.
#[derive(Clone)]
pub(super) struct TestHost(pub(super) Arc<Recorder>);

impl Host for TestHost {
    fn send(&self, service: u32, payload: RStr<'_>) -> RResult<(), SendFailure> {
        let recorder = &self.0;
        if !recorder.running.load(Ordering::Relaxed) {
            return RResult::RErr(SendFailure {
                kind: SendErrorKind::Stopping,
                message: "the node is stopping".into(),
            });
        }
        if !recorder.started.load(Ordering::Relaxed) {
            return recorder.refuse(
                SendErrorKind::NotStarted,
                "a message was sent before the node started (send from a service or a subscription, not from Node::new)".into(),
            );
        }
        let name = {
            let services = recorder
                .services
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            services.get(service as usize).cloned()
        };
        let Some(name) = name else {
            return recorder.refuse(
                SendErrorKind::UnknownService,
                format!("this node has no service number {service}"),
            );
        };
        let limit = recorder.max_payload_bytes.load(Ordering::Relaxed);
        if payload.len() > limit {
            return recorder.refuse(
                SendErrorKind::TooLarge,
                format!(
                    "service `{name}` sent a payload of {} bytes, over the hive's limit of {limit} bytes ([messages] max_payload_bytes in config/hive.toml); it was not sent",
                    payload.len()
                ),
            );
        }
        recorder.record().sent.push(Sent {
            service: name,
            json: payload.as_str().to_owned(),
        });
        RResult::ROk(())
    }

    fn sleep(&self, nanos: u64) -> bool {
        self.0.record().sleeps.push(Duration::from_nanos(nanos));
        self.is_running()
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let level = match level {
            LogLevel::Error => Level::Error,
            LogLevel::Warn => Level::Warn,
            LogLevel::Info => Level::Info,
            LogLevel::Debug => Level::Debug,
        };
        self.0.log(level, message.as_str().to_owned());
    }

    fn is_running(&self) -> bool {
        self.0.running.load(Ordering::Relaxed)
    }

    fn request(
        &self,
        name: RStr<'_>,
        args: RStr<'_>,
        timeout_nanos: u64,
        all: bool,
    ) -> RequestOutcomes {
        self.0
            .record()
            .answer(name.as_str(), args.as_str(), timeout_nanos, all)
    }

    fn ask(&self, name: RStr<'_>, args: RStr<'_>, timeout_nanos: u64, all: bool) -> u64 {
        let mut record = self.0.record();
        let outcome = record.answer(name.as_str(), args.as_str(), timeout_nanos, all);
        record.next_token += 1;
        let token = record.next_token;
        record.replies.push((token, outcome));
        token
    }

    fn store(&self, call: RStr<'_>) -> RString {
        self.0.store.call(call.as_str()).into()
    }
}

/// A recording host with nothing recorded yet, for the crate's own tests of the glue.
#[cfg(test)]
pub(crate) fn recording_host() -> crate::abi::HostBox {
    use crate::abi::HostBox;
    use abi_stable::sabi_trait::TD_Opaque;
    HostBox::from_value(TestHost(Arc::new(Recorder::new(Arc::default()))), TD_Opaque)
}
