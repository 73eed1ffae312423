//! Reconnecting after a daemon restart: running containers get their shim
//! back, exits that happened while no daemon ran are recorded, containers
//! whose shim died are reaped, and what a crash left is swept (sweep.rs).

use std::collections::HashSet;
use std::sync::Arc;

use crate::lifecycle::Live;
use crate::records::ContainerRecord;
use crate::shim::{ExitInfo, Shim};
use crate::Engine;

impl Engine {
    /// After a daemon restart: reconnect to the shims of running containers,
    /// or record the exits that happened while the daemon was away.
    pub(crate) async fn restore(self: Arc<Self>) {
        self.empty_trash();
        let recs = match self.meta.containers::<ContainerRecord>() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("reading container records: {e}");
                Vec::new()
            }
        };
        let mut restart = Vec::new();
        let mut live = HashSet::new();
        let mut ended: Vec<(String, ExitInfo)> = Vec::new();
        for rec in &recs {
            // Restarting: between two runs, with no shim to find.
            if !rec.state.running() || rec.state.status == crate::ContainerStatus::Restarting {
                if crate::restart_policy::restarts_on_boot(rec) {
                    restart.push(rec.id.clone());
                }
                continue;
            }
            let dir = self.cfg.bundle_dir(&rec.id);
            match Shim::connect(&dir).await {
                Ok((shim, true)) => {
                    // It ended while no daemon ran: record that before the
                    // API serves anyone, so `ps` never shows it as running.
                    let info = match shim.wait(None).await {
                        Ok(i) => i,
                        Err(_) => match Shim::read_exit_file(&dir) {
                            Some(i) => i,
                            None => self.reap_dead_shim(rec).await,
                        },
                    };
                    let _ = shim.shutdown().await;
                    ended.push((rec.id.clone(), info));
                }
                Ok((shim, false)) => {
                    live.insert(rec.id.clone());
                    self.adopt(&rec.id, shim);
                }
                // No shim: its processes may run on, unseen. Kill them.
                Err(_) if Shim::liveness_at(&dir).await == Some(false) => {
                    ended.push((rec.id.clone(), self.reap_dead_shim(rec).await))
                }
                // It may be there: kept, and its monitor tries again.
                Err(e) => {
                    tracing::warn!(id = %rec.id, "reconnecting to the shim: {e}");
                    live.insert(rec.id.clone());
                    self.adopt(&rec.id, Shim::at(&dir));
                }
            }
        }
        // Before any exit is recorded: a restart policy could start a
        // container again while the sweep runs.
        self.sweep(&live, &recs).await;
        for (id, info) in ended {
            self.on_exit(&id, info).await;
        }
        for id in restart {
            let _ = self.start_container(&id).await;
        }
    }

    fn adopt(self: &Arc<Self>, id: &str, shim: Shim) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), Arc::new(Live { shim: shim.clone() }));
        self.monitor(id.to_string(), shim);
    }
}
