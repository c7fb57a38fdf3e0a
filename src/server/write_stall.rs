//! Cuts off a connection whose peer stops reading (slow read).
//!
//! hyper has timeouts for reading a request head, none for writing a response. A client that
//! pipelines requests and then reads a byte now and then keeps its socket's window shut, so
//! every write stalls and the connection, and one of `max_connections` permits, is held for as
//! long as the client likes: a thousand such clients lock everyone else out. [`WriteStall`]
//! wraps the socket and fails a write (or flush) that has made no progress for `timeout`;
//! hyper then drops the connection. A slow but moving reader is never cut: any progress
//! restarts the clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

/// A socket whose writes fail with `TimedOut` after `timeout` without progress.
pub struct WriteStall<T> {
    inner: T,
    timeout: Duration,
    /// Armed when a write first returns `Pending`, cleared by any progress.
    deadline: Option<Pin<Box<Sleep>>>,
}

// === impl WriteStall ===

impl<T> WriteStall<T> {
    pub fn new(inner: T, timeout: Duration) -> WriteStall<T> {
        WriteStall {
            inner,
            timeout,
            deadline: None,
        }
    }

    /// Passes `Ready` through (and disarms); on `Pending`, arms the deadline and fails once
    /// it has passed.
    fn guard<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "peer stopped reading: write stalled",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, poll)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_peer_that_stops_reading_fails_the_write() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = WriteStall::new(a, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = a.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Whatever fitted was written; nothing more.
        let mut got = vec![0u8; 64];
        b.read_exact(&mut got).await.unwrap();
    }

    #[tokio::test]
    async fn a_slow_but_moving_reader_is_never_cut() {
        let (a, mut b) = tokio::io::duplex(16);
        let mut a = WriteStall::new(a, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 16];
            // 256 bytes, 16 every 100 ms: 1.6 s in all, far past the timeout.
            while total < 256 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                total += b.read(&mut buf).await.unwrap();
            }
        });
        a.write_all(&[1u8; 256]).await.unwrap();
        reader.await.unwrap();
    }
}
