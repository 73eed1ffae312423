//! Taking the cgroup migration's grace period off the start path.
//!
//! Every move of a process into a cgroup (the runtime writes the container's pid
//! to `cgroup.procs`) takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. Unless the host mounts a hierarchy with `favordynmods`, the first
//! writer after a quiet spell waits for an RCU grace period (12-28 ms on the
//! machines we measure), and the semaphore stays in its writer-friendly state
//! for one more grace period after the last writer. So when a container start
//! or exec begins, the daemon makes a no-op migration of its own (its pid into
//! the cgroup it already is in) on a blocking thread: the grace period then
//! passes while the bundle is prepared and the shim spawned, and the runtime's
//! own write a few milliseconds later finds the semaphore ready.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// One warm-up at a time: a second one would only queue behind the first.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Starts a warm-up in the background unless one is running. Never fails:
/// without a writable `cgroup.procs` it does nothing.
pub(crate) fn prewarm() {
    let Some(path) = own_procs_file() else {
        return;
    };
    if BUSY.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || {
            if let Err(e) = std::fs::write(path, std::process::id().to_string()) {
                tracing::debug!("cgroup warm-up write to {}: {e}", path.display());
            }
            BUSY.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        BUSY.store(false, Ordering::Release);
    }
}

/// `cgroup.procs` of the cgroup this process is in, in the first hierarchy
/// where it can be found (any will do: the semaphore is global).
fn own_procs_file() -> Option<&'static PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        candidates(&own).into_iter().find(|p| p.exists())
    })
    .as_ref()
}

/// Where `cgroup.procs` may be for each line of /proc/self/cgroup: v1
/// hierarchies under /sys/fs/cgroup/<controller>, the v2 one at the top or
/// (hybrid hosts) under `unified`.
fn candidates(proc_cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                out.push(PathBuf::from(base).join(rel).join("cgroup.procs"));
            }
        } else {
            for c in ctrls.split(',').filter(|c| !c.starts_with("name=")) {
                out.push(
                    PathBuf::from("/sys/fs/cgroup")
                        .join(c)
                        .join(rel)
                        .join("cgroup.procs"),
                );
            }
        }
    }
    // v1 first: on hybrid hosts the unified hierarchy may hold no controllers
    // the runtime touches, but the semaphore is shared, so any is as good.
    out.sort_by_key(|p| p.starts_with("/sys/fs/cgroup/unified"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_v1_v2_and_hybrid() {
        let c = candidates("12:pids:/user.slice\n3:cpu,cpuacct:/x\n1:name=systemd:/s\n0::/y\n");
        let s: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            s,
            [
                "/sys/fs/cgroup/pids/user.slice/cgroup.procs",
                "/sys/fs/cgroup/cpu/x/cgroup.procs",
                "/sys/fs/cgroup/cpuacct/x/cgroup.procs",
                "/sys/fs/cgroup/y/cgroup.procs",
                "/sys/fs/cgroup/unified/y/cgroup.procs",
            ]
        );
        let c = candidates("0::/\n");
        assert_eq!(c[0], PathBuf::from("/sys/fs/cgroup/cgroup.procs"));
    }
}
