//! The cgroup resources of a container beyond memory/cpu/pids: cpusets,
//! memory soft limit and swappiness, the OOM killer switch and block I/O.
//! Docker warns and drops what the host cannot apply; Pier refuses it
//! instead, so an accepted option is always an applied one.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use pier_api::models::HostConfig;
use pier_runtime::spec::{ThrottleDevice, WeightDevice};

use crate::{EngineError, Result};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

const ROOT: &str = "/sys/fs/cgroup";

fn v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn v2_controller(name: &str) -> bool {
    std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers"))
        .is_ok_and(|s| s.split_whitespace().any(|c| c == name))
}

/// A v1 controller file at the top of its hierarchy.
fn v1_file(controller: &str, file: &str) -> bool {
    Path::new(ROOT).join(controller).join(file).exists()
}

fn unsupported(what: &str) -> EngineError {
    bad(format!(
        "Your kernel does not support {what} or the cgroup is not mounted; \
         Pier refuses the option rather than drop it"
    ))
}

/// Docker's `parsers.ParseUintList`: "0-2,4".
fn parse_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn check_cpuset(value: &str, what: &str, file: &str) -> Result<()> {
    let Some(asked) = parse_list(value) else {
        return Err(bad(format!("Invalid value {value} for cpuset {what}")));
    };
    if v2() && !v2_controller("cpuset") || !v2() && !v1_file("cpuset", file) {
        return Err(unsupported("cpuset"));
    }
    let effective = if v2() {
        format!("cpuset.{what}.effective")
    } else {
        format!("cpuset.effective_{what}")
    };
    let avail = std::fs::read_to_string(
        Path::new(ROOT)
            .join(if v2() { "" } else { "cpuset" })
            .join(&effective),
    )
    .or_else(|_| std::fs::read_to_string(Path::new(ROOT).join("cpuset").join(file)))
    .unwrap_or_default();
    let avail = avail.trim();
    if let Some(have) = parse_list(avail)
        && asked.iter().any(|c| !have.contains(c))
    {
        let kind = if what == "cpus" {
            "CPUs"
        } else {
            "memory nodes"
        };
        return Err(bad(format!(
            "Requested {kind} are not available - requested {value}, available: {avail}"
        )));
    }
    Ok(())
}

/// Refuses what this host's cgroups cannot apply (create and update).
pub(crate) fn host_checks(h: &HostConfig) -> Result<()> {
    let v2 = v2();
    // A real-time budget needs one given to every cgroup above the
    // container (dockerd's --cpu-rt-runtime), which Pier does not manage.
    for (name, v) in [
        ("CpuRealtimePeriod", h.cpu_realtime_period),
        ("CpuRealtimeRuntime", h.cpu_realtime_runtime),
    ] {
        if v.is_some_and(|v| v != 0) {
            return Err(bad(format!(
                "not supported by Pier: {name} (real-time CPU scheduling)"
            )));
        }
    }
    if let Some(c) = h.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        check_cpuset(c, "cpus", "cpuset.cpus")?;
    }
    if let Some(m) = h.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        check_cpuset(m, "mems", "cpuset.mems")?;
    }
    if h.memory_reservation.is_some_and(|r| r > 0)
        && !(v2 && v2_controller("memory") || v1_file("memory", "memory.soft_limit_in_bytes"))
    {
        return Err(unsupported("memory soft limit capabilities"));
    }
    // -1 (unlimited swap) is what a host without swap accounting gives anyway.
    if h.memory_swap.is_some_and(|s| s > 0) && !pier_runtime::spec::host_supports_swap_limit() {
        return Err(unsupported("swap limit capabilities"));
    }
    if h.memory_swappiness.is_some_and(|s| s != -1)
        && (v2 || !v1_file("memory", "memory.swappiness"))
    {
        return Err(unsupported("memory swappiness capabilities"));
    }
    if h.oom_kill_disable == Some(true) && (v2 || !v1_file("memory", "memory.oom_control")) {
        return Err(unsupported("OomKillDisable"));
    }
    let weight_ok = if v2 {
        v2_controller("io")
    } else {
        v1_file("blkio", "blkio.weight") || v1_file("blkio", "blkio.bfq.weight")
    };
    if h.blkio_weight.is_some_and(|w| w > 0) && !weight_ok {
        return Err(unsupported("Block I/O weight"));
    }
    if h.blkio_weight_device
        .as_ref()
        .is_some_and(|d| !d.is_empty())
        && !(if v2 {
            weight_ok
        } else {
            v1_file("blkio", "blkio.weight_device")
        })
    {
        return Err(unsupported("Block I/O weight_device"));
    }
    for (list, file, what) in [
        (
            &h.blkio_device_read_bps,
            "blkio.throttle.read_bps_device",
            "BPS Block I/O read limit",
        ),
        (
            &h.blkio_device_write_bps,
            "blkio.throttle.write_bps_device",
            "BPS Block I/O write limit",
        ),
        (
            &h.blkio_device_read_iops,
            "blkio.throttle.read_iops_device",
            "IOPS Block I/O read limit",
        ),
        (
            &h.blkio_device_write_iops,
            "blkio.throttle.write_iops_device",
            "IOPS Block I/O write limit",
        ),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty())
            && !(if v2 {
                v2_controller("io")
            } else {
                v1_file("blkio", file)
            })
        {
            return Err(unsupported(what));
        }
    }
    Ok(())
}

/// `major:minor` of block device `path`, as moby's `getBlkioThrottleDevices`.
fn block_device(path: &str) -> Result<(u64, u64)> {
    let md = std::fs::metadata(path).map_err(|e| bad(format!("stat {path}: {e}")))?;
    if !md.file_type().is_block_device() {
        return Err(bad(format!("{path} is not a block device")));
    }
    let dev = md.rdev();
    Ok((nix::sys::stat::major(dev), nix::sys::stat::minor(dev)))
}

/// The host config's throttle list `list` with devices resolved.
pub(crate) fn throttle(
    list: &Option<Vec<pier_api::models::ThrottleDevice>>,
) -> Result<Vec<ThrottleDevice>> {
    let mut out = Vec::new();
    for d in list.iter().flatten() {
        let path = d.path.as_deref().unwrap_or_default();
        let (major, minor) = block_device(path)?;
        let rate = d.rate.unwrap_or(0);
        if rate < 0 {
            return Err(bad(format!("invalid rate {rate} for device {path}")));
        }
        out.push(ThrottleDevice {
            major,
            minor,
            rate: rate as u64,
        });
    }
    Ok(out)
}

pub(crate) fn weight_devices(h: &HostConfig) -> Result<Vec<WeightDevice>> {
    let mut out = Vec::new();
    for d in h.blkio_weight_device.iter().flatten() {
        let path = d.path.as_deref().unwrap_or_default();
        let (major, minor) = block_device(path)?;
        let weight = d.weight.unwrap_or(0);
        if !(10..=1000).contains(&weight) {
            return Err(bad(format!(
                "invalid weight for device: {path}: weight {weight} must be in 10-1000"
            )));
        }
        out.push(WeightDevice {
            major,
            minor,
            weight: weight as u16,
        });
    }
    Ok(out)
}

fn write(p: PathBuf, value: &str) -> Result<()> {
    std::fs::write(&p, value).map_err(|e| EngineError::from_io(&p, e))
}

/// What libcontainer 0.7 leaves out on cgroup v1, written between create
/// and start: it always writes `memory.oom_control` 0 and never writes
/// `blkio.weight_device`.
pub(crate) fn apply_after_create(h: &HostConfig, cgroups_path: &str) -> Result<()> {
    if v2() {
        return Ok(());
    }
    let rel = cgroups_path.trim_start_matches('/');
    if h.oom_kill_disable == Some(true) {
        write(
            Path::new(ROOT)
                .join("memory")
                .join(rel)
                .join("memory.oom_control"),
            "1",
        )?;
    }
    for d in weight_devices(h)? {
        write(
            Path::new(ROOT)
                .join("blkio")
                .join(rel)
                .join("blkio.weight_device"),
            &format!("{}:{} {}", d.major, d.minor, d.weight),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_list("1"), Some(vec![1]));
        assert_eq!(parse_list("2-1"), None);
        assert_eq!(parse_list("a"), None);
        assert_eq!(parse_list(""), None);
    }
}
