//! The engine's one error type: a kind (which the server turns into an HTTP
//! status in one place), the message Docker's clients print after
//! `Error response from daemon: `, and the cause it came from.

use std::fmt;
use std::path::Path;

mod convert;

/// What went wrong, as Docker's API tells its clients (moby's `errdefs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Forbidden,
    /// The request asked for a state the object is already in (HTTP 304).
    NotModified,
    /// The container's process could not be started; `exit_code` is what
    /// docker's CLI exits with (126 not executable, 127 not found).
    CannotStart {
        exit_code: i32,
    },
    /// The operation exists but this object's configuration cannot do it.
    NotImplemented,
    /// Something the engine needs cannot be reached (a registry).
    Unavailable,
    Internal,
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An engine error. It reads as `message: cause` (or as either alone): the
/// wording Docker's clients see and tests match on, cause included, as
/// Docker writes it. `source()` still hands out the cause itself, so a log
/// or a caller can look past the text.
#[derive(Debug)]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A component's error as it is, under `kind`: it reads as the cause.
    pub fn wrap(kind: ErrorKind, source: impl Into<Source>) -> Self {
        EngineError {
            kind,
            message: String::new(),
            source: Some(source.into()),
        }
    }

    /// Keeps `source` as the cause: the error then reads `message: source`.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The exit code of a process that could not be started, if that is
    /// what this error is.
    pub fn start_exit_code(&self) -> Option<i32> {
        match self.kind {
            ErrorKind::CannotStart { exit_code } => Some(exit_code),
            _ => None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    pub fn not_modified(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotModified, message)
    }

    pub fn cannot_start(message: impl Into<String>, exit_code: i32) -> Self {
        Self::new(ErrorKind::CannotStart { exit_code }, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// A failed file operation on `path`: reads `path: error`.
    pub fn from_io(path: &Path, e: std::io::Error) -> Self {
        Self::internal(path.display().to_string()).with_source(e)
    }

    pub fn no_such_container(name: &str) -> Self {
        Self::not_found(format!("No such container: {name}"))
    }

    pub fn no_such_image(name: &str) -> Self {
        Self::not_found(format!("No such image: {name}"))
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) if self.message.is_empty() => write!(f, "{s}"),
            Some(s) => write!(f, "{}: {s}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<tokio::task::JoinError> for EngineError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal("background task failed").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_message_then_cause() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = EngineError::from_io(Path::new("/x/y"), io());
        assert_eq!(e.to_string(), "/x/y: gone");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(std::error::Error::source(&e).is_some());

        let e = EngineError::wrap(ErrorKind::Conflict, io());
        assert_eq!(e.to_string(), "gone");

        let e = EngineError::not_found("No such thing");
        assert_eq!(e.to_string(), "No such thing");
        assert!(std::error::Error::source(&e).is_none());
    }
}
