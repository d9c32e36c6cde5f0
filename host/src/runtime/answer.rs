//! An instance's side of requests, on its delivery thread: answering the requests on its node's
//! [`Desk`] with the node's handlers, and handing the outcomes of its non-blocking asks (its
//! [`Mailbox`]) to its reply callbacks. Between deliveries, so in order with its
//! subscriptions and timers, never at the same time as one.
//!
//! A request whose asker has stopped waiting is dropped unrun. A request for a name this
//! instance does not answer (a new instance that dropped it) fails with `NoResponder`. A reply
//! over `[messages] max_payload_bytes` is refused (`TooLarge`). A handler's error or panic is
//! logged to the node's log and goes to the asker; the node keeps running.

use super::state::NodeShared;
use crate::requests::{Desk, Failure, FailureKind, Job, Mailbox, Outcome};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use hivemind::abi::{
    LogLevel, NodeBox, ReplyData, RequestDecl, RequestFailure, RequestOutcome, RequestOutcomes,
    RequestView,
};

/// An instance's requests: the names it answers (by id) and its node's desk and mailbox.
pub(crate) struct Answering {
    names: Vec<String>,
    desk: Desk,
    mailbox: Mailbox,
    max_reply_bytes: usize,
}

impl Answering {
    /// The requests `decls` of an instance whose node has `desk` and `mailbox`.
    pub(crate) fn new(
        decls: &[RequestDecl],
        desk: Desk,
        mailbox: Mailbox,
        max_reply_bytes: usize,
    ) -> Self {
        Self {
            names: decls.iter().map(|d| d.name.as_str().to_owned()).collect(),
            desk,
            mailbox,
            max_reply_bytes,
        }
    }

    /// The names and help lines, for the router.
    pub(crate) fn registration(decls: &[RequestDecl]) -> Vec<(String, String)> {
        decls
            .iter()
            .map(|d| (d.name.as_str().to_owned(), d.help.as_str().to_owned()))
            .collect()
    }

    /// Whether requests or replies wait.
    pub(crate) fn pending(&self) -> bool {
        !self.desk.inbox.is_empty() || !self.mailbox.inbox.is_empty()
    }

    /// Handles up to `limit` waiting requests and replies; returns how many it handled. Takes
    /// none once the node is asked to stop (a hand-over: the next instance takes them).
    pub(crate) fn handle(&self, object: &mut NodeBox, shared: &NodeShared, limit: usize) -> usize {
        let mut count = 0;
        while count < limit && !shared.is_stopping() {
            if let Ok((token, outcome)) = self.mailbox.inbox.try_recv() {
                count += 1;
                self.reply(object, shared, token, outcome);
                continue;
            }
            match self.desk.inbox.try_recv() {
                Ok(job) => {
                    count += 1;
                    self.answer(object, shared, job);
                }
                Err(_) => break,
            }
        }
        count
    }

    fn reply(&self, object: &mut NodeBox, shared: &NodeShared, token: u64, outcome: Outcome) {
        let result = shared.busy.around(|| {
            object
                .replied(token, outcomes_to_abi(&outcome))
                .into_result()
        });
        if let Err(error) = result {
            shared.log.write(
                LogLevel::Error,
                &format!(
                    "a reply callback {}: {}",
                    if error.panicked { "panicked" } else { "failed" },
                    error.message
                ),
            );
        }
    }

    fn answer(&self, object: &mut NodeBox, shared: &NodeShared, job: Job) {
        if job.expired() {
            // Its asker has its timeout already; dropping it changes nothing for them.
            return;
        }
        let Some(index) = self.names.iter().position(|n| **n == *job.name) else {
            let message = format!(
                "node `{}` no longer answers request `{}` (its new instance does not register it)",
                shared.name, job.name
            );
            job.answer(Err(Failure::new(FailureKind::NoResponder, message)));
            return;
        };
        let view = RequestView {
            name: RStr::from_str(&job.name),
            node: RStr::from_str(&job.from_node),
            host: RStr::from_str(&job.from_host),
            args: RStr::from_str(&job.args),
        };
        let result = shared
            .busy
            .around(|| object.answer(index as u32, view).into_result());
        match result {
            Ok(reply) if reply.len() > self.max_reply_bytes => {
                let message = format!(
                    "the reply of node `{}` to request `{}` is {} bytes, over the hive's limit of {} bytes ([messages] max_payload_bytes in config/hive.toml)",
                    shared.name,
                    job.name,
                    reply.len(),
                    self.max_reply_bytes
                );
                shared.log.write(LogLevel::Warn, &message);
                job.answer(Err(Failure::new(FailureKind::TooLarge, message)));
            }
            // Copied out: the string was made by the library.
            Ok(reply) => job.answer(Ok(reply.as_str().to_owned())),
            Err(failure) => {
                let panicked = failure.kind == FailureKind::Panicked;
                let failure = failure_from_abi(failure);
                shared.log.write(
                    LogLevel::Error,
                    &format!(
                        "request `{}` from `{}` {}: {}",
                        job.name,
                        job.from_node,
                        if panicked { "panicked" } else { "failed" },
                        failure.message
                    ),
                );
                job.answer(Err(failure));
            }
        }
    }
}

/// A failure as the ABI carries it, copied into the host's own memory.
pub(crate) fn failure_from_abi(failure: RequestFailure) -> Failure {
    let some = |text: &RString| Some(text.as_str().to_owned()).filter(|t| !t.is_empty());
    Failure {
        kind: failure.kind,
        message: failure.message.as_str().to_owned(),
        node: some(&failure.node),
        host: some(&failure.host),
    }
}

fn failure_to_abi(failure: &Failure) -> RequestFailure {
    RequestFailure {
        kind: failure.kind,
        message: failure.message.as_str().into(),
        node: failure.node.as_deref().unwrap_or_default().into(),
        host: failure.host.as_deref().unwrap_or_default().into(),
    }
}

/// An outcome as the ABI carries it to a node.
pub(crate) fn outcomes_to_abi(outcome: &Outcome) -> RequestOutcomes {
    match outcome {
        Ok(parts) => RResult::ROk(
            parts
                .iter()
                .map(|part| -> RequestOutcome {
                    match part {
                        Ok(answer) => RResult::ROk(ReplyData {
                            node: answer.node.as_str().into(),
                            host: answer.host.as_str().into(),
                            json: answer.json.as_str().into(),
                        }),
                        Err(failure) => RResult::RErr(failure_to_abi(failure)),
                    }
                })
                .collect::<RVec<_>>(),
        ),
        Err(failure) => RResult::RErr(failure_to_abi(failure)),
    }
}
