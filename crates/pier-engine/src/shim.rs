//! The engine's side of a container's shim, over `pier_runtime::client`
//! (which speaks the shim's control protocol), with errors mapped to the
//! engine's kinds.

use std::path::{Path, PathBuf};

use pier_runtime::client::{launch_shim, ShimClient, ShimOptions};
use pier_runtime::proto::ExitStatus;
use tokio::net::UnixStream;

use crate::records::ContainerRecord;
use crate::{EngineConfig, EngineError, Result};

/// How a container or exec ended.
#[derive(Debug, Clone)]
pub(crate) struct ExitInfo {
    pub exit_code: i64,
    pub finished_at: String,
    pub oom_killed: bool,
    /// `State.Error`: why the daemon, not the process, ended it (else empty).
    pub error: String,
}

impl From<ExitStatus> for ExitInfo {
    fn from(s: ExitStatus) -> Self {
        ExitInfo {
            exit_code: s.exit_code as i64,
            finished_at: s.finished_at,
            oom_killed: s.oom_killed,
            error: String::new(),
        }
    }
}

/// What an attach wants (`POST /containers/{id}/attach`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A handle on one container's shim. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Shim {
    client: ShimClient,
}

/// A shim process loading while the bundle is prepared; see [`Shim::launch`].
pub(crate) struct LaunchedShim(pier_runtime::client::LaunchedShim);

impl LaunchedShim {
    /// The bundle is ready: the shim creates the container (not yet started).
    pub async fn go(self) -> Result<Shim> {
        let h = self.0.go().await?;
        Ok(Shim { client: h.client })
    }

    pub async fn abort(self) {
        self.0.abort().await
    }
}

impl Shim {
    /// Starts the shim for `rec`; it creates the container (not yet started).
    pub async fn spawn(cfg: &EngineConfig, rec: &ContainerRecord, bundle: &Path) -> Result<Shim> {
        Shim::launch(cfg, rec, bundle)?.go().await
    }

    /// Starts the shim for `rec` with its bundle at `bundle`, which need not
    /// be ready yet: the shim waits for [`LaunchedShim::go`].
    pub(crate) fn launch(
        cfg: &EngineConfig,
        rec: &ContainerRecord,
        bundle: &Path,
    ) -> Result<LaunchedShim> {
        launch_shim(&ShimOptions {
            binary: cfg.shim_binary.clone(),
            id: rec.id.clone(),
            bundle: bundle.to_path_buf(),
            state_dir: bundle.to_path_buf(),
            runtime_root: cfg.runtime_root(),
            log_path: Some(PathBuf::from(&rec.log_path)).filter(|p| !p.as_os_str().is_empty()),
            log_rotation: pier_runtime::proto::LogRotation {
                cri_format: rec.cri.is_some(),
                ..crate::logconf::resolved_of(rec.host_config.log_config.as_ref()).rotation
            },
            tty: rec.tty(),
            stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
        })
        .map(LaunchedShim)
        .map_err(EngineError::from)
    }

    /// Reconnects to the shim of a container started by an earlier daemon.
    /// Also says whether the container has already stopped.
    pub async fn connect(state_dir: &Path) -> Result<(Shim, bool)> {
        let client = ShimClient::new(state_dir);
        let st = client.state().await?;
        let stopped = st.status == pier_runtime::proto::Status::Stopped;
        Ok((Shim { client }, stopped))
    }

    /// A handle on the shim whose state dir is `state_dir`, unchecked.
    pub fn at(state_dir: &Path) -> Shim {
        Shim {
            client: ShimClient::new(state_dir),
        }
    }

    pub fn read_exit_file(state_dir: &Path) -> Option<ExitInfo> {
        ShimClient::new(state_dir)
            .exit_file()
            .ok()
            .flatten()
            .map(ExitInfo::from)
    }

    pub async fn start(&self) -> Result<i64> {
        self.client
            .start()
            .await
            .map(i64::from)
            .map_err(EngineError::from)
    }

    /// An attached stdio stream (multiplexed frames unless the process has a TTY).
    pub async fn attach(&self, exec: Option<&str>, o: AttachOptions) -> Result<UnixStream> {
        self.client
            .attach(exec, o.stdin, o.stdout, o.stderr)
            .await
            .map_err(EngineError::from)
    }

    pub async fn wait(&self, exec: Option<&str>) -> Result<ExitInfo> {
        self.client
            .wait(exec)
            .await
            .map(ExitInfo::from)
            .map_err(EngineError::from)
    }

    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.client.kill(signal).await.map_err(EngineError::from)
    }

    /// One read-only round trip through the shim's poll loop, which reads
    /// output that is ready before it answers a later connection: afterwards
    /// what the container wrote before the call is in its log file.
    pub async fn sync_output(&self) -> Result<()> {
        self.client
            .state()
            .await
            .map(drop)
            .map_err(EngineError::from)
    }

    pub async fn resize(&self, exec: Option<&str>, rows: u16, cols: u16) -> Result<()> {
        self.client
            .resize(exec, rows, cols)
            .await
            .map_err(EngineError::from)
    }

    pub async fn pause(&self) -> Result<()> {
        self.client.pause().await.map_err(EngineError::from)
    }

    pub async fn reopen_log(&self) -> Result<()> {
        self.client.reopen_log().await.map_err(EngineError::from)
    }

    pub async fn resume(&self) -> Result<()> {
        self.client.resume().await.map_err(EngineError::from)
    }

    pub async fn exec(
        &self,
        id: &str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> Result<()> {
        self.client
            .exec(id, process, tty, stdin)
            .await
            .map_err(EngineError::from)
    }

    pub async fn exec_start(&self, id: &str) -> Result<i64> {
        self.client
            .exec_start(id)
            .await
            .map(i64::from)
            .map_err(EngineError::from)
    }

    /// Whether the shim is there: `Some(false)` only when nothing listens
    /// on its socket (a dead shim leaves the file, and connecting is
    /// refused), `None` when that cannot be told (the daemon is out of file
    /// descriptors, say): a container is never killed on a guess.
    pub async fn liveness(&self) -> Option<bool> {
        Shim::liveness_at(self.client.state_dir()).await
    }

    pub async fn liveness_at(state_dir: &Path) -> Option<bool> {
        let sock = pier_runtime::proto::socket_path(state_dir);
        match UnixStream::connect(&sock).await {
            Ok(_) => Some(true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                ) =>
            {
                Some(false)
            }
            Err(_) => None,
        }
    }

    pub async fn shutdown(&self) -> Result<()> {
        self.client.shutdown().await.map_err(EngineError::from)
    }
}
