//! `/version`, `/info`, `/system/df`, `stats`, and cgroup reading.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::records::{ContainerRecord, ImageRecord};
use crate::{Engine, Result};

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
    /// `GET /version`.
    pub fn version(&self) -> Value {
        let v = pier_api::ENGINE_VERSION;
        json!({
            "Platform": {"Name": "Pier Engine"},
            "Components": [{
                "Name": "Engine",
                "Version": v,
                "Details": {
                    "ApiVersion": pier_api::API_VERSION,
                    "MinAPIVersion": pier_api::MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": crate::image::host_arch(),
                    "KernelVersion": kernel_version(),
                    "Experimental": "false",
                }
            }],
            "Version": v,
            "ApiVersion": pier_api::API_VERSION,
            "MinAPIVersion": pier_api::MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": crate::image::host_arch(),
            "KernelVersion": kernel_version(),
            "BuildTime": "",
        })
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<Value> {
        let recs: Vec<ContainerRecord> = self.meta.containers()?;
        let running = recs.iter().filter(|r| r.state.status == "running").count();
        let paused = recs.iter().filter(|r| r.state.status == "paused").count();
        let images = self.meta.images::<ImageRecord>()?.len();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(json!({
            "ID": "pier",
            "Containers": recs.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": recs.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": pier_runtime::spec::host_supports_swap_limit(),
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": crate::util::now_rfc3339(),
            "LoggingDriver": self.cfg.log_defaults.driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": "Pier on Linux",
            "OSType": "linux",
            "OSVersion": "",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
            "DockerRootDir": self.cfg.data_root.display().to_string(),
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": pier_api::ENGINE_VERSION,
            "Runtimes": {"pier": {"path": self.cfg.shim_binary.display().to_string()}},
            "DefaultRuntime": "pier",
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
        }))
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<Value> {
        let images = self.list_images(true, &Default::default())?;
        let containers = self.list_containers(&crate::ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        let layers_size: i64 = images.iter().map(|i| i.size).sum();
        Ok(json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": [],
            "BuildCache": [],
        }))
    }

    /// Seconds since the engine started (for /info and debugging).
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
