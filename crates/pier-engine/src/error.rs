use std::path::Path;

/// Engine errors carry a kind; the server maps each kind to an HTTP status in
/// one place, and the message is what Docker's clients print after
/// `Error response from daemon: `.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The request asked for a state the object is already in (HTTP 304).
    #[error("{0}")]
    NotModified(String),
    /// The container's process could not be started; `exit_code` is what
    /// docker's CLI exits with (126 not executable, 127 not found).
    #[error("{message}")]
    CannotStart { message: String, exit_code: i32 },
    /// The operation exists but this object's configuration cannot do it (HTTP 501).
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    pub fn io(path: &Path, e: std::io::Error) -> EngineError {
        EngineError::Internal(format!("{}: {e}", path.display()))
    }

    pub fn no_such_container(name: &str) -> EngineError {
        EngineError::NotFound(format!("No such container: {name}"))
    }

    pub fn no_such_image(name: &str) -> EngineError {
        EngineError::NotFound(format!("No such image: {name}"))
    }
}

impl From<pier_metadata::MetaError> for EngineError {
    fn from(e: pier_metadata::MetaError) -> Self {
        EngineError::Internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for EngineError {
    fn from(e: tokio::task::JoinError) -> Self {
        EngineError::Internal(format!("background task failed: {e}"))
    }
}
