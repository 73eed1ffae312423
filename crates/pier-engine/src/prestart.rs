//! Work for a new container begun at create, before its start.
//!
//! `docker run` is create, attach, wait and start in a row. Three slow parts
//! of a start need nothing the start request brings: loading the shim process
//! (2-8 ms), making the container's network namespace (0.5-4 ms; it waits for
//! the RTNL lock, which the previous container's teardown may hold) and
//! mounting its root (1-4 ms). They begin at create, in the background and
//! side by side, while the client sends its next requests; start takes them
//! over. Nothing is visible to the user: the shim waits for `go`, the
//! namespace is empty and the root is the one start would mount. If no start
//! comes within [`PRESTART_TTL`], or the container goes, all are undone.

use std::sync::Arc;
use std::time::Duration;

use crate::network::{mode_of, owns_netns};
use crate::shim::{LaunchedShim, Shim};
use crate::Engine;

/// How long a created container keeps its waiting shim, namespace and root mount.
const PRESTART_TTL: Duration = Duration::from_secs(10);

/// What a start can take over: see [`Engine::prestart`].
pub(crate) struct Prestart {
    /// Spawning a process costs the spawning thread 1-2 ms here; the create
    /// response does not wait for it.
    shim: tokio::task::JoinHandle<Option<LaunchedShim>>,
    /// The root's overlay mount (see `Engine::mount_rootfs`).
    root: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// Begins the shim, the network namespace and the root mount of created
    /// container `id`.
    pub fn prestart(self: &Arc<Self>, id: &str) {
        let Ok(rec) = self.find_container(id) else {
            return;
        };
        if rec.state.status != crate::ContainerStatus::Created {
            return;
        }
        if owns_netns(&mode_of(&rec)) {
            self.pin_netns_early(&rec.id);
        }
        let shim = {
            let this = self.clone();
            let rec = rec.clone();
            tokio::task::spawn_blocking(move || {
                Shim::launch(&this.cfg, &rec, &this.cfg.bundle_dir(&rec.id)).ok()
            })
        };
        let root = {
            let this = self.clone();
            let rec = rec.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = this.mount_rootfs(&rec) {
                    tracing::debug!(id = %rec.id, "mounting root ahead of start: {e}");
                }
            })
        };
        self.prestarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone(), Prestart { shim, root });
        let this = self.clone();
        let id = rec.id;
        tokio::spawn(async move {
            tokio::time::sleep(PRESTART_TTL).await;
            if !this.has_prestart(&id) {
                return;
            }
            let lock = this.op_lock(&id);
            let _g = lock.lock().await;
            this.undo_prestart(&id).await;
        });
    }

    fn has_prestart(&self, id: &str) -> bool {
        let shim = self
            .prestarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id);
        shim || self.net_pinning_early(id)
    }

    /// Takes over what [`Engine::prestart`] began for a start: the root is
    /// mounted (or its mount failed, and start tries again), and the waiting
    /// shim, if one was launched, is returned.
    pub(crate) async fn take_prestart(&self, id: &str) -> Option<LaunchedShim> {
        let p = self
            .prestarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)?;
        let _ = p.root.await;
        p.shim.await.ok().flatten()
    }

    /// [`Engine::undo_prestart`] for every container, when the daemon stops.
    pub async fn undo_prestarts(&self) {
        let mut ids: Vec<String> = self
            .prestarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.extend(self.net_pinning_ids());
        ids.sort();
        ids.dedup();
        for id in ids {
            let lock = self.op_lock(&id);
            let _g = lock.lock().await;
            self.undo_prestart(&id).await;
        }
    }

    /// Sends away what [`Engine::prestart`] began and no start took. Callers
    /// hold the container's operation lock (the root is unmounted again).
    pub(crate) async fn undo_prestart(&self, id: &str) {
        let had = self.has_prestart(id);
        if let Some(shim) = self.take_prestart(id).await {
            shim.abort().await;
        }
        self.unpin_early_netns(id).await;
        let merged = self.merged_path(id);
        if had
            && !self.is_running(id)
            && crate::fsops::is_mountpoint(&merged)
            && let Err(e) = pier_sys::unmount(&merged, true)
        {
            tracing::warn!("unmounting {}: {e}", merged.display());
        }
    }
}
