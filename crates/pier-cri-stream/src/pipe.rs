//! The stream halves handed to a backend, the same for SPDY and websockets:
//! input arrives as chunks on a channel (its end is the client's half-close),
//! output is queued to the connection's one writer task, in order.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSender;

use crate::spdy::Frame;

/// Largest chunk one write queues: a SPDY data frame or websocket message.
pub(crate) const CHUNK: usize = 32 * 1024;

/// What a connection's writer task sends, in queue order.
#[derive(Debug)]
pub(crate) enum Out {
    Data {
        id: u32,
        data: Bytes,
    },
    /// The end of a stream's output (SPDY FIN; nothing on a websocket).
    Fin {
        id: u32,
    },
    /// A SPDY control frame of the session itself.
    Control(Frame),
    /// Flush and close the connection's write side.
    Close,
}

/// Input a connection holds for its streams' readers, at most: a client
/// that sends faster than the container reads waits, as on TCP.
pub(crate) const INPUT_BUDGET: usize = 8 * 1024 * 1024;

/// A connection's input budget, shared by its streams.
#[derive(Clone)]
pub(crate) struct Budget(Arc<Semaphore>);

impl Budget {
    pub fn new() -> Self {
        Budget(Arc::new(Semaphore::new(INPUT_BUDGET)))
    }
}

struct Chunk {
    data: Bytes,
    held: Option<OwnedSemaphorePermit>,
}

/// The connection's end of an [`InStream`].
pub(crate) struct Feed {
    tx: mpsc::Sender<Chunk>,
    budget: Budget,
}

impl Feed {
    /// Queues a chunk (at most `INPUT_BUDGET` bytes) once the budget has
    /// room; `Err` when nobody reads the stream any more.
    pub async fn send(&self, data: Bytes) -> Result<(), ()> {
        let n = data.len().min(INPUT_BUDGET) as u32;
        let held = self.budget.0.clone().acquire_many_owned(n).await.ok();
        self.tx.send(Chunk { data, held }).await.map_err(|_| ())
    }
}

/// A stream's input: the end the backend reads and the end the connection feeds.
pub(crate) fn input(budget: &Budget) -> (Feed, InStream) {
    let (tx, rx) = mpsc::channel(16);
    (
        Feed {
            tx,
            budget: budget.clone(),
        },
        InStream {
            rx,
            buf: Bytes::new(),
            held: None,
        },
    )
}

/// Bytes the client sends on one stream (stdin, or a forwarded port's
/// traffic). Reads end (0 bytes) when the client closes its side.
pub struct InStream {
    rx: mpsc::Receiver<Chunk>,
    buf: Bytes,
    /// The budget `buf` holds until it is read.
    held: Option<OwnedSemaphorePermit>,
}

impl InStream {
    /// The next chunk as the client sent it; `None` at its end.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.held = None;
        if !self.buf.is_empty() {
            return Some(std::mem::take(&mut self.buf));
        }
        self.rx.recv().await.map(|c| c.data)
    }
}

impl AsyncRead for InStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            self.held = None;
            match ready!(self.rx.poll_recv(cx)) {
                Some(c) => {
                    self.buf = c.data;
                    self.held = c.held;
                }
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.buf.len().min(out.remaining());
        out.put_slice(&self.buf.split_to(n));
        Poll::Ready(Ok(()))
    }
}

/// Bytes for the client on one stream (stdout, stderr, a forwarded port's
/// replies). Writes fail with `BrokenPipe` once the connection is gone;
/// `shutdown` half-closes the stream.
pub struct OutStream {
    tx: PollSender<Out>,
    end: Ender,
}

impl OutStream {
    pub(crate) fn new(id: u32, tx: mpsc::Sender<Out>) -> Self {
        OutStream {
            tx: PollSender::new(tx),
            end: Ender::new(id),
        }
    }

    /// What ends this stream once the backend is done with it.
    pub(crate) fn ender(&self) -> Ender {
        self.end.clone()
    }
}

/// Ends a stream's output once, whoever asks first: the backend's
/// `shutdown` or the session when the backend returns.
#[derive(Clone)]
pub(crate) struct Ender {
    id: u32,
    done: Arc<AtomicBool>,
}

impl Ender {
    pub fn new(id: u32) -> Self {
        Ender {
            id,
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    pub async fn end(&self, out: &mpsc::Sender<Out>) {
        if !self.done.swap(true, Ordering::SeqCst) {
            let _ = out.send(Out::Fin { id: self.id }).await;
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the streaming client is gone")
}

impl AsyncWrite for OutStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.end.done.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| gone())?;
        let n = buf.len().min(CHUNK);
        let id = self.end.id;
        self.tx
            .send_item(Out::Data {
                id,
                data: Bytes::copy_from_slice(&buf[..n]),
            })
            .map_err(|_| gone())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer task flushes whenever its queue runs dry.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.end.done.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| gone())?;
        if self.end.done.swap(true, Ordering::SeqCst) {
            self.tx.abort_send();
            return Poll::Ready(Ok(()));
        }
        let id = self.end.id;
        self.tx.send_item(Out::Fin { id }).map_err(|_| gone())?;
        Poll::Ready(Ok(()))
    }
}

/// One forwarded connection: read what the client's local peer sent, write
/// the container's replies; `shutdown` half-closes towards the client.
pub struct PortStream {
    pub(crate) input: InStream,
    pub(crate) output: OutStream,
}

impl PortStream {
    /// The two halves, for copying each way in its own task.
    pub fn into_split(self) -> (InStream, OutStream) {
        (self.input, self.output)
    }
}

impl AsyncRead for PortStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.output).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_are_chunked_in_order_and_shutdown_is_a_fin() {
        let (tx, mut rx) = mpsc::channel(256);
        let mut w = OutStream::new(7, tx);
        let big = vec![b'x'; CHUNK * 2 + 10];
        w.write_all(&big).await.unwrap();
        w.shutdown().await.unwrap();
        assert!(w.write_all(b"late").await.is_err());
        drop(w);
        let mut sizes = Vec::new();
        while let Some(o) = rx.recv().await {
            match o {
                Out::Data { id: 7, data } => sizes.push(data.len()),
                Out::Fin { id: 7 } => sizes.push(0),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(sizes, vec![CHUNK, CHUNK, 10, 0]);
    }

    #[tokio::test]
    async fn a_stream_ends_once_whoever_ends_it() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut w = OutStream::new(3, tx.clone());
        let end = w.ender();
        w.shutdown().await.unwrap();
        end.end(&tx).await;
        let other = OutStream::new(5, tx.clone());
        other.ender().end(&tx).await;
        other.ender().end(&tx).await;
        drop((w, other, tx));
        let mut fins = Vec::new();
        while let Some(o) = rx.recv().await {
            if let Out::Fin { id } = o {
                fins.push(id);
            }
        }
        assert_eq!(fins, vec![3, 5]);
    }

    #[tokio::test]
    async fn reads_drain_chunks_then_end() {
        let (tx, mut r) = input(&Budget::new());
        tx.send(Bytes::from_static(b"ab")).await.unwrap();
        tx.send(Bytes::from_static(b"cd")).await.unwrap();
        drop(tx);
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "abcd");
    }

    #[tokio::test]
    async fn unread_input_is_bounded_per_connection() {
        let budget = Budget::new();
        let (a, mut ra) = input(&budget);
        let (b, _rb) = input(&budget);
        let mb = Bytes::from(vec![0u8; 1 << 20]);
        for _ in 0..INPUT_BUDGET >> 20 {
            a.send(mb.clone()).await.unwrap();
        }
        // The budget is spent: the other stream waits...
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(50), b.send(mb.clone())).await;
        assert!(blocked.is_err());
        // ...until the first one is read.
        let mut buf = vec![0u8; 1 << 20];
        ra.read_exact(&mut buf).await.unwrap();
        ra.read_exact(&mut buf[..1]).await.unwrap();
        b.send(mb).await.unwrap();
    }

    #[tokio::test]
    async fn writes_fail_when_the_connection_is_gone() {
        let (tx, rx) = mpsc::channel(4);
        drop(rx);
        let mut w = OutStream::new(1, tx);
        let e = w.write_all(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
