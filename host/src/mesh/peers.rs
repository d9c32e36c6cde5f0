//! What this host knows of the other hosts of its hive: whether each is up, and its nodes as
//! it last described them.
//!
//! A host is up while its liveliness token is alive; when the token goes (the host stopped, or
//! its links fell silent for `[mesh] lease_ms`) its nodes are kept, shown as
//! [`NodeStatus::Gone`], until it comes back and describes itself again. Descriptions
//! ([`HostView`]) are fetched from each host's view queryable, about once a second, so the
//! counters of remote nodes stay current.
//!
//! # Bounds
//!
//! What another host says is checked like local input and capped, so that no peer can make
//! this host keep more than a few megabytes for it: at most [`MAX_HOSTS`] hosts (a new one
//! pushes out the host gone longest, or is ignored while all are up), host names valid as in
//! `[mesh] host` (no control characters), views of at most [`MAX_VIEW_BYTES`] bytes, at most
//! [`MAX_NODES_PER_HOST`] nodes per host with names valid as local node names (others are left
//! out), at most [`MAX_ENTRIES`] services and subscriptions per node, texts cut at
//! [`MAX_TEXT`] bytes. A host gone for `[mesh] forget_after_s` is forgotten.
//!
//! # What a host answers
//!
//! A view also lists the requests the host's nodes answer ([`WireRequest`]: name, node, help),
//! so that this host's router can ask them ([`Peers::responders`]). They are checked as
//! strictly: at most [`MAX_REQUESTS_PER_HOST`] entries (a host sends no more), names non-empty,
//! printable and at most [`MAX_REQUEST_NAME`] bytes (a longer local name is not offered to
//! the mesh), nodes valid node names and among the nodes the view lists, help cut at
//! [`MAX_HELP`] bytes, one entry per (name, node). Only the responders of hosts that are up
//! are offered; a gone host's are kept with its nodes and offered again when it is back.

use crate::loader::LibraryInfo;
use crate::runtime::{NodeSnapshot, NodeStatus, ServiceSnapshot, SubscriptionSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Other hosts listed at once.
pub(crate) const MAX_HOSTS: usize = 128;
/// The largest view accepted from a host, in bytes (a view is refused unread beyond this).
pub(crate) const MAX_VIEW_BYTES: usize = 4 * 1024 * 1024;
/// Nodes listed per host; the rest of a longer view is left out.
pub(crate) const MAX_NODES_PER_HOST: usize = 1024;
/// Services, and subscriptions, listed per remote node.
pub(crate) const MAX_ENTRIES: usize = 256;
/// Bytes kept of a remote text (an error, a path, a name).
pub(crate) const MAX_TEXT: usize = 2048;
/// Request responders (name and node pairs) a host offers to the mesh; the rest are left out.
pub(crate) const MAX_REQUESTS_PER_HOST: usize = 1024;
/// The longest request name offered to or taken from the mesh, in bytes.
pub(crate) const MAX_REQUEST_NAME: usize = 256;
/// Bytes kept of a request's help line from the mesh.
pub(crate) const MAX_HELP: usize = 512;

/// A host's description of itself, as its view queryable answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HostView {
    /// The envelope format version the host speaks.
    pub v: u32,
    /// The host's name.
    pub host: String,
    /// Its session id (new at every start).
    pub origin: String,
    /// Its nodes.
    pub nodes: Vec<WireNode>,
    /// The requests its nodes answer (absent from an older host's view: none).
    #[serde(default)]
    pub requests: Vec<WireRequest>,
}

/// One request a host's node answers, as it travels in a [`HostView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireRequest {
    /// The request's name.
    pub name: String,
    /// The node that answers it.
    pub node: String,
    /// Its help line.
    pub help: String,
}

impl WireRequest {
    /// What this host offers of its own responders (name, node, help): at most
    /// [`MAX_REQUESTS_PER_HOST`], names of at most [`MAX_REQUEST_NAME`] bytes, help cut.
    pub(crate) fn offer(local: Vec<(String, String, String)>) -> Vec<WireRequest> {
        local
            .into_iter()
            .filter(|(name, _, _)| is_request_name(name))
            .take(MAX_REQUESTS_PER_HOST)
            .map(|(name, node, mut help)| {
                cut_to(&mut help, MAX_HELP);
                WireRequest { name, node, help }
            })
            .collect()
    }
}

/// A request name as the mesh carries one: non-empty, printable, at most [`MAX_REQUEST_NAME`]
/// bytes.
pub(crate) fn is_request_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_REQUEST_NAME && !name.chars().any(char::is_control)
}

/// One node as it travels in a [`HostView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireNode {
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
            timers: Vec::new(),
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
    /// When its token went (while it is gone).
    gone_at: Option<Instant>,
    nodes: Vec<WireNode>,
    requests: Vec<WireRequest>,
}

impl Peer {
    fn new(up: bool) -> Self {
        Peer {
            up,
            since: now(),
            gone_at: (!up).then(Instant::now),
            nodes: Vec::new(),
            requests: Vec::new(),
        }
    }
}

/// The other hosts of the hive.
#[derive(Debug)]
pub(crate) struct Peers {
    own: String,
    hosts: BTreeMap<String, Peer>,
}

impl Peers {
    /// No other host yet; `own` is this host's name, which is never listed.
    pub(crate) fn new(own: &str) -> Self {
        Self {
            own: own.to_owned(),
            hosts: BTreeMap::new(),
        }
    }

    /// `host`'s token appeared: it is up. Returns whether that is news. A name that is not a
    /// valid host name, or a new host while [`MAX_HOSTS`] are up, is ignored.
    pub(crate) fn up(&mut self, host: &str) -> bool {
        if host == self.own || !crate::names::is_host_name(host) || !self.room_for(host) {
            return false;
        }
        let peer = self
            .hosts
            .entry(host.to_owned())
            .or_insert_with(|| Peer::new(false));
        if peer.up {
            return false;
        }
        peer.up = true;
        peer.gone_at = None;
        peer.since = now();
        true
    }

    /// `host`'s token went away: it is gone. Returns whether that is news.
    pub(crate) fn gone(&mut self, host: &str) -> bool {
        match self.hosts.get_mut(host) {
            Some(peer) if peer.up => {
                peer.up = false;
                peer.gone_at = Some(Instant::now());
                peer.since = now();
                true
            }
            _ => false,
        }
    }

    /// Whether `host` is listed or can be: when [`MAX_HOSTS`] are listed, the one gone longest
    /// makes room; if all are up, there is none.
    fn room_for(&mut self, host: &str) -> bool {
        if self.hosts.contains_key(host) || self.hosts.len() < MAX_HOSTS {
            return true;
        }
        let oldest = self
            .hosts
            .iter()
            .filter_map(|(name, peer)| Some((peer.gone_at?, name)))
            .min()
            .map(|(_, name)| name.clone());
        match oldest {
            Some(name) => {
                self.hosts.remove(&name);
                true
            }
            None => false,
        }
    }

    /// A host described itself (`view`, answered under `key_host`'s key). A host not known
    /// yet is taken as up (it answered); a known one keeps its state, so a late answer cannot
    /// revive a host that has gone. A view whose host is not the one it answers for, or not
    /// a valid host name, is ignored; its nodes are checked and capped ([`MAX_NODES_PER_HOST`]).
    pub(crate) fn describe(&mut self, view: HostView, key_host: &str) {
        if view.host == self.own
            || view.host != key_host
            || !crate::names::is_host_name(&view.host)
            || !self.room_for(&view.host)
        {
            return;
        }
        let nodes = checked_nodes(view.nodes);
        let requests = checked_requests(view.requests, &nodes);
        let peer = self
            .hosts
            .entry(view.host)
            .or_insert_with(|| Peer::new(true));
        peer.nodes = nodes;
        peer.requests = requests;
    }

    /// Whether `host` is listed and up.
    pub(crate) fn is_up(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|peer| peer.up)
    }

    /// The (node, host) pairs of hosts that are up whose nodes answer `name`, by host then in
    /// the order the host listed them.
    pub(crate) fn responders(&self, name: &str) -> Vec<(String, String)> {
        self.hosts
            .iter()
            .filter(|(_, peer)| peer.up)
            .flat_map(|(host, peer)| {
                peer.requests
                    .iter()
                    .filter(|r| r.name == name)
                    .map(|r| (r.node.clone(), host.clone()))
            })
            .collect()
    }

    /// Every responder of the hosts that are up: (host, request), by host.
    pub(crate) fn requests(&self) -> Vec<(String, WireRequest)> {
        self.hosts
            .iter()
            .filter(|(_, peer)| peer.up)
            .flat_map(|(host, peer)| peer.requests.iter().map(|r| (host.clone(), r.clone())))
            .collect()
    }

    /// Forgets the hosts gone for `after` or longer; returns their names.
    pub(crate) fn forget_gone(&mut self, after: Duration) -> Vec<String> {
        let forgotten: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, peer)| peer.gone_at.is_some_and(|at| at.elapsed() >= after))
            .map(|(host, _)| host.clone())
            .collect();
        for host in &forgotten {
            self.hosts.remove(host);
        }
        forgotten
    }

    /// Every node of every other host, by host then name; nodes of gone hosts as
    /// [`NodeStatus::Gone`].
    pub(crate) fn nodes(&self) -> Vec<NodeSnapshot> {
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
    pub(crate) fn snapshot(&self) -> Vec<PeerSnapshot> {
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

/// A remote host's nodes, checked as local ones are: valid node names (others, and second
/// nodes of one name, are left out), at most [`MAX_NODES_PER_HOST`], each with at most
/// [`MAX_ENTRIES`] services and subscriptions of printable names, texts cut at [`MAX_TEXT`].
fn checked_nodes(nodes: Vec<WireNode>) -> Vec<WireNode> {
    let mut names = BTreeSet::new();
    let mut kept = Vec::new();
    for mut node in nodes {
        if kept.len() >= MAX_NODES_PER_HOST {
            break;
        }
        if crate::names::check_node_name(&node.name).is_err() || !names.insert(node.name.clone()) {
            continue;
        }
        node.services.retain(|s| is_printable_name(&s.name));
        node.services.truncate(MAX_ENTRIES);
        for service in &mut node.services {
            cut_opt(&mut service.error);
        }
        node.subscriptions.retain(|s| is_printable_name(&s.pattern));
        node.subscriptions.truncate(MAX_ENTRIES);
        cut_opt(&mut node.error);
        cut_opt(&mut node.last_error);
        cut_opt(&mut node.loaded_at);
        if let Some(library) = &mut node.library {
            for text in [
                &mut library.crate_name,
                &mut library.type_name,
                &mut library.api_version,
                &mut library.hash,
            ] {
                cut(text);
            }
            cut_opt(&mut library.modified);
            if library.path.as_os_str().len() > MAX_TEXT {
                library.path = PathBuf::new();
            }
        }
        kept.push(node);
    }
    kept
}

/// A remote host's responders, checked (see the module's rules): at most
/// [`MAX_REQUESTS_PER_HOST`], valid names, nodes among `nodes`, help cut, no repeats.
fn checked_requests(requests: Vec<WireRequest>, nodes: &[WireNode]) -> Vec<WireRequest> {
    let known: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    for mut request in requests {
        if kept.len() >= MAX_REQUESTS_PER_HOST {
            break;
        }
        if !is_request_name(&request.name)
            || !known.contains(request.node.as_str())
            || !seen.insert((request.name.clone(), request.node.clone()))
        {
            continue;
        }
        cut_to(&mut request.help, MAX_HELP);
        kept.push(request);
    }
    kept
}

/// A service name or pattern as the host takes one: non-empty, printable, not too long.
fn is_printable_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TEXT && !name.chars().any(char::is_control)
}

fn cut(text: &mut String) {
    cut_to(text, MAX_TEXT);
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
pub(crate) fn cut_to(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn cut_opt(text: &mut Option<String>) {
    if let Some(text) = text {
        cut(text);
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
            requests: Vec::new(),
        }
    }

    fn request(name: &str, node: &str) -> WireRequest {
        WireRequest {
            name: name.into(),
            node: node.into(),
            help: "help".into(),
        }
    }

    #[test]
    fn responders_are_those_of_hosts_up_and_checked_like_local_ones() {
        let mut peers = Peers::new("manor");
        assert!(peers.up("tower"));
        let mut described = view("tower", &["alfred", "robin"]);
        let mut long_help = request("alfred/advice", "alfred");
        long_help.help = "é".repeat(MAX_HELP);
        described.requests = vec![
            long_help,
            request("alfred/advice", "robin"),
            request("alfred/advice", "robin"),
            request("alfred/advice", "joker"),
            request("", "alfred"),
            request("bad\nname", "alfred"),
            request(&"x".repeat(MAX_REQUEST_NAME + 1), "alfred"),
        ];
        peers.describe(described, "tower");
        assert_eq!(
            peers.responders("alfred/advice"),
            [
                ("alfred".to_owned(), "tower".to_owned()),
                ("robin".to_owned(), "tower".to_owned())
            ],
            "once per node; only nodes the view lists"
        );
        let listed = peers.requests();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed[0].1.help.len() <= MAX_HELP);
        assert!(peers.is_up("tower"));
        assert!(peers.gone("tower"));
        assert!(
            peers.responders("alfred/advice").is_empty() && peers.requests().is_empty(),
            "a gone host answers nothing"
        );
        assert!(!peers.is_up("tower"));
        assert!(peers.up("tower"));
        assert_eq!(
            peers.responders("alfred/advice").len(),
            2,
            "back: offered again"
        );

        let mut many = view("tower", &["alfred"]);
        many.requests = (0..MAX_REQUESTS_PER_HOST + 10)
            .map(|i| request(&format!("r{i}"), "alfred"))
            .collect();
        peers.describe(many, "tower");
        assert_eq!(peers.requests().len(), MAX_REQUESTS_PER_HOST);
        let offered = WireRequest::offer(
            (0..MAX_REQUESTS_PER_HOST + 10)
                .map(|i| (format!("r{i}"), "alfred".into(), "h".repeat(MAX_HELP * 2)))
                .chain([(
                    "y".repeat(MAX_REQUEST_NAME + 1),
                    "alfred".into(),
                    String::new(),
                )])
                .collect(),
        );
        assert_eq!(offered.len(), MAX_REQUESTS_PER_HOST);
        assert!(offered.iter().all(|r| r.help.len() == MAX_HELP));
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
        peers.describe(view("tower", &["robin", "alfred"]), "tower");
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
        peers.describe(view("tower", &["robin"]), "tower");
        assert_eq!(
            listed(&peers)[0].2,
            NodeStatus::Gone,
            "a late answer revives nothing"
        );
        assert!(peers.up("tower"));
        peers.describe(view("tower", &["robin"]), "tower");
        assert_eq!(
            listed(&peers),
            vec![("tower".into(), "robin".into(), NodeStatus::Running)]
        );
    }

    #[test]
    fn this_host_is_never_its_own_peer() {
        let mut peers = Peers::new("manor");
        assert!(!peers.up("manor"));
        peers.describe(view("manor", &["batman"]), "manor");
        assert!(peers.nodes().is_empty());
        assert!(peers.snapshot().is_empty());
    }

    #[test]
    fn an_answer_before_the_token_counts_as_up() {
        let mut peers = Peers::new("manor");
        peers.describe(view("tower", &["robin"]), "tower");
        assert_eq!(listed(&peers)[0].2, NodeStatus::Running);
        assert!(!peers.up("tower"), "already up");
    }

    #[test]
    fn what_a_host_says_is_checked_and_capped() {
        let mut peers = Peers::new("manor");
        let mut names: Vec<String> = (0..MAX_NODES_PER_HOST + 500)
            .map(|i| format!("n{i}"))
            .collect();
        names.extend([
            "root".into(),
            "../etc".into(),
            "bad name".into(),
            "n1".into(),
        ]);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        peers.describe(view("tower", &refs), "tower");
        let listed = peers.nodes();
        assert_eq!(listed.len(), MAX_NODES_PER_HOST);
        assert!(listed.iter().all(|n| n.name.starts_with('n')));
        peers.describe(view("tower", &["root", "../etc", "x\ny"]), "tower");
        let names: Vec<String> = peers.nodes().into_iter().map(|n| n.name).collect();
        assert_eq!(
            names,
            ["root"],
            "valid names only (root is one; its log is not ours)"
        );
        peers.describe(view("other", &["a"]), "tower");
        assert!(
            peers.snapshot().iter().all(|p| p.host != "other"),
            "a view must be its own host's"
        );
        assert!(!peers.up("evil\nhost"), "control characters are refused");
        assert!(!peers.up(&"x".repeat(65)));
    }

    #[test]
    fn hosts_are_capped_and_gone_ones_forgotten() {
        let mut peers = Peers::new("manor");
        for i in 0..MAX_HOSTS {
            assert!(peers.up(&format!("h{i}")));
        }
        assert!(!peers.up("one-too-many"), "all are up: no room");
        assert!(peers.gone("h7"));
        assert!(peers.up("one-too-many"), "the gone one made room");
        assert_eq!(peers.snapshot().len(), MAX_HOSTS);
        assert!(peers.gone("h3"));
        assert!(peers.forget_gone(Duration::from_secs(60)).is_empty());
        assert_eq!(peers.forget_gone(Duration::ZERO), ["h3"]);
        assert_eq!(peers.snapshot().len(), MAX_HOSTS - 1);
    }
}
