//! Build errors. Messages are the ones `docker build` prints, so the CLI can
//! show them unchanged.

use std::path::PathBuf;

use crate::backend::{BackendError, BackendErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse { line: usize, message: String },
    /// A mistake in the Dockerfile or the options (unknown stage, bad
    /// argument, missing COPY source...).
    #[error("{0}")]
    Invalid(String),
    /// A base image that is neither local nor pullable.
    #[error("{0}")]
    NotFound(String),
    /// A RUN step exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The client went away.
    #[error("build cancelled")]
    Cancelled,
    /// Downloading an `ADD <url>` source failed.
    #[error("failed to download {url}: {message}")]
    Download { url: String, message: String },
}

/// How a server should report a [`BuildError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    Internal,
}

impl BuildError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Parse { .. } | BuildError::Invalid(_) => ErrorKind::InvalidArgument,
            BuildError::NotFound(_) => ErrorKind::NotFound,
            BuildError::Backend(b) => match b.kind {
                BackendErrorKind::NotFound => ErrorKind::NotFound,
                BackendErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                BackendErrorKind::Internal => ErrorKind::Internal,
            },
            // As Docker: a failed RUN or download is the build failing, not
            // a bad request (its daemon answers 500).
            BuildError::RunFailed { .. }
            | BuildError::Download { .. }
            | BuildError::Io { .. }
            | BuildError::Cancelled => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io {
            context,
            path,
            source,
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
