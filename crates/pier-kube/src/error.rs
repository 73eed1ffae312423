use thiserror::Error;

#[derive(Debug, Error)]
pub enum KubeError {
    /// A mistake in the YAML: `pod/web: spec.containers[0].image: required`.
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Client(#[from] pier_client::ClientError),
    #[error("{0}")]
    Compose(#[from] pier_compose::ComposeError),
}

impl KubeError {
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> KubeError {
        KubeError::Io {
            path: path.to_string(),
            source,
        }
    }
}

pub type Result<T, E = KubeError> = std::result::Result<T, E>;
