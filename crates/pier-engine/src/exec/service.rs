//! The exec service: the execs of every container and their lifecycle
//! (create, start, exit, inspect). Containers are reached only through the
//! `ExecHost` handed to each call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pier_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::host::{ExecHost, ExecStart};
use crate::shim::AttachOptions;
use crate::util::random_id;
use crate::{EngineError, Result};

struct Exec {
    id: String,
    container_id: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
    /// Flips to true once the exit code is recorded.
    done: tokio::sync::watch::Sender<bool>,
}

impl Exec {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default, Clone)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    pid: i64,
}

/// Execs by ID: `/containers/{id}/exec` and `/exec/...` of the API.
#[derive(Default)]
pub struct ExecService {
    execs: Mutex<HashMap<String, Arc<Exec>>>,
}

impl ExecService {
    fn all(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Exec>>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.all()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("No such exec instance: {id}")))
    }

    /// The IDs of a container's execs (its inspect's `ExecIDs`).
    pub(crate) fn ids_of(&self, container_id: &str) -> Vec<String> {
        self.all()
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Forgets a container's execs (it stopped or went away).
    pub(crate) fn drop_of(&self, container_id: &str) {
        self.all().retain(|_, e| e.container_id != container_id);
    }

    /// Forgets one exec (a health probe's, once read).
    pub(crate) fn forget(&self, id: &str) {
        self.all().remove(id);
    }

    /// `POST /containers/{id}/exec`.
    pub(crate) fn create(
        &self,
        host: &dyn ExecHost,
        key: &str,
        config: ExecConfig,
    ) -> Result<String> {
        let rec = host.container(key)?;
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
        self.all().insert(id.clone(), exec);
        host.event("exec_create", &rec, &[("execID", id.clone())]);
        Ok(id)
    }

    /// Whether the exec has a TTY (so the stream is raw, not multiplexed).
    pub fn tty(&self, id: &str) -> Result<bool> {
        Ok(self.get(id)?.config.tty.unwrap_or(false))
    }

    /// The exec's detach keys as given at create (the client's setting).
    pub fn detach_keys(&self, id: &str) -> Result<Option<String>> {
        Ok(self.get(id)?.config.detach_keys.clone())
    }

    /// `POST /exec/{id}/start`: starts the process; without `detach`, returns
    /// the stream to pipe to the client (attached before the process runs).
    /// The host is kept by the task that records the exit.
    pub(crate) async fn start(
        &self,
        host: Arc<dyn ExecHost>,
        id: &str,
        opts: ExecStart,
    ) -> Result<Option<UnixStream>> {
        let exec = self.get(id)?;
        {
            let mut st = exec.state();
            if st.started {
                return Err(EngineError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
        }
        let rec = host.container(&exec.container_id)?;
        if !rec.state.running() {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let shim = host.runner(&rec.id)?;
        let cfg = &exec.config;
        let rootfs = host.rootfs(&rec.id);
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
        shim.prepare(id, process, tty, stdin).await?;
        let stream = if opts.detach {
            None
        } else {
            Some(
                shim.attach(
                    id,
                    AttachOptions {
                        stdin,
                        stdout: cfg.attach_stdout.unwrap_or(true),
                        stderr: cfg.attach_stderr.unwrap_or(true),
                    },
                )
                .await?,
            )
        };
        let pid = match shim.start(id).await {
            Ok(pid) => pid,
            Err(e) => {
                let Some(exit_code) = e.start_exit_code() else {
                    exec.state().exit_code = Some(126);
                    return Err(e);
                };
                let message = e.to_string();
                // As Docker: the exec "ran" and failed; the client reads the
                // message from the stream and the code from inspect.
                exec.state().exit_code = Some(exit_code as i64);
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
                let _ = tx.write_all(&bytes).await;
                return Ok(Some(rx));
            }
        };
        {
            let mut st = exec.state();
            st.running = true;
            st.pid = pid;
        }
        host.event("exec_start", &rec, &[("execID", id.to_string())]);
        tokio::spawn(async move {
            let code = shim.wait(&exec.id).await.unwrap_or(137);
            {
                let mut st = exec.state();
                st.running = false;
                st.exit_code = Some(code);
                st.pid = 0;
            }
            exec.done.send_replace(true);
            if let Ok(rec) = host.container(&exec.container_id) {
                host.event(
                    "exec_die",
                    &rec,
                    &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
        Ok(stream)
    }

    /// Resolves once the exec's exit code is recorded (or after `limit`):
    /// the server holds the end of an exec stream until then, so a client
    /// that inspects the exec after EOF always sees its exit code.
    pub fn finished(
        &self,
        id: &str,
        limit: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static + use<> {
        let rx = self.get(id).ok().map(|e| e.done.subscribe());
        async move {
            if let Some(mut rx) = rx {
                let _ = tokio::time::timeout(limit, rx.wait_for(|d| *d)).await;
            }
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        let exec = self.get(id)?;
        let st = exec.state().clone();
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
    pub(crate) async fn resize(
        &self,
        host: &dyn ExecHost,
        id: &str,
        rows: u16,
        cols: u16,
    ) -> Result<()> {
        let exec = self.get(id)?;
        host.runner(&exec.container_id)?
            .resize(id, rows, cols)
            .await
    }
}
