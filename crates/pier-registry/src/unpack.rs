//! Unpacking layers while they download: the bytes of a layer go to the
//! content store's ingest file and, through a channel, to a blocking thread
//! that decompresses and unpacks them into a hidden directory. Nothing
//! becomes visible before the blob's digest and size check out; then the
//! staged layers are committed bottom first.

use std::fmt::Debug;
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use pier_reference::Digest;
use tokio::sync::mpsc;

/// Chunks in flight between the download and the unpacking thread.
const CHANNEL_CHUNKS: usize = 64;

/// Where pulled layers get unpacked (the engine's snapshotter).
pub trait LayerUnpacker: Send + Sync + Debug {
    /// Whether layer `index` of an image whose diff IDs (bottom first) are
    /// `diff_ids` still needs unpacking.
    fn wants(&self, diff_ids: &[Digest], index: usize) -> bool;

    /// Unpacks the compressed layer stream `blob` into a hidden place. The
    /// result becomes visible only by [`StagedLayer::commit`], and dropping it
    /// must undo the unpack. Errors are strings: the pull falls back to
    /// unpacking from the stored blob, which reports the real error.
    fn unpack(
        &self,
        diff_ids: &[Digest],
        index: usize,
        blob: &mut (dyn Read + Send),
    ) -> Result<Box<dyn StagedLayer>, String>;
}

/// A layer unpacked but not yet visible.
pub trait StagedLayer: Send {
    /// Makes it visible; the layer below must be visible by now.
    fn commit(self: Box<Self>) -> Result<(), String>;
}

/// The download side of an unpack running beside it.
pub(crate) struct Unpacking {
    tx: Option<mpsc::Sender<Bytes>>,
    job: tokio::task::JoinHandle<Result<Box<dyn StagedLayer>, String>>,
}

impl Unpacking {
    pub(crate) fn start(
        u: std::sync::Arc<dyn LayerUnpacker>,
        diff_ids: std::sync::Arc<Vec<Digest>>,
        index: usize,
    ) -> Unpacking {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let job = tokio::task::spawn_blocking(move || {
            let mut r = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            u.unpack(&diff_ids, index, &mut r)
        });
        Unpacking { tx: Some(tx), job }
    }

    /// Hands a downloaded chunk over. An unpack that gave up stops taking
    /// chunks; the download goes on regardless.
    pub(crate) async fn feed(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.tx
            && tx.send(chunk).await.is_err()
        {
            self.tx = None;
        }
    }

    /// Ends the stream and waits for the unpack.
    pub(crate) async fn finish(mut self) -> Result<Box<dyn StagedLayer>, String> {
        self.tx = None;
        match self.job.await {
            Ok(r) => r,
            Err(e) => Err(format!("unpack task failed: {e}")),
        }
    }
}

/// The receiving end as a blocking reader; end of stream when the
/// download side is done (or gone).
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// Commits staged layers bottom first (`staged` sorted by layer index). A
/// layer that fails stops the commit: the layers above it stay hidden and
/// are dropped, and registering the image unpacks them from their blobs.
pub(crate) fn commit_all(staged: Vec<(usize, Box<dyn StagedLayer>)>) {
    for (i, s) in staged {
        if let Err(e) = s.commit() {
            tracing::warn!("layer {i} unpacked during the pull could not be committed: {e}");
            return;
        }
    }
}
