//! `docker update`: new limits and restart policy for a container, applied
//! to its cgroups at once when it runs.

use std::path::Path;

use pier_api::models::{ContainerUpdateBody, RestartPolicy};

use crate::system::cgroup_dirs;
use crate::{Engine, EngineError, Result};

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    if !p.exists() {
        return Ok(());
    }
    std::fs::write(&p, value).map_err(|e| EngineError::from_io(&p, e))
}

impl Engine {
    /// `POST /containers/{id}/update`; returns Docker's warnings list.
    pub fn update_container(&self, key: &str, u: ContainerUpdateBody) -> Result<Vec<String>> {
        refuse_not_live(&u)?;
        let mut rec = self.find_container(key)?;
        let h = &mut rec.host_config;
        if let Some(c) = u.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
            h.cpuset_cpus = Some(c);
        }
        if let Some(m) = u.cpuset_mems.clone().filter(|m| !m.is_empty()) {
            h.cpuset_mems = Some(m);
        }
        if let Some(r) = u.memory_reservation.filter(|r| *r != 0) {
            h.memory_reservation = Some(r);
        }
        if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
            h.blkio_weight = Some(w);
        }
        if let Some(m) = u.memory.filter(|m| *m != 0) {
            h.memory = Some(m);
        }
        if let Some(s) = u.memory_swap.filter(|s| *s != 0) {
            h.memory_swap = Some(s);
        }
        if let Some(n) = u.nano_cpus.filter(|n| *n != 0) {
            h.nano_cpus = Some(n);
        }
        if let Some(s) = u.cpu_shares.filter(|s| *s != 0) {
            h.cpu_shares = Some(s);
        }
        if let Some(q) = u.cpu_quota.filter(|q| *q != 0) {
            h.cpu_quota = Some(q);
        }
        if let Some(p) = u.cpu_period.filter(|p| *p != 0) {
            h.cpu_period = Some(p);
        }
        if let Some(p) = u.pids_limit.filter(|p| *p != 0) {
            h.pids_limit = Some(p);
        }
        if let Some(p) = u.restart_policy.clone()
            && p.name.is_some()
        {
            if h.auto_remove.unwrap_or(false)
                && !matches!(
                    p.name,
                    Some(pier_api::models::RestartPolicyNameEnum::NO)
                        | Some(pier_api::models::RestartPolicyNameEnum::EMPTY)
                )
            {
                return Err(EngineError::invalid_argument(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container",
                    ));
            }
            h.restart_policy = Some(RestartPolicy {
                name: p.name,
                maximum_retry_count: p.maximum_retry_count,
            });
        }
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        crate::validate::resources(&rec.host_config, ncpu)?;
        crate::validate::restart_policy(&rec.host_config)?;
        crate::resources::host_checks(&rec.host_config)?;
        let h = rec.host_config.clone();
        if rec.state.running() {
            for dir in cgroup_dirs(&rec.cgroups_path) {
                let v2 = dir.join("cgroup.controllers").exists();
                live_extras(&dir, v2, &u)?;
                if let Some(m) = h.memory.filter(|m| *m > 0) {
                    if v2 {
                        write(&dir, "memory.max", &m.to_string())?;
                        // v2 counts swap apart from memory.
                        match h.memory_swap {
                            Some(-1) => write(&dir, "memory.swap.max", "max")?,
                            Some(s) if s >= m => {
                                write(&dir, "memory.swap.max", &(s - m).to_string())?
                            }
                            _ => {}
                        }
                    } else if dir.to_string_lossy().contains("/memory/") {
                        // memsw must stay >= the memory limit: raise it first.
                        let swap = h
                            .memory_swap
                            .filter(|s| *s > 0)
                            .unwrap_or(m.saturating_mul(2));
                        let _ = write(
                            &dir,
                            "memory.memsw.limit_in_bytes",
                            &swap.max(m).to_string(),
                        );
                        write(&dir, "memory.limit_in_bytes", &m.to_string())?;
                        let _ = write(
                            &dir,
                            "memory.memsw.limit_in_bytes",
                            &swap.max(m).to_string(),
                        );
                    }
                }
                if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
                    write(&dir, "pids.max", &p.to_string())?;
                }
                let (quota, period) = match (h.nano_cpus.filter(|n| *n > 0), h.cpu_quota) {
                    // n * 100_000 / 1e9 without overflowing on a client's huge value.
                    (Some(n), _) => (Some(n / 10_000), 100_000),
                    (None, Some(q)) if q > 0 => {
                        (Some(q), h.cpu_period.filter(|p| *p > 0).unwrap_or(100_000))
                    }
                    _ => (None, 100_000),
                };
                if let Some(q) = quota {
                    if v2 {
                        write(&dir, "cpu.max", &format!("{q} {period}"))?;
                    } else {
                        write(&dir, "cpu.cfs_period_us", &period.to_string())?;
                        write(&dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
                if let Some(s) = h.cpu_shares.filter(|s| *s > 0) {
                    if v2 {
                        // The conversion runc and crun use.
                        let w = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
                        write(&dir, "cpu.weight", &w.to_string())?;
                    } else {
                        write(&dir, "cpu.shares", &s.to_string())?;
                    }
                }
            }
        }
        self.save_container(&rec)?;
        self.container_event("update", &rec, &[]);
        Ok(Vec::new())
    }
}

/// Fields Docker's update takes but cannot change on a live container
/// (Docker drops them without a word): refused so none is silently lost.
fn refuse_not_live(u: &ContainerUpdateBody) -> Result<()> {
    let lists = [
        (
            "BlkioWeightDevice",
            u.blkio_weight_device
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "BlkioDeviceReadBps",
            u.blkio_device_read_bps
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "BlkioDeviceWriteBps",
            u.blkio_device_write_bps
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "BlkioDeviceReadIOps",
            u.blkio_device_read_iops
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "BlkioDeviceWriteIOps",
            u.blkio_device_write_iops
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "MemorySwappiness",
            u.memory_swappiness.is_some_and(|s| s != -1),
        ),
        ("OomKillDisable", u.oom_kill_disable == Some(true)),
        ("Devices", u.devices.as_ref().is_some_and(|l| !l.is_empty())),
        (
            "DeviceCgroupRules",
            u.device_cgroup_rules
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "DeviceRequests",
            u.device_requests.as_ref().is_some_and(|l| !l.is_empty()),
        ),
        (
            "CpuRealtimePeriod",
            u.cpu_realtime_period.is_some_and(|v| v != 0),
        ),
        (
            "CpuRealtimeRuntime",
            u.cpu_realtime_runtime.is_some_and(|v| v != 0),
        ),
    ];
    match lists.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(EngineError::invalid_argument(format!(
            "not supported by Pier: updating {name} of a container"
        ))),
        None => Ok(()),
    }
}

/// The cpuset, memory soft limit and blkio weight of a running container.
fn live_extras(dir: &Path, v2: bool, u: &ContainerUpdateBody) -> Result<()> {
    let name = dir.to_string_lossy();
    if let Some(c) = u.cpuset_cpus.as_deref().filter(|c| !c.is_empty())
        && (v2 || name.contains("/cpuset/"))
    {
        write(dir, "cpuset.cpus", c)?;
    }
    if let Some(m) = u.cpuset_mems.as_deref().filter(|m| !m.is_empty())
        && (v2 || name.contains("/cpuset/"))
    {
        write(dir, "cpuset.mems", m)?;
    }
    if let Some(r) = u.memory_reservation.filter(|r| *r > 0) {
        let file = if v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        write(dir, file, &r.to_string())?;
    }
    if let Some(w) = u.blkio_weight.filter(|w| *w > 0) {
        for file in if v2 {
            ["io.weight", "io.bfq.weight"]
        } else {
            ["blkio.weight", "blkio.bfq.weight"]
        } {
            if dir.join(file).exists() {
                return write(dir, file, &w.to_string());
            }
        }
    }
    Ok(())
}
