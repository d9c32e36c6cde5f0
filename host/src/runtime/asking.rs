//! How a node's code asks requests of other nodes: the router, the mailbox its non-blocking
//! asks answer into, and this host's name, set on the node's shared state before its
//! constructor runs.

use crate::requests::{Ask, Mailbox, Outcome, Router};
use std::sync::Arc;
use std::time::Duration;

/// What a node needs to ask: set on its shared state once it is built.
pub(crate) struct Asking {
    /// The host's router.
    pub(crate) router: Arc<Router>,
    /// Where the outcomes of its non-blocking asks go.
    pub(crate) mailbox: Mailbox,
    /// This host's name (the asker's host).
    pub(crate) host: Arc<str>,
}

impl Asking {
    /// Asks `name` for node `node`, waiting for the outcome.
    pub(crate) fn request(
        &self,
        node: &Arc<str>,
        name: &str,
        args: &str,
        timeout: Duration,
        all: bool,
    ) -> Outcome {
        self.router
            .ask_blocking(self.ask(node, name, args, timeout, all))
    }

    /// Asks `name` for node `node` without waiting: the outcome goes to its mailbox under the
    /// returned token.
    pub(crate) fn ask_later(
        &self,
        node: &Arc<str>,
        name: &str,
        args: &str,
        timeout: Duration,
        all: bool,
    ) -> u64 {
        let token = self.router.token();
        let mailbox = self.mailbox.clone();
        self.router
            .ask(self.ask(node, name, args, timeout, all), move |outcome| {
                mailbox.post(token, outcome);
            });
        token
    }

    fn ask(&self, node: &Arc<str>, name: &str, args: &str, timeout: Duration, all: bool) -> Ask {
        Ask {
            name: name.to_owned(),
            args: args.to_owned(),
            from_node: node.clone(),
            from_host: self.host.clone(),
            timeout,
            all,
        }
    }
}
