//! The host side of the ABI: what a node's code calls back into.

use super::state::NodeShared;
use abi_stable::std_types::{RResult, RStr};
use hivemind::abi::{Host, LogLevel, SendFailure};
use std::sync::Arc;
use std::time::Duration;

/// The `Host` object a node holds; one per node, cloned into each of its services.
#[derive(Clone)]
pub(super) struct NodeHost {
    shared: Arc<NodeShared>,
}

impl NodeHost {
    pub(super) fn new(shared: Arc<NodeShared>) -> Self {
        Self { shared }
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
}
