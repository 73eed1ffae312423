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
    /// The daemon's address answers, but the connection could not be set up
    /// (a TLS handshake refused, a certificate not trusted).
    #[error("error during connect: {host}: {source}")]
    Dial {
        host: String,
        #[source]
        source: io::Error,
    },
    /// The daemon answered with an error status; `message` is its `{"message": …}`.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("invalid host {host:?}: {why}")]
    InvalidHost { host: String, why: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Context(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("error during connect: {}", chain(.0))]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("cannot decode the daemon's answer: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Protocol(String),
}

/// An error and its causes, `a: b: c` (hyper's "connection error" alone
/// does not say that the TLS peer refused our certificate).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
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
