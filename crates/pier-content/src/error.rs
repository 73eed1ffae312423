use std::io;
use std::path::{Path, PathBuf};

use pier_reference::Digest;

pub type Result<T, E = ContentError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Reading an input stream (archive, layer) failed.
    #[error("{context}: {source}")]
    Stream { context: String, source: io::Error },
    #[error("content digest {0}: not found")]
    NotFound(Digest),
    #[error("unexpected commit digest {actual}, expected {expected}: failed precondition")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("unexpected commit size {actual}, expected {expected}: failed precondition")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("blob {digest} is {size} bytes, more than the {limit} allowed here")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("blob {0} is corrupt: its content does not match its digest")]
    Corrupt(Digest),
    /// A malformed image archive or layer; the text says what is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl ContentError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ContentError::NotFound(_))
    }

    /// True when the caller's input was at fault (maps to HTTP 400), not the store.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            ContentError::Invalid(_)
                | ContentError::DigestMismatch { .. }
                | ContentError::SizeMismatch { .. }
                | ContentError::Stream { .. }
        )
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> ContentError + use<> {
    let path = path.to_path_buf();
    move |source| ContentError::Io { what, path, source }
}

pub(crate) fn stream_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ContentError {
    let context = context.into();
    move |source| ContentError::Stream { context, source }
}
