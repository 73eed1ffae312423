use std::io;
use std::path::PathBuf;

use pier_reference::Digest;

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A layer entry tried to reach outside the snapshot (Docker: "breakout").
    #[error("invalid layer: path breakout: {0}")]
    Breakout(String),
    /// Malformed or unsupported layer content.
    #[error("invalid layer: {0}")]
    Layer(String),
    #[error("layer digest mismatch: expected diff ID {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("snapshot {0}: not found")]
    NotFound(String),
    #[error("snapshot {0} is in use: {1}")]
    InUse(String, String),
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
}

impl SnapshotError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, SnapshotError::NotFound(_))
    }

    /// The layer's content was at fault, not the host.
    pub fn is_invalid_layer(&self) -> bool {
        matches!(
            self,
            SnapshotError::Breakout(_)
                | SnapshotError::Layer(_)
                | SnapshotError::DiffIdMismatch { .. }
        )
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { what, path, source }
}
