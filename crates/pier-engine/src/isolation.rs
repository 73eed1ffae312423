//! What a container shares with the host or with other containers: its pid,
//! IPC, UTS and cgroup namespaces, its cgroup parent, and the options Pier
//! has no machinery for (runtimes, user namespace remapping, storage
//! quotas, GPUs), which are refused at create rather than accepted and ignored.

use std::path::{Component, Path, PathBuf};

use pier_api::models::{ContainerConfig, HostConfig, HostConfigCgroupnsModeEnum as Cgroupns};
use pier_runtime::spec::{Namespace, Shm};

use crate::records::ContainerRecord;
use crate::{Engine, EngineError, Result};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

/// Runtime names Docker's clients may send for the only runtime there is:
/// Docker's default name and its containerd shim name.
const RUNTIMES: &[&str] = &["runc", "io.containerd.runc.v2"];

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `container:<name>` of a `--pid` or `--ipc` mode.
fn container_of(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// Docker's validity rules for the namespace modes, and Pier's refusals.
pub(crate) fn check(h: &HostConfig, c: &ContainerConfig, cdi_dirs: &[PathBuf]) -> Result<()> {
    let pid = h.pid_mode.as_deref().unwrap_or("");
    if !(pid.is_empty() || pid == "host" || container_of(pid).is_some_and(|n| !n.is_empty())) {
        return Err(bad(format!("invalid PID mode: {pid}")));
    }
    let ipc = h.ipc_mode.as_deref().unwrap_or("");
    let ipc_ok = matches!(ipc, "" | "none" | "private" | "shareable" | "host")
        || container_of(ipc).is_some_and(|n| !n.is_empty());
    if !ipc_ok {
        return Err(bad(format!("invalid IPC mode: {ipc}")));
    }
    let uts = h.uts_mode.as_deref().unwrap_or("");
    if !matches!(uts, "" | "host") {
        return Err(bad(format!("invalid UTS mode: {uts}")));
    }
    if uts == "host" && c.hostname.as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(bad("conflicting options: hostname and the UTS mode"));
    }
    if uts == "host" && c.domainname.as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(bad("conflicting options: domainname and the UTS mode"));
    }
    match h.userns_mode.as_deref().unwrap_or("") {
        "" | "host" => {}
        m => {
            return Err(bad(format!(
                "not supported by Pier: --userns={m} (user namespace remapping)"
            )))
        }
    }
    if h.storage_opt.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(bad(
            "not supported by Pier: --storage-opt (per-container storage quotas)",
        ));
    }
    if let Some(r) = h.runtime.as_deref().filter(|r| !r.is_empty())
        && !RUNTIMES.contains(&r)
    {
        return Err(bad(format!("unknown or invalid runtime name: {r}")));
    }
    if let Some(p) = h.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        let rel = Path::new(p.trim_start_matches('/'));
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(bad(format!("invalid cgroup parent {p:?}")));
        }
    }
    if h.annotations.iter().flatten().any(|(k, _)| k.is_empty()) {
        return Err(bad(
            "invalid Annotations: the empty string is not permitted as an annotation key",
        ));
    }
    crate::devices::resolve(h, cdi_dirs)?;
    Ok(())
}

/// Fills in what Docker's daemon shows for unset modes: a private IPC
/// namespace, the cgroup namespace its host's cgroup version implies, the
/// default runtime.
pub(crate) fn defaults(h: &mut HostConfig) {
    if h.ipc_mode.as_deref().unwrap_or("").is_empty() {
        h.ipc_mode = Some("private".into());
    }
    if matches!(h.cgroupns_mode, None | Some(Cgroupns::EMPTY)) {
        h.cgroupns_mode = Some(if cgroup_v2() {
            Cgroupns::PRIVATE
        } else {
            Cgroupns::HOST
        });
    }
    if h.runtime.as_deref().unwrap_or("").is_empty() {
        h.runtime = Some(RUNTIMES[0].into());
    }
}

/// The container's cgroup: below its own `--cgroup-parent`, else the daemon's.
pub(crate) fn cgroups_path(h: &HostConfig, daemon_parent: &str, id: &str) -> String {
    let parent = h
        .cgroup_parent
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(daemon_parent);
    format!("/{}/{id}", parent.trim_matches('/'))
}

/// The namespaces a start joins and the `/dev/shm` it gets.
#[derive(Debug, Clone)]
pub(crate) struct Joins {
    pub pid: Namespace,
    pub ipc: Namespace,
    pub shm: Shm,
    /// Whether host devices are looked up (at start; an exec takes only the
    /// process, and must not fail because a device node went away).
    pub devices: bool,
}

/// A shareable container's `/dev/shm`, a tmpfs mounted on the host so that
/// joiners can bind the same one (Docker's `ShmPath`).
pub(crate) fn shm_path(container_dir: &Path) -> PathBuf {
    container_dir.join("shm")
}

impl Engine {
    /// Checks at create that `container:<name>` modes name a container.
    pub(crate) fn check_join_targets(&self, h: &HostConfig) -> Result<()> {
        for mode in [&h.pid_mode, &h.ipc_mode].into_iter().flatten() {
            if let Some(name) = container_of(mode) {
                self.find_container(name)
                    .map_err(|e| EngineError::invalid_argument(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// A running container to join, as moby's `getPIDContainer`.
    fn join_target(&self, name: &str) -> Result<(ContainerRecord, i64)> {
        let other = self
            .find_container(name)
            .map_err(|e| EngineError::invalid_argument(e.to_string()))?;
        if other.state.status != crate::ContainerStatus::Running || other.state.pid <= 0 {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                other.id
            )));
        }
        let pid = other.state.pid;
        Ok((other, pid))
    }

    /// Resolves the container's pid and IPC modes at start; mounts a
    /// shareable container's `/dev/shm` on the host. Blocking.
    pub(crate) fn joins_for_start(&self, rec: &ContainerRecord) -> Result<Joins> {
        let h = &rec.host_config;
        let shm_size = h
            .shm_size
            .filter(|s| *s > 0)
            .map(|s| s as u64)
            .unwrap_or(64 << 20);
        let pid = match h.pid_mode.as_deref().unwrap_or("") {
            "host" => Namespace::Host,
            m => match container_of(m) {
                Some(name) => {
                    let (_, pid) = self.join_target(name)?;
                    Namespace::Join(PathBuf::from(format!("/proc/{pid}/ns/pid")))
                }
                None => Namespace::New,
            },
        };
        let (ipc, shm) = match h.ipc_mode.as_deref().unwrap_or("") {
            "host" => (Namespace::Host, Shm::Bind("/dev/shm".into())),
            "none" => (Namespace::New, Shm::None),
            "shareable" => {
                let path = shm_path(&self.cfg.container_dir(&rec.id));
                mount_shm(&path, shm_size)?;
                (Namespace::New, Shm::Bind(path))
            }
            m => match container_of(m) {
                Some(name) => {
                    let (other, pid) = self.join_target(name)?;
                    let path = shm_path(&self.cfg.container_dir(&other.id));
                    if other.host_config.ipc_mode.as_deref() != Some("shareable")
                        || !crate::fsops::is_mountpoint(&path)
                    {
                        return Err(bad(format!(
                            "container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                            other.id
                        )));
                    }
                    let ns = PathBuf::from(format!("/proc/{pid}/ns/ipc"));
                    (Namespace::Join(ns), Shm::Bind(path))
                }
                None => (Namespace::New, Shm::Own(shm_size)),
            },
        };
        Ok(Joins {
            pid,
            ipc,
            shm,
            devices: true,
        })
    }

    /// Undoes [`Engine::joins_for_start`]'s host mount once the container is down.
    pub(crate) fn unmount_shm(&self, rec: &ContainerRecord) {
        let path = shm_path(&self.cfg.container_dir(&rec.id));
        if crate::fsops::is_mountpoint(&path)
            && let Err(e) = pier_sys::unmount(&path, false)
        {
            tracing::warn!("{e}; detaching");
            let _ = pier_sys::unmount(&path, true);
        }
    }
}

fn mount_shm(path: &Path, size: u64) -> Result<()> {
    if crate::fsops::is_mountpoint(path) {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(|e| EngineError::from_io(path, e))?;
    pier_sys::mount_tmpfs(path, &format!("mode=1777,size={size}"))
        .map_err(|e| EngineError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc() -> HostConfig {
        HostConfig::default()
    }

    #[test]
    fn modes_are_checked_like_docker() {
        let c = ContainerConfig::default();
        let with = |f: fn(&mut HostConfig)| {
            let mut h = hc();
            f(&mut h);
            check(&h, &c, &[]).map_err(|e| e.to_string())
        };
        assert!(with(|h| h.pid_mode = Some("host".into())).is_ok());
        assert!(with(|h| h.pid_mode = Some("container:x".into())).is_ok());
        assert_eq!(
            with(|h| h.pid_mode = Some("container:".into())).unwrap_err(),
            "invalid PID mode: container:"
        );
        assert!(with(|h| h.ipc_mode = Some("shareable".into())).is_ok());
        assert_eq!(
            with(|h| h.ipc_mode = Some("bogus".into())).unwrap_err(),
            "invalid IPC mode: bogus"
        );
        assert!(with(|h| h.userns_mode = Some("host".into())).is_ok());
        assert!(with(|h| h.userns_mode = Some("private".into()))
            .unwrap_err()
            .starts_with("not supported by Pier: --userns"));
        assert!(with(|h| h.runtime = Some("runc".into())).is_ok());
        assert_eq!(
            with(|h| h.runtime = Some("kata".into())).unwrap_err(),
            "unknown or invalid runtime name: kata"
        );
        assert!(with(|h| h.cgroup_parent = Some("/a/../b".into())).is_err());
        assert!(with(|h| h.cgroup_parent = Some("/a/b".into())).is_ok());
    }

    #[test]
    fn hostname_conflicts_with_host_uts() {
        let mut h = hc();
        h.uts_mode = Some("host".into());
        let c = ContainerConfig {
            hostname: Some("x".into()),
            ..Default::default()
        };
        assert!(check(&h, &c, &[]).is_err());
        assert!(check(&h, &ContainerConfig::default(), &[]).is_ok());
    }

    #[test]
    fn cgroup_path_prefers_the_containers_parent() {
        let mut h = hc();
        assert_eq!(cgroups_path(&h, "pier", "abc"), "/pier/abc");
        h.cgroup_parent = Some("/mine/sub/".into());
        assert_eq!(cgroups_path(&h, "pier", "abc"), "/mine/sub/abc");
    }
}
