use thiserror::Error;

#[derive(Debug, Error)]
pub enum ComposeError {
    #[error("{file}:{line}: {message}")]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    /// A mistake in the model: `services.web.ports[0]: invalid port "80:80:80"`,
    /// prefixed with `file:line: ` when the position is known.
    #[error("{at}{path}: {message}")]
    Invalid {
        at: String,
        path: String,
        message: String,
    },
    #[error("{at}{message}")]
    Interpolation { at: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Project(String),
    #[error("{0}")]
    Client(#[from] pier_client::ClientError),
}

impl ComposeError {
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> ComposeError {
        ComposeError::Io {
            path: path.to_string(),
            source,
        }
    }
}

pub type Result<T, E = ComposeError> = std::result::Result<T, E>;
