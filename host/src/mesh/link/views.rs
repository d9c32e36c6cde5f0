//! Seeing the other hosts: their liveliness tokens coming and going, their descriptions asked
//! for by the view thread (`hm-mesh-view`) about once a second, and this host's own.
//!
//! Guarantees: a view over [`MAX_VIEW_BYTES`], or of another mesh format, is ignored; a host
//! whose token goes is marked gone at once (its pending requests and duplicate filter
//! forgotten) and forgotten after `[mesh] forget_after_s`; joins and departures are logged and
//! reach the event feed.

use super::Shared;
use super::incoming::cut_for_log;
use crate::events::EventKind;
use crate::mesh::LocalView;
use crate::mesh::envelope::VERSION;
use crate::mesh::peers::{HostView, MAX_VIEW_BYTES, WireNode, WireRequest};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zenoh::Wait;
use zenoh::query::QueryTarget;
use zenoh::sample::{Locality, Sample, SampleKind};

/// How often each host asks the others to describe themselves.
const VIEW_PERIOD: Duration = Duration::from_secs(1);
/// How long a view query waits for answers.
const VIEW_TIMEOUT: Duration = Duration::from_millis(800);

/// A host's token appeared or went away.
pub(super) fn presence(shared: &Shared, wake: &Sender<()>, sample: &Sample) {
    let Some(host) = shared.keys.host_of(sample.key_expr().as_str()) else {
        return;
    };
    match sample.kind() {
        SampleKind::Put => {
            if shared.peers.lock().up(&host) {
                let message = format!("host `{host}` joined the mesh");
                tracing::info!("{message}");
                shared.events.emit(EventKind::Hive, None, message);
                let _ = wake.try_send(());
            }
        }
        SampleKind::Delete => {
            if shared.peers.lock().gone(&host) {
                shared.seen.lock().forget_host(&host);
                shared.asks.host_left(&host);
                let message = format!("host `{host}` left the mesh or stopped answering");
                tracing::warn!("{message}");
                shared.events.emit(EventKind::Hive, None, message);
            }
        }
    }
}

/// Describes this host for the view queryable.
pub(super) fn refresh_own_view(shared: &Shared, local_view: &LocalView) {
    let view = HostView {
        v: VERSION,
        host: shared.host.clone(),
        origin: shared.origin.clone(),
        nodes: local_view().into_iter().map(WireNode::from).collect(),
        requests: shared
            .router
            .upgrade()
            .map(|router| WireRequest::offer(router.local_responders()))
            .unwrap_or_default(),
    };
    let bytes = serde_json::to_vec(&view).expect("a view always serialises");
    *shared.own_view.lock() = Arc::new(bytes);
}

/// The view thread: keeps this host's description fresh and asks the others for theirs.
pub(super) fn watch_views(
    session: &zenoh::Session,
    shared: &Shared,
    local_view: &LocalView,
    woken: &Receiver<()>,
) {
    while !shared.stopping.load(Ordering::Acquire) {
        refresh_own_view(shared, local_view);
        ask_views(session, shared);
        let forgotten = shared.peers.lock().forget_gone(shared.forget_after);
        for host in forgotten {
            let message = format!(
                "host `{host}` is forgotten: it has been gone for {} s ([mesh] forget_after_s)",
                shared.forget_after.as_secs()
            );
            tracing::info!("{message}");
            shared.events.emit(EventKind::Hive, None, message);
        }
        match woken.recv_timeout(VIEW_PERIOD) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn ask_views(session: &zenoh::Session, shared: &Shared) {
    let replies = session
        .get(shared.keys.all_views())
        .target(QueryTarget::All)
        .allowed_destination(Locality::Remote)
        .timeout(VIEW_TIMEOUT)
        .wait();
    let replies = match replies {
        Ok(replies) => replies,
        Err(error) => {
            tracing::debug!("could not ask the other hosts for their views: {error}");
            return;
        }
    };
    while let Ok(reply) = replies.recv() {
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let Ok(sample) = reply.result() else { continue };
        let Some(key_host) = shared.keys.view_host_of(sample.key_expr().as_str()) else {
            continue;
        };
        if sample.payload().len() > MAX_VIEW_BYTES {
            tracing::debug!(
                "a view of {} bytes from the mesh is over {MAX_VIEW_BYTES}; ignored",
                sample.payload().len()
            );
            continue;
        }
        match serde_json::from_slice::<HostView>(&sample.payload().to_bytes()) {
            Ok(view) if view.v == VERSION => shared.peers.lock().describe(view, &key_host),
            Ok(view) => tracing::debug!(
                "host {:?} speaks mesh format {} (this hm: {VERSION}); its view is ignored",
                cut_for_log(&view.host),
                view.v
            ),
            Err(error) => tracing::debug!("a view from the mesh does not parse: {error}"),
        }
    }
}
