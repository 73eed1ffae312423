//! What the CRI server asks for (the requests behind a URL) and what it
//! implements to serve them (`Backend`).

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::pipe::{InStream, OutStream, PortStream};

/// The fields of CRI's `ExecRequest` that the streaming server keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecRequest {
    pub container_id: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The fields of CRI's `AttachRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The fields of CRI's `PortForwardRequest`. As in the kubelet, the ports
/// a client forwards are named per connection, not checked against `port`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortForwardRequest {
    pub pod_sandbox_id: String,
    pub port: Vec<i32>,
}

/// A terminal size the client sent on its resize stream, in characters.
/// The JSON is client-go's `TerminalSize` (Go field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width", alias = "width")]
    pub width: u16,
    #[serde(rename = "Height", alias = "height")]
    pub height: u16,
}

/// The client's streams for one exec or attach; each is present when the
/// request asked for it. With a TTY there is no stderr (CRI forbids it) and
/// `resize` carries the client's terminal sizes, the first one soon after
/// the start.
pub struct Streams {
    pub stdin: Option<InStream>,
    pub stdout: Option<OutStream>,
    pub stderr: Option<OutStream>,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// An error of the backend, shown to the client as the kubelet shows it
/// (an internal error for exec and attach, a message on the port's error
/// stream for port forwarding).
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// What the CRI server implements for the streaming server.
///
/// Each method runs for one client connection and owns its streams: output
/// written before the method returns reaches the client before the status;
/// the connection ends when the method returns. A client that goes away
/// shows as the end of its input and as `BrokenPipe` on writes; the method
/// should then return (an attach detaches, an exec may run on, as in the
/// kubelet).
pub trait Backend: Send + Sync + 'static {
    /// Runs `req.cmd` in the container and returns its exit code (0..=255).
    /// A failure to run it at all is an `Err`.
    fn exec(
        &self,
        req: ExecRequest,
        streams: Streams,
    ) -> impl Future<Output = Result<i32, BackendError>> + Send;

    /// Attaches to the container's main process until it exits or the
    /// client goes (stdin's end does not end an attach unless the
    /// container was created with `stdin_once`).
    fn attach(
        &self,
        req: AttachRequest,
        streams: Streams,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Connects `stream` to TCP `port` inside the sandbox's network
    /// namespace, copying both ways until both directions end.
    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        stream: PortStream,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
