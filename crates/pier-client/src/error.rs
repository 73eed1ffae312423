use std::io;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket is not ours to use (Docker's wording).
    #[error("permission denied while trying to connect to the Pier daemon socket at {host}: connect: permission denied")]
    PermissionDenied { host: String },
    /// The socket does not answer.
    #[error("Cannot connect to the Pier daemon at {host}. Is the daemon running?")]
    Connect {
        host: String,
        #[source]
        source: io::Error,
    },
    /// The daemon answered with an error status; `message` is its `{"message": …}`.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("invalid host {0:?}: only unix:// hosts are supported")]
    InvalidHost(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("error during connect: {0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("cannot decode the daemon's answer: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Protocol(String),
}

impl ClientError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ClientError {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status when the daemon answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon ("No such container/image").
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}
