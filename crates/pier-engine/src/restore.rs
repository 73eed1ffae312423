//! Reconnecting after a daemon restart: running containers get their shim
//! back, and exits that happened while no daemon ran are recorded.

use std::path::Path;
use std::sync::Arc;

use crate::lifecycle::Live;
use crate::records::ContainerRecord;
use crate::shim::{ExitInfo, Shim};
use crate::util::now_rfc3339;
use crate::Engine;

impl Engine {
    /// After a daemon restart: reconnect to the shims of running containers,
    /// or record the exits that happened while the daemon was away.
    pub(crate) async fn restore(self: Arc<Self>) {
        self.empty_trash();
        let Ok(recs) = self.meta.containers::<ContainerRecord>() else {
            return;
        };
        let mut restart = Vec::new();
        for rec in recs {
            if !rec.state.running() {
                if self.should_restart_on_boot(&rec) {
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
                        Err(_) => recorded_exit(&dir),
                    };
                    let _ = shim.shutdown().await;
                    self.on_exit(&rec.id, info).await;
                }
                Ok((shim, false)) => {
                    self.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(rec.id.clone(), Arc::new(Live { shim: shim.clone() }));
                    self.monitor(rec.id.clone(), shim);
                }
                Err(_) => self.on_exit(&rec.id, recorded_exit(&dir)).await,
            }
        }
        for id in restart {
            let _ = self.start_container(&id).await;
        }
    }

    fn should_restart_on_boot(&self, rec: &ContainerRecord) -> bool {
        use pier_api::models::RestartPolicyNameEnum as P;
        !rec.state.stopped_by_user
            && rec.state.status == "exited"
            && matches!(
                rec.host_config.restart_policy.as_ref().and_then(|p| p.name),
                Some(P::ALWAYS) | Some(P::UNLESS_STOPPED)
            )
    }
}

/// The exit the shim recorded in its bundle, or 255 (Docker's code for an
/// exit nobody saw) when the shim is gone without one.
fn recorded_exit(dir: &Path) -> ExitInfo {
    Shim::read_exit_file(dir).unwrap_or(ExitInfo {
        exit_code: 255,
        finished_at: now_rfc3339(),
        oom_killed: false,
    })
}
