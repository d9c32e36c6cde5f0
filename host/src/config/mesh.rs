//! The `[mesh]` table: how this host joins the other hosts of its hive, read and checked.
//!
//! Contract: [`mesh_config`] turns the raw table into a [`MeshConfig`] or refuses it with the
//! fix: a host name that is not one, endpoints not written the way the mesh carries them,
//! endpoints or multicast beyond this machine without TLS (anyone who reached the port could
//! read the hive's messages), half the TLS files, numbers out of [`BOUNDS`](super::bounds::BOUNDS), a
//! mesh that can meet no other host. Relative TLS paths are taken from the hive's folder.

use super::bounds::bounded;
use crate::names::{is_host_char, is_host_name};
use anyhow::{Result, bail};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `[mesh]`: how this host joins the other hosts of its hive over Zenoh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// Whether the host joins a mesh at all (off: nothing of it runs).
    pub enabled: bool,
    /// This host's name on the mesh; `None`: the machine's name and the hive's port.
    pub host: Option<String>,
    /// Zenoh endpoints to listen on (`tcp/0.0.0.0:7447`).
    pub listen: Vec<String>,
    /// Zenoh endpoints of other hosts to connect to (retried until they answer).
    pub connect: Vec<String>,
    /// Whether to find other hosts by UDP multicast scouting too.
    pub multicast: bool,
    /// How long a silent link stays up before its host is declared gone, in ms.
    pub lease_ms: u64,
    /// Messages waiting to go out to the mesh before new ones are dropped.
    pub queue_capacity: usize,
    /// Mutual TLS between hosts: `None` keeps the mesh on this machine (loopback only).
    pub tls: Option<MeshTls>,
    /// How long a host that has gone stays listed (its nodes as `gone`) before it is
    /// forgotten, in seconds (1 to 604,800; default 600).
    pub forget_after_s: u64,
}

/// `[mesh] tls_*`: the files of this host's place in the hive's private certificate
/// authority, as absolute paths (relative ones are taken from the hive's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshTls {
    /// The hive's CA certificate (PEM): a peer must present a certificate it signed.
    pub ca: PathBuf,
    /// This host's certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// This host's private key (PEM).
    pub key: PathBuf,
}

/// `[mesh] forget_after_s` unless set.
pub(crate) const DEFAULT_FORGET_AFTER_S: u64 = 600;

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            listen: Vec::new(),
            connect: Vec::new(),
            multicast: false,
            lease_ms: 3000,
            queue_capacity: 65536,
            tls: None,
            forget_after_s: DEFAULT_FORGET_AFTER_S,
        }
    }
}

impl MeshConfig {
    /// This host's name: `[mesh] host`, or the machine's name and `port` (`gotham-9476`),
    /// which tells apart hosts on one machine as long as their ports differ.
    pub fn host_name(&self, port: u16) -> String {
        if let Some(host) = &self.host {
            return host.clone();
        }
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let machine: String = machine
            .trim()
            .chars()
            .map(|c| if is_host_char(c) { c } else { '-' })
            .collect();
        let machine = if machine.is_empty() {
            "host".to_owned()
        } else {
            machine
        };
        format!("{machine}-{port}")
    }
}

/// Whether a Zenoh endpoint (`tcp/127.0.0.1:7447`) stays on this machine: its address is a
/// loopback address or `localhost`.
pub(crate) fn is_loopback_endpoint(endpoint: &str) -> bool {
    let address = endpoint
        .split_once('/')
        .map_or(endpoint, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `[mesh]` as written.
#[derive(Deserialize, Default)]
pub(super) struct RawMesh {
    #[serde(default)]
    enabled: bool,
    host: Option<String>,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
    #[serde(default)]
    multicast: bool,
    lease_ms: Option<u64>,
    queue_capacity: Option<usize>,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    forget_after_s: Option<u64>,
}

/// Checks `[mesh]` (`root` is the hive's folder, for relative TLS paths).
pub(super) fn mesh_config(root: &Path, raw: RawMesh) -> Result<MeshConfig> {
    let defaults = MeshConfig::default();
    let tls = match (raw.tls_ca, raw.tls_cert, raw.tls_key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => Some(MeshTls {
            ca: root.join(ca),
            cert: root.join(cert),
            key: root.join(key),
        }),
        _ => bail!(
            "[mesh] needs all three of tls_ca, tls_cert and tls_key, or none: `hm mesh certs HOST...` creates them and prints the lines to add"
        ),
    };
    let mesh = MeshConfig {
        enabled: raw.enabled,
        host: raw.host,
        listen: raw.listen,
        connect: raw.connect,
        multicast: raw.multicast,
        lease_ms: raw.lease_ms.unwrap_or(defaults.lease_ms),
        queue_capacity: raw.queue_capacity.unwrap_or(defaults.queue_capacity),
        tls,
        forget_after_s: raw.forget_after_s.unwrap_or(defaults.forget_after_s),
    };
    if let Some(host) = &mesh.host
        && !is_host_name(host)
    {
        bail!(
            "[mesh] host = {host:?} is not a valid host name: use 1 to 64 letters, digits, `-`, `_` and `.`"
        );
    }
    // With TLS, every link is Zenoh's QUIC link (TLS 1.3 over UDP, the same certificates):
    // Zenoh 1.10's TLS-over-TCP link reads and writes one rustls stream from two tasks at once
    // and breaks under traffic both ways (eclipse-zenoh/zenoh#2557), losing what is in flight.
    let scheme = if mesh.tls.is_some() { "quic" } else { "tcp" };
    for (key, endpoints) in [("listen", &mesh.listen), ("connect", &mesh.connect)] {
        for endpoint in endpoints {
            if mesh.tls.is_some()
                && let Some(address) = endpoint.strip_prefix("tls/")
            {
                bail!(
                    "[mesh] {key} has {endpoint:?}: write it \"quic/{address}\" (a UDP port). hm carries the mesh's mutual TLS over Zenoh's QUIC link, \
                     because Zenoh's TLS-over-TCP link can lose messages under traffic both ways (eclipse-zenoh/zenoh#2557)"
                );
            }
            let address = endpoint
                .strip_prefix(scheme)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or_default();
            if address.is_empty() || address.contains(char::is_whitespace) {
                let why = if mesh.tls.is_some() {
                    "with tls_* set, endpoints are written `quic/ADDRESS:PORT` (e.g. \"quic/0.0.0.0:7447\", a UDP port): every link is mutual TLS over QUIC"
                } else {
                    "endpoints are written `tcp/ADDRESS:PORT` (e.g. \"tcp/127.0.0.1:7447\"), or `quic/ADDRESS:PORT` once tls_ca, tls_cert and tls_key are set; without TLS, hm's mesh carries TCP only"
                };
                bail!("[mesh] {key} has {endpoint:?}: {why}");
            }
            if mesh.enabled && mesh.tls.is_none() && !is_loopback_endpoint(endpoint) {
                bail!(
                    "[mesh] {key} has {endpoint:?}, which reaches beyond this machine, but the mesh has no TLS: anyone who can reach the port could read and send the hive's messages. \
                     Run `hm mesh certs HOST...` (one name per host) and add the tls_ca, tls_cert and tls_key lines it prints to [mesh], with endpoints written `quic/ADDRESS:PORT`; \
                     or keep the mesh on this machine (tcp/127.0.0.1:PORT)"
                );
            }
        }
    }
    if mesh.enabled && mesh.multicast && mesh.tls.is_none() {
        bail!(
            "[mesh] multicast = true finds hosts beyond this machine, but the mesh has no TLS: run `hm mesh certs HOST...` and add the tls_ca, tls_cert and tls_key lines it prints to [mesh], or set multicast = false"
        );
    }
    bounded("", "[mesh] lease_ms", mesh.lease_ms)?;
    bounded("", "[mesh] queue_capacity", mesh.queue_capacity as u64)?;
    bounded("", "[mesh] forget_after_s", mesh.forget_after_s)?;
    if mesh.enabled && mesh.listen.is_empty() && mesh.connect.is_empty() && !mesh.multicast {
        bail!(
            "[mesh] is enabled but can meet no other host: give it `listen` endpoints (others connect here), `connect` endpoints (it connects there), or `multicast = true`"
        );
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_err, parse_ok};
    use crate::names::is_host_char;
    use std::path::Path;

    #[test]
    fn the_mesh_is_off_unless_enabled() {
        let config = parse_ok("");
        assert_eq!(config.mesh, MeshConfig::default());
        assert!(!config.mesh.enabled);
        let config = parse_ok(
            "[mesh]\nenabled = true\nhost = \"wayne-manor\"\nlisten = [\"quic/0.0.0.0:7447\"]\nconnect = [\"quic/10.0.0.2:7447\"]\n\
             tls_ca = \"config/mesh/ca.pem\"\ntls_cert = \"config/mesh/wayne-manor.pem\"\ntls_key = \"/keys/wayne-manor.key\"\n",
        );
        assert!(config.mesh.enabled);
        assert_eq!(config.mesh.host_name(9476), "wayne-manor");
        assert_eq!(config.mesh.listen, ["quic/0.0.0.0:7447"]);
        assert_eq!(config.mesh.connect, ["quic/10.0.0.2:7447"]);
        let tls = config.mesh.tls.unwrap();
        assert_eq!(tls.ca, Path::new("/hives/gotham/config/mesh/ca.pem"));
        assert_eq!(tls.key, Path::new("/keys/wayne-manor.key"));
        let local = parse_ok(
            "[mesh]\nenabled = true\nlisten = [\"tcp/127.0.0.1:7447\"]\nconnect = [\"tcp/[::1]:7448\", \"tcp/localhost:7449\"]\n",
        );
        assert!(
            local.mesh.tls.is_none(),
            "on this machine alone, TLS is not needed"
        );
    }

    #[test]
    fn the_default_host_name_is_the_machine_and_the_port() {
        let name = MeshConfig::default().host_name(9476);
        assert!(name.ends_with("-9476"), "{name}");
        assert!(name.chars().all(is_host_char), "{name}");
    }

    #[test]
    fn mesh_mistakes_are_refused_with_the_fix() {
        let message = parse_err("[mesh]\nenabled = true\nlisten = [\"udp/0.0.0.0:7447\"]\n");
        assert!(message.contains("tcp/ADDRESS:PORT"), "{message}");
        let message = parse_err("[mesh]\nenabled = true\n");
        assert!(message.contains("can meet no other host"), "{message}");
        let message = parse_err("[mesh]\nhost = \"bat cave\"\nmulticast = true\n");
        assert!(message.contains("not a valid host name"), "{message}");
        let message = parse_err("[mesh]\nhost = \"manor\\n\"\nmulticast = true\n");
        assert!(message.contains("not a valid host name"), "{message}");
        for beyond in [
            "listen = [\"tcp/0.0.0.0:7447\"]",
            "connect = [\"tcp/10.0.0.2:7447\"]",
            "listen = [\"tcp/[::]:7447\"]",
        ] {
            let message = parse_err(&format!("[mesh]\nenabled = true\n{beyond}\n"));
            assert!(message.contains("has no TLS"), "{message}");
            assert!(message.contains("hm mesh certs HOST..."), "{message}");
            assert!(
                message.contains("tls_ca, tls_cert and tls_key"),
                "{message}"
            );
        }
        let message = parse_err("[mesh]\nenabled = true\nmulticast = true\n");
        assert!(message.contains("has no TLS"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"ca.pem\"\nlisten = [\"quic/0.0.0.0:1\"]\n",
        );
        assert!(message.contains("all three"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\nlisten = [\"tcp/0.0.0.0:1\"]\n",
        );
        assert!(message.contains("quic/ADDRESS:PORT"), "{message}");
        let message = parse_err(
            "[mesh]\nenabled = true\ntls_ca = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\nconnect = [\"tls/10.0.0.2:7447\"]\n",
        );
        assert!(message.contains("\"quic/10.0.0.2:7447\""), "{message}");
        assert!(message.contains("zenoh#2557"), "{message}");
        let message = parse_err("[mesh]\nforget_after_s = 0\n");
        assert!(message.contains("forget_after_s"), "{message}");
        let config = parse_ok("[mesh]\nlisen = []\n");
        assert_eq!(
            config.warnings,
            [
                "config/hive.toml line 2: unknown key `mesh.lisen` is ignored (did you mean `listen`?)"
            ]
        );
    }
}
