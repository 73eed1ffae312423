//! The cgroup flags of `create`/`run` beyond memory, cpus and pids: cpusets,
//! CFS period/quota, swappiness, block I/O weights and throttles.

use super::opts;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use pier_api::models::{HostConfig, ResourcesBlkioWeightDevice, ThrottleDevice};

#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Kernel memory limit (refused: deprecated by the kernel)
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
}

/// `--kernel-memory`: Docker 28 takes the flag but the daemon ignores it;
/// Pier says so instead.
pub fn refuse_kernel_memory(v: &Option<String>) -> Result<()> {
    if v.is_some() {
        bail!(
            "not supported by Pier: --kernel-memory (kernel memory limits are deprecated \
             by the Linux kernel and not available on cgroup v2)"
        );
    }
    Ok(())
}

fn split_device(val: &str) -> Result<(&str, &str)> {
    let (path, rate) = val
        .split_once(':')
        .filter(|(_, r)| !r.contains(':'))
        .ok_or_else(|| anyhow!("bad format: {val}"))?;
    if !path.starts_with("/dev/") {
        bail!("bad format for device path: {val}");
    }
    Ok((path, rate))
}

/// Docker's `validateThrottleBpsDevice`: `/dev/sda:1mb`.
fn bps_device(val: &str) -> Result<ThrottleDevice> {
    let (path, rate) = split_device(val)?;
    let rate = opts::ram_in_bytes(rate)
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            anyhow!(
            "invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. \
             Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
        )
        })?;
    Ok(ThrottleDevice {
        path: Some(path.into()),
        rate: Some(rate),
    })
}

/// Docker's `validateThrottleIOpsDevice`: `/dev/sda:1000`.
fn iops_device(val: &str) -> Result<ThrottleDevice> {
    let (path, rate) = split_device(val)?;
    let rate: u32 = rate.parse().map_err(|_| {
        anyhow!(
            "invalid rate for device: {val}. The correct format is <device-path>:<number>. \
             Number must be a positive integer"
        )
    })?;
    Ok(ThrottleDevice {
        path: Some(path.into()),
        rate: Some(rate.into()),
    })
}

/// Docker's `validateWeightDevice`: `/dev/sda:200`.
fn weight_device(val: &str) -> Result<ResourcesBlkioWeightDevice> {
    let (path, w) = split_device(val)?;
    let weight: usize = w
        .parse()
        .ok()
        .filter(|w| *w == 0 || (10..=1000).contains(w))
        .ok_or_else(|| anyhow!("invalid weight for device: {val}"))?;
    Ok(ResourcesBlkioWeightDevice {
        path: Some(path.into()),
        weight: Some(weight),
    })
}

fn list<T>(vals: &[String], f: fn(&str) -> Result<T>) -> Result<Option<Vec<T>>> {
    let v = vals.iter().map(|s| f(s)).collect::<Result<Vec<_>>>()?;
    Ok((!v.is_empty()).then_some(v))
}

impl ResourceArgs {
    /// Fills the host config's fields for these flags.
    pub fn apply(&self, h: &mut HostConfig) -> Result<()> {
        refuse_kernel_memory(&self.kernel_memory)?;
        h.cpuset_mems = self.cpuset_mems.clone();
        h.cpu_period = self.cpu_period;
        h.cpu_quota = self.cpu_quota;
        h.memory_swappiness = self.memory_swappiness;
        h.blkio_weight = self.blkio_weight;
        h.blkio_weight_device = list(&self.blkio_weight_device, weight_device)?;
        h.blkio_device_read_bps = list(&self.device_read_bps, bps_device)?;
        h.blkio_device_write_bps = list(&self.device_write_bps, bps_device)?;
        h.blkio_device_read_iops = list(&self.device_read_iops, iops_device)?;
        h.blkio_device_write_iops = list(&self.device_write_iops, iops_device)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_values() {
        let d = bps_device("/dev/vda:1mb").unwrap();
        assert_eq!(d.rate, Some(1 << 20));
        assert_eq!(iops_device("/dev/vda:100").unwrap().rate, Some(100));
        assert_eq!(weight_device("/dev/vda:200").unwrap().weight, Some(200));
        assert!(bps_device("vda:1mb").is_err());
        assert!(iops_device("/dev/vda:1mb").is_err());
        assert!(weight_device("/dev/vda:5").is_err());
        assert!(bps_device("/dev/vda").is_err());
    }
}
