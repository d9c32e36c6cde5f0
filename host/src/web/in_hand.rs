//! The API requests each client address has in hand (admitted, not yet answered), against
//! `[hive] max_requests_per_address` ([`InHand`]): one over the cap is answered 429 naming it,
//! so slow requests from one address can never hold every connection it may open and starve
//! the page, `/healthz` and `/metrics` (which are never counted).
//!
//! A live stream counts while its handshake is answered; once open it counts against
//! `[hive] max_streams` instead ([`super::streams`]).

use super::reply;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

/// Requests in hand per client address; an address leaves the map when its count is 0.
#[derive(Default)]
pub(super) struct InHand {
    open: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

/// One request's place, given back when dropped (when its answer is ready).
pub(super) struct Place {
    in_hand: Arc<InHand>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.in_hand.open.lock();
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Whether a request on `path` counts: the API, but not the page's session.
pub(super) fn counts(path: &str) -> bool {
    path.starts_with("/api/") && path != "/api/session"
}

/// No place is left: the address has `cap` requests in hand.
pub(super) struct Full {
    address: IpAddr,
    cap: usize,
}

impl Full {
    /// The 429 that says so, names the setting and says what to do.
    pub(super) fn response(self) -> Response {
        let Full { address, cap } = self;
        let message = format!(
            "{address} already has {cap} API requests in hand at this hive, the limit per client address ([hive] max_requests_per_address): wait for their answers, or raise it in config/hive.toml (it stays below max_connections_per_address, so the page, /healthz and /metrics always have room)"
        );
        let body = serde_json::json!({
            "error": message,
            "setting": "[hive] max_requests_per_address",
            "max_requests_per_address": cap,
        });
        let mut response = reply::json(StatusCode::TOO_MANY_REQUESTS, &body);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }
}

impl InHand {
    /// A place for one more request from `address`, unless `cap` are in hand.
    pub(super) fn take(self: &Arc<Self>, address: IpAddr, cap: usize) -> Result<Place, Full> {
        let address = address.to_canonical();
        let mut open = self.open.lock();
        let count = open.entry(address).or_insert(0);
        if *count < cap {
            *count += 1;
            return Ok(Place {
                in_hand: self.clone(),
                address,
            });
        }
        drop(open);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(
                "refused an API request of {address} ({refused} so far): it has {cap} in hand, the [hive] max_requests_per_address limit"
            );
        }
        Err(Full { address, cap })
    }

    /// The `/metrics` lines about requests in hand.
    pub(super) fn metrics(&self) -> String {
        let in_hand: usize = self.open.lock().values().sum();
        format!(
            "# HELP hivemind_web_requests_in_hand API requests admitted and not yet answered.\n\
             # TYPE hivemind_web_requests_in_hand gauge\n\
             hivemind_web_requests_in_hand {in_hand}\n\
             # HELP hivemind_web_requests_refused_total API requests refused with 429 because their address had [hive] max_requests_per_address in hand.\n\
             # TYPE hivemind_web_requests_refused_total counter\n\
             hivemind_web_requests_refused_total {}\n",
            self.refused.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_address_and_given_back() {
        let in_hand = Arc::new(InHand::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| in_hand.take(a, 3).ok().unwrap()).collect();
        let refused = in_hand.take(a, 3).err().unwrap().response();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(in_hand.take(b, 3).is_ok());
        drop(held);
        assert!(in_hand.take(a, 3).is_ok());
        assert!(in_hand.open.lock().is_empty());
        assert!(
            in_hand
                .metrics()
                .contains("hivemind_web_requests_refused_total 1\n")
        );
        assert!(counts("/api/request/x") && !counts("/api/session") && !counts("/metrics"));
    }
}
