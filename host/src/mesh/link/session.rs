//! The Zenoh configuration of `[mesh]`: peer mode, the endpoints, the lease, TLS over QUIC.
//!
//! Guarantees: the largest message Zenoh reassembles from a peer is bounded by the hive's
//! payload and view limits (so a peer cannot make this host buffer more), and a missing or
//! non-PEM TLS file is reported with its `[mesh]` key before Zenoh sees it.

use crate::mesh::MeshSettings;
use crate::mesh::peers::{MAX_HOSTS, MAX_VIEW_BYTES};
use anyhow::{Context as _, Result, anyhow};

/// Room in Zenoh's largest message beside the payload: the key, the batch's envelope and the
/// message's service and node names (at most [`crate::mesh::envelope::MAX_HEADER_BYTES`] and
/// 2 KiB + 262 bytes).
const MESSAGE_SLACK: usize = 64 * 1024;

/// The largest message Zenoh reassembles from a peer: the larger of a payload at the hive's
/// limit and a view at its limit, plus [`MESSAGE_SLACK`]. A bigger one is dropped by Zenoh as
/// its fragments arrive, so a peer cannot make this host buffer more.
pub(super) fn max_message_size(max_payload_bytes: usize) -> usize {
    max_payload_bytes
        .max(MAX_VIEW_BYTES)
        .saturating_add(MESSAGE_SLACK)
}

/// The Zenoh configuration of `[mesh]`.
pub(super) fn zenoh_config(settings: &MeshSettings) -> Result<zenoh::Config> {
    let mesh = &settings.config;
    let mut config = zenoh::Config::default();
    let mut set = |key: &str, value: String| {
        config
            .insert_json5(key, &value)
            .map_err(|e| anyhow!("[mesh] cannot set Zenoh's `{key}` to {value}: {e}"))
    };
    set("mode", json("peer"))?;
    let listen = if !mesh.listen.is_empty() {
        mesh.listen.clone()
    } else if mesh.tls.is_some() {
        vec!["quic/0.0.0.0:0".to_owned()]
    } else {
        // Zenoh's own default listens on every address: without TLS, this machine only.
        vec!["tcp/127.0.0.1:0".to_owned()]
    };
    set("listen/endpoints", json(&listen))?;
    set("connect/endpoints", json(&mesh.connect))?;
    set("scouting/multicast/enabled", json(mesh.multicast))?;
    set("transport/link/tx/lease", json(mesh.lease_ms))?;
    set(
        "transport/link/rx/max_message_size",
        json(max_message_size(settings.max_payload_bytes)),
    )?;
    // Other hosts, and a little room for ones that are reconnecting.
    set("transport/unicast/max_sessions", json(MAX_HOSTS + 16))?;
    if let Some(tls) = &mesh.tls {
        let path = |p: &std::path::Path| json(p.to_string_lossy());
        // QUIC only (TLS 1.3 over UDP): a plain TCP peer cannot even start a session. Not
        // Zenoh's `tls` link: it shares one rustls stream between its reading and writing
        // tasks and breaks under traffic both ways (eclipse-zenoh/zenoh#2557); QUIC's send
        // and receive streams are separate. Both links read `transport/link/tls/*`.
        set("transport/link/protocols", json(["quic"]))?;
        set("transport/link/tls/root_ca_certificate", path(&tls.ca))?;
        set("transport/link/tls/listen_certificate", path(&tls.cert))?;
        set("transport/link/tls/listen_private_key", path(&tls.key))?;
        set("transport/link/tls/connect_certificate", path(&tls.cert))?;
        set("transport/link/tls/connect_private_key", path(&tls.key))?;
        // Both ends show a certificate of the hive's CA; that is what makes a host a member
        // (host names are not DNS names, so they are not checked against addresses).
        set("transport/link/tls/enable_mtls", json(true))?;
        set("transport/link/tls/verify_name_on_connect", json(false))?;
    }
    // A host that comes back is found again within a second.
    set(
        "connect/retry",
        json(serde_json::json!({
            "period_init_ms": 250,
            "period_max_ms": 1000,
            "period_increase_factor": 2,
        })),
    )?;
    Ok(config)
}

/// Checks that the TLS files of `[mesh]` can be read, so a missing one is reported with its
/// key rather than as a Zenoh error.
pub(super) fn check_tls_files(settings: &MeshSettings) -> Result<()> {
    let Some(tls) = &settings.config.tls else {
        return Ok(());
    };
    for (key, path) in [
        ("tls_ca", &tls.ca),
        ("tls_cert", &tls.cert),
        ("tls_key", &tls.key),
    ] {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read [mesh] {key} = {} (create the hive's certificates with `hm mesh certs HOST...`)",
                path.display()
            )
        })?;
        if !text.contains("-----BEGIN ") {
            anyhow::bail!(
                "[mesh] {key} = {} is not a PEM file (`hm mesh certs HOST...` writes them)",
                path.display()
            );
        }
    }
    Ok(())
}

/// A plain value as JSON text, for Zenoh's `insert_json5`.
fn json(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("plain values serialise")
}

#[cfg(test)]
mod tests {
    use super::super::outgoing::BATCH_BYTES;
    use super::*;
    use crate::mesh::envelope::{MAX_HEADER_BYTES, MAX_SERVICE_BYTES};

    #[test]
    fn a_message_at_the_payload_limit_fits_in_zenohs_largest_message() {
        let largest_batch_of_one = MAX_HEADER_BYTES + 7 + MAX_SERVICE_BYTES + 255;
        assert!(largest_batch_of_one + 1024 <= MESSAGE_SLACK);
        assert!(BATCH_BYTES <= max_message_size(0));
    }
}
