//! Who may change the hive through the API: the hive key, and the same-origin rule.
//!
//! - **The hive key.** When `[hive] key` is set in `config/hive.toml`, every mutating request
//!   (publish, enable, disable, reload) must carry it, as `X-Hive-Key: KEY` or
//!   `Authorization: Bearer KEY`; otherwise it gets 401. Reading (pages, `GET /api/...`,
//!   the streams) never needs it.
//! - **Beyond loopback, a key is required.** A hive bound to anything but a loopback address
//!   refuses to start without a key ([`check_exposure`]); its error suggests a fresh random one.
//! - **Same origin.** A mutating request that a browser sends from another web page (its
//!   `Origin` names another host) gets 403, so a page on the internet cannot drive a hive on
//!   this machine through the visitor's browser, key or no key.

use crate::config::HiveConfig;
use anyhow::{Result, bail};
use std::io::Read as _;
use warp::http::{HeaderMap, StatusCode, header};

/// The header that carries the hive key.
pub const KEY_HEADER: &str = "x-hive-key";

/// Refuses to serve beyond loopback without a hive key; says how to set one.
pub fn check_exposure(config: &HiveConfig) -> Result<()> {
    if config.key.as_deref() == Some("") {
        bail!(
            "[hive] key in config/hive.toml is empty: set it to a long random string, for example key = \"{}\", or remove it",
            fresh_key()
        );
    }
    if !config.bind.is_loopback() && config.key.is_none() {
        bail!(
            "the hive would listen on {}, beyond this machine, with no hive key: anyone who reaches it could publish and switch nodes.\nhelp: add a key under [hive] in config/hive.toml, for example\n  key = \"{}\"\nand send it with each change as the header `X-Hive-Key` (hm send and hm list do so); or bind to 127.0.0.1",
            config.bind,
            fresh_key()
        );
    }
    Ok(())
}

/// A random 128-bit key in hex, for the error message to suggest.
fn fresh_key() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Not secret-grade, but only a suggestion: the user may pick any key.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a mutating request is refused: its status and a sentence for the caller.
pub(super) type Refusal = (StatusCode, String);

/// Checks a mutating request's headers against `key` and the same-origin rule.
pub(super) fn authorize(key: Option<&str>, headers: &HeaderMap) -> Result<(), Refusal> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_none() || origin_host != host {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "a request from the web page at {origin} may not change this hive; use the hive's own pages, curl or hm"
                ),
            ));
        }
    }
    let Some(key) = key else {
        return Ok(());
    };
    let given = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    match given {
        Some(given) if same(given.trim().as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err((
            StatusCode::UNAUTHORIZED,
            "wrong hive key: send [hive] key from config/hive.toml as the header X-Hive-Key"
                .to_owned(),
        )),
        None => Err((
            StatusCode::UNAUTHORIZED,
            "this hive requires its key for changes: send [hive] key from config/hive.toml as the header X-Hive-Key"
                .to_owned(),
        )),
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use warp::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn without_a_key_only_the_origin_matters() {
        assert!(authorize(None, &headers(&[])).is_ok());
        assert!(authorize(None, &headers(&[("host", "127.0.0.1:9476")])).is_ok());
        let same_page = headers(&[
            ("host", "127.0.0.1:9476"),
            ("origin", "http://127.0.0.1:9476"),
        ]);
        assert!(authorize(None, &same_page).is_ok());
        let elsewhere = headers(&[
            ("host", "127.0.0.1:9476"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            authorize(None, &elsewhere).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        let opaque = headers(&[("host", "127.0.0.1:9476"), ("origin", "null")]);
        assert_eq!(
            authorize(None, &opaque).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn a_key_is_required_in_either_header() {
        let key = Some("s3cret");
        assert_eq!(
            authorize(key, &headers(&[])).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authorize(key, &headers(&[("x-hive-key", "wrong")]))
                .unwrap_err()
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert!(authorize(key, &headers(&[("x-hive-key", "s3cret")])).is_ok());
        assert!(authorize(key, &headers(&[("authorization", "Bearer s3cret")])).is_ok());
    }

    #[test]
    fn a_hive_beyond_loopback_needs_a_key() {
        let config = |text: &str| crate::config::parse(Path::new("/hives/gotham"), text).unwrap();
        assert!(check_exposure(&config("")).is_ok());
        assert!(check_exposure(&config("[hive]\nbind = \"::1\"\n")).is_ok());
        let open = check_exposure(&config("[hive]\nbind = \"0.0.0.0\"\n"))
            .unwrap_err()
            .to_string();
        assert!(open.contains("0.0.0.0"), "{open}");
        assert!(open.contains("key = \""), "{open}");
        assert!(check_exposure(&config("[hive]\nbind = \"0.0.0.0\"\nkey = \"k\"\n")).is_ok());
        assert!(check_exposure(&config("[hive]\nkey = \"\"\n")).is_err());
    }

    #[test]
    fn suggested_keys_differ() {
        let (a, b) = (fresh_key(), fresh_key());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
