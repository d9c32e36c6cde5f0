//! The door every request passes before any route runs: [`access::admit`] (the name, the
//! origin, the key), `POST /api/session` answered here, and the security headers on every
//! answer.
//!
//! A request that presents a key from an address locked out for wrong keys is answered 429
//! with `Retry-After` before the key is compared ([`super::guesses`]); each wrong key is counted.
//!
//! An admitted API request takes a place among its address's requests in hand
//! ([`super::in_hand`]) until its answer is ready; one over `[hive] max_requests_per_address`
//! gets 429.
//!
//! Guarantees: a refused request reaches no handler (no stream place is taken, no bus tap set
//! up, nothing read beyond its head); every answer carries
//! - `Content-Security-Policy`: scripts, styles, images and connections from the hive itself
//!   only (`connect-src` names the request's own `ws://` authority), `frame-ancestors 'none'`,
//!   no `<base>`, no plugins; the pages satisfy it (no inline script or style, only a JSON data
//!   block); the key page has its own policy with a fresh nonce for its one script and style;
//! - `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
//!
//! `POST /api/session` with the key in `X-Hive-Key` answers 204 and
//! `Set-Cookie: hive-session=TOKEN; HttpOnly; SameSite=Strict; Path=/` (no expiry: it ends
//! with the browser session); `DELETE /api/session` ends it.

use super::access::{self, Admitted, Conn, Refusal, SESSION_COOKIE};
use super::guesses::{self, Outcome};
use super::in_hand;
use super::reply;
use super::state::Web;
use crate::config::HiveConfig;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::Instant;
use warp::Reply as _;
use warp::http::{HeaderValue, Method, Request, StatusCode, Version, header, request::Parts};
use warp::reply::Response;

/// `inner` (the routes) behind the gate, for one connection.
#[derive(Clone)]
pub(super) struct Guarded<S> {
    pub inner: S,
    pub conn: Conn,
    /// The client's address (for the wrong-key throttle).
    pub peer: IpAddr,
    pub web: Web,
}

impl<S, B> tower_service::Service<Request<B>> for Guarded<S>
where
    S: tower_service::Service<Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let config = self.web.controller.config();
        let (parts, body) = request.into_parts();
        // A key from an address locked out for wrong ones is not even compared.
        let guessing = config.key.is_some() && access::presented_key(&parts.headers).is_some();
        let now = Instant::now();
        if guessing && let Some(wait) = self.web.guesses.locked(self.peer, now) {
            self.web.guesses.throttled();
            let response = locked_out(&parts, self.peer, wait);
            return futures_util::future::ready(Ok(response)).boxed();
        }
        let admitted = match access::admit(&parts, &self.conn, &config, &self.web.sessions) {
            Ok(admitted) => {
                if guessing && admitted.authenticated {
                    self.web.guesses.succeeded(self.peer);
                }
                admitted
            }
            Err(refusal) => {
                if guessing && refusal.status == StatusCode::UNAUTHORIZED {
                    wrong_key(&self.web, self.peer, now);
                }
                let response = refused(&config, &parts, refusal);
                return futures_util::future::ready(Ok(response)).boxed();
            }
        };
        if parts.uri.path() == "/api/session" {
            let mut response = session(&self.web, &config, &parts, &admitted);
            secure(&mut response, Some(&admitted.authority));
            return futures_util::future::ready(Ok(response)).boxed();
        }
        let place = if in_hand::counts(parts.uri.path()) {
            let cap = config.web.requests_per_address();
            match self.web.in_hand.take(self.peer, cap) {
                Ok(place) => Some(place),
                Err(full) => {
                    let mut response = full.response();
                    secure(&mut response, Some(&admitted.authority));
                    // The connection goes too, so the client's next try takes no idle one.
                    if matches!(parts.version, Version::HTTP_10 | Version::HTTP_11) {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    return futures_util::future::ready(Ok(response)).boxed();
                }
            }
        } else {
            None
        };
        let answer = self.inner.call(Request::from_parts(parts, body));
        let authority = admitted.authority;
        async move {
            let mut response = answer.await?;
            drop(place);
            secure(&mut response, Some(&authority));
            Ok(response)
        }
        .boxed()
    }
}

/// Counts a wrong key from `peer`: logs (and puts in the feed) its first one and each lockout.
fn wrong_key(web: &Web, peer: IpAddr, now: Instant) {
    let (total, outcome) = web.guesses.failed(peer, now);
    let who = guesses::shown(peer);
    let message = match outcome {
        Outcome::Counted if total == 1 => format!(
            "a wrong [hive] key was sent from {who} (after {} in {} s it is locked out for a while; the right key from other addresses works on)",
            guesses::FREE_FAILURES,
            guesses::WINDOW.as_secs()
        ),
        Outcome::Counted => return,
        Outcome::Locked(wait) => format!(
            "{total} wrong [hive] keys from {who} so far: it is locked out for {} s (429 to any key it sends; other addresses are not slowed)",
            wait.as_secs()
        ),
    };
    tracing::warn!("{message}");
    web.controller
        .events()
        .emit(crate::events::EventKind::Hive, None, message);
}

/// The 429 for a request with a key from an address locked out for wrong ones.
fn locked_out(parts: &Parts, peer: IpAddr, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let body = serde_json::json!({
        "error": format!(
            "too many wrong keys from {}: try again in {seconds} s (send [hive] key from config/hive.toml as X-Hive-Key; each further wrong key doubles the wait, up to {} s)",
            guesses::shown(peer),
            guesses::MAX_LOCKOUT.as_secs()
        ),
        "setting": "[hive] key",
        "retry_after_s": seconds,
    });
    let mut response = reply::json(StatusCode::TOO_MANY_REQUESTS, &body);
    secure(&mut response, None);
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if matches!(parts.version, Version::HTTP_10 | Version::HTTP_11) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The answer to a refused request: JSON naming the setting, or the key page for a browser.
fn refused(config: &HiveConfig, parts: &Parts, refusal: Refusal) -> Response {
    let mut response = if refusal.ask_key {
        let nonce = crate::config::secrets::hex(&crate::config::secrets::random_bytes::<16>());
        let html = access::key_page(&config.name, &nonce);
        let mut response =
            warp::reply::with_status(warp::reply::html(html), refusal.status).into_response();
        secure(&mut response, None);
        let policy = format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        );
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        response
    } else {
        let mut body = serde_json::json!({ "error": refusal.message });
        if let Some(setting) = refusal.setting {
            body["setting"] = setting.into();
        }
        let mut response = reply::json(refusal.status, &body);
        secure(&mut response, None);
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if refusal.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hive\""),
        );
    }
    // HTTP/2 has no Connection header; there the refusal ends only the stream.
    if refusal.close && matches!(parts.version, Version::HTTP_10 | Version::HTTP_11) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `/api/session`: POST opens a browser session for a request that sent the key in a header;
/// DELETE ends the caller's session.
fn session(web: &Web, config: &HiveConfig, parts: &Parts, admitted: &Admitted) -> Response {
    let Some(key) = config.key.as_deref() else {
        return reply::error(
            StatusCode::NOT_FOUND,
            "this hive has no [hive] key, so there is no session to open: every read is open on loopback",
        );
    };
    match parts.method {
        Method::POST => {
            if access::presented_key(&parts.headers).is_none() || !admitted.authenticated {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    "send [hive] key from config/hive.toml as the header X-Hive-Key to open a session",
                );
            }
            let token = web.sessions.open(key);
            let mut response = StatusCode::NO_CONTENT.into_response();
            let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Method::DELETE => {
            web.sessions.close(&parts.headers);
            let mut response = StatusCode::NO_CONTENT.into_response();
            let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        _ => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST /api/session with the key in X-Hive-Key opens a session; DELETE ends it",
        ),
    }
}

/// Adds the security headers; `authority` (checked by the gate) lets the pages open their
/// WebSockets.
fn secure(response: &mut Response, authority: Option<&str>) {
    let connect = match authority {
        Some(authority) => format!("'self' ws://{authority} wss://{authority}"),
        None => "'self'".to_owned(),
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
