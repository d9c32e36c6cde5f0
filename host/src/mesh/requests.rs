//! Requests across hosts: carries a request from this host's router to a node of another host
//! over Zenoh's own query/reply, and answers the other hosts' requests with this host's nodes.
//!
//! # Design
//!
//! - **What a host answers** travels in its view ([`super::peers::WireRequest`]: name, node,
//!   help), fetched about once a second with the rest of the view, checked and capped there.
//!   [`MeshAsker`] is the router's [`Remote`]: it offers the responders of the hosts that are up.
//! - **One queryable per host**, on `hivemind/<hive>/ask/<host>` (see [`super::keys`]), not one
//!   per request name: names come and go with reloads, and a per-name key would need a Zenoh
//!   declaration per name and per host. The query's payload is the arguments, as JSON text; its
//!   attachment is an [`AskEnvelope`]: the request's name, the node asked, who asks, the
//!   asker's timeout and the largest reply it takes. The answering host hands it to its router
//!   for that node only ([`Router::route_to`]: never another node, never a third host), and
//!   replies once: the reply's JSON text with `reply`, or the [`Failure`] as JSON with
//!   `reply_err` (its kind is one of the router's; an unknown one reads as `handler_error`).
//! - **Authentication** is the mesh's own: queries and replies travel on the same Zenoh session
//!   as messages, which beyond loopback runs over mutual TLS only with the hive's CA. A peer
//!   without the hive's certificates has no session with any member, so it can neither ask nor
//!   answer, nor learn what is answered. (A loopback-only mesh trusts this machine's processes,
//!   as it does for messages.)
//!
//! # Guarantees
//!
//! - **One outcome per remote ask, never a hang.** [`MeshAsker::ask`] calls its `done` exactly
//!   once: with the first reply; with a [`FailureKind::Timeout`] when the asker's deadline
//!   passes first (the router's deadline thread also fails it then); or, when the query ends
//!   without a reply before the deadline, with [`FailureKind::Restarted`] naming the host that
//!   left or died with the request in hand. Zenoh ends a query at once when the link to the
//!   answering host closes (a killed process's sockets close with it); the host's liveliness
//!   token going away ends every ask still out to it as well, at the latest after
//!   `[mesh] lease_ms`. Leaving the mesh ends this host's asks with [`FailureKind::Stopping`].
//! - **Bounded input.** An envelope is read only up to [`MAX_ASK_ENVELOPE_BYTES`], a failure
//!   up to [`MAX_FAILURE_BYTES`] (its message kept to [`MAX_TEXT`] bytes); the names in an
//!   envelope are checked like local ones (request names as in views, node names as in
//!   `[nodes.NAME]`, host names as in `[mesh] host`); its timeout is cut to the router's
//!   [`MAX_TIMEOUT`]. Arguments and replies are held to `[messages] max_payload_bytes` on both
//!   sides (the answering host refuses a reply larger than the asker takes, `too_large`), must
//!   be UTF-8 JSON, and Zenoh itself drops any message beyond its `max_message_size`.
//! - **Named, not trusted.** A failure from another host is reported with the node and host
//!   that were asked, whatever the failure says.

use super::envelope::VERSION;
use super::keys::Keys;
use super::peers::{MAX_TEXT, Peers, cut_to, is_request_name};
use crate::requests::{
    Answer, Ask, Failure, FailureKind, MAX_TIMEOUT, Outcome, Part, Remote, RemoteResponder, Router,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use zenoh::Wait;
use zenoh::query::{ConsolidationMode, Query, QueryTarget, Reply};
use zenoh::sample::Locality;

/// The largest request envelope read (a real one is well under 1 KiB: its names are bounded).
pub(crate) const MAX_ASK_ENVELOPE_BYTES: usize = 2048;
/// The largest failure read from another host.
pub(crate) const MAX_FAILURE_BYTES: usize = 8192;
/// How much longer than the asker's timeout a query may stay open (the router's deadline
/// thread answers the asker at the timeout itself).
const QUERY_SLACK: Duration = Duration::from_millis(100);

/// Who asks what of which node: a request query's attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AskEnvelope {
    /// The mesh format version ([`VERSION`]).
    pub v: u32,
    /// The request's name.
    pub name: String,
    /// The node asked.
    pub to: String,
    /// The asking node (or `api`, `cli`).
    pub from_node: String,
    /// The asking host.
    pub from_host: String,
    /// How long the asker waits, in ms (cut to [`MAX_TIMEOUT`]).
    pub timeout_ms: u64,
    /// The largest reply the asker takes, in bytes (its `max_payload_bytes`).
    pub max_reply: u64,
}

impl AskEnvelope {
    /// The attachment bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Reads and checks an attachment (see the module's bounds); says why it is refused.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_ASK_ENVELOPE_BYTES {
            return Err(format!(
                "its envelope is over {MAX_ASK_ENVELOPE_BYTES} bytes"
            ));
        }
        let envelope: AskEnvelope = serde_json::from_slice(bytes)
            .map_err(|e| format!("its attachment is not a hivemind request envelope ({e})"))?;
        if envelope.v != VERSION {
            return Err(format!(
                "it was sent by an hm speaking mesh format {} (this hm speaks {VERSION}); run the same hm version on every host",
                envelope.v
            ));
        }
        if !is_request_name(&envelope.name) {
            return Err("its request name is empty, too long or not printable".into());
        }
        if crate::names::check_node_name(&envelope.to).is_err() {
            return Err("the node it asks is not a valid node name".into());
        }
        if !crate::names::is_host_name(&envelope.from_host) {
            return Err("its asking host is not a valid host name".into());
        }
        let asker = envelope.from_node.as_str();
        if !crate::names::is_sender_name(asker) {
            return Err("its asking node is not a valid node name".into());
        }
        Ok(envelope)
    }

    /// The asker's timeout, within the router's bounds.
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms).min(MAX_TIMEOUT)
    }
}

/// A failure as another host sent it: bounded, checked, named after the node and host asked.
pub(crate) fn read_failure(bytes: &[u8], name: &str, node: &str, host: &str) -> Failure {
    let parsed = (bytes.len() <= MAX_FAILURE_BYTES)
        .then(|| serde_json::from_slice::<Failure>(bytes).ok())
        .flatten();
    let mut failure = parsed.unwrap_or_else(|| {
        Failure::new(
            FailureKind::HandlerError,
            format!(
                "host `{host}` answered request `{name}` with a failure this hm cannot read (over {MAX_FAILURE_BYTES} bytes or not JSON); run the same hm version on every host"
            ),
        )
    });
    cut_to(&mut failure.message, MAX_TEXT);
    failure.of(node, host)
}

/// The asks this host has out on the mesh, so that a host that goes, or this host leaving,
/// ends them at once. An entry lives until its ask is answered (at most the router's
/// [`MAX_TIMEOUT`] plus [`QUERY_SLACK`]: Zenoh ends the query then).
#[derive(Default)]
pub(super) struct PendingAsks {
    table: Mutex<HashMap<u64, Arc<Pending>>>,
    next: AtomicU64,
    stopping: AtomicBool,
}

/// One ask out on the mesh.
struct Pending {
    id: u64,
    name: String,
    node: String,
    host: String,
    deadline: Instant,
    done: Mutex<Option<PartDone>>,
}

/// What gets one remote responder's part.
type PartDone = Box<dyn FnOnce(Part) + Send>;

impl PendingAsks {
    fn add(
        &self,
        name: &str,
        node: &str,
        host: &str,
        deadline: Instant,
        done: PartDone,
    ) -> Arc<Pending> {
        let pending = Arc::new(Pending {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            node: node.to_owned(),
            host: host.to_owned(),
            deadline,
            done: Mutex::new(Some(done)),
        });
        self.table.lock().insert(pending.id, pending.clone());
        pending
    }

    /// Gives `pending` its outcome, if it has none yet.
    fn finish(&self, pending: &Pending, part: Part) {
        let done = pending.done.lock().take();
        if let Some(done) = done {
            self.table.lock().remove(&pending.id);
            done(part);
        }
    }

    /// The outcome of an ask that ended with no reply.
    fn ended(&self, pending: &Pending) -> Failure {
        let (name, node, host) = (&pending.name, &pending.node, &pending.host);
        let failure = if Instant::now() >= pending.deadline {
            Failure::new(
                FailureKind::Timeout,
                format!(
                    "request `{name}` got no reply from node `{node}` of host `{host}` before its timeout"
                ),
            )
        } else if self.stopping.load(Ordering::Acquire) {
            Failure::new(
                FailureKind::Stopping,
                format!("this host left the mesh with request `{name}` out to host `{host}`"),
            )
        } else {
            Failure::new(
                FailureKind::Restarted,
                format!(
                    "host `{host}` left the mesh (or died) with request `{name}` in hand (node `{node}`); ask again, or see GET /api/mesh"
                ),
            )
        };
        failure.of(node, host)
    }

    /// `host`'s liveliness token went: every ask out to it ends now.
    pub(super) fn host_left(&self, host: &str) {
        let gone: Vec<Arc<Pending>> = self
            .table
            .lock()
            .values()
            .filter(|p| p.host == host)
            .cloned()
            .collect();
        for pending in gone {
            self.finish(&pending, Err(self.ended(&pending)));
        }
    }

    /// This host leaves the mesh: every ask still out ends now.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let all: Vec<Arc<Pending>> = self.table.lock().drain().map(|(_, p)| p).collect();
        for pending in all {
            self.finish(&pending, Err(self.ended(&pending)));
        }
    }
}

/// Held by a query's reply callback: its drop (Zenoh ends the query) ends the ask.
struct QueryGuard {
    asks: Arc<PendingAsks>,
    pending: Arc<Pending>,
    key: String,
    max_payload_bytes: usize,
}

impl QueryGuard {
    fn reply(&self, reply: &Reply) {
        let (name, node, host) = (&self.pending.name, &self.pending.node, &self.pending.host);
        let part = match reply.result() {
            Ok(sample) if sample.key_expr().as_str() != self.key => return,
            Ok(sample) => {
                let size = sample.payload().len();
                let bytes = sample.payload().to_bytes();
                let json = (size <= self.max_payload_bytes)
                    .then(|| std::str::from_utf8(&bytes).ok())
                    .flatten()
                    .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
                match json {
                    Some(json) => Ok(Answer {
                        node: node.clone(),
                        host: host.clone(),
                        json: json.to_owned(),
                    }),
                    None if size > self.max_payload_bytes => Err(Failure::new(
                        FailureKind::TooLarge,
                        format!(
                            "the reply to request `{name}` from host `{host}` is {size} bytes, over this hive's limit of {} bytes ([messages] max_payload_bytes)",
                            self.max_payload_bytes
                        ),
                    )
                    .of(node, host)),
                    None => Err(Failure::new(
                        FailureKind::NotSerializable,
                        format!("host `{host}` replied to request `{name}` with something that is not JSON text"),
                    )
                    .of(node, host)),
                }
            }
            Err(error) => Err(read_failure(&error.payload().to_bytes(), name, node, host)),
        };
        self.asks.finish(&self.pending, part);
    }
}

impl Drop for QueryGuard {
    fn drop(&mut self) {
        self.asks
            .finish(&self.pending, Err(self.asks.ended(&self.pending)));
    }
}

/// The router's way to the other hosts' nodes (its [`Remote`]), while the mesh runs.
pub(super) struct MeshAsker {
    pub(super) session: zenoh::Session,
    pub(super) keys: Keys,
    pub(super) max_payload_bytes: usize,
    pub(super) peers: Arc<Mutex<Peers>>,
    pub(super) asks: Arc<PendingAsks>,
}

impl Remote for MeshAsker {
    fn responders(&self, name: &str) -> Vec<(String, String)> {
        self.peers.lock().responders(name)
    }

    fn listed(&self) -> Vec<RemoteResponder> {
        self.peers
            .lock()
            .requests()
            .into_iter()
            .map(|(host, r)| RemoteResponder {
                name: r.name,
                node: r.node,
                host,
                help: r.help,
            })
            .collect()
    }

    fn ask(&self, ask: &Ask, node: &str, host: &str, done: Box<dyn FnOnce(Part) + Send>) {
        let deadline = Instant::now() + ask.timeout;
        let pending = self.asks.add(&ask.name, node, host, deadline, done);
        if !self.peers.lock().is_up(host) {
            // Gone between the router's choice and now.
            return self.asks.finish(&pending, Err(self.asks.ended(&pending)));
        }
        let envelope = AskEnvelope {
            v: VERSION,
            name: ask.name.clone(),
            to: node.to_owned(),
            from_node: ask.from_node.to_string(),
            from_host: ask.from_host.to_string(),
            timeout_ms: u64::try_from(ask.timeout.as_millis()).unwrap_or(u64::MAX),
            max_reply: u64::try_from(self.max_payload_bytes).unwrap_or(u64::MAX),
        };
        let key = self.keys.ask(host);
        let guard = QueryGuard {
            asks: self.asks.clone(),
            pending: pending.clone(),
            key: key.clone(),
            max_payload_bytes: self.max_payload_bytes,
        };
        let sent = self
            .session
            .get(key)
            .payload(ask.args.as_bytes())
            .attachment(envelope.to_bytes())
            .target(QueryTarget::BestMatching)
            // Each reply as it comes (the default would hold it until the query ends).
            .consolidation(ConsolidationMode::None)
            .allowed_destination(Locality::Remote)
            .timeout(ask.timeout + QUERY_SLACK)
            .callback(move |reply| guard.reply(&reply))
            .wait();
        if let Err(error) = sent {
            let failure = Failure::new(
                FailureKind::Restarted,
                format!(
                    "could not send request `{}` to host `{host}` over the mesh: {error}",
                    ask.name
                ),
            );
            self.asks.finish(&pending, Err(failure.of(node, host)));
        }
    }
}

/// Answers a request query from another host with this host's node (see the module's design).
/// Runs in Zenoh's callback: it only checks and hands the request to the router, which never
/// blocks; the reply is sent from wherever the outcome arrives.
pub(super) fn answer(router: &Weak<Router>, host: &str, query: Query) {
    let refuse = |query: &Query, kind: FailureKind, message: String| {
        let failure = Failure::new(kind, message);
        let bytes = serde_json::to_vec(&failure).expect("a failure always serialises");
        if let Err(error) = query.reply_err(bytes).wait() {
            tracing::debug!("could not answer a request from the mesh: {error}");
        }
    };
    let envelope = match query
        .attachment()
        .map(|a| AskEnvelope::parse(&a.to_bytes()))
    {
        Some(Ok(envelope)) => envelope,
        Some(Err(reason)) => {
            tracing::debug!("refused a request from the mesh: {reason}");
            return refuse(
                &query,
                FailureKind::InvalidArgs,
                format!("host `{host}` refused a request: {reason}"),
            );
        }
        None => {
            return refuse(
                &query,
                FailureKind::InvalidArgs,
                format!("host `{host}` refused a request with no envelope (was it sent by hm?)"),
            );
        }
    };
    let Some(router) = router.upgrade() else {
        return refuse(
            &query,
            FailureKind::Stopping,
            format!("host `{host}` is stopping"),
        );
    };
    let name = envelope.name.clone();
    let limit = router
        .max_payload_bytes()
        .min(usize::try_from(envelope.max_reply).unwrap_or(usize::MAX));
    let args = match query.payload() {
        None => "null".to_owned(),
        Some(payload) if payload.len() > router.max_payload_bytes() => {
            return refuse(
                &query,
                FailureKind::TooLarge,
                format!(
                    "the arguments of request `{name}` are {} bytes, over host `{host}`'s limit of {} bytes ([messages] max_payload_bytes)",
                    payload.len(),
                    router.max_payload_bytes()
                ),
            );
        }
        Some(payload) => match String::from_utf8(payload.to_bytes().into_owned()) {
            Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() => text,
            _ => {
                return refuse(
                    &query,
                    FailureKind::InvalidArgs,
                    format!("the arguments of request `{name}` are not JSON text"),
                );
            }
        },
    };
    let ask = Ask {
        name: envelope.name.clone(),
        args,
        from_node: envelope.from_node.as_str().into(),
        from_host: envelope.from_host.as_str().into(),
        timeout: envelope.timeout(),
        all: false,
    };
    let host = host.to_owned();
    router.route_to(ask, &envelope.to, move |outcome: Outcome| {
        let part = match outcome {
            Ok(mut parts) if !parts.is_empty() => parts.swap_remove(0),
            Ok(_) => Err(Failure::new(
                FailureKind::NoResponder,
                format!("no node of host `{host}` answered request `{name}`"),
            )),
            Err(failure) => Err(failure),
        };
        let sent = match part {
            Ok(answer) if answer.json.len() > limit => {
                let failure = Failure::new(
                    FailureKind::TooLarge,
                    format!(
                        "the reply to request `{name}` is {} bytes, over the asking host's limit of {limit} bytes ([messages] max_payload_bytes)",
                        answer.json.len()
                    ),
                );
                query
                    .reply_err(serde_json::to_vec(&failure).expect("a failure always serialises"))
                    .wait()
            }
            Ok(answer) => query
                .reply(query.key_expr().clone(), answer.json.into_bytes())
                .wait(),
            Err(failure) => query
                .reply_err(serde_json::to_vec(&failure).expect("a failure always serialises"))
                .wait(),
        };
        if let Err(error) = sent {
            tracing::debug!("could not send a reply over the mesh: {error}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> AskEnvelope {
        AskEnvelope {
            v: VERSION,
            name: "alfred/advice".into(),
            to: "alfred".into(),
            from_node: "batman".into(),
            from_host: "manor".into(),
            timeout_ms: 500,
            max_reply: 1024,
        }
    }

    #[test]
    fn an_envelope_round_trips_and_its_names_are_checked() {
        let good = envelope();
        assert_eq!(AskEnvelope::parse(&good.to_bytes()).unwrap(), good);
        for asker in ["api", "cli"] {
            let mut e = envelope();
            e.from_node = asker.into();
            assert!(AskEnvelope::parse(&e.to_bytes()).is_ok(), "{asker}");
        }
        type Spoil = fn(&mut AskEnvelope);
        let bad: Vec<(&str, Spoil)> = vec![
            ("version", |e| e.v = VERSION + 1),
            ("empty name", |e| e.name.clear()),
            ("control", |e| e.name = "a\nb".into()),
            ("long name", |e| e.name = "x".repeat(300)),
            ("node", |e| e.to = "../etc".into()),
            ("asker", |e| e.from_node = "bad name".into()),
            ("host", |e| e.from_host = "evil\u{1b}host".into()),
        ];
        for (what, spoil) in bad {
            let mut e = envelope();
            spoil(&mut e);
            assert!(AskEnvelope::parse(&e.to_bytes()).is_err(), "{what}");
        }
        assert!(AskEnvelope::parse(&vec![b' '; MAX_ASK_ENVELOPE_BYTES + 1]).is_err());
        assert!(AskEnvelope::parse(b"not json").is_err());
        let mut long = envelope();
        long.timeout_ms = u64::MAX;
        assert_eq!(long.timeout(), MAX_TIMEOUT, "cut to the router's bound");
    }

    #[test]
    fn a_remote_failure_is_bounded_and_names_the_node_and_host_asked() {
        let sent =
            Failure::new(FailureKind::Panicked, "x".repeat(MAX_TEXT * 2)).of("liar", "elsewhere");
        let bytes = serde_json::to_vec(&sent).unwrap();
        let read = read_failure(&bytes, "a/b", "alfred", "tower");
        assert_eq!(read.kind, FailureKind::Panicked);
        assert_eq!(read.message.len(), MAX_TEXT);
        assert_eq!(
            (read.node.as_deref(), read.host.as_deref()),
            (Some("alfred"), Some("tower"))
        );
        let unknown = read_failure(
            br#"{"kind":"brand_new","message":"m"}"#,
            "a/b",
            "alfred",
            "tower",
        );
        assert_eq!(unknown.kind, FailureKind::HandlerError);
        let huge = read_failure(&vec![b' '; MAX_FAILURE_BYTES + 1], "a/b", "alfred", "tower");
        assert_eq!(huge.kind, FailureKind::HandlerError);
        assert!(huge.message.contains("host `tower`"), "{}", huge.message);
    }

    #[test]
    fn an_ask_ends_once_with_the_host_that_left_or_at_its_deadline() {
        let asks = PendingAsks::default();
        let (sender, parts) = crossbeam_channel::unbounded();
        let done = |sender: &crossbeam_channel::Sender<Part>| -> Box<dyn FnOnce(Part) + Send> {
            let sender = sender.clone();
            Box::new(move |part| sender.send(part).unwrap())
        };
        let far = Instant::now() + Duration::from_secs(60);
        let to_tower = asks.add("a/b", "alfred", "tower", far, done(&sender));
        let _to_manor = asks.add("a/b", "alfred", "manor", far, done(&sender));
        asks.host_left("tower");
        let failure = parts.try_recv().unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Restarted);
        assert!(
            failure.message.contains("host `tower` left"),
            "{}",
            failure.message
        );
        assert!(parts.try_recv().is_err(), "only tower's ask");
        asks.finish(&to_tower, Err(Failure::new(FailureKind::Timeout, "late")));
        assert!(parts.try_recv().is_err(), "once");
        let past = asks.add("a/b", "alfred", "tower", Instant::now(), done(&sender));
        assert_eq!(asks.ended(&past).kind, FailureKind::Timeout);
        asks.stop();
        let kinds: Vec<FailureKind> = parts.try_iter().map(|p| p.unwrap_err().kind).collect();
        assert_eq!(kinds.len(), 2);
        assert!(kinds.contains(&FailureKind::Stopping) && kinds.contains(&FailureKind::Timeout));
        assert!(asks.table.lock().is_empty());
    }
}
