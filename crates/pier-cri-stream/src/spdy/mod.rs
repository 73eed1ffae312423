//! SPDY/3.1 as Kubernetes uses it (the `moby/spdystream` peer of client-go):
//! the client opens every stream, the server replies to each, data flows
//! both ways with FIN half-closes, PINGs are echoed. No flow control: that
//! peer neither sends nor honours WINDOW_UPDATE.
//!
//! No well-kept Rust crate speaks SPDY/3, so the frames and the header
//! compression are here, bounded against hostile input (see `frame`).

mod frame;
mod headers;
mod session;

pub(crate) use frame::Frame;
pub use headers::Headers;
pub(crate) use session::{start, NewStream, Session};

#[cfg(test)]
pub(crate) use frame::{Codec, FLAG_FIN};

/// Why a SPDY connection was dropped: the peer broke the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("SPDY frame of {0} bytes is over the limit")]
    FrameTooLarge(usize),
    #[error("SPDY version {0} is not 3")]
    Version(u16),
    #[error("SPDY control frame of type {0} has a bad length {1}")]
    BadLength(u16, usize),
    #[error("SPDY frame on stream 0")]
    ZeroStreamId,
    #[error("SPDY header block is over the limit")]
    HeaderTooLarge,
    #[error("SPDY header block is malformed")]
    BadHeaderBlock,
    #[error("SPDY header compression is corrupt")]
    Compression,
    #[error("SPDY stream id {0} is not a new client stream")]
    BadStreamId(u32),
    #[error("reading the SPDY connection: {0}")]
    Io(#[from] std::io::Error),
}
