//! The CRI streaming server. CRI's `Exec`, `Attach` and `PortForward` do
//! not stream over gRPC: they return a URL, and the client (crictl,
//! critest, the kubelet's apiserver proxy) connects there and speaks
//! Kubernetes' remotecommand or portforward protocol, over SPDY/3.1
//! (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version` v4 down to v1, or
//! `portforward.k8s.io`) or over a websocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`, the kubelet's older and base64 channel protocols,
//! or SPDY tunnelled as `SPDY/3.1+portforward.k8s.io`).
//! This is that server, as the kubelet's `pkg/kubelet/cri/streaming`
//! serves it, over a [`Backend`] that the CRI server implements.
//!
//! # Wiring it into the CRI server
//!
//! ```text
//! // At daemon start: containerd's default is 127.0.0.1 with a random port
//! // (`stream_server_address`/`stream_server_port`); a node whose apiserver
//! // proxies exec binds the node IP instead.
//! let server = StreamServer::bind("127.0.0.1:0".parse()?).await?;
//! let urls = server.handle(); // cheap to clone, kept by the gRPC service
//! // containerd's stream_idle_timeout; 4 h is the default.
//! let server = server.with_idle_timeout(Duration::from_secs(4 * 3600));
//! tokio::spawn(server.serve_until(MyBackend { engine }, daemon_shutdown));
//!
//! // RuntimeService::exec:
//! let url = urls.exec_url(ExecRequest {
//!     container_id: req.container_id, cmd: req.cmd, tty: req.tty,
//!     stdin: req.stdin, stdout: req.stdout, stderr: req.stderr,
//! }).map_err(to_status)?;
//! Ok(Response::new(ExecResponse { url }))
//! // attach: AttachResponse { url: urls.attach_url(..)? }
//! // port_forward: PortForwardResponse { url: urls.port_forward_url(..)? }
//! ```
//!
//! Map [`RequestError::InvalidArgument`] to gRPC `InvalidArgument` and
//! [`RequestError::TooManyInFlight`] to `ResourceExhausted`. Check that the
//! container or sandbox exists (and, for exec, is running) before asking
//! for a URL, as containerd does: the URL is a one-time token that expires
//! after a minute, and the backend runs only when a client connects.
//!
//! `examples/kubectl_interop.rs` checks the server against a real
//! client-go client: a stand-in apiserver hands kubectl's exec, attach and
//! port-forward connections to it (run it, then point
//! `kubectl --server http://ADDR` at it).
//!
//! The backend gets the client's streams ([`Streams`]: stdin, stdout,
//! stderr, terminal sizes) or, for a forwarded port, one duplex
//! [`PortStream`] per client connection, to be joined to `port` inside the
//! sandbox's network namespace.

mod backend;
mod cache;
mod idle;
mod pipe;
mod portforward;
mod remotecommand;
mod server;
mod spdy;
mod ws;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use backend::{
    AttachRequest, Backend, BackendError, ExecRequest, PortForwardRequest, Streams, TerminalSize,
};
pub use pipe::{InStream, OutStream, PortStream};

use cache::{Cache, Cached};

/// Why a URL was not made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A malformed request (gRPC `InvalidArgument`), in the kubelet's words.
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// 1000 URLs are waiting for their client (gRPC `ResourceExhausted`).
    #[error("maximum number of in-flight requests exceeded")]
    TooManyInFlight,
}

/// Failures of the server itself.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("binding the CRI streaming server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving the CRI streaming server on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The bound, not yet serving, streaming server.
pub struct StreamServer {
    listener: TcpListener,
    handle: StreamHandle,
    idle_timeout: Duration,
}

/// Makes the URLs; cheap to clone, valid while the server serves.
#[derive(Clone)]
pub struct StreamHandle {
    base: Arc<str>,
    cache: Arc<Cache>,
}

impl StreamServer {
    /// Listens on `addr` (port 0 picks a free one). URLs name the address
    /// actually bound; use [`StreamServer::with_base_url`] when clients
    /// reach it by another (a wildcard bind, a proxy).
    pub async fn bind(addr: SocketAddr) -> Result<Self, StreamError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StreamError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StreamError::Bind { addr, source })?;
        Ok(StreamServer {
            listener,
            idle_timeout: idle::DEFAULT,
            handle: StreamHandle {
                base: format!("http://{local}").into(),
                cache: Arc::new(Cache::new(cache::TTL, cache::MAX_IN_FLIGHT)),
            },
        })
    }

    /// URLs start with `base` (`http://host:port`, no trailing slash).
    pub fn with_base_url(mut self, base: &str) -> Self {
        self.handle.base = base.trim_end_matches('/').into();
        self
    }

    /// Closes a session with no traffic either way for `limit`
    /// (containerd's `stream_idle_timeout`; 4 hours unless set, 0 for
    /// none).
    pub fn with_idle_timeout(mut self, limit: Duration) -> Self {
        self.idle_timeout = limit;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn handle(&self) -> StreamHandle {
        self.handle.clone()
    }

    /// Serves until the task is dropped or the listener fails.
    pub async fn serve<B: Backend>(self, backend: B) -> Result<(), StreamError> {
        self.serve_until(backend, std::future::pending()).await
    }

    /// Serves until `shutdown` resolves, then stops listening at once.
    /// Sessions already under way run on until their client or backend
    /// ends them.
    pub async fn serve_until<B, F>(self, backend: B, shutdown: F) -> Result<(), StreamError>
    where
        B: Backend,
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr();
        let shared = Arc::new(server::Shared {
            cache: self.handle.cache.clone(),
            backend: Arc::new(backend),
            idle: self.idle_timeout,
        });
        // Interactive sessions send keystrokes: no Nagle delay on them.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // Not axum's graceful shutdown: a client that connected and never
        // sent a request would hold the daemon's shutdown forever.
        let serving = axum::serve(listener, server::router(shared)).into_future();
        tokio::select! {
            r = serving => r.map_err(|source| StreamError::Serve { addr, source }),
            () = shutdown => Ok(()),
        }
    }
}

fn check_streams(
    container_id: &str,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<(), RequestError> {
    if container_id.is_empty() {
        return Err(RequestError::InvalidArgument(
            "missing required container_id",
        ));
    }
    if tty && stderr {
        return Err(RequestError::InvalidArgument(
            "tty and stderr cannot both be true",
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(RequestError::InvalidArgument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    Ok(())
}

impl StreamHandle {
    fn url(&self, verb: &str, req: Cached) -> Result<String, RequestError> {
        let token = self.cache.insert(req)?;
        Ok(format!("{}/{verb}/{token}", self.base))
    }

    /// The URL for CRI's `ExecResponse.url`.
    pub fn exec_url(&self, req: ExecRequest) -> Result<String, RequestError> {
        check_streams(
            &req.container_id,
            req.tty,
            req.stdin,
            req.stdout,
            req.stderr,
        )?;
        if req.cmd.is_empty() {
            return Err(RequestError::InvalidArgument("cmd must not be empty"));
        }
        self.url("exec", Cached::Exec(req))
    }

    /// The URL for CRI's `AttachResponse.url`.
    pub fn attach_url(&self, req: AttachRequest) -> Result<String, RequestError> {
        check_streams(
            &req.container_id,
            req.tty,
            req.stdin,
            req.stdout,
            req.stderr,
        )?;
        self.url("attach", Cached::Attach(req))
    }

    /// The URL for CRI's `PortForwardResponse.url`.
    pub fn port_forward_url(&self, req: PortForwardRequest) -> Result<String, RequestError> {
        if req.pod_sandbox_id.is_empty() {
            return Err(RequestError::InvalidArgument(
                "missing required pod_sandbox_id",
            ));
        }
        self.url("portforward", Cached::PortForward(req))
    }
}

#[cfg(test)]
mod tests;
