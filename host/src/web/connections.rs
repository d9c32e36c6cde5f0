//! The web connections open now, in all and per client address, against `[hive]
//! max_connections` and `max_connections_per_address`: the server takes a place ([`Held`])
//! for each connection it accepts and gives it back when the connection ends; one over a limit
//! is answered 503 at once and closed ([`Full`]).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpStream;

/// The web connections open now: in all and per client address.
#[derive(Default)]
pub(super) struct Connections {
    /// (open in all, open per address); an address leaves the map when its count is 0.
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    refused: AtomicU64,
}

/// One open connection's place; given back when dropped.
pub(super) struct Held {
    connections: Arc<Connections>,
    address: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock();
        open.0 -= 1;
        if let Some(count) = open.1.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

/// Why a connection was not taken: the limit that was reached.
pub(super) struct Full {
    message: String,
}

impl Full {
    /// Answers 503 as far as the socket takes it at once, and closes.
    pub(super) fn refuse(self, stream: &TcpStream) {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.try_write(answer.as_bytes());
    }
}

impl Connections {
    /// Takes a place for a connection from `address`, unless a limit is reached.
    pub(super) fn take(
        self: &Arc<Self>,
        address: IpAddr,
        total: usize,
        per_address: usize,
    ) -> Result<Held, Full> {
        let address = address.to_canonical();
        let mut open = self.open.lock();
        let from_here = open.1.get(&address).copied().unwrap_or(0);
        let message = if open.0 >= total {
            format!(
                "this hive already has {total} web connections open, its limit: close clients you no longer use, or raise [hive] max_connections in config/hive.toml (and `ulimit -n`)"
            )
        } else if from_here >= per_address {
            format!(
                "{address} already has {per_address} web connections open to this hive, the limit per client address: close some, or raise [hive] max_connections_per_address in config/hive.toml"
            )
        } else {
            open.0 += 1;
            *open.1.entry(address).or_insert(0) += 1;
            return Ok(Held {
                connections: self.clone(),
                address,
            });
        };
        drop(open);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!("refused a web connection ({refused} so far): {message}");
        }
        Err(Full { message })
    }

    /// The `/metrics` lines about connections.
    pub(super) fn metrics(&self) -> String {
        let open = self.open.lock().0;
        format!(
            "# HELP hivemind_web_connections Web connections open now.\n\
             # TYPE hivemind_web_connections gauge\n\
             hivemind_web_connections {open}\n\
             # HELP hivemind_web_connections_refused_total Web connections refused at once because [hive] max_connections or max_connections_per_address were open.\n\
             # TYPE hivemind_web_connections_refused_total counter\n\
             hivemind_web_connections_refused_total {}\n",
            self.refused.load(Ordering::Relaxed)
        )
    }
}
