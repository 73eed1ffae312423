//! OCI runtime specs shaped like the ones Docker generates.

mod seccomp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// Errors from building a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid capability {0:?}")]
    Capability(String),
    #[error("invalid ulimit {0:?}: {1}")]
    Ulimit(String, String),
    #[error("invalid spec option: {0}")]
    Invalid(String),
    #[error("building the OCI spec: {0}")]
    Build(String),
}

impl SpecError {
    fn build(e: impl std::fmt::Display) -> Self {
        SpecError::Build(e.to_string())
    }
}

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
        rlimit_type(name).ok_or_else(|| bad("unknown ulimit name"))?;
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
    /// None, 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
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
    pub network: NetworkNs,
    /// Share the host's pid / ipc / uts namespaces.
    pub pid_host: bool,
    pub ipc_host: bool,
    pub uts_host: bool,
    /// Must be set: libcontainer's default lands at the top of each hierarchy.
    /// E.g. "/pier/<id>".
    pub cgroups_path: String,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    pub tmpfs: Vec<TmpfsMount>,
    pub binds: Vec<BindMount>,
    /// /dev/shm size in bytes (Docker: 64 MiB).
    pub shm_size: u64,
    pub sysctls: BTreeMap<String, String>,
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
            network: NetworkNs::New,
            pid_host: false,
            ipc_host: false,
            uts_host: false,
            cgroups_path: String::new(),
            resources: Resources::default(),
            ulimits: Vec::new(),
            tmpfs: Vec::new(),
            binds: Vec::new(),
            shm_size: 64 * 1024 * 1024,
            sysctls: BTreeMap::new(),
            oom_score_adj: None,
            annotations: BTreeMap::new(),
        }
    }
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the runtime knows, in kernel order.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Normalises a capability name to `CAP_XXX`, or "ALL".
fn norm_cap(name: &str) -> Result<String, SpecError> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::Capability(name.to_string()))
    }
}

/// Docker's capability arithmetic: start from the defaults, then add, then drop;
/// "ALL" in add means every capability, in drop means none left before adds.
pub fn compute_caps(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let add: Vec<String> = cap_add
        .iter()
        .map(|c| norm_cap(c))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = cap_drop
        .iter()
        .map(|c| norm_cap(c))
        .collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        // Drop ALL keeps only what is explicitly added.
        caps = add.iter().filter(|c| *c != "ALL").cloned().collect();
    } else {
        for c in &add {
            if c != "ALL" && !caps.contains(c) {
                caps.push(c.clone());
            }
        }
        caps.retain(|c| !drop.contains(c));
    }
    // Keep kernel order so specs are stable.
    caps.sort_by_key(|c| ALL_CAPS.iter().position(|a| a == c));
    caps.dedup();
    Ok(caps)
}

fn rlimit_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// This process's own nofile limits: the default, since the container cannot get
/// more than we have without CAP_SYS_RESOURCE (Docker also just inherits).
fn own_nofile() -> (u64, u64) {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024))
}

/// Whether the memory cgroup can limit swap (v1 needs swap accounting).
pub fn host_supports_swap_limit() -> bool {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        return true;
    }
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

/// CapBnd of this process; all bits when it cannot be read.
fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

fn kernel_version() -> (u32, u32) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn env_has(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e == key)
}

/// Docker's environment: PATH, HOSTNAME and TERM first when missing, then the
/// given items, then HOME when missing.
fn build_env(o: &SpecOptions) -> Vec<String> {
    let mut env = Vec::new();
    if !env_has(&o.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if let Some(h) = &o.hostname {
        if !env_has(&o.env, "HOSTNAME") {
            env.push(format!("HOSTNAME={h}"));
        }
    }
    if o.terminal && !env_has(&o.env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env.extend(o.env.iter().cloned());
    if !env_has(&env, "HOME") {
        env.push(format!("HOME={}", o.home.as_deref().unwrap_or("/")));
    }
    env
}

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Value {
    json!({"destination": dst, "type": typ, "source": src, "options": opts})
}

fn default_mounts(o: &SpecOptions) -> Vec<Value> {
    let sys_ro: &[&str] = if o.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let shm_size = format!("size={}", o.shm_size);
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_ro),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", sys_ro),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    if o.ipc_host {
        // The host's /dev/shm and mqueue go with the host's IPC namespace.
        m.retain(|x| x["destination"] != "/dev/mqueue" && x["destination"] != "/dev/shm");
        m.push(
            json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
            "options": ["rbind", "rw", "rprivate"]}),
        );
    }
    m
}

fn tmpfs_mount(t: &TmpfsMount) -> Value {
    let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
    for o in &t.options {
        let o = o.trim();
        if o.is_empty() {
            continue;
        }
        // A user flag replaces its opposite default (exec vs noexec, ...).
        let opposite = o
            .strip_prefix("no")
            .map(String::from)
            .unwrap_or(format!("no{o}"));
        opts.retain(|x| *x != opposite && x != o);
        opts.push(o.to_string());
    }
    json!({"destination": t.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
}

fn bind_mount(b: &BindMount) -> Value {
    json!({
        "destination": b.destination,
        "type": "bind",
        "source": b.source,
        "options": ["rbind", if b.readonly { "ro" } else { "rw" }, "rprivate"],
    })
}

fn namespaces(o: &SpecOptions) -> Vec<Value> {
    let mut ns = vec![json!({"type": "mount"})];
    if !o.pid_host {
        ns.push(json!({"type": "pid"}));
    }
    if !o.uts_host {
        ns.push(json!({"type": "uts"}));
    }
    if !o.ipc_host {
        ns.push(json!({"type": "ipc"}));
    }
    ns.push(json!({"type": "cgroup"}));
    match &o.network {
        NetworkNs::New => ns.push(json!({"type": "network"})),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => ns.push(json!({"type": "network", "path": p})),
    }
    ns
}

/// Docker's default device cgroup rules: deny all, allow the standard nodes and
/// mknod of anything (creating a node does not grant access to it).
fn device_rules(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let c = |major: Option<i64>, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    vec![
        json!({"allow": false, "access": "rwm"}),
        c(None, None, "m"),
        json!({"allow": true, "type": "b", "major": null, "minor": null, "access": "m"}),
        c(Some(1), Some(3), "rwm"),
        c(Some(1), Some(5), "rwm"),
        c(Some(1), Some(7), "rwm"),
        c(Some(1), Some(8), "rwm"),
        c(Some(1), Some(9), "rwm"),
        c(Some(5), Some(0), "rwm"),
        c(Some(5), Some(1), "rwm"),
        c(Some(5), Some(2), "rwm"),
        c(Some(136), None, "rwm"),
        c(Some(10), Some(200), "rwm"),
    ]
}

/// The host's device nodes, for privileged containers.
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if dir == Path::new("/dev")
                && matches!(
                    &*name,
                    "pts" | "shm" | "fd" | "mqueue" | "console" | ".lxc" | ".udev"
                )
            {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                stack.push(p);
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let rdev = md.rdev();
            out.push(json!({
                "path": p, "type": typ,
                "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
                "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
            }));
        }
    }
    out
}

fn resources(o: &SpecOptions, swap_ok: bool) -> Value {
    let r = &o.resources;
    let mut res = serde_json::Map::new();
    res.insert("devices".into(), Value::from(device_rules(o.privileged)));
    if let Some(mem) = r.memory.filter(|m| *m > 0) {
        let mut m = json!({"limit": mem});
        if swap_ok {
            match r.memory_swap {
                Some(-1) => m["swap"] = json!(-1),
                Some(s) if s > 0 => m["swap"] = json!(s),
                _ => m["swap"] = json!(mem.saturating_mul(2)),
            }
        }
        res.insert("memory".into(), m);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!(n / 10_000));
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        res.insert("pids".into(), json!({"limit": p}));
    }
    Value::Object(res)
}

fn rlimits(o: &SpecOptions) -> Result<Vec<Value>, SpecError> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    let (soft, hard) = own_nofile();
    out.push(("RLIMIT_NOFILE".into(), soft, hard));
    for u in &o.ulimits {
        let t = rlimit_type(&u.name)
            .ok_or_else(|| SpecError::Ulimit(u.name.clone(), "unknown ulimit name".into()))?;
        out.retain(|(n, _, _)| n != t);
        out.push((t.to_string(), u.soft, u.hard));
    }
    Ok(out
        .into_iter()
        .map(|(t, s, h)| json!({"type": t, "soft": s, "hard": h}))
        .collect())
}

/// Builds a Docker-like OCI spec.
pub fn build_spec(o: &SpecOptions) -> Result<Spec, SpecError> {
    build_spec_on(
        o,
        &seccomp::Host {
            rust_arch: std::env::consts::ARCH,
            kernel: kernel_version(),
            bounding: own_bounding_set(),
        },
        o.resources.memory.is_some() && host_supports_swap_limit(),
    )
}

fn build_spec_on(
    o: &SpecOptions,
    host: &seccomp::Host<'_>,
    swap_ok: bool,
) -> Result<Spec, SpecError> {
    if o.args.is_empty() {
        return Err(SpecError::Invalid("no command given".into()));
    }
    if o.cgroups_path.is_empty() {
        return Err(SpecError::Invalid("cgroups_path must be set".into()));
    }
    let mut caps = compute_caps(&o.cap_add, &o.cap_drop, o.privileged)?;
    // "All" is what this host can grant: a daemon started without, say,
    // CAP_SYS_RESOURCE cannot hand it on, and asking the kernel would fail the start.
    if o.privileged || o.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        caps.retain(|c| {
            let bit = ALL_CAPS.iter().position(|a| a == c).unwrap_or(0);
            host.bounding & (1u64 << bit) != 0
        });
    }
    let cwd = if o.cwd.is_empty() {
        "/"
    } else {
        o.cwd.as_str()
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }

    // User mounts replace defaults at the same destination, then parents go first.
    let mut user_mounts: Vec<Value> = o.tmpfs.iter().map(tmpfs_mount).collect();
    user_mounts.extend(o.binds.iter().map(bind_mount));
    let mut mounts: Vec<Value> = default_mounts(o)
        .into_iter()
        .filter(|d| {
            !user_mounts
                .iter()
                .any(|u| u["destination"] == d["destination"])
        })
        .collect();
    mounts.extend(user_mounts);
    // Stable sort by depth keeps the order among equals.
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.trim_end_matches('/').matches('/').count())
            .unwrap_or(0)
    });

    let mut process = json!({
        "terminal": o.terminal,
        "user": {"uid": o.uid, "gid": o.gid},
        "args": o.args,
        "env": build_env(o),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits(o)?,
    });
    // Only when set: libcontainer 0.7 treats a present `false` like `true` when
    // ordering seccomp after the capability drop, and the load then fails.
    if o.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !o.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(o.additional_gids);
    }
    if let Some(adj) = o.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    let mut linux = json!({
        "cgroupsPath": o.cgroups_path,
        "namespaces": namespaces(o),
        "resources": resources(o, swap_ok),
    });
    if !o.sysctls.is_empty() {
        linux["sysctl"] = json!(o.sysctls);
    }
    if o.privileged {
        linux["devices"] = Value::from(host_devices());
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if !o.seccomp_unconfined {
            let profile = seccomp::default_profile(&caps, host)?;
            linux["seccomp"] = serde_json::to_value(profile).map_err(SpecError::build)?;
        }
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(h) = &o.hostname {
        if !o.uts_host {
            spec["hostname"] = json!(h);
        }
    }
    if !o.annotations.is_empty() {
        spec["annotations"] = json!(o.annotations);
    }
    serde_json::from_value(spec).map_err(SpecError::build)
}

#[cfg(test)]
mod tests;
