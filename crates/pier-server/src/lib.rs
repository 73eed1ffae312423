//! The daemon: serves the Docker Engine API on a unix socket.

use std::path::PathBuf;

/// How the daemon is configured; the flags follow dockerd's.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `--data-root` (default `/var/lib/pier`).
    pub data_root: PathBuf,
    /// `--exec-root` (default `/run/pier`).
    pub exec_root: PathBuf,
    /// The unix socket to listen on (`-H unix:///run/pier/pier.sock`).
    pub socket: PathBuf,
    /// Parent cgroup of every container (`--cgroup-parent`, default `pier`).
    pub cgroup_parent: String,
    /// The `pier-shim` binary to start per container.
    pub shim_binary: PathBuf,
    /// `--debug`: verbose logging on stderr.
    pub debug: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Runs the daemon in the foreground until SIGINT/SIGTERM.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let _ = opts;
    Err(DaemonError::Other("the daemon is not implemented yet".into()))
}
