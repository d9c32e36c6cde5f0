//! What every handler shares ([`Web`]): the controller, and the counters and limits the web
//! layer keeps itself. One value per server, cloned into each handler (its parts are `Arc`s).

use super::access::Sessions;
use super::connections::Connections;
use super::guesses::Guesses;
use super::in_hand::InHand;
use super::metrics::EventCounters;
use super::rates::Rates;
use super::streams::Streams;
use crate::controller::Controller;
use std::path::PathBuf;
use std::sync::Arc;

/// What every handler shares: the controller, and counters the web layer keeps itself.
#[derive(Clone)]
pub(super) struct Web {
    pub(super) controller: Arc<Controller>,
    pub(super) counters: Arc<EventCounters>,
    pub(super) streams: Arc<Streams>,
    /// The one place message rates are computed, for every page and client.
    pub(super) rates: Arc<Rates>,
    pub(super) connections: Arc<Connections>,
    pub(super) sessions: Arc<Sessions>,
    /// Wrong keys per client address (the throttle).
    pub(super) guesses: Arc<Guesses>,
    /// API requests in hand per client address.
    pub(super) in_hand: Arc<InHand>,
}

impl Web {
    /// The state for a server of `controller`'s hive. Must be called inside the tokio runtime
    /// (the event counters follow the feed on a task of their own).
    pub(super) fn new(controller: Arc<Controller>) -> Self {
        let counters = EventCounters::follow(controller.events());
        Self {
            controller,
            counters,
            streams: Arc::default(),
            rates: Arc::default(),
            connections: Arc::default(),
            sessions: Arc::default(),
            guesses: Arc::default(),
            in_hand: Arc::default(),
        }
    }

    /// The hive's own `static/` folder.
    pub(super) fn static_dir(&self) -> PathBuf {
        self.controller.root().join("static")
    }

    /// Whether the hive has a key (the key itself stays in the config).
    pub(super) fn has_key(&self) -> bool {
        self.controller.config().key.is_some()
    }
}
