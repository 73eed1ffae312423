//! Client of the Engine API that the Pier daemon serves on a unix socket.
//!
//! Every call goes through the raw helpers here, one short-lived HTTP/1.1 connection
//! per request (a unix socket connect is cheap): the CLI needs what a generated
//! client does not give (waiting for response headers before going on, hijacked
//! attach/exec streams, streaming uploads and downloads, raw JSON kept in the
//! daemon's field order).

mod autostart;
mod error;
mod hijack;
mod raw;

pub use autostart::{daemon_log_path, start_daemon, DETACH_ENV};
pub use error::ClientError;
pub use hijack::Hijacked;
pub use raw::{
    body_async_read, body_bytes, body_chunks, body_empty, body_json, body_reader, query, read_body,
    read_json, Body, JsonLines,
};

pub use pier_api::models;

/// A response whose body has not been read yet.
pub type Response = http::Response<hyper::body::Incoming>;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the CLI looks for the daemon when neither `-H` nor `PIER_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/pier/pier.sock";
/// The API version the client speaks (path prefix `/v1.43/`).
pub const CLIENT_API_VERSION: &str = "1.43";

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A connection handle to one daemon. Cheap: it holds no open connection.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
}

/// Resolves the daemon address: `-H`, then `PIER_HOST`, then [`DEFAULT_HOST`].
/// `DOCKER_HOST` is deliberately ignored so a user's docker setting does not
/// point pier at another engine.
pub fn resolve_host(host: Option<&str>) -> (String, bool) {
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        return (h.to_string(), true);
    }
    match std::env::var("PIER_HOST") {
        Ok(h) if !h.is_empty() => (h, true),
        _ => (DEFAULT_HOST.to_string(), false),
    }
}

/// The socket path of a `unix://` host.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(ClientError::InvalidHost(host.to_string()));
        }
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    Err(ClientError::InvalidHost(host.to_string()))
}

/// Connects to the daemon at `host` (see [`resolve_host`]). For the default host
/// a daemon that does not answer is started on demand; an explicit host that does
/// not answer is an error.
pub async fn connect(host: Option<&str>) -> Result<Client> {
    let (host, explicit) = resolve_host(host);
    let socket = socket_path(&host)?;
    // A successful connect is taken as "the daemon is up": no /_ping round trip,
    // since every CLI call pays for it.
    match tokio::net::UnixStream::connect(&socket).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // A daemon runs; this user may not use it (not in its group).
            return Err(ClientError::PermissionDenied { host });
        }
        Err(e) => {
            if explicit || host != DEFAULT_HOST {
                return Err(ClientError::Connect { host, source: e });
            }
            autostart::start_daemon(&socket, Duration::from_secs(10))
                .await
                .map_err(|_| ClientError::Connect {
                    host: host.clone(),
                    source: e,
                })?;
        }
    }
    Ok(Client::new_unchecked(host, socket))
}

impl Client {
    /// A handle that does not check the daemon is there.
    pub fn new_unchecked(host: String, socket: PathBuf) -> Client {
        Client { host, socket }
    }

    /// The host string, e.g. `unix:///run/pier/pier.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `path` with the API version prefix, e.g. `/v1.43/containers/json`.
    pub fn versioned(path: &str) -> String {
        format!("/v{CLIENT_API_VERSION}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_resolve_from_flag_then_pier_host_only() {
        std::env::set_var("DOCKER_HOST", "unix:///var/run/docker.sock");
        std::env::remove_var("PIER_HOST");
        assert_eq!(resolve_host(None), (DEFAULT_HOST.to_string(), false));
        assert_eq!(
            resolve_host(Some("unix:///x.sock")),
            ("unix:///x.sock".to_string(), true)
        );
        std::env::set_var("PIER_HOST", "unix:///y.sock");
        assert_eq!(resolve_host(None), ("unix:///y.sock".to_string(), true));
        std::env::remove_var("PIER_HOST");
    }

    #[test]
    fn socket_paths() {
        assert_eq!(
            socket_path("unix:///run/pier/pier.sock").unwrap(),
            PathBuf::from("/run/pier/pier.sock")
        );
        assert_eq!(socket_path("/tmp/s").unwrap(), PathBuf::from("/tmp/s"));
        assert!(socket_path("tcp://127.0.0.1:2375").is_err());
        assert!(socket_path("unix://").is_err());
    }

    #[tokio::test]
    async fn explicit_host_that_does_not_answer_is_an_error() {
        let err = connect(Some("unix:///nonexistent/pier-test.sock"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot connect to the Pier daemon at unix:///nonexistent/pier-test.sock. Is the daemon running?"
        );
    }
}
