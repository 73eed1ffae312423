//! From a container record to the OCI spec its shim runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pier_runtime::spec::{build_spec, BindMount, Resources, SpecOptions, TmpfsMount};

use crate::records::ContainerRecord;
use crate::validate::Seccomp;
use crate::{EngineError, ErrorKind, Result};

/// Resolves `user` (`name`, `uid`, `name:group`, ...) in the container's root.
pub(crate) fn user_of(rootfs: &Path, user: &str) -> Result<pier_runtime::user::ResolvedUser> {
    pier_runtime::user::resolve_user(rootfs, user)
        .map_err(|e| EngineError::wrap(ErrorKind::CannotStart { exit_code: 126 }, e))
}

pub(crate) fn options_for(
    rec: &ContainerRecord,
    rootfs: &Path,
    joins: &crate::isolation::Joins,
    cdi_dirs: &[PathBuf],
) -> Result<SpecOptions> {
    let c = &rec.config;
    let h = &rec.host_config;
    let user = user_of(rootfs, c.user.as_deref().unwrap_or(""))?;
    let mut additional_gids = user.additional_gids.clone();
    for g in h.group_add.iter().flatten() {
        if let Ok(n) = g.parse::<u32>() {
            additional_gids.push(n);
        }
    }
    let mut args = Vec::new();
    let init = if h.init.unwrap_or(false) {
        Some(init_binary()?)
    } else {
        None
    };
    if init.is_some() {
        args.extend([INIT_PATH.to_string(), "--".to_string()]);
    }
    args.push(rec.path.clone());
    args.extend(rec.args.iter().cloned());
    let mut ulimits = Vec::new();
    for u in h.ulimits.iter().flatten() {
        ulimits.push(crate::validate::ulimit(u)?);
    }
    let mut tmpfs = Vec::new();
    for (dst, opts) in h.tmpfs.iter().flatten() {
        tmpfs.push(TmpfsMount {
            destination: dst.clone(),
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    let mut binds = vec![
        BindMount {
            source: PathBuf::from(&rec.resolv_conf_path),
            destination: "/etc/resolv.conf".into(),
            readonly: false,
        },
        BindMount {
            source: PathBuf::from(&rec.hostname_path),
            destination: "/etc/hostname".into(),
            readonly: false,
        },
        BindMount {
            source: PathBuf::from(&rec.hosts_path),
            destination: "/etc/hosts".into(),
            readonly: false,
        },
    ];
    if let Some(init) = init {
        binds.push(BindMount {
            source: init,
            destination: INIT_PATH.into(),
            readonly: true,
        });
    }
    let (volume_binds, volume_tmpfs) = crate::volumes::spec_mounts(rec)?;
    binds.extend(volume_binds);
    tmpfs.extend(volume_tmpfs);
    let security = crate::validate::security_opts(h.security_opt.as_deref().unwrap_or_default())?;
    let network = crate::network::endpoints::netns_for(rec);
    let sysctls: BTreeMap<String, String> =
        h.sysctls.clone().unwrap_or_default().into_iter().collect();
    let devs = if joins.devices {
        crate::devices::resolve(h, cdi_dirs)?
    } else {
        Default::default()
    };
    binds.extend(devs.binds);
    let mut env = c.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOSTNAME="))
        && let Some(hn) = &c.hostname
    {
        env.insert(0, format!("HOSTNAME={hn}"));
    }
    env.extend(devs.env);
    if c.tty.unwrap_or(false) && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let mut o = SpecOptions {
        args,
        env,
        cwd: c.working_dir.clone().unwrap_or_else(|| "/".into()),
        uid: user.uid,
        gid: user.gid,
        additional_gids,
        home: Some(user.home.clone()),
        terminal: c.tty.unwrap_or(false),
        hostname: c.hostname.clone(),
        rootfs: rootfs.to_path_buf(),
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        privileged: h.privileged.unwrap_or(false),
        cap_add: h.cap_add.clone().unwrap_or_default(),
        cap_drop: h.cap_drop.clone().unwrap_or_default(),
        no_new_privileges: security.no_new_privileges,
        seccomp_unconfined: security.seccomp == Seccomp::Unconfined,
        seccomp_profile: match security.seccomp {
            Seccomp::Profile(json) => Some(json),
            _ => None,
        },
        network,
        pid: joins.pid.clone(),
        ipc: joins.ipc.clone(),
        uts_host: h.uts_mode.as_deref() == Some("host"),
        domainname: c.domainname.clone().filter(|d| !d.is_empty()),
        cgroup_ns: h.cgroupns_mode != Some(pier_api::models::HostConfigCgroupnsModeEnum::HOST),
        cgroups_path: rec.cgroups_path.clone(),
        resources: Resources {
            memory: h.memory.filter(|m| *m > 0),
            memory_swap: h.memory_swap.filter(|m| *m != 0),
            nano_cpus: h.nano_cpus.filter(|n| *n > 0),
            cpu_shares: h.cpu_shares.filter(|s| *s > 0).map(|s| s as u64),
            cpu_period: h.cpu_period.filter(|p| *p > 0).map(|p| p as u64),
            cpu_quota: h.cpu_quota.filter(|q| *q != 0),
            pids_limit: h.pids_limit.filter(|p| *p > 0),
            cpuset_cpus: h.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            cpuset_mems: h.cpuset_mems.clone().filter(|c| !c.is_empty()),
            memory_reservation: h.memory_reservation.filter(|m| *m > 0),
            memory_swappiness: h
                .memory_swappiness
                .filter(|s| (0..=100).contains(s))
                .map(|s| s as u64),
            oom_kill_disable: h.oom_kill_disable == Some(true),
            blkio_weight: h.blkio_weight.filter(|w| *w > 0),
            blkio_weight_device: crate::resources::weight_devices(h)?,
            device_read_bps: crate::resources::throttle(&h.blkio_device_read_bps)?,
            device_write_bps: crate::resources::throttle(&h.blkio_device_write_bps)?,
            device_read_iops: crate::resources::throttle(&h.blkio_device_read_iops)?,
            device_write_iops: crate::resources::throttle(&h.blkio_device_write_iops)?,
        },
        ulimits,
        tmpfs,
        binds,
        shm: joins.shm.clone(),
        sysctls,
        devices: devs.devices,
        device_rules: devs.rules,
        oom_score_adj: h.oom_score_adj.map(|o| o as i32),
        annotations: h
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    if let Some(c) = &rec.cri {
        crate::cri::apply_options(c, &mut o);
    }
    Ok(o)
}

/// Where `--init` puts the init process inside the container (Docker's path).
const INIT_PATH: &str = "/sbin/docker-init";

/// A static init for `--init`: Docker's `docker-init` (tini), as Debian ships it.
fn init_binary() -> Result<PathBuf> {
    let candidates = ["docker-init", "tini-static"];
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for name in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(std::fs::canonicalize(&p).unwrap_or(p));
            }
        }
    }
    Err(EngineError::invalid_argument(
        "--init needs a static init binary (docker-init or tini-static; Debian package `tini`)",
    ))
}

/// The spec of a container that joins no other container's namespaces and
/// gets no host devices (build steps; an exec, which takes only the process).
pub(crate) fn spec_for(rec: &ContainerRecord, rootfs: &Path) -> Result<oci_spec::runtime::Spec> {
    let shm = rec
        .host_config
        .shm_size
        .filter(|s| *s > 0)
        .map(|s| s as u64)
        .unwrap_or(64 << 20);
    let joins = crate::isolation::Joins {
        pid: Default::default(),
        ipc: Default::default(),
        shm: pier_runtime::spec::Shm::Own(shm),
        devices: false,
    };
    spec_joining(rec, rootfs, &joins, &[])
}

pub(crate) fn spec_joining(
    rec: &ContainerRecord,
    rootfs: &Path,
    joins: &crate::isolation::Joins,
    cdi_dirs: &[PathBuf],
) -> Result<oci_spec::runtime::Spec> {
    let o = options_for(rec, rootfs, joins, cdi_dirs)?;
    let mut spec = build_spec(&o).map_err(EngineError::from)?;
    if let Some(c) = &rec.cri {
        crate::cri::apply_spec(c, &mut spec);
    }
    Ok(spec)
}
