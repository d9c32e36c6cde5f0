//! `hm mesh certs HOST...`: the hive's own certificate authority, and one certificate per
//! host, for the mesh's mutual TLS (`[mesh] tls_ca`, `tls_cert`, `tls_key`).
//!
//! Guarantees: the CA is created once per folder (`ca.pem`, and `ca.key`, which makes new
//! members and never leaves the machine that runs this); later runs reuse it, so hosts can be
//! added one at a time. Each host gets `HOST.pem` (its certificate, signed by the CA, for both
//! ends of a link) and `HOST.key`. Existing files are never overwritten. Keys are written
//! `0600`, the folder `0700`. What to add to each host's `[mesh]` is returned, for printing.
//!
//! Every certificate signed by the CA is a member of the hive: anyone with one host's key can
//! join as any host. Keep the keys private; to exclude a host, make a new CA for the others.

use anyhow::{Context as _, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// How long certificates are valid: ten years (a hive's CA is replaced by hand, if ever).
const VALID_FOR: Duration = Duration::days(3650);

/// Creates (or reuses) the CA in `dir` and a certificate for each of `hosts`; `shown` is how
/// the folder is written in the config lines (relative to the hive's folder). Returns what to
/// tell the user.
pub(crate) fn create(dir: &Path, shown: &str, hosts: &[String]) -> Result<String> {
    if hosts.is_empty() {
        bail!("name the hosts to make certificates for: `hm mesh certs manor tower`");
    }
    for host in hosts {
        if !crate::names::is_host_name(host) {
            bail!(
                "{host:?} is not a valid host name: use 1 to 64 letters, digits, `-`, `_` and `.` (the name is the host's [mesh] host)"
            );
        }
        if host == "ca" {
            bail!("`ca` is the certificate authority's file name: choose another host name");
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut report = String::new();
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let issuer: Issuer<'static, KeyPair> = if ca_cert.exists() || ca_key.exists() {
        let key = std::fs::read_to_string(&ca_key)
            .with_context(|| format!("cannot read the hive's CA key {}", ca_key.display()))?;
        let cert = std::fs::read_to_string(&ca_cert)
            .with_context(|| format!("cannot read the hive's CA {}", ca_cert.display()))?;
        let key = KeyPair::from_pem(&key)
            .with_context(|| format!("{} is not a private key", ca_key.display()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert, key)
            .with_context(|| format!("{} is not a CA certificate", ca_cert.display()))?;
        writeln!(report, "using the hive's CA in {shown}/ca.pem").unwrap();
        issuer
    } else {
        let key = KeyPair::generate().context("cannot generate the CA's key")?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "hivemind hive CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params);
        let cert = params.self_signed(&key).context("cannot sign the CA")?;
        write_new(&ca_cert, cert.pem().as_bytes(), 0o644)?;
        write_new(&ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        writeln!(
            report,
            "created the hive's CA: {shown}/ca.pem, and {shown}/ca.key (keep it private: it makes new members)"
        )
        .unwrap();
        Issuer::new(params, key)
    };
    for host in hosts {
        let (cert_path, key_path) = (
            dir.join(format!("{host}.pem")),
            dir.join(format!("{host}.key")),
        );
        if cert_path.exists() || key_path.exists() {
            writeln!(
                report,
                "\nhost `{host}`: {shown}/{host}.pem exists; left as it is"
            )
            .unwrap();
        } else {
            let key = KeyPair::generate().context("cannot generate a host key")?;
            // The name is for people: hosts are recognised by the CA's signature, not by name.
            let dns = host.replace('_', "-");
            let mut params = CertificateParams::new(vec![dns])
                .with_context(|| format!("cannot make a certificate for `{host}`"))?;
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, host.as_str());
            params.distinguished_name = name;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            validity(&mut params);
            let cert = params
                .signed_by(&key, &issuer)
                .with_context(|| format!("cannot sign the certificate of `{host}`"))?;
            write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
            write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            writeln!(
                report,
                "\nhost `{host}`: created {shown}/{host}.pem and {shown}/{host}.key"
            )
            .unwrap();
        }
        writeln!(
            report,
            "  copy ca.pem, {host}.pem and {host}.key to {shown}/ in its hive, and put in its config/hive.toml:\n\
             \n  [mesh]\n  enabled = true\n  host = \"{host}\"\n  tls_ca = \"{shown}/ca.pem\"\n  tls_cert = \"{shown}/{host}.pem\"\n  tls_key = \"{shown}/{host}.key\"\n  \
             listen = [\"quic/0.0.0.0:7447\"]         # a UDP port; and/or connect = [\"quic/OTHER-HOST:7447\"]"
        )
        .unwrap();
    }
    Ok(report)
}

fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + VALID_FOR;
}

/// Writes a new file with `mode`; never replaces one.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_ca_and_host_certificates_are_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = dir.path().join("config/mesh");
        let report = create(&mesh, "config/mesh", &["manor".into(), "bat_cave".into()]).unwrap();
        assert!(report.contains("created the hive's CA"), "{report}");
        assert!(
            report.contains("tls_cert = \"config/mesh/manor.pem\""),
            "{report}"
        );
        for (file, mode) in [
            ("ca.key", 0o600),
            ("manor.key", 0o600),
            ("manor.pem", 0o644),
        ] {
            let meta = std::fs::metadata(mesh.join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
        }
        assert_eq!(
            std::fs::metadata(&mesh).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let ca = std::fs::read_to_string(mesh.join("ca.pem")).unwrap();
        let report = create(&mesh, "config/mesh", &["tower".into(), "manor".into()]).unwrap();
        assert!(report.contains("using the hive's CA"), "{report}");
        assert!(
            report.contains("manor.pem exists; left as it is"),
            "{report}"
        );
        assert_eq!(
            std::fs::read_to_string(mesh.join("ca.pem")).unwrap(),
            ca,
            "the same CA"
        );
        assert!(mesh.join("tower.key").exists());
        assert!(create(&mesh, "x", &["bad\nname".into()]).is_err());
        assert!(create(&mesh, "x", &[]).is_err());
    }
}
