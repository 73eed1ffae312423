//! Create-time checks of a container's host config, with Docker's messages
//! (moby `validateHostConfig` and `verifyPlatformContainerResources`): nonsense
//! is refused with 400 before anything is made, instead of failing at start,
//! being ignored, or overflowing somewhere below.

use pier_api::models::{HostConfig, RestartPolicyNameEnum as P};
use pier_runtime::spec::{Ulimit, ALL_CAPS};

use crate::{EngineError, Result};

/// Below this, a container cannot even start (moby's `linuxMinMemory`).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

/// All checks of a new container's host config; `ncpu` is the host's CPU count.
pub(crate) fn host_config(h: &HostConfig, ncpu: usize) -> Result<()> {
    restart_policy(h)?;
    capabilities(h)?;
    resources(h, ncpu)?;
    crate::resources::host_checks(h)?;
    crate::resources::throttle(&h.blkio_device_read_bps)?;
    crate::resources::throttle(&h.blkio_device_write_bps)?;
    crate::resources::throttle(&h.blkio_device_read_iops)?;
    crate::resources::throttle(&h.blkio_device_write_iops)?;
    crate::resources::weight_devices(h)?;
    if h.shm_size.is_some_and(|s| s < 0) {
        return Err(bad("SHM size can not be less than 0"));
    }
    if let Some(adj) = h.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
        return Err(bad(format!(
            "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
        )));
    }
    for u in h.ulimits.iter().flatten() {
        ulimit(u)?;
    }
    security_opts(h.security_opt.as_deref().unwrap_or_default())?;
    Ok(())
}

/// Docker's restart policy rules; also run on `update`.
pub(crate) fn restart_policy(h: &HostConfig) -> Result<()> {
    let Some(p) = &h.restart_policy else {
        return Ok(());
    };
    let count = p.maximum_retry_count.unwrap_or(0);
    let restarts = !matches!(p.name, None | Some(P::NO) | Some(P::EMPTY));
    if restarts && h.auto_remove.unwrap_or(false) {
        return Err(bad(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    match p.name {
        // An empty name with any count: kept for clients older than Docker 25.
        None | Some(P::EMPTY) => Ok(()),
        Some(P::ON_FAILURE) if count < 0 => Err(bad(
            "invalid restart policy: maximum retry count cannot be negative",
        )),
        Some(P::ON_FAILURE) => Ok(()),
        Some(_) if count != 0 => {
            let mut msg =
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_string();
            if count < 0 {
                msg.push_str(" and cannot be negative");
            }
            Err(bad(msg))
        }
        Some(_) => Ok(()),
    }
}

fn capabilities(h: &HostConfig) -> Result<()> {
    for (field, list) in [("CapAdd", &h.cap_add), ("CapDrop", &h.cap_drop)] {
        for c in list.iter().flatten() {
            let up = c.to_ascii_uppercase();
            if up == "ALL" {
                continue;
            }
            let full = if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            };
            if !ALL_CAPS.contains(&full.as_str()) {
                return Err(bad(format!(
                    "invalid {field}: unknown capability: \"{full}\""
                )));
            }
        }
    }
    Ok(())
}

/// The resource checks, also run on `update` against the merged config.
pub(crate) fn resources(h: &HostConfig, ncpu: usize) -> Result<()> {
    let memory = h.memory.unwrap_or(0);
    let swap = h.memory_swap.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(bad("Minimum memory limit allowed is 6MB"));
    }
    if swap < -1 {
        return Err(bad(format!(
            "invalid memory swap limit {swap}: use a size, or -1 for unlimited swap"
        )));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if memory == 0 && swap > 0 {
        return Err(bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if let Some(s) = h.memory_swappiness.filter(|s| *s != -1)
        && !(0..=100).contains(&s)
    {
        return Err(bad(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    let reservation = h.memory_reservation.unwrap_or(0);
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(bad("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let nano = h.nano_cpus.unwrap_or(0);
    let period = h.cpu_period.unwrap_or(0);
    let quota = h.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano != 0 && (nano < 0 || nano > ncpu as i64 * 1_000_000_000) {
        return Err(bad(format!(
            "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if let Some(s) = h.cpu_shares.filter(|s| *s < 0) {
        return Err(bad(format!(
            "invalid CPU shares ({s}): value must be a positive integer"
        )));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if let Some(w) = h.blkio_weight.filter(|w| *w > 0)
        && !(10..=1000).contains(&w)
    {
        return Err(bad("Range of blkio weight is from 10 to 1000"));
    }
    Ok(())
}

/// The same parse the spec builder does at start, so a bad ulimit fails here.
pub(crate) fn ulimit(u: &pier_api::models::ResourcesUlimits) -> Result<Ulimit> {
    let name = u.name.clone().unwrap_or_default();
    let soft = u.soft.unwrap_or(0);
    let hard = u.hard.unwrap_or(soft);
    Ulimit::parse(&format!("{name}={soft}:{hard}")).map_err(|e| bad(e.to_string()))
}

/// What `SecurityOpt` asks for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Security {
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
}

#[derive(Debug, Default, PartialEq)]
pub(crate) enum Seccomp {
    #[default]
    Default,
    Unconfined,
    /// A profile in Docker's JSON format.
    Profile(String),
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Parses `SecurityOpt` as moby's `parseSecurityOpt` does. AppArmor profiles
/// and SELinux labels are refused: Pier applies neither, and accepting them
/// would promise a confinement that is not there.
pub(crate) fn security_opts(opts: &[String]) -> Result<Security> {
    let mut s = Security::default();
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                s.no_new_privileges = true;
                continue;
            }
            "disable" => continue,
            _ => {}
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((k, v)) = split else {
            return Err(bad(format!("invalid --security-opt 1: {opt:?}")));
        };
        match k {
            "label" if v == "disable" => {}
            "label" => {
                let why = if selinux_enabled() {
                    "Pier does not apply SELinux labels"
                } else {
                    "SELinux is not enabled on this host"
                };
                return Err(bad(format!(
                    "invalid --security-opt {opt:?}: {why}; only label=disable is accepted"
                )));
            }
            "apparmor" if v == "unconfined" => {}
            "apparmor" => {
                let why = if apparmor_enabled() {
                    "Pier does not apply AppArmor profiles"
                } else {
                    "AppArmor is not enabled on this host"
                };
                return Err(bad(format!(
                    "invalid --security-opt {opt:?}: {why}; only apparmor=unconfined is accepted"
                )));
            }
            "seccomp" => {
                s.seccomp = match v {
                    "unconfined" => Seccomp::Unconfined,
                    "" | "builtin" => Seccomp::Default,
                    json => {
                        pier_runtime::spec::check_seccomp_profile(json)
                            .map_err(|e| bad(e.to_string()))?;
                        Seccomp::Profile(json.to_string())
                    }
                }
            }
            "no-new-privileges" => {
                s.no_new_privileges = parse_bool(v)
                    .ok_or_else(|| bad(format!("invalid --security-opt 2: {opt:?}")))?;
            }
            _ => return Err(bad(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(s)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
