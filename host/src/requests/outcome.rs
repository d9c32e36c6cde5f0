//! What a request comes to: each responder's [`Part`] (an [`Answer`] or a [`Failure`]) and
//! the whole [`Outcome`], with the failure kinds' stable names.
//!
//! Guarantees: every failure kind has one stable name (the HTTP API's, `hm call`'s and
//! `/metrics`'s), [`kind_from_name`] reads back exactly what [`kind_name`] writes, and a
//! [`Failure`] serialises its kind by that name.

use serde::{Deserialize, Serialize};

pub(crate) use hivemind::abi::RequestErrorKind as FailureKind;

/// The stable name of a failure kind, as the HTTP API, `hm call` and `/metrics` show it.
pub(crate) fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::NoResponder => "no_responder",
        FailureKind::Timeout => "timeout",
        FailureKind::HandlerError => "handler_error",
        FailureKind::Panicked => "panicked",
        FailureKind::Restarted => "restarted",
        FailureKind::TooLarge => "too_large",
        FailureKind::WouldBlock => "would_block",
        FailureKind::InvalidArgs => "invalid_args",
        FailureKind::NotSerializable => "not_serializable",
        FailureKind::Stopping => "stopping",
        FailureKind::Busy => "busy",
        _ => "other",
    }
}

/// The kind named `name` (see [`kind_name`]); `None` for a name it does not know.
pub(crate) fn kind_from_name(name: &str) -> Option<FailureKind> {
    ALL_KINDS.iter().copied().find(|k| kind_name(*k) == name)
}

/// Every failure kind, in a fixed order (for `/metrics`).
pub(crate) const ALL_KINDS: [FailureKind; 11] = [
    FailureKind::NoResponder,
    FailureKind::Timeout,
    FailureKind::HandlerError,
    FailureKind::Panicked,
    FailureKind::Restarted,
    FailureKind::TooLarge,
    FailureKind::WouldBlock,
    FailureKind::InvalidArgs,
    FailureKind::NotSerializable,
    FailureKind::Stopping,
    FailureKind::Busy,
];

/// Why a request (or one responder's part of it) got no reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    /// What went wrong.
    #[serde(
        serialize_with = "serialize_kind",
        deserialize_with = "deserialize_kind"
    )]
    pub(crate) kind: FailureKind,
    /// For people: names the request and the fix.
    pub(crate) message: String,
    /// The responder involved, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    /// Its host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
}

fn serialize_kind<S: serde::Serializer>(kind: &FailureKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind_name(*kind))
}

fn deserialize_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FailureKind, D::Error> {
    let name = String::deserialize(d)?;
    // A kind this host does not know (a newer peer's) reads as the handler's error.
    Ok(kind_from_name(&name).unwrap_or(FailureKind::HandlerError))
}

impl Failure {
    /// A failure with no responder involved.
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            node: None,
            host: None,
        }
    }

    /// The same, naming the responder.
    pub(crate) fn of(mut self, node: &str, host: &str) -> Self {
        self.node = Some(node.to_owned());
        self.host = Some(host.to_owned());
        self
    }
}

/// One responder's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// The node that answered.
    pub(crate) node: String,
    /// Its host.
    pub(crate) host: String,
    /// The reply, as JSON text.
    pub(crate) json: String,
}

/// One responder's outcome.
pub(crate) type Part = Result<Answer, Failure>;

/// A whole request's outcome: every asked responder's part, or why nobody was asked.
pub(crate) type Outcome = Result<Vec<Part>, Failure>;
