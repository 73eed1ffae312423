//! `docker exec`: extra processes in a running container, run by its shim.

use std::sync::{Arc, Mutex};

use pier_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use tokio::net::UnixStream;

use crate::shim::AttachOptions;
use crate::util::random_id;
use crate::{Engine, EngineError, Result};

pub(crate) struct Exec {
    id: String,
    container_id: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
    /// Flips to true once the exit code is recorded.
    done: tokio::sync::watch::Sender<bool>,
}

#[derive(Default, Clone)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    pid: i64,
}

/// How `POST /exec/{id}/start` runs the exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStart {
    pub detach: bool,
}

impl Engine {
    fn exec(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("No such exec instance: {id}")))
    }

    pub(crate) fn exec_ids_of(&self, container_id: &str) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect()
    }

    pub(crate) fn drop_execs_of(&self, container_id: &str) {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.container_id != container_id);
    }

    /// `POST /containers/{id}/exec`.
    pub fn create_exec(&self, key: &str, config: ExecConfig) -> Result<String> {
        let rec = self.find_container(key)?;
        if !rec.state.running() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if rec.state.paused {
            return Err(EngineError::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::invalid_argument("No exec command specified"));
        }
        let id = random_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: rec.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            done: tokio::sync::watch::channel(false).0,
        });
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), exec);
        let cmd = self
            .exec(&id)?
            .config
            .cmd
            .clone()
            .unwrap_or_default()
            .join(" ");
        self.container_event("exec_create", &rec, &[("execID", id.clone())]);
        let _ = cmd;
        Ok(id)
    }

    /// Whether the exec has a TTY (so the stream is raw, not multiplexed).
    pub fn exec_tty(&self, id: &str) -> Result<bool> {
        Ok(self.exec(id)?.config.tty.unwrap_or(false))
    }

    /// The exec's detach keys as given at create (the client's setting).
    pub fn exec_detach_keys(&self, id: &str) -> Result<Option<String>> {
        Ok(self.exec(id)?.config.detach_keys.clone())
    }

    /// `POST /exec/{id}/start`: starts the process; without `detach`, returns
    /// the stream to pipe to the client (attached before the process runs).
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        opts: ExecStart,
    ) -> Result<Option<UnixStream>> {
        let exec = self.exec(id)?;
        crate::cgroup_warm::prewarm();
        {
            let mut st = exec.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
        }
        let rec = self.find_container(&exec.container_id)?;
        if !rec.state.running() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let shim = self.shim_of(&rec.id)?;
        let cfg = &exec.config;
        let rootfs = self.merged_path(&rec.id);
        let mut r = rec.clone();
        r.config.user = cfg.user.clone().filter(|u| !u.is_empty()).or(r.config.user);
        r.config.tty = cfg.tty;
        if let Some(wd) = cfg.working_dir.clone().filter(|w| !w.is_empty()) {
            r.config.working_dir = Some(wd);
        }
        let mut env = r.config.env.clone().unwrap_or_default();
        env.extend(cfg.env.clone().unwrap_or_default());
        r.config.env = Some(env);
        if cfg.privileged.unwrap_or(false) {
            r.host_config.privileged = Some(true);
        }
        let argv = cfg.cmd.clone().unwrap_or_default();
        r.path = argv[0].clone();
        r.args = argv[1..].to_vec();
        let spec = {
            let r = r.clone();
            tokio::task::spawn_blocking(move || crate::spec::spec_for(&r, &rootfs)).await??
        };
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| EngineError::internal("spec without process"))?;
        let tty = cfg.tty.unwrap_or(false);
        let stdin = cfg.attach_stdin.unwrap_or(false) && !opts.detach;
        shim.exec(id, process, tty, stdin).await?;
        let stream = if opts.detach {
            None
        } else {
            Some(
                shim.attach(
                    Some(id),
                    AttachOptions {
                        stdin,
                        stdout: cfg.attach_stdout.unwrap_or(true),
                        stderr: cfg.attach_stderr.unwrap_or(true),
                    },
                )
                .await?,
            )
        };
        let pid = match shim.exec_start(id).await {
            Ok(pid) => pid,
            Err(e) => {
                let Some(exit_code) = e.start_exit_code() else {
                    exec.state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .exit_code = Some(126);
                    return Err(e);
                };
                let message = e.to_string();
                // As Docker: the exec "ran" and failed; the client reads the
                // message from the stream and the code from inspect.
                exec.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .exit_code = Some(exit_code as i64);
                exec.done.send_replace(true);
                drop(stream);
                if opts.detach {
                    return Ok(None);
                }
                let (mut tx, rx) = UnixStream::pair()
                    .map_err(|e| EngineError::internal("exec stream").with_source(e))?;
                let text = format!("OCI runtime exec failed: {message}\r\n");
                let bytes = if tty {
                    bytes::Bytes::from(text.into_bytes())
                } else {
                    crate::logs::frame(1, text.as_bytes())
                };
                use tokio::io::AsyncWriteExt;
                let _ = tx.write_all(&bytes).await;
                return Ok(Some(rx));
            }
        };
        {
            let mut st = exec.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = true;
            st.pid = pid;
        }
        self.container_event("exec_start", &rec, &[("execID", id.to_string())]);
        let this = self.clone();
        let exec2 = exec.clone();
        tokio::spawn(async move {
            let code = match shim.wait(Some(&exec2.id)).await {
                Ok(i) => i.exit_code,
                Err(_) => 137,
            };
            {
                let mut st = exec2.state.lock().unwrap_or_else(|e| e.into_inner());
                st.running = false;
                st.exit_code = Some(code);
                st.pid = 0;
            }
            exec2.done.send_replace(true);
            if let Ok(rec) = this.find_container(&exec2.container_id) {
                this.container_event(
                    "exec_die",
                    &rec,
                    &[("execID", exec2.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
        Ok(stream)
    }

    /// Resolves once the exec's exit code is recorded (or after `limit`):
    /// the server holds the end of an exec stream until then, so a client
    /// that inspects the exec after EOF always sees its exit code.
    pub fn exec_finished(
        &self,
        id: &str,
        limit: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static + use<> {
        let rx = self.exec(id).ok().map(|e| e.done.subscribe());
        async move {
            if let Some(mut rx) = rx {
                let _ = tokio::time::timeout(limit, rx.wait_for(|d| *d)).await;
            }
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect_exec(&self, id: &str) -> Result<ExecInspectResponse> {
        let exec = self.exec(id)?;
        let st = exec.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let cmd = exec.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(exec.config.detach_keys.clone().unwrap_or_default()),
            id: Some(exec.id.clone()),
            running: Some(st.running),
            exit_code: st.exit_code,
            process_config: Some(ProcessConfig {
                privileged: exec.config.privileged,
                user: exec.config.user.clone(),
                tty: exec.config.tty,
                entrypoint: cmd.first().cloned(),
                arguments: Some(cmd.iter().skip(1).cloned().collect()),
            }),
            open_stdin: exec.config.attach_stdin,
            open_stderr: exec.config.attach_stderr,
            open_stdout: exec.config.attach_stdout,
            container_id: Some(exec.container_id.clone()),
            pid: Some(st.pid),
        })
    }

    /// `POST /exec/{id}/resize`.
    pub async fn resize_exec(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let exec = self.exec(id)?;
        self.shim_of(&exec.container_id)?
            .resize(Some(id), rows, cols)
            .await
    }
}
