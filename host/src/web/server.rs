//! Accepts the web server's connections and serves each with hyper, behind a write deadline:
//! a client that takes nothing of what the hive sends it for `[hive] write_timeout_ms` (it
//! stopped reading, or vanished without closing) is cut off, and a warning names it.
//!
//! warp's own server cannot wrap a connection, so this is its accept loop (same HTTP/1 and
//! HTTP/2 builder, same upgrades for WebSockets, same graceful stop) around [`Deadline`]. The
//! deadline covers every byte written on the connection, after an upgrade too: a stuck
//! WebSocket or server-sent event client is closed, its live-connection slot freed, and what
//! was waiting for it dropped, so it can neither grow the host's memory nor hold a slot.

use futures_util::future::{self, Either};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use warp::Filter;
use warp::reply::Response;

/// Serves `routes` on `listener` until `shutdown` completes, each connection with a write
/// deadline of `write_timeout()` (asked for each new connection, so a config change applies
/// to the next ones; asked on the connection's task, never holding up the accept loop).
pub(super) async fn run<F>(
    listener: TcpListener,
    routes: F,
    write_timeout: impl Fn() -> Duration + Clone + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter<Extract = (Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let service = warp::service(routes);
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
                        "cannot accept a web connection ({accept_errors} times so far): {e} (if it says too many open files, lower [hive] max_streams or raise `ulimit -n`)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = hyper_util::service::TowerToHyperService::new(service.clone());
        let watcher = graceful.watcher();
        let write_timeout = write_timeout.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(Deadline::new(stream, peer, write_timeout()));
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(io, handler);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!("web connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A TCP connection whose writes fail with `TimedOut` once one has waited `limit` without the
/// client taking a byte.
struct Deadline {
    stream: TcpStream,
    peer: SocketAddr,
    limit: Duration,
    /// Started when a write first found no room; cleared when a write goes through.
    stalled: Option<Pin<Box<Sleep>>>,
    reported: bool,
}

impl Deadline {
    fn new(stream: TcpStream, peer: SocketAddr, limit: Duration) -> Self {
        Self {
            stream,
            peer,
            limit,
            stalled: None,
            reported: false,
        }
    }

    /// What a write that returned `outcome` becomes under the deadline.
    fn judge<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.stalled = None;
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
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
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
        let mut writer = Deadline::new(stream, peer, Duration::from_millis(300));
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
        let mut writer = Deadline::new(stream, peer, Duration::from_millis(300));
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
}
