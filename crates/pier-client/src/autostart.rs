//! Starting the daemon on demand, so a fresh install needs no service manager.

use crate::{ClientError, Result};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that tells `pier daemon` it was spawned by a CLI and
/// should leave the CLI's session (setsid) so it outlives the terminal.
pub const DETACH_ENV: &str = "PIER_DAEMON_DETACH";

/// `/var/log/pier/daemon.log` if that directory can be made, else
/// `<dir of the socket>/daemon.log`.
pub fn daemon_log_path(socket: &Path) -> PathBuf {
    let preferred = Path::new("/var/log/pier");
    if std::fs::create_dir_all(preferred).is_ok() {
        return preferred.join("daemon.log");
    }
    socket
        .parent()
        .unwrap_or(Path::new("/run/pier"))
        .join("daemon.log")
}

fn open_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::io(format!("cannot create {}", dir.display()), e))?;
    }
    // Not for every local user: it names containers, images and errors.
    std::os::unix::fs::OpenOptionsExt::mode(OpenOptions::new().create(true).append(true), 0o640)
        .open(path)
        .map_err(|e| ClientError::io(format!("cannot open {}", path.display()), e))
}

/// Spawns `<current_exe> daemon` detached and waits until `socket` accepts
/// connections, at most `timeout`.
pub async fn start_daemon(socket: &Path, timeout: Duration) -> Result<()> {
    let exe =
        std::env::current_exe().map_err(|e| ClientError::io("cannot find the pier binary", e))?;
    let log_path = daemon_log_path(socket);
    let log = open_log(&log_path)?;
    let log2 = log
        .try_clone()
        .map_err(|e| ClientError::io(format!("cannot open {}", log_path.display()), e))?;
    eprintln!("Starting pier daemon (logs: {})", log_path.display());
    let mut child = Command::new(exe)
        .arg("daemon")
        .env(DETACH_ENV, "1")
        .env_remove("PIER_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| ClientError::io("cannot start the pier daemon", e))?;
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ClientError::Protocol(format!(
                "the pier daemon exited ({status}); see {}",
                log_path.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(ClientError::Protocol(format!(
                "the pier daemon did not come up within {}s; see {}",
                timeout.as_secs(),
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
