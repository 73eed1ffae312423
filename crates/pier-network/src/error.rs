//! Errors of the networking layer, with a kind the engine maps to HTTP codes.

/// What went wrong while wiring a network or a container into one.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A request the caller can fix (bad subnet, taken IP, bad port).
    #[error("{0}")]
    InvalidArgument(String),
    /// Something already holds what was asked for (a host port, an IP).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nftables: {0}")]
    Nft(String),
    #[error("iptables: {0}")]
    Iptables(String),
}

pub type Result<T> = std::result::Result<T, NetError>;

impl NetError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> NetError {
        NetError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> NetError {
        NetError::Netlink {
            op: op.into(),
            source,
        }
    }

    /// The errno a netlink request failed with, if it was a kernel NACK.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => Some(-m.raw_code()),
            _ => None,
        }
    }
}
