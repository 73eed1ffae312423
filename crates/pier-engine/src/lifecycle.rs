//! Running containers: start, stop, kill, attach, pause and restart policies
//! (waiting for exits is in `wait.rs`, reconnecting after a daemon restart in
//! `restore.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::records::ContainerRecord;
use crate::shim::{AttachOptions, ExitInfo, LaunchedShim, Shim};
use crate::util::now_rfc3339;
use crate::wait::wait_exit;
use crate::{ContainerStatus, Engine, EngineError, ErrorKind, Result};

/// Live state of a container whose shim is running.
pub(crate) struct Live {
    pub shim: Shim,
}

pub(crate) struct PendingAttach {
    opts: AttachOptions,
    tx: oneshot::Sender<Result<UnixStream>>,
}

pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    let bad = || EngineError::invalid_argument(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

impl Engine {
    fn live(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn shim_of(&self, id: &str) -> Result<Shim> {
        self.live(id)
            .map(|l| l.shim.clone())
            .ok_or_else(|| EngineError::conflict(format!("Container {id} is not running")))
    }

    /// `POST /containers/{id}/start`.
    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<()> {
        let id = self.resolve_container_id(key)?;
        let lock = self.op_lock(&id);
        let _g = lock.lock().await;
        let mut rec = self.find_container(&id)?;
        if rec.state.running() {
            return Err(EngineError::not_modified("container already started"));
        }
        rec.state.stopped_by_user = false;
        // A start by hand begins the policy's count and delays again (dockerd
        // resets its restart manager).
        rec.restart_count = 0;
        self.backoff.reset(&rec.id);
        self.start_locked(&mut rec).await
    }

    async fn start_locked(self: &Arc<Self>, rec: &mut ContainerRecord) -> Result<()> {
        let t0 = std::time::Instant::now();
        crate::cgroup_warm::prewarm();
        // The shim process loads (a few ms) while the namespace, addresses
        // and ports are made and the root is prepared; it waits for `go`.
        let launched = match self.take_prestart(&rec.id).await {
            Some(l) => Ok(l),
            None => Shim::launch(&self.cfg, rec, &self.cfg.bundle_dir(&rec.id)),
        };
        let plumbing = match self.network_prepare(rec).await {
            Ok(p) => p,
            Err(e) => {
                if let Ok(l) = launched {
                    l.abort().await;
                }
                self.fail_start(rec, &e).await;
                return Err(e);
            }
        };
        // The interfaces are made while the root is prepared and the shim
        // creates the container (which joins the namespace by path): moving a
        // veth into a namespace waits for RCU, the container's own setup waits
        // for it too, and neither needs the other before the process runs.
        let t1 = t0.elapsed();
        let plumb = async {
            let r = self.network_plumb(plumbing).await;
            (r, t0.elapsed())
        };
        let ((plumbed, t_plumbed), (prepared, created)) =
            tokio::join!(plumb, self.create_in_shim(rec, launched));
        let t2 = t0.elapsed();
        if prepared {
            // Volumes are filled from the image only on the first start.
            for m in rec.mounts.iter_mut() {
                m.copy_up = false;
            }
        }
        let shim = match (plumbed, created) {
            (Ok(()), Ok(shim)) => shim,
            (Err(e), Ok(shim)) => {
                let _ = shim.shutdown().await;
                self.fail_start(rec, &e).await;
                return Err(e);
            }
            (_, Err(e)) => {
                self.fail_start(rec, &e).await;
                return Err(e);
            }
        };
        if let Err(e) = crate::resources::apply_after_create(&rec.host_config, &rec.cgroups_path) {
            let _ = shim.shutdown().await;
            self.fail_start(rec, &e).await;
            return Err(e);
        }
        // Attaches that arrived before start get their streams now, before
        // the process runs, so no output is lost.
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id)
            .unwrap_or_default();
        for p in pending {
            let r = shim.attach(None, p.opts).await;
            let _ = p.tx.send(r);
        }
        let pid = match shim.start().await {
            Ok(pid) => pid,
            Err(e) => {
                let _ = shim.shutdown().await;
                self.fail_start(rec, &e).await;
                return Err(e);
            }
        };
        tracing::debug!(
            id = %rec.id,
            network = ?t1,
            plumbed = ?t_plumbed,
            created = ?t2,
            started = ?t0.elapsed(),
            "container started"
        );
        rec.state.status = ContainerStatus::Running;
        rec.state.pid = pid;
        rec.state.exit_code = 0;
        rec.state.error.clear();
        rec.state.oom_killed = false;
        rec.state.paused = false;
        rec.state.started_at = now_rfc3339();
        // FinishedAt keeps the end of the previous run, as Docker's does:
        // compose and others read it after a restart.
        self.save_state(rec)?;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone(), Arc::new(Live { shim: shim.clone() }));
        self.volume_use_events("mount", rec);
        self.container_event("start", rec, &[]);
        self.monitor(rec.id.clone(), shim);
        self.watch_health(rec);
        Ok(())
    }

    /// Prepares the bundle and has a new shim create the container (not yet
    /// started) in the shim `launched` by the caller. Also says whether the
    /// bundle was prepared.
    async fn create_in_shim(
        self: &Arc<Self>,
        rec: &ContainerRecord,
        launched: Result<LaunchedShim>,
    ) -> (bool, Result<Shim>) {
        let prepared = {
            let this = self.clone();
            let r = rec.clone();
            match tokio::task::spawn_blocking(move || this.prepare_bundle(&r)).await {
                Ok(p) => p,
                Err(e) => Err(e.into()),
            }
        };
        let t = std::time::Instant::now();
        match (prepared, launched) {
            (Ok(_), Ok(l)) => {
                let shim = l.go().await;
                tracing::debug!(id = %rec.id, shim = ?t.elapsed(), "container created");
                (true, shim)
            }
            (Ok(_), Err(e)) => (true, Err(e)),
            (Err(e), Ok(l)) => {
                l.abort().await;
                (false, Err(e))
            }
            (Err(e), Err(_)) => (false, Err(e)),
        }
    }

    async fn fail_start(self: &Arc<Self>, rec: &mut ContainerRecord, e: &EngineError) {
        let code = match e.kind() {
            ErrorKind::CannotStart { exit_code } => exit_code as i64,
            _ => 128,
        };
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id)
            .unwrap_or_default();
        for p in pending {
            let _ = p.tx.send(Err(EngineError::conflict(e.to_string())));
        }
        self.network_teardown(rec).await;
        self.teardown_runtime(rec);
        rec.state.exit_code = code;
        rec.state.error = e.to_string();
        if rec.state.status != ContainerStatus::Created {
            rec.state.status = ContainerStatus::Exited;
            rec.state.finished_at = now_rfc3339();
        }
        let _ = self.save_state(rec);
        self.container_event("die", rec, &[("exitCode", code.to_string())]);
        self.publish_exit(rec, code, false);
        if rec.host_config.auto_remove.unwrap_or(false) {
            // As Docker: an auto-remove container that failed to start goes
            // away (after the caller releases the container's lock).
            let this = self.clone();
            let id = rec.id.clone();
            tokio::spawn(async move {
                let _ = this.remove_container(&id, true, true).await;
            });
        }
    }

    /// Waits for the container's exit in the background and records it.
    pub(crate) fn monitor(self: &Arc<Self>, id: String, shim: Shim) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(50);
            let info = loop {
                let e = match shim.wait(None).await {
                    Ok(i) => break i,
                    Err(e) => e,
                };
                // Only a shim that no longer listens is dead; a wait that
                // failed otherwise is asked again.
                if shim.liveness().await == Some(false) {
                    break this.shim_gone(&id).await;
                }
                tracing::debug!(%id, "waiting on the shim: {e}; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            };
            let _ = shim.shutdown().await;
            this.on_exit(&id, info).await;
        });
    }

    /// The shim of running container `id` is gone: nothing of the container
    /// may run on unseen (see reap.rs).
    pub(crate) async fn shim_gone(&self, id: &str) -> ExitInfo {
        match self.meta.container::<ContainerRecord>(id) {
            Ok(Some(rec)) => self.reap_dead_shim(&rec).await,
            _ => Shim::read_exit_file(&self.cfg.bundle_dir(id))
                .unwrap_or_else(crate::reap::shim_died_exit),
        }
    }

    pub(crate) async fn on_exit(self: &Arc<Self>, id: &str, info: ExitInfo) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let Ok(Some(mut rec)) = self.meta.container::<ContainerRecord>(id) else {
            return;
        };
        rec.state.status = ContainerStatus::Exited;
        rec.state.pid = 0;
        rec.state.paused = false;
        rec.state.exit_code = info.exit_code;
        rec.state.finished_at = info.finished_at.clone();
        rec.state.oom_killed = info.oom_killed;
        rec.state.error = info.error.clone();
        if info.oom_killed {
            self.container_event("oom", &rec, &[]);
        }
        // Docker's order: the container dies (seen as exited by whoever
        // inspects it on the event), then its endpoints go.
        let t = std::time::Instant::now();
        let written = self.save_state(&rec).unwrap_or_else(|e| {
            tracing::warn!(%id, "recording the exit: {e}");
            false
        });
        self.container_event("die", &rec, &[("exitCode", info.exit_code.to_string())]);
        self.volume_use_events("unmount", &rec);
        let saved = t.elapsed();
        self.network_teardown_exited(&mut rec).await;
        let network = t.elapsed();
        if written {
            self.teardown_runtime(&rec);
        } else {
            // The exit lives only in memory until the disk has room: keep the
            // shim's exit.json in the bundle, where a restarted daemon finds it.
            self.unmount_root(&rec);
        }
        let unmounted = t.elapsed();
        let _ = self.save_state(&rec);
        self.publish_exit(&rec, info.exit_code, false);
        tracing::debug!(%id, ?saved, ?network, ?unmounted, recorded = ?t.elapsed(), "exit recorded");
        if crate::restart_policy::restarts_after_exit(&rec) {
            let delay = self
                .backoff
                .next(id, crate::restart_policy::run_length(&rec));
            rec.state.status = ContainerStatus::Restarting;
            rec.restart_count += 1;
            let _ = self.save_state(&rec);
            let this = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let lock = this.op_lock(&id);
                let _g = lock.lock().await;
                if let Ok(mut rec) = this.find_container(&id) {
                    if rec.state.status != ContainerStatus::Restarting || rec.state.stopped_by_user
                    {
                        return;
                    }
                    let _ = this.start_locked(&mut rec).await;
                }
            });
        } else if rec.host_config.auto_remove.unwrap_or(false) {
            let _ = self.remove_container(id, true, true).await;
        }
    }

    /// Unmounts the root and removes the bundle; the container's writable
    /// layer stays for `start`, `cp`, `diff`, `commit`.
    pub(crate) fn teardown_runtime(&self, rec: &ContainerRecord) {
        self.unmount_root(rec);
        let bundle = self.cfg.bundle_dir(&rec.id);
        if let Err(e) = self.discard_dir(&self.cfg.exec_root, &bundle) {
            tracing::warn!("removing bundle of {}: {e}", rec.id);
        }
    }

    fn unmount_root(&self, rec: &ContainerRecord) {
        self.unmount_shm(rec);
        crate::volume_subpath::release(rec, &self.cfg.bundle_dir(&rec.id));
        self.release_volumes(rec);
        let merged = self.merged_path(&rec.id);
        if crate::fsops::is_mountpoint(&merged)
            && let Err(e) = pier_sys::unmount(&merged, false)
        {
            tracing::warn!("unmount {}: {e}; detaching", merged.display());
            let _ = pier_sys::unmount(&merged, true);
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let mut rec = self.find_container(key)?;
        if !rec.state.running() {
            return Err(EngineError::not_modified("container already stopped"));
        }
        let sig = match signal.or(rec.config.stop_signal.as_deref()) {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc_sigterm(),
        };
        rec.state.stopped_by_user = true;
        self.save_state(&rec)?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        self.kill_and_wait(&rec, sig, timeout).await?;
        self.container_event("stop", &rec, &[]);
        Ok(())
    }

    /// Sends `sig`, waits up to `timeout` seconds (negative = forever), then SIGKILL.
    async fn kill_and_wait(
        self: &Arc<Self>,
        rec: &ContainerRecord,
        sig: i32,
        timeout: i64,
    ) -> Result<()> {
        let mut exits = self.exits.subscribe();
        let Ok(shim) = self.shim_of(&rec.id) else {
            if rec.state.status == ContainerStatus::Restarting {
                // Between two runs: cancelling the restart is the stop.
                let mut r = rec.clone();
                r.state.status = ContainerStatus::Exited;
                r.state.stopped_by_user = true;
                self.save_state(&r)?;
            }
            return Ok(());
        };
        if rec.state.paused {
            let _ = shim.resume().await;
        }
        if sig != 9 && timeout != 0 {
            shim.kill(sig).await?;
            self.container_event("kill", rec, &[("signal", sig.to_string())]);
            let wait = wait_exit(&mut exits, &rec.id);
            if timeout < 0 {
                wait.await;
                return Ok(());
            }
            if tokio::time::timeout(Duration::from_secs(timeout as u64), wait)
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        if shim.kill(9).await.is_err() && self.live(&rec.id).is_none() {
            return Ok(());
        }
        self.container_event("kill", rec, &[("signal", "9".into())]);
        let _ = tokio::time::timeout(Duration::from_secs(30), wait_exit(&mut exits, &rec.id)).await;
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill_container(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let rec = self.find_container(key)?;
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        if !rec.state.running() {
            return Err(EngineError::conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                rec.id
            )));
        }
        if sig == 9 {
            let mut r = rec.clone();
            r.state.stopped_by_user = true;
            self.save_state(&r)?;
        }
        let mut exits = self.exits.subscribe();
        self.shim_of(&rec.id)?.kill(sig).await?;
        self.container_event("kill", &rec, &[("signal", sig.to_string())]);
        if sig == 9 {
            // Docker returns from a SIGKILL only once the container is gone.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), wait_exit(&mut exits, &rec.id)).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        match self.stop_container(key, timeout, signal).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start_container(key).await?;
        if let Ok(rec) = self.find_container(key) {
            self.container_event("restart", &rec, &[]);
        }
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove_container(
        self: &Arc<Self>,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let rec = self.find_container(key)?;
        if rec.state.running() {
            if !force {
                return Err(EngineError::conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            let mut r = rec.clone();
            r.state.stopped_by_user = true;
            self.save_state(&r)?;
            self.kill_and_wait(&r, 9, 0).await?;
        }
        let lock = self.op_lock(&rec.id);
        let _g = lock.lock().await;
        let Some(mut rec) = self.meta.container::<ContainerRecord>(&rec.id)? else {
            return Ok(()); // removed meanwhile (auto-remove)
        };
        let t = std::time::Instant::now();
        self.backoff.reset(&rec.id);
        self.undo_prestart(&rec.id).await;
        self.network_teardown(&mut rec).await;
        let network = t.elapsed();
        let this = self.clone();
        let r = rec.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            this.teardown_runtime(&r);
            this.reap_leftovers_of(&r)?;
            let merged = this.merged_path(&r.id);
            if crate::fsops::is_mountpoint(&merged) {
                return Err(EngineError::internal(format!(
                    "removing container {}: {} is still mounted",
                    r.id,
                    merged.display()
                )));
            }
            // Back to the spare pool if the container wrote nothing; else
            // renamed away now and deleted in the background (see trash.rs).
            if !this.snaps.recycle_container(&r.id).unwrap_or(false) {
                let snap = merged.parent().unwrap_or(&merged).to_path_buf();
                this.discard_dir(&this.cfg.data_root, &snap)?;
            }
            this.discard_dir(&this.cfg.data_root, &this.cfg.container_dir(&r.id))?;
            match this.meta.delete_container(&r.id) {
                // Even the reserve was not enough: free what was just
                // discarded (deleted in the background otherwise) and retry.
                Err(e) if e.is_disk_full() => {
                    tracing::warn!(id = %r.id, "disk full: deleting the container's files before its record");
                    this.empty_trash_now();
                    this.meta.delete_container(&r.id)?;
                }
                r => {
                    r?;
                }
            }
            Ok(())
        })
        .await??;
        tracing::debug!(id = %rec.id, ?network, removed = ?t.elapsed(), "container removed");
        self.execs.drop_of(&rec.id);
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        self.container_event("destroy", &rec, &[]);
        self.publish_exit(&rec, rec.state.exit_code, true);
        drop(_g);
        self.drop_op_lock(&rec.id);
        Ok(())
    }

    /// `POST /containers/{id}/attach`: validates at once and returns a future
    /// of the stream (which resolves at start for a created container), plus
    /// whether the container has a TTY (raw stream) or not (multiplexed).
    pub fn attach_container(
        self: &Arc<Self>,
        key: &str,
        opts: AttachOptions,
    ) -> Result<(
        bool,
        impl std::future::Future<Output = Result<UnixStream>> + Send + 'static + use<>,
    )> {
        let rec = self.find_container(key)?;
        let tty = rec.tty();
        let (tx, rx) = oneshot::channel();
        if let Some(live) = self.live(&rec.id) {
            let shim = live.shim.clone();
            tokio::spawn(async move {
                let _ = tx.send(shim.attach(None, opts).await);
            });
        } else if rec.state.status == ContainerStatus::Created
            || rec.state.status == ContainerStatus::Exited
        {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(rec.id.clone())
                .or_default()
                .push(PendingAttach { opts, tx });
        } else {
            return Err(EngineError::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        self.container_event("attach", &rec, &[]);
        Ok((tty, async move {
            rx.await
                .map_err(|_| EngineError::internal("attach cancelled"))?
        }))
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize_container(&self, key: &str, rows: u16, cols: u16) -> Result<()> {
        let rec = self.find_container(key)?;
        self.shim_of(&rec.id)?.resize(None, rows, cols).await
    }

    pub async fn pause_container(&self, key: &str) -> Result<()> {
        let mut rec = self.find_container(key)?;
        if rec.state.status != ContainerStatus::Running {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        self.shim_of(&rec.id)?.pause().await?;
        rec.state.status = ContainerStatus::Paused;
        rec.state.paused = true;
        self.save_state(&rec)?;
        self.container_event("pause", &rec, &[]);
        Ok(())
    }

    pub async fn unpause_container(&self, key: &str) -> Result<()> {
        let mut rec = self.find_container(key)?;
        if rec.state.status != ContainerStatus::Paused {
            return Err(EngineError::conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.shim_of(&rec.id)?.resume().await?;
        rec.state.status = ContainerStatus::Running;
        rec.state.paused = false;
        self.save_state(&rec)?;
        self.container_event("unpause", &rec, &[]);
        Ok(())
    }

    /// Mounts the root, writes /etc files and the OCI bundle. Blocking.
    fn prepare_bundle(&self, rec: &ContainerRecord) -> Result<PathBuf> {
        // Legacy links add hosts entries and variables for this start only.
        let t = std::time::Instant::now();
        let mut rec = self.with_links(rec)?;
        self.cfg.container_defaults.apply(&mut rec.host_config);
        let rootfs = self.mount_rootfs(&rec)?;
        self.mount_volumes(&rec)?;
        let bundle = self.cfg.bundle_dir(&rec.id);
        crate::volume_subpath::mount(&mut rec, &bundle)?;
        let rec = &rec;
        let mounted = t.elapsed();
        self.copy_up_volumes(&mut rec.clone(), &rootfs)?;
        // Docker creates a missing working directory (owned by root).
        let wd = rec.config.working_dir.as_deref().unwrap_or("/");
        let (_, wd_host) = crate::fsops::resolve_with_mounts(rec, &rootfs, wd)?;
        if !wd_host.exists() {
            // Made by descriptors: a volume shared with a running container may
            // have its directories swapped for symlinks meanwhile.
            crate::cpfs::View::open(rec, &rec.id, &rootfs)?.mkdir_all(wd)?;
        }
        crate::fsops::write_etc_files(rec)?;
        let files = t.elapsed();
        std::fs::create_dir_all(&bundle).map_err(|e| EngineError::from_io(&bundle, e))?;
        // An exit kept for a restarted daemon (on_exit, full disk) is stale now.
        let _ = std::fs::remove_file(pier_runtime::proto::exit_file_path(&bundle));
        let joins = self.joins_for_start(rec)?;
        let spec = crate::spec::spec_joining(rec, &rootfs, &joins, &self.cfg.cdi_spec_dirs)?;
        let path = bundle.join("config.json");
        let data = serde_json::to_vec(&spec)
            .map_err(|e| EngineError::internal("OCI spec").with_source(e))?;
        std::fs::write(&path, data).map_err(|e| EngineError::from_io(&path, e))?;
        tracing::debug!(id = %rec.id, ?mounted, ?files, spec = ?t.elapsed(), "bundle prepared");
        Ok(bundle)
    }

    /// Mounts the container's overlay root (idempotent); returns its path.
    /// Serialised per container: a root mounted ahead of start (prestart.rs)
    /// may be on its way while `cp` or `export` mount the same root.
    pub(crate) fn mount_rootfs(&self, rec: &ContainerRecord) -> Result<PathBuf> {
        let _g = self.mount_lock.lock(&rec.id);
        let parent = rec
            .chain_id
            .as_deref()
            .map(|c| c.parse())
            .transpose()
            .map_err(|e| EngineError::internal("chain id").with_source(e))?;
        let m = self.snaps.prepare(&rec.id, parent.as_ref()).map_err(|e| {
            EngineError::internal(format!("preparing root of {}", rec.id)).with_source(e)
        })?;
        if !crate::fsops::is_mountpoint(&m.target) {
            let init = self.cfg.init_layer_dir(rec.chain_id.as_deref());
            crate::fsops::make_init_layer(&init, &m.lowers)?;
            let mut lowers: Vec<&Path> = vec![init.as_path()];
            lowers.extend(m.lowers.iter().map(PathBuf::as_path));
            // The layer of a `--rm` container goes with it, so it need never be
            // synced (an overlay unmount otherwise syncs the whole upper
            // filesystem, tens of ms while anything else writes to it).
            let mount = if rec.host_config.auto_remove.unwrap_or(false) {
                pier_sys::mount_overlay_volatile
            } else {
                pier_sys::mount_overlay
            };
            let t = std::time::Instant::now();
            mount(&lowers, &m.upper, &m.work, &m.target).map_err(|e| {
                EngineError::internal(format!("mounting root of {}", rec.id)).with_source(e)
            })?;
            tracing::debug!(id = %rec.id, mount = ?t.elapsed(), "root mounted");
        }
        Ok(m.target)
    }
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("HUP").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
