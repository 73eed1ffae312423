//! The engine's async client of pier-shim (feature "client").

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::proto::{self, ExitStatus, Reply, Request, StateReply};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("start pier-shim {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pier-shim for {id} failed: {message}")]
    ShimFailed { id: String, message: String },
    #[error("shim socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim protocol at {path}: {message}")]
    Protocol { path: PathBuf, message: String },
    /// The shim refused the request; `exit_code` is set for failed starts
    /// (127 command not found, 126 not executable, 128 other).
    #[error("{message}")]
    Refused {
        message: String,
        exit_code: Option<i32>,
    },
}

/// What `spawn_shim` needs.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// Path of the pier-shim executable.
    pub binary: PathBuf,
    /// Container id (the runtime state lives under `runtime_root/<id>`).
    pub id: String,
    /// Bundle dir holding config.json; the rootfs must be ready (mounted).
    pub bundle: PathBuf,
    /// Per-container dir for shim.sock, exit.json, shim.log.
    pub state_dir: PathBuf,
    /// libcontainer's state root, shared by all containers (e.g. /run/pier/runtime).
    pub runtime_root: PathBuf,
    /// Docker json-file log path; None = no log.
    pub log_path: Option<PathBuf>,
    /// Size-based rotation of the log file.
    pub log_rotation: proto::LogRotation,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
}

/// A running shim.
#[derive(Debug, Clone)]
pub struct ShimHandle {
    /// The supervisor's pid (it is not our child: it runs in its own session).
    pub pid: u32,
    pub client: ShimClient,
}

/// Starts a shim, fully detached, and waits until it has created the container
/// and serves its socket. A container that could not be created still gets a
/// shim: `start` then reports the error with Docker's exit code.
pub async fn spawn_shim(o: &ShimOptions) -> Result<ShimHandle, ShimError> {
    launch_shim(o)?.go().await
}

/// A shim process started with `--wait-go`: it loads, forks into the
/// background and waits on its stdin before touching the bundle, so the caller
/// can prepare the bundle meanwhile. Dropping it without [`LaunchedShim::go`]
/// makes the shim exit.
pub struct LaunchedShim {
    child: tokio::process::Child,
    go: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    id: String,
    binary: PathBuf,
    log_path: PathBuf,
    state_dir: PathBuf,
}

/// Spawns a shim that waits for [`LaunchedShim::go`]; returns at once.
pub fn launch_shim(o: &ShimOptions) -> Result<LaunchedShim, ShimError> {
    let spawn_err = |e: std::io::Error| ShimError::Spawn {
        binary: o.binary.clone(),
        source: e,
    };
    std::fs::create_dir_all(&o.state_dir).map_err(|e| {
        spawn_err(std::io::Error::new(
            e.kind(),
            format!("create {}: {e}", o.state_dir.display()),
        ))
    })?;
    let log_path = o.state_dir.join(proto::SHIM_LOG);
    let shim_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| {
            spawn_err(std::io::Error::new(
                e.kind(),
                format!("open {}: {e}", log_path.display()),
            ))
        })?;
    let mut cmd = tokio::process::Command::new(&o.binary);
    cmd.arg("--id")
        .arg(&o.id)
        .arg("--bundle")
        .arg(&o.bundle)
        .arg("--state-dir")
        .arg(&o.state_dir)
        .arg("--runtime-root")
        .arg(&o.runtime_root)
        .arg("--wait-go");
    if let Some(l) = &o.log_path {
        cmd.arg("--log").arg(l);
        cmd.args(o.log_rotation.shim_args());
    }
    if o.tty {
        cmd.arg("--tty");
    }
    if o.stdin {
        cmd.arg("--stdin");
    }
    if o.stdin_once {
        cmd.arg("--stdin-once");
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(shim_log))
        // Out of the daemon's process group, so a terminal's ^C does not reach it.
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let missing = |what: &str| ShimError::ShimFailed {
        id: o.id.clone(),
        message: format!("no {what} pipe"),
    };
    let go = child.stdin.take().ok_or_else(|| missing("stdin"))?;
    let stdout = child.stdout.take().ok_or_else(|| missing("stdout"))?;
    Ok(LaunchedShim {
        child,
        go,
        stdout,
        id: o.id.clone(),
        binary: o.binary.clone(),
        log_path,
        state_dir: o.state_dir.clone(),
    })
}

impl LaunchedShim {
    /// Lets the shim create the container from its (now complete) bundle and
    /// waits for its ready line.
    pub async fn go(self) -> Result<ShimHandle, ShimError> {
        let LaunchedShim {
            mut child,
            mut go,
            stdout,
            id,
            binary,
            log_path,
            state_dir,
        } = self;
        let spawn_err = |e: std::io::Error| ShimError::Spawn {
            binary: binary.clone(),
            source: e,
        };
        // A shim that died early shows up below as a missing ready line.
        let _ = go.write_all(b"go\n").await;
        drop(go);
        // The first process exits at once after forking the supervisor.
        let _ = child.wait().await;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .map_err(spawn_err)?;
        let line = line.trim_end();
        if let Some(pid) = line.strip_prefix("ok ") {
            let pid = pid.parse().map_err(|_| ShimError::ShimFailed {
                id: id.clone(),
                message: format!("bad ready line {line:?}"),
            })?;
            return Ok(ShimHandle {
                pid,
                client: ShimClient::new(&state_dir),
            });
        }
        let message = line.strip_prefix("error ").unwrap_or(line);
        let message = if message.is_empty() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!("shim exited without a ready line; its log: {}", log.trim())
        } else {
            message.to_string()
        };
        Err(ShimError::ShimFailed { id, message })
    }

    /// Sends the shim away without creating anything.
    pub async fn abort(self) {
        let LaunchedShim { mut child, go, .. } = self;
        drop(go);
        let _ = child.wait().await;
    }
}

/// Talks to one shim; cheap to clone; every call opens its own connection.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
    state_dir: PathBuf,
}

impl ShimClient {
    /// A client for the shim whose state dir is `state_dir` (after a daemon
    /// restart too).
    pub fn new(state_dir: &Path) -> ShimClient {
        ShimClient {
            socket: proto::socket_path(state_dir),
            state_dir: state_dir.to_path_buf(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether a shim answers on the socket.
    pub async fn is_alive(&self) -> bool {
        UnixStream::connect(&self.socket).await.is_ok()
    }

    /// The exit record the shim left, if the container has exited.
    pub fn exit_file(&self) -> Result<Option<ExitStatus>, ShimError> {
        proto::read_exit_file(&self.state_dir).map_err(|e| ShimError::Protocol {
            path: self.state_dir.clone(),
            message: e.to_string(),
        })
    }

    fn proto_err(&self, message: impl Into<String>) -> ShimError {
        ShimError::Protocol {
            path: self.socket.clone(),
            message: message.into(),
        }
    }

    async fn send(&self, req: &Request) -> Result<UnixStream, ShimError> {
        let mut s = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| ShimError::Connect {
                path: self.socket.clone(),
                source: e,
            })?;
        let mut line = serde_json::to_vec(req).map_err(|e| self.proto_err(e.to_string()))?;
        line.push(b'\n');
        s.write_all(&line)
            .await
            .map_err(|e| self.proto_err(format!("send: {e}")))?;
        Ok(s)
    }

    /// Reads one reply line byte by byte so nothing after it is consumed.
    async fn read_line(&self, s: &mut UnixStream) -> Result<Vec<u8>, ShimError> {
        let mut out = Vec::with_capacity(128);
        let mut b = [0u8; 1];
        loop {
            let n = s
                .read(&mut b)
                .await
                .map_err(|e| self.proto_err(format!("read: {e}")))?;
            if n == 0 {
                return Err(self.proto_err("shim closed the connection"));
            }
            if b[0] == b'\n' {
                return Ok(out);
            }
            out.push(b[0]);
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, req: &Request) -> Result<T, ShimError> {
        let mut s = self.send(req).await?;
        let line = self.read_line(&mut s).await?;
        // Errors come as a Reply even for calls that return something else.
        if let Ok(r) = serde_json::from_slice::<Reply>(&line)
            && !r.ok
            && r.error.is_some()
        {
            return Err(ShimError::Refused {
                message: r.error.unwrap_or_default(),
                exit_code: r.exit_code,
            });
        }
        serde_json::from_slice(&line).map_err(|e| {
            self.proto_err(format!(
                "bad reply {:?}: {e}",
                String::from_utf8_lossy(&line)
            ))
        })
    }

    async fn call_ok(&self, req: &Request) -> Result<Reply, ShimError> {
        let r: Reply = self.call(req).await?;
        if r.ok {
            Ok(r)
        } else {
            Err(ShimError::Refused {
                message: r.error.unwrap_or_else(|| "request failed".into()),
                exit_code: r.exit_code,
            })
        }
    }

    /// Starts the container; returns its pid.
    pub async fn start(&self) -> Result<i32, ShimError> {
        Ok(self.call_ok(&Request::Start).await?.pid.unwrap_or(0))
    }

    /// Attaches to the container (exec None) or an exec. The returned stream
    /// yields output (raw for a tty, else Docker's multiplexed frames) and takes
    /// stdin; shutting down its write half closes the process's stdin.
    pub async fn attach(
        &self,
        exec: Option<&str>,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<UnixStream, ShimError> {
        let req = Request::Attach {
            exec: exec.map(String::from),
            stdin,
            stdout,
            stderr,
        };
        let mut s = self.send(&req).await?;
        let line = self.read_line(&mut s).await?;
        let r: Reply = serde_json::from_slice(&line)
            .map_err(|e| self.proto_err(format!("bad attach reply: {e}")))?;
        if !r.ok {
            return Err(ShimError::Refused {
                message: r.error.unwrap_or_default(),
                exit_code: None,
            });
        }
        Ok(s)
    }

    /// Waits for the container (exec None) or an exec to exit.
    pub async fn wait(&self, exec: Option<&str>) -> Result<ExitStatus, ShimError> {
        self.call(&Request::Wait {
            exec: exec.map(String::from),
        })
        .await
    }

    pub async fn kill(&self, signal: i32) -> Result<(), ShimError> {
        self.call_ok(&Request::Kill { signal }).await.map(|_| ())
    }

    pub async fn resize(&self, exec: Option<&str>, rows: u16, cols: u16) -> Result<(), ShimError> {
        self.call_ok(&Request::Resize {
            exec: exec.map(String::from),
            rows,
            cols,
        })
        .await
        .map(|_| ())
    }

    pub async fn pause(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::Pause).await.map(|_| ())
    }

    pub async fn reopen_log(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::ReopenLog).await.map(|_| ())
    }

    pub async fn resume(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::Resume).await.map(|_| ())
    }

    pub async fn state(&self) -> Result<StateReply, ShimError> {
        self.call(&Request::State).await
    }

    /// Prepares an exec (attach to it before `exec_start` to lose no output).
    pub async fn exec(
        &self,
        id: &str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> Result<(), ShimError> {
        self.call_ok(&Request::Exec {
            id: id.to_string(),
            process: Box::new(process),
            tty,
            stdin,
        })
        .await
        .map(|_| ())
    }

    /// Starts a prepared exec; returns its pid.
    pub async fn exec_start(&self, id: &str) -> Result<i32, ShimError> {
        Ok(self
            .call_ok(&Request::ExecStart { id: id.to_string() })
            .await?
            .pid
            .unwrap_or(0))
    }

    /// Asks the shim to clean up and exit (kills the container if still running).
    pub async fn shutdown(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::Shutdown).await.map(|_| ())
    }

    /// Shutdown, then wait (bounded) until the socket stops answering.
    pub async fn shutdown_and_wait(&self, timeout: Duration) -> Result<(), ShimError> {
        self.shutdown().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if !self.is_alive().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(self.proto_err("shim did not exit after shutdown"))
    }
}

/// Splits Docker's multiplexed stream into (stream id, payload) frames; for
/// tests and for clients that need stdout and stderr apart.
pub fn demux(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        if data.len() < 8 + len {
            break;
        }
        out.push((data[0], data[8..8 + len].to_vec()));
        data = &data[8 + len..];
    }
    out
}
