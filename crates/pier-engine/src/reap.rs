//! What a container leaves when its shim is gone: processes and cgroups.
//!
//! The shim is the container's parent and the one that kills and deletes it.
//! If the shim dies (killed, OOM-killed, crashed) the container's processes
//! run on, reparented to init, with nobody to wait for them: the daemon kills
//! everything in the container's cgroup (every v1 hierarchy and the unified
//! one) and removes the cgroups and the runtime's state, so no process runs
//! that `ps` does not show.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::records::ContainerRecord;
use crate::shim::ExitInfo;
use crate::util::now_rfc3339;
use crate::Engine;

/// How long the processes of a cgroup may take to go after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `State.Error` says of a container whose shim died under it.
pub(crate) const SHIM_DIED: &str =
    "the container's shim (pier-shim) died unexpectedly; its processes were killed";

/// The exit recorded for a container whose shim died before recording one:
/// its processes were SIGKILLed by the daemon, so 128 + 9.
pub(crate) fn shim_died_exit() -> ExitInfo {
    ExitInfo {
        exit_code: 137,
        finished_at: now_rfc3339(),
        oom_killed: false,
        error: SHIM_DIED.into(),
    }
}

/// Every cgroup directory at or below each of `dirs`, deepest first.
// cgroupfs lives in memory, and the reaping that walks it runs on blocking
// threads.
#[allow(clippy::disallowed_methods)]
fn tree(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.push(d);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn pids_in(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Thaws a frozen cgroup (a paused container): a frozen process does not
/// die of SIGKILL until it is thawed.
fn thaw(d: &Path) {
    let v1 = d.join("freezer.state");
    if v1.exists() {
        let _ = std::fs::write(&v1, "THAWED");
    }
    let v2 = d.join("cgroup.freeze");
    if v2.exists() {
        let _ = std::fs::write(&v2, "0");
    }
}

/// Kills every process in the cgroup `cgroups_path` (all hierarchies, and
/// the cgroups below it) until none is left, then removes the directories.
/// Blocking (up to [`KILL_TIMEOUT`]); an error names what stays.
pub(crate) fn reap_cgroup(cgroups_path: &str) -> Result<(), String> {
    // An empty or escaping path would name a hierarchy's root: everything.
    let rel = Path::new(cgroups_path.trim_start_matches('/'));
    if rel.as_os_str().is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!("refusing to reap cgroup {cgroups_path:?}"));
    }
    let tops = crate::system::cgroup_dirs(cgroups_path);
    if tops.is_empty() {
        return Ok(());
    }
    for d in &tops {
        // cgroup v2 (5.14+) kills the whole subtree, frozen or not, at once.
        let k = d.join("cgroup.kill");
        if k.exists() {
            let _ = std::fs::write(&k, "1");
        }
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        let dirs = tree(&tops);
        let pids = pids_in(&dirs);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "processes {pids:?} of cgroup {cgroups_path} survive SIGKILL"
            ));
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for d in &dirs {
            thaw(d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A cgroup whose last process just died can be busy for a moment.
    let mut left = Vec::new();
    for d in tree(&tops) {
        let mut delay = Duration::from_millis(5);
        loop {
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() > deadline => {
                    left.push(format!("{}: {e}", d.display()));
                    break;
                }
                Err(_) => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("removing cgroups: {}", left.join("; ")))
    }
}

impl Engine {
    /// A container's shim is gone: kills whatever of the container still
    /// runs, removes its cgroups and the runtime's state, and returns the
    /// exit to record (the shim's own record if it made one before dying).
    pub(crate) async fn reap_dead_shim(&self, rec: &ContainerRecord) -> ExitInfo {
        let bundle = self.cfg.bundle_dir(&rec.id);
        let recorded = crate::shim::Shim::read_exit_file(&bundle);
        let cgroups = rec.cgroups_path.clone();
        let state = self.cfg.runtime_root().join(&rec.id);
        let id = rec.id.clone();
        let reaped = tokio::task::spawn_blocking(move || {
            let r = reap_cgroup(&cgroups);
            if let Err(e) = remove_runtime_state(&state) {
                tracing::warn!("removing runtime state {}: {e}", state.display())
            }
            r
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = &reaped {
            tracing::error!(%id, "container whose shim died: {e}");
        }
        match recorded {
            Some(info) => info,
            None => {
                tracing::warn!(%id, "the container's shim died; its processes were killed");
                shim_died_exit()
            }
        }
    }

    /// For `rm` of a container whose shim died: whatever the reaping at its
    /// death could not remove goes with the container. Otherwise the shim's
    /// own cleanup does this, off the path `rm` waits on.
    pub(crate) fn reap_leftovers_of(&self, rec: &ContainerRecord) -> crate::Result<()> {
        if rec.state.error != SHIM_DIED {
            return Ok(());
        }
        reap_cgroup(&rec.cgroups_path).map_err(|e| {
            crate::EngineError::internal(format!("removing container {}", rec.id)).with_source(e)
        })?;
        let state = self.cfg.runtime_root().join(&rec.id);
        remove_runtime_state(&state).map_err(|e| crate::EngineError::from_io(&state, e))
    }
}

/// Removes a container's runtime state directory; a missing one is fine.
// Called on blocking threads only (reap_dead_shim, container removal).
#[allow(clippy::disallowed_methods)]
fn remove_runtime_state(state: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_lists_deepest_first() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("c");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("d")).unwrap();
        let v = tree(std::slice::from_ref(&top));
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], top.join("a/b"));
        assert_eq!(v.last(), Some(&top));
    }

    #[test]
    fn a_missing_cgroup_is_nothing_to_reap() {
        assert_eq!(reap_cgroup("/pier-no-such-parent/abc"), Ok(()));
        // Never a hierarchy's root.
        for p in ["", "/", "//", "/pier/..", "pier/../.."] {
            assert!(reap_cgroup(p).is_err(), "{p:?}");
        }
    }
}
