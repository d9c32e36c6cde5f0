//! Accepts the web server's connections and serves each with hyper, behind its limits:
//!
//! - **Connections.** At most `[hive] max_connections` open at once (and never more than ¾ of
//!   the process's open-file limit), at most `[hive] max_connections_per_address` from one client
//!   address; one more is answered `503` at once and closed
//!   ([`Connections`](super::connections::Connections)), so idle or half-open sockets from one
//!   client cannot lock the others out.
//! - **Headers.** A connection's first request head (or HTTP/2 preface) must be in within
//!   `[hive] header_timeout_ms` of the connection's opening ([`Deadline`]: a socket that sends
//!   nothing, or a head byte by byte, is closed then, not after the idle timeout); each later
//!   HTTP/1 head within as long of the last answer (hyper's header timeout). A head may be at
//!   most [`MAX_HEAD_BYTES`]; a slow or endless head is cut off and its buffer freed.
//! - **Idle.** A connection on which no byte has moved either way for `[hive] idle_timeout_ms`
//!   is closed ([`Deadline`]); the live streams send keep-alives more often than that.
//! - **Writes.** A client that takes nothing of what the hive sends it for
//!   `[hive] write_timeout_ms` (it stopped reading, or vanished without closing) is cut off,
//!   and a warning names it. The deadline covers every byte written on the connection, after an
//!   upgrade too: a stuck WebSocket or server-sent event client is closed, its live-connection
//!   slot freed, and what was waiting for it dropped.
//!
//! Every request then passes the gate ([`super::gate`]) before any route. warp's own server
//! cannot wrap a connection, so this is its accept loop (same HTTP/1 and HTTP/2 builder, same
//! upgrades for WebSockets, same graceful stop).

use super::access::Conn;
use super::gate::Guarded;
use super::state::Web;
use futures_util::future::{self, Either};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use warp::Filter;
use warp::reply::Response;

/// The largest HTTP/1 request head (request line and headers) read into memory; hyper answers
/// a longer one with 431. HTTP/2 header lists have the same limit.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `routes` on `listener` until `shutdown` completes. The limits are read from the
/// config for each new connection, so a change applies to the next ones.
pub(super) async fn run<F>(
    listener: TcpListener,
    routes: F,
    web: Web,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter<Extract = (Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let service = warp::service(routes);
    let Ok(bound) = listener.local_addr() else {
        tracing::error!("the web server's listener has no address; it serves nothing");
        return;
    };
    let file_cap = open_file_limit().map(|limit| (limit / 4 * 3).max(16) as usize);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut accept_errors = 0u64;
    loop {
        let accepted = match future::select(pin!(listener.accept()), &mut shutdown).await {
            Either::Left((accepted, _)) => accepted,
            Either::Right(((), _)) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken: wait a
                // little rather than spin, keep the listener, and log the 1st, 2nd, 4th... time.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    tracing::warn!(
                        "cannot accept a web connection ({accept_errors} times so far): {e} (if it says too many open files, lower [hive] max_connections or raise `ulimit -n`)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let config = web.controller.config();
        let limits = config.web.clone();
        let total = file_cap.map_or(limits.max_connections, |cap| {
            cap.min(limits.max_connections)
        });
        let held = match web
            .connections
            .take(peer.ip(), total, limits.max_connections_per_address)
        {
            Ok(held) => held,
            Err(full) => {
                full.refuse(&stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(bound);
        let guarded = Guarded {
            inner: service.clone(),
            conn: Conn {
                listener: bound,
                local,
            },
            peer: peer.ip(),
            web: web.clone(),
        };
        let handler = hyper_util::service::TowerToHyperService::new(guarded);
        let watcher = graceful.watcher();
        let write_timeout = config.write_timeout;
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(Deadline::new(
                stream,
                peer,
                write_timeout,
                limits.idle_timeout,
                limits.header_timeout,
            ));
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD_BYTES);
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .max_header_list_size(MAX_HEAD_BYTES as u32);
            let connection = builder.serve_connection_with_upgrades(io, handler);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!("web connection from {peer} ended: {e}");
            }
            drop(held);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The soft limit on open files (`/proc/self/limits`), if it can be read.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A TCP connection whose writes fail with `TimedOut` once one has waited `limit` without the
/// client taking a byte, and whose reads fail so once no byte has moved either way for `idle`,
/// or when the first head (up to its blank line) is not in within `header` of the opening.
struct Deadline {
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
    /// Started when a write first found no room; cleared when a write goes through.
    stalled: Option<Pin<Box<Sleep>>>,
    reported: bool,
    idle: Duration,
    /// When a byte last moved, either way.
    active: Instant,
    /// Runs to `active + idle` while a read waits.
    idle_timer: Pin<Box<Sleep>>,
    /// Until the first head's blank line has been read: when it must be in by, and how much of
    /// `\r\n\r\n` the last bytes read end with.
    opening: Option<(Pin<Box<Sleep>>, usize)>,
    header: Duration,
}

impl Deadline {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        limit: Duration,
        idle: Duration,
        header: Duration,
    ) -> Self {
        Self {
            stream,
            peer,
            limit,
            stalled: None,
            reported: false,
            idle,
            active: Instant::now(),
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            opening: Some((Box::pin(tokio::time::sleep(header)), 0)),
            header,
        }
    }

    /// Follows the first head's bytes until its blank line; whether its time ran out first
    /// (registers the wake-up otherwise).
    fn head_late(&mut self, cx: &mut Context<'_>, read: &[u8]) -> bool {
        let Some((due, matched)) = &mut self.opening else {
            return false;
        };
        for &byte in read {
            *matched = match (*matched, byte) {
                (0 | 2, b'\r') | (1 | 3, b'\n') => *matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if *matched == 4 {
                break;
            }
        }
        if *matched == 4 {
            self.opening = None;
            return false;
        }
        due.as_mut().poll(cx).is_ready()
    }

    /// The error that ends a connection whose first head was late.
    fn late(&self) -> io::Error {
        tracing::debug!(
            "closing the web connection of {}: no request head within {} ms of its opening ([hive] header_timeout_ms)",
            self.peer,
            self.header.as_millis()
        );
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no request head within {} ms of the opening",
                self.header.as_millis()
            ),
        )
    }

    /// Whether the connection has been idle for too long (registers the wake-up otherwise).
    fn idle_out(&mut self, cx: &mut Context<'_>) -> bool {
        let due = tokio::time::Instant::from_std(self.active + self.idle);
        if self.idle_timer.deadline() != due {
            self.idle_timer.as_mut().reset(due);
        }
        self.idle_timer.as_mut().poll(cx).is_ready()
    }

    /// What a write that returned `outcome` becomes under the deadline.
    fn judge<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = None;
            self.active = Instant::now();
            return outcome;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stalled.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if !self.reported {
            self.reported = true;
            tracing::warn!(
                "closing the web connection of {}: it has taken nothing the hive sent it for {} ms (a client that stopped reading; [hive] write_timeout_ms sets how long)",
                self.peer,
                limit.as_millis()
            );
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took nothing for {} ms", limit.as_millis()),
        )))
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(outcome) => {
                if buf.filled().len() > before {
                    this.active = Instant::now();
                }
                if this.head_late(cx, &buf.filled()[before..]) {
                    return Poll::Ready(Err(this.late()));
                }
                Poll::Ready(outcome)
            }
            Poll::Pending if this.head_late(cx, &[]) => Poll::Ready(Err(this.late())),
            Poll::Pending if this.idle_out(cx) => {
                tracing::debug!(
                    "closing the idle web connection of {} ([hive] idle_timeout_ms)",
                    this.peer
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing moved for {} ms", this.idle.as_millis()),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.judge(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.judge(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_flush(cx);
        this.judge(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let mut writer = Deadline::new(
            stream,
            peer,
            Duration::from_millis(300),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        // The client never reads: the kernel's buffers fill, then the deadline runs.
        let chunk = vec![0u8; 64 * 1024];
        let started = std::time::Instant::now();
        let error = loop {
            if let Err(e) = writer.write_all(&chunk).await {
                break e;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the writes never stalled"
            );
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test]
    async fn a_reading_peer_is_never_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let mut writer = Deadline::new(
            stream,
            peer,
            Duration::from_millis(300),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let reader = tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            tokio::io::copy(&mut client, &mut sink).await.unwrap()
        });
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..256 {
            writer.write_all(&chunk).await.unwrap();
        }
        writer.shutdown().await.unwrap();
        drop(writer);
        assert_eq!(reader.await.unwrap(), 256 * 64 * 1024);
    }

    #[tokio::test]
    async fn a_silent_connection_ends_at_the_header_timeout_and_a_prompt_head_ends_the_watch() {
        use tokio::io::AsyncReadExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _silent = TcpStream::connect(address).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let mut reader = Deadline::new(
            stream,
            peer,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let mut buffer = [0u8; 64];
        let error = reader.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));

        let mut prompt = TcpStream::connect(address).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let mut reader = Deadline::new(
            stream,
            peer,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        prompt
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        prompt.write_all(b"\n").await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let n = reader.read(&mut buffer).await.unwrap();
            head.extend_from_slice(&buffer[..n]);
        }
        // The head is in: a pause after it is the idle timeout's business, not this one's.
        let late = tokio::time::timeout(Duration::from_millis(800), reader.read(&mut buffer)).await;
        assert!(
            late.is_err(),
            "the read ended after a complete head: {late:?}"
        );
    }
}
