//! The web server's guard settings under `[hive]`: which names it answers to, and what any one
//! client may cost it. Each number has a documented bound; a value outside it is refused with
//! its range.
//!
//! | key | default | bounds | what |
//! |---|---|---|---|
//! | `hosts` | `[]` | ≤ 64 names | names (or `name:port`) the hive answers to besides loopback and its address |
//! | `header_timeout_ms` | 10,000 | 100 ..= 300,000 | a request's headers must be in within this (HTTP/1; also the wait between two requests) |
//! | `idle_timeout_ms` | 30,000 | 1,000 ..= 3,600,000 | a connection on which no byte moves either way for this long is closed |
//! | `max_connections` | 1,024 | 1 ..= 65,536 | connections open at once (also capped at ¾ of the open-file limit) |
//! | `max_connections_per_address` | 256 | 1 ..= 65,536 | connections open at once from one client address |
//! | `max_requests_per_address` | 64 | 1 ..= 65,536 | API requests in hand at once from one client address (at most `max_connections_per_address` − 1 apply) |
//! | `ws_max_message_bytes` | 4,096 | 125 ..= 1,048,576 | largest WebSocket message or frame a client may send |

use anyhow::{Result, bail};
use std::time::Duration;

/// `[hive] header_timeout_ms` unless set.
pub(super) const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// `[hive] idle_timeout_ms` unless set.
pub(super) const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// `[hive] max_connections` unless set.
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// `[hive] max_connections_per_address` unless set.
pub(super) const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// `[hive] max_requests_per_address` unless set.
pub(super) const DEFAULT_MAX_REQUESTS_PER_ADDRESS: usize = 64;
/// `[hive] ws_max_message_bytes` unless set: clients only ever send close, ping and pong.
pub(super) const DEFAULT_WS_MAX_MESSAGE_BYTES: usize = 4096;
/// Most names `[hive] hosts` may list.
pub(super) const MAX_HOSTS: usize = 64;

/// The web server's guard settings (`[hive]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLimits {
    /// Extra names the hive answers to (lower case; `name` or `name:port`), besides
    /// `localhost`, `127.0.0.1`, `[::1]` and the address it listens on.
    pub hosts: Vec<String>,
    /// How long an HTTP/1 request's headers may take to arrive, counted from when the
    /// connection opened or the previous answer was sent.
    pub header_timeout: Duration,
    /// How long a connection may stay with no byte moving either way.
    pub idle_timeout: Duration,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// API requests in hand at once from one client address (see [`Self::requests_per_address`]).
    pub max_requests_per_address: usize,
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    pub ws_max_message_bytes: usize,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_requests_per_address: DEFAULT_MAX_REQUESTS_PER_ADDRESS,
            ws_max_message_bytes: DEFAULT_WS_MAX_MESSAGE_BYTES,
        }
    }
}

/// The raw `[hive]` values, as read.
pub(super) struct RawWeb {
    pub hosts: Option<Vec<String>>,
    pub header_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_connections_per_address: Option<u64>,
    pub max_requests_per_address: Option<u64>,
    pub ws_max_message_bytes: Option<u64>,
}

/// `value` (or `default`) if it is within the key's bounds (listed with the others in
/// `super::bounds::BOUNDS`), or an error naming the key, its bounds and why.
fn bounded(key: &str, value: Option<u64>, default: u64) -> Result<u64> {
    super::bounds::bounded("[hive]", &format!("[hive] {key}"), value.unwrap_or(default))
}

pub(super) fn web_limits(raw: RawWeb) -> Result<WebLimits> {
    let d = WebLimits::default();
    let hosts = raw.hosts.unwrap_or_default();
    if hosts.len() > MAX_HOSTS {
        bail!(
            "[hive] hosts lists {} names: at most {MAX_HOSTS}",
            hosts.len()
        );
    }
    let hosts = hosts
        .iter()
        .map(|host| check_host(host))
        .collect::<Result<Vec<_>>>()?;
    let connections = bounded(
        "max_connections",
        raw.max_connections,
        d.max_connections as u64,
    )?;
    Ok(WebLimits {
        hosts,
        header_timeout: Duration::from_millis(bounded(
            "header_timeout_ms",
            raw.header_timeout_ms,
            DEFAULT_HEADER_TIMEOUT_MS,
        )?),
        idle_timeout: Duration::from_millis(bounded(
            "idle_timeout_ms",
            raw.idle_timeout_ms,
            DEFAULT_IDLE_TIMEOUT_MS,
        )?),
        max_connections: connections as usize,
        max_connections_per_address: bounded(
            "max_connections_per_address",
            raw.max_connections_per_address,
            d.max_connections_per_address as u64,
        )? as usize,
        max_requests_per_address: bounded(
            "max_requests_per_address",
            raw.max_requests_per_address,
            d.max_requests_per_address as u64,
        )? as usize,
        ws_max_message_bytes: bounded(
            "ws_max_message_bytes",
            raw.ws_max_message_bytes,
            d.ws_max_message_bytes as u64,
        )? as usize,
    })
}

impl WebLimits {
    /// The API requests one client address may have in hand at once: `max_requests_per_address`,
    /// but always below `max_connections_per_address`, so that address keeps a connection for
    /// the page, `/healthz` and `/metrics` (at least 1).
    pub fn requests_per_address(&self) -> usize {
        self.max_requests_per_address
            .min(self.max_connections_per_address.saturating_sub(1))
            .max(1)
    }
}

/// A `[hive] hosts` entry in lower case: a DNS name or an IP address (IPv6 in brackets),
/// optionally with `:port`.
fn check_host(entry: &str) -> Result<String> {
    let lower = entry.trim().to_ascii_lowercase();
    let (name, port) = split_port(&lower);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
    };
    if !(name_ok && port_ok) {
        bail!(
            "[hive] hosts has {entry:?}: list names the hive is reached by, like \"gotham.local\", \"10.0.0.5\", \"[fd00::5]\" or \"hive.example:443\" (a name alone means the hive's own port)"
        );
    }
    Ok(lower)
}

/// `("name", Some("port"))` from `name:port`; IPv6 addresses keep their brackets.
pub(crate) fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let (name, rest) = authority.split_at(end + 1);
                (name, rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawWeb {
        RawWeb {
            hosts: None,
            header_timeout_ms: None,
            idle_timeout_ms: None,
            max_connections: None,
            max_connections_per_address: None,
            max_requests_per_address: None,
            ws_max_message_bytes: None,
        }
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(web_limits(raw()).unwrap(), WebLimits::default());
        let error = web_limits(RawWeb {
            header_timeout_ms: Some(5),
            ..raw()
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("header_timeout_ms = 5") && error.contains("from 100 to 300000"),
            "{error}"
        );
        assert!(
            web_limits(RawWeb {
                ws_max_message_bytes: Some(64 << 20),
                ..raw()
            })
            .is_err()
        );
        assert!(
            web_limits(RawWeb {
                max_connections: Some(0),
                ..raw()
            })
            .is_err()
        );
    }

    #[test]
    fn host_entries_are_checked_and_lowered() {
        let limits = web_limits(RawWeb {
            hosts: Some(vec![
                "Gotham.Local".into(),
                "hive.example:443".into(),
                "[fd00::5]:9476".into(),
                "10.0.0.5".into(),
            ]),
            ..raw()
        })
        .unwrap();
        assert_eq!(
            limits.hosts,
            [
                "gotham.local",
                "hive.example:443",
                "[fd00::5]:9476",
                "10.0.0.5"
            ]
        );
        for bad in ["", "evil example", "a:b", "http://x", "[zz]", "x:0", "a..b"] {
            assert!(
                web_limits(RawWeb {
                    hosts: Some(vec![bad.into()]),
                    ..raw()
                })
                .is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn ports_split_off() {
        assert_eq!(split_port("a.b:80"), ("a.b", Some("80")));
        assert_eq!(split_port("a.b"), ("a.b", None));
        assert_eq!(split_port("[::1]:9"), ("[::1]", Some("9")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
    }
}
