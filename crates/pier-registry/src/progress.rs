//! Progress events of pulls and pushes. The engine turns them into Docker's
//! JSON progress stream; `id` is the short (12 hex) layer ID Docker shows.

use pier_reference::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest is resolved: `Pulling from <repo>` with `id` = tag or digest.
    PullingFrom {
        repo: String,
        tag: String,
    },
    /// The layer is already in the store.
    AlreadyExists {
        id: String,
    },
    /// The layer will be downloaded (`Pulling fs layer`).
    Pending {
        id: String,
    },
    /// Queued behind other downloads.
    Waiting {
        id: String,
    },
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    Verifying {
        id: String,
    },
    DownloadComplete {
        id: String,
    },
    /// `The push refers to repository [...]`.
    PushRepository {
        name: String,
    },
    Preparing {
        id: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    LayerExists {
        id: String,
    },
    Mounted {
        id: String,
        from: String,
    },
    /// `<tag>: digest: <digest> size: <n>`.
    PushDigest {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

/// Receives progress. Called from inside the transfer futures: keep it quick.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A progress sink that drops everything.
pub fn no_progress(_: Progress) {}

/// Docker's short form of a digest: the first 12 hex digits.
pub fn short_id(d: &Digest) -> String {
    d.hex()[..12.min(d.hex().len())].to_string()
}

/// Throttles `Downloading`/`Pushing` updates to about ten a second per layer.
pub(crate) struct Ticker {
    last: std::time::Instant,
}

impl Ticker {
    pub fn new() -> Ticker {
        Ticker {
            last: std::time::Instant::now() - std::time::Duration::from_secs(1),
        }
    }

    pub fn due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if now.duration_since(self.last) >= std::time::Duration::from_millis(100) {
            self.last = now;
            true
        } else {
            false
        }
    }
}
