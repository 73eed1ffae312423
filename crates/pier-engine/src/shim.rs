//! The engine's side of a container's shim: spawn it, then speak its
//! control protocol (`pier_runtime::proto`: one JSON request per connection
//! on `<state_dir>/shim.sock`, a JSON reply, then raw bytes for attach).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pier_runtime::proto::{self, ExitStatus, Reply, Request, StateReply};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::lifecycle::AttachOptions;
use crate::records::ContainerRecord;
use crate::{EngineConfig, EngineError, Result};

/// How a container or exec ended.
#[derive(Debug, Clone)]
pub(crate) struct ExitInfo {
    pub exit_code: i64,
    pub finished_at: String,
    pub oom_killed: bool,
}

impl From<ExitStatus> for ExitInfo {
    fn from(s: ExitStatus) -> Self {
        ExitInfo {
            exit_code: s.exit_code as i64,
            finished_at: s.finished_at,
            oom_killed: s.oom_killed,
        }
    }
}

/// A handle on one container's shim. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Shim {
    state_dir: PathBuf,
}

fn shim_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("shim {what}: {e}"))
}

const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

impl Shim {
    /// Starts the shim for `rec` (which creates the container, not yet
    /// started) and waits until its control socket answers.
    pub async fn spawn(cfg: &EngineConfig, rec: &ContainerRecord, bundle: &Path) -> Result<Shim> {
        let sock = proto::socket_path(bundle);
        let _ = std::fs::remove_file(&sock);
        let log = bundle.join(proto::SHIM_LOG);
        let stderr = std::fs::File::create(&log).map_err(|e| EngineError::io(&log, e))?;
        let mut cmd = tokio::process::Command::new(&cfg.shim_binary);
        cmd.arg("--id")
            .arg(&rec.id)
            .arg("--bundle")
            .arg(bundle)
            .arg("--state-dir")
            .arg(bundle)
            .arg("--runtime-root")
            .arg(cfg.runtime_root())
            .arg("--log")
            .arg(&rec.log_path);
        if rec.tty() {
            cmd.arg("--tty");
        }
        if rec.config.open_stdin.unwrap_or(false) {
            cmd.arg("--stdin");
            if rec.config.stdin_once.unwrap_or(false) {
                cmd.arg("--stdin-once");
            }
        }
        // Own process group: a signal to the daemon's group (Ctrl-C in a
        // terminal) must not reach the shims, which outlive the daemon.
        cmd.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| shim_err(&format!("spawn {}", cfg.shim_binary.display()), e))?;
        let shim = Shim {
            state_dir: bundle.to_path_buf(),
        };
        let deadline = Instant::now() + SPAWN_TIMEOUT;
        loop {
            if UnixStream::connect(&sock).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                // A shim that daemonizes exits 0 once its socket is up.
                if status.success() && UnixStream::connect(&sock).await.is_ok() {
                    break;
                }
                let msg = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(EngineError::CannotStart {
                    message: shim_failure_message(msg.trim(), status),
                    exit_code: 128,
                });
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(shim_err("start", "timed out waiting for the control socket"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Reap the shim when it ends (if it is still our child).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(shim)
    }

    /// Reconnects to the shim of a container started by an earlier daemon.
    pub async fn connect(state_dir: &Path) -> Result<Shim> {
        let shim = Shim {
            state_dir: state_dir.to_path_buf(),
        };
        let _: StateReply = shim.call(&Request::State).await?;
        Ok(shim)
    }

    pub fn read_exit_file(state_dir: &Path) -> Option<ExitInfo> {
        proto::read_exit_file(state_dir).ok().flatten().map(ExitInfo::from)
    }

    pub fn exit_file(&self) -> Option<ExitInfo> {
        Self::read_exit_file(&self.state_dir)
    }

    /// Sends one request; returns the connection positioned after the reply line.
    async fn send(&self, req: &Request) -> Result<(String, BufReader<UnixStream>)> {
        let sock = proto::socket_path(&self.state_dir);
        let mut s = UnixStream::connect(&sock)
            .await
            .map_err(|e| shim_err(&format!("connect {}", sock.display()), e))?;
        let mut line = serde_json::to_vec(req).map_err(|e| shim_err("encode", e))?;
        line.push(b'\n');
        s.write_all(&line).await.map_err(|e| shim_err("send", e))?;
        let mut r = BufReader::new(s);
        let mut reply = String::new();
        let n = r.read_line(&mut reply).await.map_err(|e| shim_err("read", e))?;
        if n == 0 {
            return Err(shim_err("reply", "connection closed"));
        }
        Ok((reply, r))
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, req: &Request) -> Result<T> {
        let (reply, _) = self.send(req).await?;
        serde_json::from_str(&reply).map_err(|e| shim_err(&format!("reply {reply:?}"), e))
    }

    async fn simple(&self, req: Request) -> Result<Reply> {
        let r: Reply = self.call(&req).await?;
        if r.ok {
            Ok(r)
        } else {
            Err(EngineError::Conflict(
                r.error.unwrap_or_else(|| "shim refused the request".into()),
            ))
        }
    }

    fn started(r: Reply) -> Result<i64> {
        if r.ok {
            Ok(r.pid.unwrap_or(0) as i64)
        } else {
            Err(EngineError::CannotStart {
                message: r.error.unwrap_or_else(|| "failed to start".into()),
                exit_code: r.exit_code.unwrap_or(128),
            })
        }
    }

    pub async fn start(&self) -> Result<i64> {
        Self::started(self.call(&Request::Start).await?)
    }

    /// An attached stdio stream (multiplexed frames unless the process has a TTY).
    pub async fn attach(&self, exec: Option<&str>, o: AttachOptions) -> Result<UnixStream> {
        let (reply, r) = self
            .send(&Request::Attach {
                exec: exec.map(str::to_string),
                stdin: o.stdin,
                stdout: o.stdout,
                stderr: o.stderr,
            })
            .await?;
        let rep: Reply = serde_json::from_str(&reply).map_err(|e| shim_err("attach reply", e))?;
        if !rep.ok {
            return Err(EngineError::Conflict(
                rep.error.unwrap_or_else(|| "attach refused".into()),
            ));
        }
        if !r.buffer().is_empty() {
            // The shim sends nothing after the reply line until we read it,
            // but be safe: bytes here would be lost with into_inner.
            return Err(shim_err("attach", "unexpected data after reply"));
        }
        Ok(r.into_inner())
    }

    pub async fn wait(&self, exec: Option<&str>) -> Result<ExitInfo> {
        let s: ExitStatus = self
            .call(&Request::Wait {
                exec: exec.map(str::to_string),
            })
            .await?;
        Ok(s.into())
    }

    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.simple(Request::Kill { signal }).await.map(|_| ())
    }

    pub async fn resize(&self, exec: Option<&str>, rows: u16, cols: u16) -> Result<()> {
        self.simple(Request::Resize {
            exec: exec.map(str::to_string),
            rows,
            cols,
        })
        .await
        .map(|_| ())
    }

    pub async fn pause(&self) -> Result<()> {
        self.simple(Request::Pause).await.map(|_| ())
    }

    pub async fn resume(&self) -> Result<()> {
        self.simple(Request::Resume).await.map(|_| ())
    }

    pub async fn exec(
        &self,
        id: &str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> Result<()> {
        self.simple(Request::Exec {
            id: id.to_string(),
            process: Box::new(process),
            tty,
            stdin,
        })
        .await
        .map(|_| ())
    }

    pub async fn exec_start(&self, id: &str) -> Result<i64> {
        Self::started(
            self.call(&Request::ExecStart { id: id.to_string() })
                .await?,
        )
    }

    pub async fn shutdown(&self) -> Result<()> {
        self.simple(Request::Shutdown).await.map(|_| ())
    }
}

fn shim_failure_message(log: &str, status: std::process::ExitStatus) -> String {
    let last = log.lines().last().unwrap_or("");
    if last.is_empty() {
        format!("shim exited with {status}")
    } else {
        last.to_string()
    }
}
