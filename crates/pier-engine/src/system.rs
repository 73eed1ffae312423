//! `/version`, `/info`, `/system/df`, `stats`, and cgroup reading.

use std::path::PathBuf;

use crate::records::{ContainerRecord, ImageRecord};
use crate::views::{DiskUsage, SystemReport, VersionReport};
use crate::{ContainerStatus, Engine, Result};

/// Every directory of `cgroups_path` across the mounted hierarchies (v1) or
/// the unified one (v2).
// Lists the v1 hierarchies: a dozen entries of cgroupfs, which lives in
// memory, so it costs no disk wait.
#[allow(clippy::disallowed_methods)]
pub(crate) fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    let base = PathBuf::from("/sys/fs/cgroup");
    let mut out = Vec::new();
    if base.join("cgroup.controllers").exists() {
        out.push(base.join(rel));
        return out;
    }
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

/// PIDs in the container's cgroup.
pub(crate) fn cgroup_pids(cgroups_path: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for d in cgroup_dirs(cgroups_path) {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            if !pids.is_empty() {
                break;
            }
        }
    }
    pids
}

/// Whether the process is still the runtime's init (forked from the shim),
/// not yet the container's command.
fn in_runtime_init(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| {
        e.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pier-shim"))
    })
}

/// The container's processes once none of them is still the runtime's init:
/// a start returns as the init is told to exec the command, a moment before
/// it has, and `top` right after `start` must show the command. Waits up to
/// 500 ms for that exec.
pub(crate) fn settled_cgroup_pids(cgroups_path: &str) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        let pids = cgroup_pids(cgroups_path);
        let in_init = pids.iter().any(|p| in_runtime_init(*p));
        if !in_init || std::time::Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

impl Engine {
    /// `GET /version`: the host's part of it.
    pub fn version(&self) -> VersionReport {
        VersionReport {
            arch: crate::image::host_arch().to_string(),
            kernel_version: kernel_version(),
        }
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<SystemReport> {
        let recs: Vec<ContainerRecord> = self.meta.containers()?;
        let count = |s: ContainerStatus| recs.iter().filter(|r| r.state.status == s).count();
        let running = count(ContainerStatus::Running);
        let paused = count(ContainerStatus::Paused);
        let images = self.meta.images::<ImageRecord>()?.len();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(SystemReport {
            containers: recs.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: recs.len() - running - paused,
            images,
            swap_limit: pier_runtime::spec::host_supports_swap_limit(),
            system_time: crate::util::now_rfc3339(),
            logging_driver: self.cfg.log_defaults.driver.clone(),
            cgroup_version: cgroup_version(),
            kernel_version: kernel_version(),
            architecture: std::env::consts::ARCH.to_string(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            data_root: self.cfg.data_root.display().to_string(),
            hostname,
            runtime_path: self.cfg.shim_binary.display().to_string(),
            registry_mirrors: crate::registry::mirrors(),
        })
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.list_images(true, &Default::default())?;
        let containers = self.list_containers(&crate::ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        Ok(DiskUsage {
            layers_size: images.iter().map(|i| i.size).sum(),
            images,
            containers,
            volumes: self.volumes().with_usage()?,
            build_cache: self.build_cache_usage()?,
        })
    }

    /// Seconds since the engine started (for /info and debugging).
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
