//! The start-up sweep: whatever a daemon killed mid-work (kill -9, a crash,
//! a power cut) left below its roots and cgroup parent, and no live container
//! owns, goes before the API serves anyone.
//!
//! A build's RUN step is a container without a record: after a crash its
//! shim and process run on in their cgroup, its root stays mounted (overlay)
//! and its network namespace pinned (an nsfs bind mount), none of it known
//! to the new daemon. Containers survive restarts through their shims, so
//! what belongs to a container whose shim answered is kept: its root mount,
//! namespace, bundle, runtime state and cgroup.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pier_runtime::client::ShimClient;

use crate::records::ContainerRecord;
use crate::Engine;

/// How long an orphaned shim gets to clean up after a shutdown request.
const SHIM_GRACE: Duration = Duration::from_secs(3);

/// Whether `name` is a cgroup or directory name the engine makes: a
/// container id (64 hex digits) or a build step's `build-<12 hex digits>`.
fn engine_name(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    hex(name, 64) || name.strip_prefix("build-").is_some_and(|r| hex(r, 12))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or(""), 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points strictly below any of `roots` in `mountinfo`, deepest first
/// (a path mounted twice is listed twice).
fn mounts_below(mountinfo: &str, roots: &[&Path]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| roots.iter().any(|r| m.starts_with(r) && m != r))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

/// A shim process of this daemon: (pid, id of the container it serves).
// The start-up sweep runs before the API listens: no request waits on it.
#[allow(clippy::disallowed_methods)]
fn shims_of(exec_root: &Path) -> Vec<(i32, String)> {
    let containers = exec_root.join("containers");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = argv.first().is_some_and(|a0| {
            Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(a0))
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pier-shim"))
        });
        if !is_shim {
            continue;
        }
        let state = argv
            .windows(2)
            .find(|w| w[0] == b"--state-dir")
            .map(|w| PathBuf::from(String::from_utf8_lossy(w[1]).into_owned()));
        if let Some(state) = state
            && state.parent() == Some(containers.as_path())
            && let Some(id) = state.file_name()
        {
            out.push((pid, id.to_string_lossy().into_owned()));
        }
    }
    out
}

// The start-up sweep runs before the API listens: no request waits on it.
#[allow(clippy::disallowed_methods)]
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default()
}

impl Engine {
    /// Removes what no container in `live` (ids whose shim answered) owns:
    /// shims and their processes, cgroups below the cgroup parent (and those
    /// of recorded containers that have no shim), mounts and namespaces
    /// below the roots, runtime state, bundles and build leftovers.
    pub(crate) async fn sweep(&self, live: &HashSet<String>, recs: &[ContainerRecord]) {
        // Shims first: asked to shut down, each kills its container and
        // deletes its cgroups and state itself.
        let orphans: Vec<(i32, String)> = shims_of(&self.cfg.exec_root)
            .into_iter()
            .filter(|(_, id)| !live.contains(id))
            .collect();
        let mut ids: Vec<&String> = orphans.iter().map(|(_, id)| id).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let client = ShimClient::new(&self.cfg.bundle_dir(id));
            if client.is_alive().await {
                tracing::info!(%id, "shutting down a shim no container owns");
                if let Err(e) = client.shutdown_and_wait(SHIM_GRACE).await {
                    tracing::warn!(%id, "orphaned shim: {e}");
                }
            }
        }
        for (pid, id) in orphans {
            // Still there (it did not answer, or its cleanup helper hangs).
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
                tracing::info!(%id, pid, "killing an orphaned shim");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.sweep_volume_mounts(live, recs);
        let parent = self.cfg.cgroup_parent.trim_matches('/').to_string();
        let recs: Vec<ContainerRecord> = recs.to_vec();
        let live_ids = live.clone();
        let this_cfg = self.cfg.clone();
        let snaps_root = self.snaps.root().to_path_buf();
        let blocking = tokio::task::spawn_blocking(move || {
            sweep_cgroups(&parent, &live_ids, &recs);
            sweep_mounts(&this_cfg, &snaps_root, &live_ids);
        });
        if let Err(e) = blocking.await {
            tracing::error!("start-up sweep: {e}");
        }
        self.sweep_dirs(live);
    }

    /// Runtime state, bundles, namespace files and build leftovers of
    /// nothing live. Their mounts are gone by now (see `sweep_mounts`).
    // Before the API listens: no request waits on it.
    #[allow(clippy::disallowed_methods)]
    fn sweep_dirs(&self, live: &HashSet<String>) {
        let still_mounted = |p: &Path| {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            !mounts_below(&info, &[p]).is_empty() || crate::fsops::is_mountpoint(p)
        };
        let x = &self.cfg.exec_root;
        for (id, path) in entries(&self.cfg.runtime_root()) {
            if !live.contains(&id)
                && let Err(e) = std::fs::remove_dir_all(&path)
            {
                tracing::warn!("removing runtime state {}: {e}", path.display());
            }
        }
        for (id, path) in entries(&x.join("containers")) {
            if !live.contains(&id) && !still_mounted(&path) {
                let _ = self.discard_dir(x, &path);
            }
        }
        for (id, path) in entries(&x.join("netns")) {
            if !live.contains(&id)
                && let Err(e) = pier_network::netns::delete(&path)
            {
                tracing::warn!("removing namespace {}: {e}", path.display());
            }
        }
        let d = &self.cfg.data_root;
        for (_, path) in entries(&d.join("build-run")) {
            if !still_mounted(&path) {
                let _ = self.discard_dir(d, &path);
            }
        }
        // Build roots (`build-<id>` snapshots of steps that never finished).
        for (name, path) in entries(&self.snaps.root().join("containers")) {
            if name.starts_with("build-") && !still_mounted(&path) {
                let _ = self.discard_dir(d, &path);
            }
        }
    }
}

/// Kills and removes the cgroups below the parent that no live container
/// owns (build steps, containers whose shim died), and those of recorded
/// containers without a shim wherever their cgroup is.
fn sweep_cgroups(parent: &str, live: &HashSet<String>, recs: &[ContainerRecord]) {
    let mut doomed: Vec<String> = Vec::new();
    if !parent.is_empty() {
        for dir in crate::system::cgroup_dirs(parent) {
            for (name, _) in entries(&dir) {
                if engine_name(&name) && !live.contains(&name) {
                    doomed.push(format!("/{parent}/{name}"));
                }
            }
        }
    }
    for r in recs.iter().filter(|r| !live.contains(&r.id)) {
        if !r.cgroups_path.is_empty() && !crate::system::cgroup_dirs(&r.cgroups_path).is_empty() {
            doomed.push(r.cgroups_path.clone());
        }
    }
    doomed.sort();
    doomed.dedup();
    for cg in doomed {
        tracing::info!(cgroup = %cg, "removing a cgroup no live container owns");
        if let Err(e) = crate::reap::reap_cgroup(&cg) {
            tracing::warn!("{e}");
        }
    }
}

/// Unmounts, deepest first, what is mounted below the roots and belongs to
/// no live container: build roots, roots of containers whose shim is gone
/// or mounted ahead of a start that never came, pinned namespaces.
fn sweep_mounts(cfg: &crate::EngineConfig, snaps_root: &Path, live: &HashSet<String>) {
    let info = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!("reading /proc/self/mountinfo: {e}");
            return;
        }
    };
    let keep: Vec<PathBuf> = live
        .iter()
        .flat_map(|id| {
            [
                snaps_root.join("containers").join(id),
                cfg.exec_root.join("netns").join(id),
                cfg.exec_root.join("containers").join(id),
                cfg.data_root.join("containers").join(id),
            ]
        })
        // Volumes are not the daemon's mounts to judge.
        .chain([cfg.data_root.join("volumes")])
        .collect();
    let roots = [cfg.data_root.as_path(), cfg.exec_root.as_path()];
    for m in mounts_below(&info, &roots) {
        if keep.iter().any(|k| m.starts_with(k)) {
            continue;
        }
        tracing::info!(mount = %m.display(), "unmounting what no live container owns");
        if pier_sys::unmount(&m, false).is_err()
            && let Err(e) = pier_sys::unmount(&m, true)
        {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names() {
        assert!(engine_name(&"a".repeat(64)));
        assert!(engine_name("build-0123456789ab"));
        assert!(!engine_name("build-xyz"));
        assert!(!engine_name("system.slice"));
        assert!(!engine_name(&"a".repeat(63)));
    }

    #[test]
    fn mounts_below_the_roots_deepest_first() {
        let mi = "\
22 1 0:20 / /var/lib/pier rw - ext4 /dev/sdb rw
30 22 0:40 / /var/lib/pier/snapshots/containers/a/merged rw - overlay overlay rw
31 30 0:41 / /var/lib/pier/snapshots/containers/a/merged/x rw - tmpfs tmpfs rw
32 1 0:4 net:[4026532] /run/pier/netns/a rw - nsfs nsfs rw
33 1 0:42 / /var/lib/pierx rw - tmpfs tmpfs rw
34 1 0:43 / /run/pier/odd\\040name rw - tmpfs tmpfs rw
";
        let v = mounts_below(mi, &[Path::new("/var/lib/pier"), Path::new("/run/pier")]);
        assert_eq!(
            v,
            vec![
                PathBuf::from("/var/lib/pier/snapshots/containers/a/merged/x"),
                PathBuf::from("/var/lib/pier/snapshots/containers/a/merged"),
                PathBuf::from("/run/pier/netns/a"),
                PathBuf::from("/run/pier/odd name"),
            ]
        );
    }
}
