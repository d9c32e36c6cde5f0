//! What this host knows of the other hosts of its hive: whether each is up, and its nodes as
//! it last described them.
//!
//! A host is up while its liveliness token is alive; when the token goes (the host stopped, or
//! its links fell silent for `[mesh] lease_ms`) its nodes are kept, shown as
//! [`NodeStatus::Gone`], until it comes back and describes itself again. Descriptions
//! ([`HostView`]) are fetched from each host's view queryable, about once a second, so the
//! counters of remote nodes stay current.

use crate::loader::LibraryInfo;
use crate::runtime::{NodeSnapshot, NodeStatus, ServiceSnapshot, SubscriptionSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A host's description of itself, as its view queryable answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostView {
    /// The envelope format version the host speaks.
    pub v: u32,
    /// The host's name.
    pub host: String,
    /// Its session id (new at every start).
    pub origin: String,
    /// Its nodes.
    pub nodes: Vec<WireNode>,
}

/// One node as it travels in a [`HostView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireNode {
    name: String,
    status: NodeStatus,
    error: Option<String>,
    library: Option<WireLibrary>,
    services: Vec<ServiceSnapshot>,
    subscriptions: Vec<SubscriptionSnapshot>,
    enabled: bool,
    loads: u64,
    loaded_at: Option<String>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireLibrary {
    path: PathBuf,
    crate_name: String,
    type_name: String,
    api_version: String,
    hash: String,
    modified: Option<String>,
    size: u64,
}

impl From<NodeSnapshot> for WireNode {
    fn from(node: NodeSnapshot) -> Self {
        Self {
            name: node.name,
            status: node.status,
            error: node.error,
            library: node.library.map(|l| WireLibrary {
                path: l.path,
                crate_name: l.crate_name,
                type_name: l.type_name,
                api_version: l.api_version,
                hash: l.hash,
                modified: l.modified,
                size: l.size,
            }),
            services: node.services,
            subscriptions: node.subscriptions,
            enabled: node.enabled,
            loads: node.loads,
            loaded_at: node.loaded_at,
            last_error: node.last_error,
        }
    }
}

impl WireNode {
    fn snapshot(&self, host: &str, up: bool) -> NodeSnapshot {
        NodeSnapshot {
            name: self.name.clone(),
            host: host.to_owned(),
            status: if up { self.status } else { NodeStatus::Gone },
            error: self.error.clone(),
            library: self.library.clone().map(|l| LibraryInfo {
                path: l.path,
                crate_name: l.crate_name,
                type_name: l.type_name,
                api_version: l.api_version,
                hash: l.hash,
                modified: l.modified,
                size: l.size,
            }),
            services: self.services.clone(),
            subscriptions: self.subscriptions.clone(),
            enabled: self.enabled,
            loads: self.loads,
            loaded_at: self.loaded_at.clone(),
            last_error: self.last_error.clone(),
            // What a host says of its own processes stays with it.
            isolated: false,
            crashes: 0,
            last_crash: None,
            build_error: None,
            settings: None,
        }
    }
}

/// Another host as this one sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// Its name.
    pub host: String,
    /// `up` or `gone`.
    pub status: &'static str,
    /// Since when (RFC 3339).
    pub since: String,
    /// How many nodes it last described.
    pub nodes: usize,
}

#[derive(Debug)]
struct Peer {
    up: bool,
    since: String,
    nodes: Vec<WireNode>,
}

/// The other hosts of the hive.
#[derive(Debug)]
pub struct Peers {
    own: String,
    hosts: BTreeMap<String, Peer>,
}

impl Peers {
    /// No other host yet; `own` is this host's name, which is never listed.
    pub fn new(own: &str) -> Self {
        Self {
            own: own.to_owned(),
            hosts: BTreeMap::new(),
        }
    }

    /// `host`'s token appeared: it is up. Returns whether that is news.
    pub fn up(&mut self, host: &str) -> bool {
        if host == self.own {
            return false;
        }
        let peer = self.hosts.entry(host.to_owned()).or_insert_with(|| Peer {
            up: false,
            since: now(),
            nodes: Vec::new(),
        });
        if peer.up {
            return false;
        }
        peer.up = true;
        peer.since = now();
        true
    }

    /// `host`'s token went away: it is gone. Returns whether that is news.
    pub fn gone(&mut self, host: &str) -> bool {
        match self.hosts.get_mut(host) {
            Some(peer) if peer.up => {
                peer.up = false;
                peer.since = now();
                true
            }
            _ => false,
        }
    }

    /// A host described itself. A host not known yet is taken as up (it answered); a known
    /// one keeps its state, so a late answer cannot revive a host that has gone.
    pub fn describe(&mut self, view: HostView) {
        if view.host == self.own {
            return;
        }
        let peer = self.hosts.entry(view.host).or_insert_with(|| Peer {
            up: true,
            since: now(),
            nodes: Vec::new(),
        });
        peer.nodes = view.nodes;
    }

    /// Every node of every other host, by host then name; nodes of gone hosts as
    /// [`NodeStatus::Gone`].
    pub fn nodes(&self) -> Vec<NodeSnapshot> {
        let mut nodes = Vec::new();
        for (host, peer) in &self.hosts {
            let mut mine: Vec<NodeSnapshot> = peer
                .nodes
                .iter()
                .map(|n| n.snapshot(host, peer.up))
                .collect();
            mine.sort_by(|a, b| a.name.cmp(&b.name));
            nodes.extend(mine);
        }
        nodes
    }

    /// Every other host.
    pub fn snapshot(&self) -> Vec<PeerSnapshot> {
        self.hosts
            .iter()
            .map(|(host, peer)| PeerSnapshot {
                host: host.clone(),
                status: if peer.up { "up" } else { "gone" },
                since: peer.since.clone(),
                nodes: peer.nodes.len(),
            })
            .collect()
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(host: &str, nodes: &[&str]) -> HostView {
        HostView {
            v: 1,
            host: host.into(),
            origin: format!("{host}-1"),
            nodes: nodes
                .iter()
                .map(|n| NodeSnapshot::idle(n, NodeStatus::Running).into())
                .collect(),
        }
    }

    fn listed(peers: &Peers) -> Vec<(String, String, NodeStatus)> {
        peers
            .nodes()
            .into_iter()
            .map(|n| (n.host, n.name, n.status))
            .collect()
    }

    #[test]
    fn a_host_is_listed_with_its_nodes_and_shown_gone_when_its_token_goes() {
        let mut peers = Peers::new("manor");
        assert!(peers.up("tower"));
        assert!(!peers.up("tower"), "no news");
        peers.describe(view("tower", &["robin", "alfred"]));
        assert_eq!(
            listed(&peers),
            vec![
                ("tower".into(), "alfred".into(), NodeStatus::Running),
                ("tower".into(), "robin".into(), NodeStatus::Running)
            ]
        );
        assert!(peers.gone("tower"));
        assert_eq!(
            listed(&peers),
            vec![
                ("tower".into(), "alfred".into(), NodeStatus::Gone),
                ("tower".into(), "robin".into(), NodeStatus::Gone)
            ]
        );
        assert_eq!(peers.snapshot()[0].status, "gone");
        peers.describe(view("tower", &["robin"]));
        assert_eq!(
            listed(&peers)[0].2,
            NodeStatus::Gone,
            "a late answer revives nothing"
        );
        assert!(peers.up("tower"));
        peers.describe(view("tower", &["robin"]));
        assert_eq!(
            listed(&peers),
            vec![("tower".into(), "robin".into(), NodeStatus::Running)]
        );
    }

    #[test]
    fn this_host_is_never_its_own_peer() {
        let mut peers = Peers::new("manor");
        assert!(!peers.up("manor"));
        peers.describe(view("manor", &["batman"]));
        assert!(peers.nodes().is_empty());
        assert!(peers.snapshot().is_empty());
    }

    #[test]
    fn an_answer_before_the_token_counts_as_up() {
        let mut peers = Peers::new("manor");
        peers.describe(view("tower", &["robin"]));
        assert_eq!(listed(&peers)[0].2, NodeStatus::Running);
        assert!(!peers.up("tower"), "already up");
    }
}
