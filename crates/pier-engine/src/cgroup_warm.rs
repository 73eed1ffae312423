//! Taking the cgroup migration's grace period off the start path.
//!
//! Every move of a process into a cgroup (the runtime writes the container's pid
//! to `cgroup.procs`) takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. Unless the host mounts a hierarchy with `favordynmods`, the first
//! writer after a quiet spell waits for an RCU grace period (12-28 ms on the
//! machines we measure), and the semaphore goes back to its quiet state one or
//! two grace periods after the last writer. So while containers are being
//! created, started or exec'd, the daemon keeps the semaphore awake itself: a
//! keeper thread makes a no-op migration (the daemon's pid into the cgroup it
//! already is in) every few milliseconds, for a bounded time after the last
//! such request. The first write pays the grace period on the keeper thread,
//! overlapping the bundle preparation and shim spawn; the runtime's own write a
//! few milliseconds later, and every one in a burst of starts, finds the
//! semaphore ready. Nothing runs when the daemon is idle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Shorter than the shortest grace period, so that the semaphore never gets
/// back to its quiet state between two writes.
const INTERVAL: Duration = Duration::from_millis(4);
/// How long after the last request the keeper goes on: covers a client's
/// create, start, wait and remove, and the next run of a script's loop.
const LINGER: Duration = Duration::from_millis(1500);

/// Whether the keeper thread runs.
static RUNNING: AtomicBool = AtomicBool::new(false);
/// Until when (ms since `epoch()`) the keeper goes on.
static UNTIL_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Keeps the semaphore awake for `LINGER` from now, starting the keeper thread
/// unless it runs. Never fails: without a writable `cgroup.procs` it does
/// nothing.
pub(crate) fn prewarm() {
    let Some(path) = own_procs_file() else {
        return;
    };
    UNTIL_MS.fetch_max(now_ms() + LINGER.as_millis() as u64, Ordering::AcqRel);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || keep_warm(path));
    if spawned.is_err() {
        RUNNING.store(false, Ordering::Release);
    }
}

fn keep_warm(path: &'static PathBuf) {
    let pid = std::process::id().to_string();
    loop {
        if let Err(e) = std::fs::write(path, &pid) {
            tracing::debug!("cgroup warm-up write to {}: {e}", path.display());
            RUNNING.store(false, Ordering::Release);
            return;
        }
        if now_ms() >= UNTIL_MS.load(Ordering::Acquire) {
            RUNNING.store(false, Ordering::Release);
            // A request that came in between the check and the store found the
            // keeper still running and did not start one: take it on.
            if now_ms() < UNTIL_MS.load(Ordering::Acquire) && !RUNNING.swap(true, Ordering::AcqRel)
            {
                continue;
            }
            return;
        }
        std::thread::sleep(INTERVAL);
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
    fn keeper_runs_for_its_linger_then_stops() {
        // Root in CI has a writable cgroup.procs; elsewhere there is nothing to keep.
        if own_procs_file()
            .is_none_or(|p| std::fs::write(p, std::process::id().to_string()).is_err())
        {
            eprintln!("no writable cgroup.procs here: the keeper has nothing to do");
            return;
        }
        let t0 = Instant::now();
        prewarm();
        assert!(RUNNING.load(Ordering::Acquire));
        while RUNNING.load(Ordering::Acquire) && t0.elapsed() < LINGER * 4 {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!RUNNING.load(Ordering::Acquire), "keeper still running");
        assert!(
            t0.elapsed() >= LINGER,
            "keeper stopped early: {:?}",
            t0.elapsed()
        );
    }

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
