//! Who may ask the hive what: the rules every request passes before any route runs, as pure
//! functions of the request's head, the connection and the config ([`admit`]).
//!
//! In this order:
//! 1. **The name (DNS rebinding).** The request's authority (HTTP/2 `:authority`, or the
//!    HTTP/1 `Host` header; both must agree when both are given) must be one the hive answers
//!    to: `localhost`, `127.0.0.1`, `[::1]`, the address it is bound to (`0.0.0.0` included:
//!    `hm` prints it), the address the client reached, each with the hive's port; or a name listed in `[hive] hosts` (a name alone
//!    means the hive's port; `name:port` is taken as it is, for a proxy in front). Anything else
//!    gets 403 naming `[hive] hosts`. A page on `evil.example` whose name was re-pointed to
//!    127.0.0.1 so is refused, reads included.
//! 2. **The origin.** A request that carries `Origin` (browsers add it to every cross-origin
//!    request, every WebSocket handshake and every POST) must come from the hive's own pages:
//!    exactly `http://` plus the request's authority as RFC 6454 serialises it (no trailing `/`
//!    or space, no other scheme; `https://` only for a `[hive] hosts` name given with its port,
//!    a TLS proxy in front). Anything else, `null` included, gets 403, before a stream place is
//!    taken or a bus tap set up.
//! 3. **The key.** When `[hive] key` is set, a request that changes something (any method but
//!    GET and HEAD) needs it; beyond loopback, every request but `/healthz` does. It comes as
//!    `X-Hive-Key: KEY`, `Authorization: Bearer KEY`, or the session cookie that
//!    `POST /api/session` (with the key in a header) hands out ([`Sessions`]), which is how
//!    the pages, their event streams and WebSockets carry it without the key ever being in a
//!    URL, a log or the browser's storage. A hive listening beyond loopback with no key (one
//!    was removed while it ran) answers nothing but `/healthz`.
//!
//! Refusals of the first two rules close the connection, so a hostile page cannot keep it.

use super::pages;
use crate::config::{HiveConfig, split_port};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warp::http::{HeaderMap, Method, StatusCode, header, request::Parts};

/// The header that carries the hive key.
pub(crate) const KEY_HEADER: &str = "x-hive-key";

/// The cookie that carries a browser's session.
pub(super) const SESSION_COOKIE: &str = "hive-session";

/// How long a session lasts at most (the cookie itself ends with the browser session).
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at once; the oldest goes when a new one would pass this.
const MAX_SESSIONS: usize = 1024;

/// Why a request is refused: its status, a sentence for the caller, and whether to close.
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// The setting that would let it through, for the JSON error.
    pub setting: Option<&'static str>,
    /// Answer with the key page instead of JSON (a browser asking for a page).
    pub ask_key: bool,
    /// Close the connection after the answer.
    pub close: bool,
}

impl Refusal {
    fn new(status: StatusCode, message: String) -> Self {
        Self {
            status,
            message,
            setting: None,
            ask_key: false,
            close: false,
        }
    }
}

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conn {
    /// The listener's own address (its port is the hive's; `0.0.0.0` when bound to all).
    pub listener: SocketAddr,
    /// The address the client reached (this end of the connection).
    pub local: SocketAddr,
}

impl Conn {
    /// Whether the hive listens beyond loopback.
    pub(super) fn beyond_loopback(&self) -> bool {
        !self.listener.ip().is_loopback()
    }
}

/// What passed: the authority the request named (checked), and whether it carried the key.
#[derive(Debug)]
pub(super) struct Admitted {
    pub authority: String,
    pub authenticated: bool,
}

/// Applies the three rules above to a request's head.
pub(super) fn admit(
    parts: &Parts,
    conn: &Conn,
    config: &HiveConfig,
    sessions: &Sessions,
) -> Result<Admitted, Refusal> {
    let authority = authority(parts)?;
    check_name(&authority, conn, &config.web.hosts)?;
    check_origin(&parts.headers, &authority, &config.web.hosts)?;
    let key = config.key.as_deref();
    let authenticated = match key {
        Some(key) => carries_key(&parts.headers, key, sessions)?,
        None => false,
    };
    let path = parts.uri.path();
    if path == "/healthz" {
        return Ok(Admitted {
            authority,
            authenticated,
        });
    }
    let changes = !matches!(parts.method, Method::GET | Method::HEAD);
    let is_session = path == "/api/session";
    match key {
        None if conn.beyond_loopback() => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this hive listens beyond loopback but has no [hive] key: add one to config/hive.toml (it serves only /healthz until then)".to_owned(),
        )),
        Some(_) if !authenticated && !is_session && (changes || conn.beyond_loopback()) => {
            let ask_key = !changes && wants_page(parts);
            Err(Refusal {
                setting: Some("[hive] key"),
                ask_key,
                ..Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    if changes {
                        "this hive requires its key for changes: send [hive] key from config/hive.toml as the header X-Hive-Key".to_owned()
                    } else {
                        "this hive listens beyond loopback and requires its key for every request: send [hive] key from config/hive.toml as the header X-Hive-Key (the dashboard asks for it once)".to_owned()
                    },
                )
            })
        }
        _ => Ok(Admitted {
            authority,
            authenticated,
        }),
    }
}

/// The request's authority: HTTP/2's `:authority` (or an HTTP/1 absolute URI), and `Host`;
/// when both are there they must agree.
fn authority(parts: &Parts) -> Result<String, Refusal> {
    let from_uri = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase());
    let host = match parts.headers.get(header::HOST) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "the Host header is not plain text".to_owned(),
                    )
                })?
                .trim()
                .to_ascii_lowercase(),
        ),
        None => None,
    };
    match (from_uri, host) {
        (Some(a), Some(h)) if a != h => Err(Refusal {
            close: true,
            ..Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the request names two hosts, {a} and {h}"),
            )
        }),
        (Some(a), _) => Ok(a),
        (None, Some(h)) if !h.is_empty() => Ok(h),
        _ => Err(Refusal {
            close: true,
            ..Refusal::new(
                StatusCode::BAD_REQUEST,
                "the request names no host (HTTP/1.1 needs a Host header)".to_owned(),
            )
        }),
    }
}

/// Whether the hive answers to `authority` (lower case) on this connection.
fn check_name(authority: &str, conn: &Conn, hosts: &[String]) -> Result<(), Refusal> {
    let port = conn.local.port();
    let (name, given_port) = split_port(authority);
    // No port in the authority means the scheme's own: 80 for http.
    let given_port = match given_port {
        None => Some(80),
        Some(p) => p.parse::<u16>().ok(),
    };
    let ours = |candidate: &str| -> bool {
        let (n, p) = split_port(candidate);
        let p = match p {
            Some(p) => p.parse::<u16>().ok(),
            None => Some(port),
        };
        n == name && p.is_some() && p == given_port
    };
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
        address_name(conn.local),
    ];
    // `0.0.0.0` too: it is what `hm` prints, and an address is never a name to re-point.
    names.push(address_name(conn.listener));
    if names.iter().any(|n| ours(n)) || hosts.iter().any(|h| ours(h)) {
        return Ok(());
    }
    Err(Refusal {
        setting: Some("[hive] hosts"),
        close: true,
        ..Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "this hive does not answer to the name {authority:?}: it answers to localhost, 127.0.0.1, [::1] and its own address on port {port}, and the names in [hive] hosts. If you reach it by that name on purpose, add it to [hive] hosts in config/hive.toml, e.g. hosts = [\"{}\"] (a page of another site that points its name here is refused so)",
                name
            ),
        )
    })
}

/// An address as a URL names it: `10.0.0.5`, `[fd00::5]`.
fn address_name(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{}]", v6.ip()),
        },
    }
}

/// A request with `Origin` must come from a page of this hive: the header must be, byte for
/// byte, the origin a browser sends for a page at the request's own authority (RFC 6454's
/// serialisation: lower-case scheme and host, no path, no trailing `/` or space, the port
/// left out when it is the scheme's default). The scheme is `http`; `https` only for a name
/// listed in `[hive] hosts` with its port (a TLS proxy in front).
fn check_origin(headers: &HeaderMap, authority: &str, hosts: &[String]) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let given = origin.as_bytes();
    if expected_origins(authority, hosts)
        .iter()
        .any(|expected| expected.as_bytes() == given)
    {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(given);
    Err(Refusal {
        close: true,
        ..Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "a request from the web page at {shown:?} may not use this hive (only its own pages, at http://{authority}, may); use the hive's own pages, curl or hm"
            ),
        )
    })
}

/// The origins of this hive's own pages reached at `authority` (lower case, checked).
fn expected_origins(authority: &str, hosts: &[String]) -> Vec<String> {
    let (name, port) = split_port(authority);
    let serialised = |scheme: &str, default: &str| match port {
        Some(p) if p != default => format!("{scheme}://{name}:{p}"),
        _ => format!("{scheme}://{name}"),
    };
    let mut origins = vec![serialised("http", "80")];
    let proxied = port.is_some()
        && hosts
            .iter()
            .any(|h| split_port(h).1.is_some() && h.eq_ignore_ascii_case(authority));
    if proxied {
        origins.push(serialised("https", "443"));
    }
    origins
}

/// Whether the request carries `key` (header, or a live session cookie). A wrong key in a
/// header is refused outright, so a caller never mistakes it for a read that needs none.
fn carries_key(headers: &HeaderMap, key: &str, sessions: &Sessions) -> Result<bool, Refusal> {
    if let Some(given) = presented_key(headers) {
        if same(given.trim().as_bytes(), key.as_bytes()) {
            return Ok(true);
        }
        return Err(Refusal {
            setting: Some("[hive] key"),
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "wrong hive key: send [hive] key from config/hive.toml as the header X-Hive-Key"
                    .to_owned(),
            )
        });
    }
    Ok(session_cookie(headers).is_some_and(|token| sessions.valid(token, key)))
}

/// The key from `X-Hive-Key` or `Authorization: Bearer`.
pub(super) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
}

/// The session token from the `Cookie` header, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// Whether a refused GET came from a browser asking for a page (it gets the key page).
fn wants_page(parts: &Parts) -> bool {
    let path = parts.uri.path();
    let page = path == "/"
        || path == "/nodes"
        || path.starts_with("/nodes/")
        || path == "/topics"
        || path == "/publish"
        || path == "/requests";
    let html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    page && html
}

/// The body of a refusal for a browser that asked for a page: a form for the key.
pub(super) fn key_page(hive: &str, nonce: &str) -> String {
    pages::key_page(hive, nonce)
}

/// Whether `given` is `key`, in time that depends only on the key's length: not on where the
/// first difference is, nor on the length of what was given.
fn same(given: &[u8], key: &[u8]) -> bool {
    let mut differ = u8::from(given.len() != key.len());
    for (i, k) in key.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!k);
        differ |= std::hint::black_box(g ^ k);
    }
    differ == 0
}

/// The browser sessions `POST /api/session` handed out: random tokens, each valid for
/// [`SESSION_LIFETIME`] and only under the key it was given for (a new key ends them all).
#[derive(Default)]
pub(super) struct Sessions {
    /// Token → (when it was given, a fingerprint of the key it was given under).
    live: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Sessions {
    /// A new session under `key`: its token (64 hex digits from the kernel's randomness).
    pub(super) fn open(&self, key: &str) -> String {
        let token = crate::config::secrets::hex(&crate::config::secrets::random_bytes::<32>());
        let mut live = self.live.lock();
        live.retain(|_, (at, _)| at.elapsed() < SESSION_LIFETIME);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(t, _)| t.clone())
        {
            live.remove(&oldest);
        }
        live.insert(token.clone(), (Instant::now(), fingerprint(key)));
        token
    }

    /// Whether `token` is a live session under `key`.
    fn valid(&self, token: &str, key: &str) -> bool {
        let live = self.live.lock();
        live.get(token).is_some_and(|(at, print)| {
            at.elapsed() < SESSION_LIFETIME && *print == fingerprint(key)
        })
    }

    /// Ends the session `token`, if it is one.
    pub(super) fn close(&self, headers: &HeaderMap) {
        if let Some(token) = session_cookie(headers) {
            self.live.lock().remove(token);
        }
    }
}

/// A fingerprint of the key, so sessions end when it changes (not the key itself).
fn fingerprint(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use warp::http::Request;

    fn config(text: &str) -> HiveConfig {
        crate::config::parse(Path::new("/hives/gotham"), text).unwrap()
    }

    fn conn(listener: &str, local: &str) -> Conn {
        Conn {
            listener: listener.parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn status(result: Result<Admitted, Refusal>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(refusal) => refusal.status.as_u16(),
        }
    }

    #[test]
    fn only_known_names_with_the_port_are_answered() {
        let cfg = config("[hive]\nhosts = [\"gotham.local\", \"proxy.example:443\"]\n");
        let c = conn("127.0.0.1:9476", "127.0.0.1:9476");
        let s = Sessions::default();
        let get = |host: &str| {
            status(admit(
                &head("GET", "/api/nodes", &[("host", host)]),
                &c,
                &cfg,
                &s,
            ))
        };
        for ok in [
            "127.0.0.1:9476",
            "localhost:9476",
            "LOCALHOST:9476",
            "[::1]:9476",
            "gotham.local:9476",
            "proxy.example:443",
        ] {
            assert_eq!(get(ok), 200, "{ok}");
        }
        for bad in [
            "evil.example:9476",
            "127.0.0.1:9999",
            "localhost",
            "gotham.local:80",
            "proxy.example:9476",
            "gotham.local.evil:9476",
            "",
        ] {
            assert_eq!(get(bad), if bad.is_empty() { 400 } else { 403 }, "{bad}");
        }
        let refusal = admit(
            &head("GET", "/", &[("host", "evil.example:9476")]),
            &c,
            &cfg,
            &s,
        )
        .unwrap_err();
        assert!(
            refusal.message.contains("[hive] hosts") && refusal.close,
            "{}",
            refusal.message
        );
        // HTTP/2 names the authority in the URI.
        assert_eq!(
            status(admit(
                &head("GET", "http://127.0.0.1:9476/api/nodes", &[]),
                &c,
                &cfg,
                &s
            )),
            200
        );
        assert_eq!(
            status(admit(
                &head("GET", "http://evil.example:9476/", &[]),
                &c,
                &cfg,
                &s
            )),
            403
        );
        assert_eq!(
            status(admit(
                &head(
                    "GET",
                    "http://127.0.0.1:9476/",
                    &[("host", "evil.example:9476")]
                ),
                &c,
                &cfg,
                &s
            )),
            400
        );
    }

    #[test]
    fn the_address_reached_and_the_bound_one_are_names_too() {
        let cfg = config("[hive]\nbind = \"0.0.0.0\"\nkey = \"k\"\n");
        let c = conn("0.0.0.0:9476", "10.1.2.3:9476");
        let s = Sessions::default();
        let get = |host: &str| {
            status(admit(
                &head("GET", "/healthz", &[("host", host)]),
                &c,
                &cfg,
                &s,
            ))
        };
        assert_eq!(get("10.1.2.3:9476"), 200);
        assert_eq!(get("0.0.0.0:9476"), 200);
        assert_eq!(get("10.1.2.4:9476"), 403);
    }

    #[test]
    fn other_origins_are_refused_for_reads_and_streams() {
        let cfg = config("");
        let c = conn("127.0.0.1:9476", "127.0.0.1:9476");
        let s = Sessions::default();
        let with_origin = |method: &str, origin: &str| {
            status(admit(
                &head(
                    method,
                    "/api/subscribe",
                    &[("host", "127.0.0.1:9476"), ("origin", origin)],
                ),
                &c,
                &cfg,
                &s,
            ))
        };
        assert_eq!(with_origin("GET", "http://127.0.0.1:9476"), 200);
        assert_eq!(with_origin("POST", "http://127.0.0.1:9476"), 200);
        assert_eq!(with_origin("GET", "https://evil.example"), 403);
        assert_eq!(with_origin("GET", "null"), 403);
        assert_eq!(with_origin("POST", "http://localhost:9476"), 403);
        // Exactly the origin a browser sends: scheme, host and port, nothing more.
        for bad in [
            "https://127.0.0.1:9476",
            "http://127.0.0.1:9476/",
            "http://127.0.0.1:9476 ",
            " http://127.0.0.1:9476",
            "HTTP://127.0.0.1:9476",
            "http://127.0.0.1:9476/x",
            "http://127.0.0.1",
            "http://127.0.0.1:9476.evil",
            "ws://127.0.0.1:9476",
        ] {
            assert_eq!(with_origin("POST", bad), 403, "{bad:?}");
        }
    }

    #[test]
    fn origins_are_serialised_as_browsers_send_them() {
        let hosts = vec!["gotham.local".to_owned(), "proxy.example:443".to_owned()];
        assert_eq!(
            expected_origins("127.0.0.1:9476", &hosts),
            ["http://127.0.0.1:9476"]
        );
        assert_eq!(
            expected_origins("gotham.local:80", &hosts),
            ["http://gotham.local"]
        );
        assert_eq!(
            expected_origins("proxy.example:443", &hosts),
            ["http://proxy.example:443", "https://proxy.example"]
        );
        assert_eq!(
            expected_origins("[::1]:9476", &hosts),
            ["http://[::1]:9476"]
        );
    }

    #[test]
    fn on_loopback_reads_are_open_and_changes_need_the_key() {
        let cfg = config("[hive]\nkey = \"s3cret\"\n");
        let c = conn("127.0.0.1:9476", "127.0.0.1:9476");
        let s = Sessions::default();
        let h = |method: &str, extra: &[(&str, &str)]| {
            let mut headers = vec![("host", "127.0.0.1:9476")];
            headers.extend_from_slice(extra);
            status(admit(
                &head(method, "/api/nodes/a/disable", &headers),
                &c,
                &cfg,
                &s,
            ))
        };
        assert_eq!(h("GET", &[]), 200);
        assert_eq!(h("POST", &[]), 401);
        assert_eq!(h("POST", &[("x-hive-key", "wrong")]), 401);
        assert_eq!(h("POST", &[("x-hive-key", "s3cre")]), 401);
        assert_eq!(h("POST", &[("x-hive-key", "s3cret!")]), 401);
        assert_eq!(h("POST", &[("x-hive-key", "")]), 401);
        assert_eq!(h("POST", &[("x-hive-key", "s3cret")]), 200);
        assert_eq!(h("POST", &[("authorization", "Bearer s3cret")]), 200);
        let token = s.open("s3cret");
        let cookie = format!("other=1; {SESSION_COOKIE}={token}");
        assert_eq!(h("POST", &[("cookie", &cookie)]), 200);
        assert_eq!(h("POST", &[("cookie", "hive-session=forged")]), 401);
        // A new key ends the sessions of the old one.
        let rekeyed = config("[hive]\nkey = \"n3w\"\n");
        let parts = head(
            "POST",
            "/api/publish/x",
            &[("host", "127.0.0.1:9476"), ("cookie", &cookie)],
        );
        assert_eq!(status(admit(&parts, &c, &rekeyed, &s)), 401);
    }

    #[test]
    fn beyond_loopback_everything_but_healthz_needs_the_key() {
        let cfg = config("[hive]\nbind = \"0.0.0.0\"\nkey = \"s3cret\"\n");
        let c = conn("0.0.0.0:9476", "127.0.0.1:9476");
        let s = Sessions::default();
        let get = |path: &str, extra: &[(&str, &str)]| {
            let mut headers = vec![("host", "127.0.0.1:9476")];
            headers.extend_from_slice(extra);
            admit(&head("GET", path, &headers), &c, &cfg, &s)
        };
        assert_eq!(status(get("/healthz", &[])), 200);
        assert_eq!(status(get("/api/nodes", &[])), 401);
        assert_eq!(status(get("/static/app.js", &[])), 401);
        assert_eq!(status(get("/api/nodes", &[("x-hive-key", "s3cret")])), 200);
        assert!(get("/", &[("accept", "text/html")]).unwrap_err().ask_key);
        assert!(
            !get("/api/nodes", &[("accept", "text/html")])
                .unwrap_err()
                .ask_key
        );
        // With the key gone (a live change slipped through), nothing but /healthz.
        let unkeyed = config("[hive]\nbind = \"127.0.0.1\"\n");
        let parts = head("GET", "/api/nodes", &[("host", "127.0.0.1:9476")]);
        assert_eq!(status(admit(&parts, &c, &unkeyed, &s)), 503);
    }
}
