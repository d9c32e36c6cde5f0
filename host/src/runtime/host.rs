//! The host side of the ABI: what a node's code calls back into.

use super::answer::outcomes_to_abi;
use super::state::NodeShared;
use crate::requests::{Failure, FailureKind};
use crate::store::{Access, Caller};
use abi_stable::std_types::{RResult, RStr, RString};
use hivemind::abi::{Host, LogLevel, RequestOutcomes, SendFailure};
use std::sync::Arc;
use std::time::Duration;

/// The `Host` object a node holds; one per node, cloned into each of its services.
#[derive(Clone)]
pub(super) struct NodeHost {
    shared: Arc<NodeShared>,
    store: Arc<dyn Access>,
}

impl NodeHost {
    pub(super) fn new(shared: Arc<NodeShared>, store: Arc<dyn Access>) -> Self {
        Self { shared, store }
    }
}

impl Host for NodeHost {
    fn send(&self, service: u32, payload: RStr<'_>) -> RResult<(), SendFailure> {
        self.shared
            .send(service, payload.as_str())
            .map_err(|(kind, message)| SendFailure {
                kind,
                message: message.into(),
            })
            .into()
    }

    fn sleep(&self, nanos: u64) -> bool {
        self.shared.sleep(Duration::from_nanos(nanos))
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.shared.log.write(level, message.as_str());
    }

    fn is_running(&self) -> bool {
        !self.shared.is_stopping()
    }

    fn request(
        &self,
        name: RStr<'_>,
        args: RStr<'_>,
        timeout_nanos: u64,
        all: bool,
    ) -> RequestOutcomes {
        let outcome = match self.shared.asking.get() {
            _ if self.shared.is_stopping() => Err(stopping(name.as_str())),
            Some(asking) => asking.request(
                &self.shared.name,
                name.as_str(),
                args.as_str(),
                Duration::from_nanos(timeout_nanos),
                all,
            ),
            None => Err(not_started(name.as_str())),
        };
        outcomes_to_abi(&outcome)
    }

    fn ask(&self, name: RStr<'_>, args: RStr<'_>, timeout_nanos: u64, all: bool) -> u64 {
        match self.shared.asking.get() {
            Some(asking) => asking.ask_later(
                &self.shared.name,
                name.as_str(),
                args.as_str(),
                Duration::from_nanos(timeout_nanos),
                all,
            ),
            // Not built yet: nothing can deliver the outcome; the callback never runs.
            None => 0,
        }
    }

    fn store(&self, call: RStr<'_>) -> RString {
        self.store
            .call(&self.shared.name, Caller::this_thread(), call.as_str())
            .into()
    }
}

fn stopping(name: &str) -> Failure {
    Failure::new(
        FailureKind::Stopping,
        format!("request `{name}` was not asked: the node is stopping"),
    )
}

fn not_started(name: &str) -> Failure {
    Failure::new(
        FailureKind::Stopping,
        format!("request `{name}` was not asked: the node has not started"),
    )
}
