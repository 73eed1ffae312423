//! What the engine asks for: the inputs of `build_spec`, in Docker's terms.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::SpecError;

/// How the container's network namespace is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkNs {
    /// A fresh, empty namespace (Docker's `none`, or bridge before setup).
    #[default]
    New,
    /// The host's namespace: none is listed in the spec.
    Host,
    /// Join an existing namespace, e.g. a bind-mounted `/run/pier/netns/<id>`.
    Path(PathBuf),
}

/// How the container gets a pid or IPC namespace (`--pid`, `--ipc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespace {
    /// Its own, fresh namespace.
    #[default]
    New,
    /// The host's: none is listed in the spec.
    Host,
    /// Another process's, e.g. `/proc/<pid>/ns/ipc` of a running container.
    Join(PathBuf),
}

/// What the container's `/dev/shm` is (`--ipc`, `--shm-size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shm {
    /// A tmpfs of this many bytes, with its own mqueue (Docker: 64 MiB).
    Own(u64),
    /// Nothing mounted (`--ipc none`).
    None,
    /// Another directory bound in: the host's or an IPC donor's `/dev/shm`.
    Bind(PathBuf),
}

/// A `--ulimit name=soft:hard` (Docker's names: nofile, nproc, core, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

impl Ulimit {
    /// Parses Docker's `name=soft[:hard]` form.
    pub fn parse(s: &str) -> Result<Ulimit, SpecError> {
        let bad = |why: &str| SpecError::Ulimit(s.to_string(), why.to_string());
        let (name, vals) = s
            .split_once('=')
            .ok_or_else(|| bad("expected name=soft[:hard]"))?;
        let num = |v: &str| -> Result<u64, SpecError> {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse().map_err(|_| bad("not a number"))
            }
        };
        let (soft, hard) = match vals.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(vals)?, num(vals)?),
        };
        if soft > hard {
            return Err(bad("soft limit is greater than hard limit"));
        }
        super::process::rlimit_type(name).ok_or_else(|| bad("unknown ulimit name"))?;
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

/// A bind mount the engine provides (volumes, /etc/hosts, /etc/resolv.conf, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// A `--tmpfs /dst:opts` mount; `options` are Docker's comma-separated items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    pub destination: String,
    pub options: Vec<String>,
}

/// cgroup limits, in Docker's HostConfig units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes; None or 0 = unlimited.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes; -1 = unlimited swap; unset = twice `memory`.
    pub memory_swap: Option<i64>,
    /// CPUs in billionths (`--cpus 1.5` = 1_500_000_000).
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// CFS period and quota in microseconds, when NanoCpus is not used.
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    /// None, 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
    /// `--cpuset-cpus` / `--cpuset-mems` lists, e.g. "0-1,3".
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Soft limit in bytes (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: Option<i64>,
    /// 0..=100; v1 only.
    pub memory_swappiness: Option<u64>,
    /// Asked for in the spec; libcontainer does not apply it, so the engine
    /// writes `memory.oom_control` itself between create and start.
    pub oom_kill_disable: bool,
    /// 10..=1000.
    pub blkio_weight: Option<u16>,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub device_read_bps: Vec<ThrottleDevice>,
    pub device_write_bps: Vec<ThrottleDevice>,
    pub device_read_iops: Vec<ThrottleDevice>,
    pub device_write_iops: Vec<ThrottleDevice>,
}

/// A host device node made in the container (`--device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Path inside the container.
    pub path: String,
    /// 'c' or 'b'.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A device cgroup allow rule (`--device`, `--device-cgroup-rule`):
/// `kind` 'a', 'b' or 'c'; None numbers are Docker's `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of "rwm".
    pub access: String,
}

/// A block device's `major:minor` and a rate (bytes or IOs per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleDevice {
    pub major: u64,
    pub minor: u64,
    pub rate: u64,
}

/// A block device's `major:minor` and its blkio weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightDevice {
    pub major: u64,
    pub minor: u64,
    pub weight: u16,
}

/// Everything `build_spec` needs; `Default` gives Docker's defaults for a `sh`.
#[derive(Debug, Clone)]
pub struct SpecOptions {
    pub args: Vec<String>,
    /// `KEY=value` items from the image and the user; PATH/HOSTNAME/TERM/HOME are
    /// added as Docker does when missing.
    pub env: Vec<String>,
    /// Working directory; empty = "/".
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home (for HOME when the env lacks it).
    pub home: Option<String>,
    pub terminal: bool,
    pub hostname: Option<String>,
    /// Root filesystem path (absolute, or relative to the bundle).
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// Names with or without `CAP_`, case-insensitive, or "ALL".
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `--security-opt seccomp=<json>`: a profile in Docker's format, used
    /// instead of the default one.
    pub seccomp_profile: Option<String>,
    pub network: NetworkNs,
    pub pid: Namespace,
    pub ipc: Namespace,
    /// Share the host's UTS namespace (no hostname or domainname is set).
    pub uts_host: bool,
    /// NIS domain name (`--domainname`).
    pub domainname: Option<String>,
    /// A private cgroup namespace (`--cgroupns private`); false = the host's.
    pub cgroup_ns: bool,
    /// Must be set: libcontainer's default lands at the top of each hierarchy.
    /// E.g. "/pier/<id>".
    pub cgroups_path: String,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    pub tmpfs: Vec<TmpfsMount>,
    pub binds: Vec<BindMount>,
    pub shm: Shm,
    pub sysctls: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    pub device_rules: Vec<DeviceRule>,
    pub oom_score_adj: Option<i32>,
    pub annotations: BTreeMap<String, String>,
}

impl Default for SpecOptions {
    fn default() -> Self {
        SpecOptions {
            args: vec!["sh".into()],
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: None,
            terminal: false,
            hostname: None,
            rootfs: PathBuf::from("rootfs"),
            readonly_rootfs: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            no_new_privileges: false,
            seccomp_unconfined: false,
            seccomp_profile: None,
            network: NetworkNs::New,
            pid: Namespace::New,
            ipc: Namespace::New,
            uts_host: false,
            domainname: None,
            cgroup_ns: true,
            cgroups_path: String::new(),
            resources: Resources::default(),
            ulimits: Vec::new(),
            tmpfs: Vec::new(),
            binds: Vec::new(),
            shm: Shm::Own(64 * 1024 * 1024),
            sysctls: BTreeMap::new(),
            devices: Vec::new(),
            device_rules: Vec::new(),
            oom_score_adj: None,
            annotations: BTreeMap::new(),
        }
    }
}
