//! Each component's error as an engine error. The kind follows what the
//! component says went wrong; the text stays the component's own.

use pier_build::BuildError;
use pier_content::ContentError;
use pier_metadata::MetaError;
use pier_network::NetError;
use pier_registry::RegistryError;
use pier_runtime::client::ShimError;
use pier_runtime::spec::SpecError;
use pier_snapshot::SnapshotError;

use super::{EngineError, ErrorKind};

impl From<MetaError> for EngineError {
    fn from(e: MetaError) -> Self {
        let kind = match e {
            MetaError::Conflict(_) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        };
        EngineError::wrap(kind, e)
    }
}

impl From<ContentError> for EngineError {
    fn from(e: ContentError) -> Self {
        let kind = if e.is_invalid_input() {
            ErrorKind::InvalidArgument
        } else if e.is_not_found() {
            ErrorKind::NotFound
        } else {
            ErrorKind::Internal
        };
        EngineError::wrap(kind, e)
    }
}

impl From<SnapshotError> for EngineError {
    fn from(e: SnapshotError) -> Self {
        // A missing snapshot is the engine's inconsistency, not an object the
        // client named: a 404 would read as "no such container".
        let kind = if e.is_invalid_layer() {
            ErrorKind::InvalidArgument
        } else {
            ErrorKind::Internal
        };
        EngineError::wrap(kind, e)
    }
}

impl From<RegistryError> for EngineError {
    fn from(e: RegistryError) -> Self {
        let kind = match &e {
            RegistryError::NotFound(_) => ErrorKind::NotFound,
            RegistryError::Invalid(_) => ErrorKind::InvalidArgument,
            RegistryError::Unauthorized(_) => ErrorKind::Unauthorized,
            RegistryError::Denied(_) => ErrorKind::Forbidden,
            RegistryError::Content(c) if c.is_invalid_input() => ErrorKind::InvalidArgument,
            e if e.is_unreachable() => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        EngineError::wrap(kind, e)
    }
}

impl From<BuildError> for EngineError {
    fn from(e: BuildError) -> Self {
        let kind = match e.kind() {
            pier_build::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            pier_build::ErrorKind::NotFound => ErrorKind::NotFound,
            pier_build::ErrorKind::Internal => ErrorKind::Internal,
        };
        EngineError::wrap(kind, e)
    }
}

impl From<NetError> for EngineError {
    fn from(e: NetError) -> Self {
        let kind = match e {
            NetError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            NetError::Conflict(_) => ErrorKind::Conflict,
            NetError::NotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        };
        EngineError::wrap(kind, e)
    }
}

impl From<ShimError> for EngineError {
    fn from(e: ShimError) -> Self {
        match e {
            // Docker prints the runtime's words alone, without the shim's
            // framing, and exits with the code they carry.
            ShimError::Refused {
                message,
                exit_code: Some(code),
            } => EngineError::cannot_start(message, code),
            ShimError::Refused { message, .. } => EngineError::conflict(message),
            ShimError::ShimFailed { message, .. } => EngineError::cannot_start(message, 128),
            e => EngineError::wrap(ErrorKind::Internal, e),
        }
    }
}

impl From<SpecError> for EngineError {
    fn from(e: SpecError) -> Self {
        EngineError::wrap(ErrorKind::InvalidArgument, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: impl Into<EngineError>) -> ErrorKind {
        e.into().kind()
    }

    #[test]
    fn registry_errors_keep_their_kind() {
        assert_eq!(
            kind(RegistryError::NotFound("x".into())),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(RegistryError::Unauthorized("x".into())),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            kind(RegistryError::Denied("x".into())),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(RegistryError::Invalid("x".into())),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(RegistryError::Protocol("x".into())),
            ErrorKind::Internal
        );
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_unavailable() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let client = pier_registry::Client::new(pier_registry::RegistryOptions {
            insecure: vec![format!("127.0.0.1:{port}")],
            ..Default::default()
        })
        .expect("client");
        let r = pier_reference::Reference::parse(&format!("127.0.0.1:{port}/a/b:c")).unwrap();
        let e = pier_registry::inspect(&client, &r, None)
            .await
            .expect_err("nothing listens there");
        assert!(e.is_unreachable(), "{e}");
        let text = e.to_string();
        let e = EngineError::from(e);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.to_string(), text);
    }

    #[test]
    fn content_snapshot_network_and_metadata_errors_keep_their_kind() {
        assert_eq!(
            kind(ContentError::Invalid("x".into())),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(SnapshotError::Layer("x".into())),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            kind(SnapshotError::NotFound("x".into())),
            ErrorKind::Internal
        );
        assert_eq!(kind(NetError::Conflict("x".into())), ErrorKind::Conflict);
        assert_eq!(kind(NetError::NotFound("x".into())), ErrorKind::NotFound);
        assert_eq!(kind(NetError::Nft("x".into())), ErrorKind::Internal);
        assert_eq!(kind(MetaError::Conflict("web".into())), ErrorKind::Conflict);
    }

    #[test]
    fn build_errors_read_as_before() {
        let e = EngineError::from(BuildError::Parse {
            line: 3,
            message: "unknown instruction: FOO".into(),
        });
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 3: unknown instruction: FOO"
        );
        assert_eq!(kind(BuildError::NotFound("x".into())), ErrorKind::NotFound);
        let run = BuildError::RunFailed {
            command: "/bin/sh -c false".into(),
            code: 1,
        };
        assert_eq!(kind(run), ErrorKind::Internal);
        let backend = BuildError::Backend(pier_build::BackendError::not_found("no such image"));
        assert_eq!(kind(backend), ErrorKind::NotFound);
    }

    #[test]
    fn a_refused_start_keeps_the_runtimes_words_and_exit_code() {
        let e = EngineError::from(ShimError::Refused {
            message: "exec: \"nope\": executable file not found in $PATH".into(),
            exit_code: Some(127),
        });
        assert_eq!(e.kind(), ErrorKind::CannotStart { exit_code: 127 });
        assert_eq!(
            e.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        let e = EngineError::from(ShimError::Refused {
            message: "busy".into(),
            exit_code: None,
        });
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }
}
