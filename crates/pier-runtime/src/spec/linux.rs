//! The spec's `linux` section: namespaces, cgroup resources and devices,
//! masked paths and the seccomp profile.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{seccomp, Namespace, NetworkNs, SpecError, SpecOptions};

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

/// Whether the memory cgroup can limit swap (v1 needs swap accounting).
pub fn host_supports_swap_limit() -> bool {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        return true;
    }
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

fn namespace(typ: &str, mode: &Namespace, out: &mut Vec<Value>) {
    match mode {
        Namespace::New => out.push(json!({ "type": typ })),
        Namespace::Host => {}
        Namespace::Join(p) => out.push(json!({"type": typ, "path": p})),
    }
}

fn namespaces(o: &SpecOptions) -> Vec<Value> {
    let mut ns = vec![json!({"type": "mount"})];
    namespace("pid", &o.pid, &mut ns);
    if !o.uts_host {
        ns.push(json!({"type": "uts"}));
    }
    namespace("ipc", &o.ipc, &mut ns);
    if o.cgroup_ns {
        ns.push(json!({"type": "cgroup"}));
    }
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
// Walks /dev: specs are built where a container's bundle is prepared, on a
// blocking thread.
#[allow(clippy::disallowed_methods)]
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
    let mut rules = device_rules(o.privileged);
    // After Docker's defaults: the deny-all comes first, these add to it.
    for r in o.device_rules.iter().filter(|_| !o.privileged) {
        rules.push(
            json!({"allow": true, "type": r.kind.to_string(), "major": r.major,
            "minor": r.minor, "access": r.access}),
        );
    }
    res.insert("devices".into(), Value::from(rules));
    let mut m = serde_json::Map::new();
    if let Some(mem) = r.memory.filter(|m| *m > 0) {
        m.insert("limit".into(), json!(mem));
        if swap_ok {
            let swap = match r.memory_swap {
                Some(-1) => -1,
                Some(s) if s > 0 => s,
                _ => mem.saturating_mul(2),
            };
            m.insert("swap".into(), json!(swap));
        }
    }
    if let Some(v) = r.memory_reservation.filter(|v| *v > 0) {
        m.insert("reservation".into(), json!(v));
    }
    if let Some(v) = r.memory_swappiness {
        m.insert("swappiness".into(), json!(v));
    }
    if r.oom_kill_disable {
        m.insert("disableOOMKiller".into(), json!(true));
    }
    if !m.is_empty() {
        res.insert("memory".into(), Value::Object(m));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!(n / 10_000));
    }
    if r.nano_cpus.is_none_or(|n| n <= 0) {
        if let Some(p) = r.cpu_period.filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
        if let Some(q) = r.cpu_quota.filter(|q| *q != 0) {
            cpu.insert("quota".into(), json!(q));
        }
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = r.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = r.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        res.insert("pids".into(), json!({"limit": p}));
    }
    if let Some(io) = block_io(r) {
        res.insert("blockIO".into(), io);
    }
    Value::Object(res)
}

fn block_io(r: &super::Resources) -> Option<Value> {
    let mut io = serde_json::Map::new();
    if let Some(w) = r.blkio_weight.filter(|w| *w > 0) {
        io.insert("weight".into(), json!(w));
    }
    if !r.blkio_weight_device.is_empty() {
        let list: Vec<Value> = r
            .blkio_weight_device
            .iter()
            .map(|d| json!({"major": d.major, "minor": d.minor, "weight": d.weight}))
            .collect();
        io.insert("weightDevice".into(), json!(list));
    }
    for (key, devs) in [
        ("throttleReadBpsDevice", &r.device_read_bps),
        ("throttleWriteBpsDevice", &r.device_write_bps),
        ("throttleReadIOPSDevice", &r.device_read_iops),
        ("throttleWriteIOPSDevice", &r.device_write_iops),
    ] {
        if !devs.is_empty() {
            let list: Vec<Value> = devs
                .iter()
                .map(|d| json!({"major": d.major, "minor": d.minor, "rate": d.rate}))
                .collect();
            io.insert(key.into(), json!(list));
        }
    }
    (!io.is_empty()).then_some(Value::Object(io))
}

/// The spec's `linux` object for a process with capability set `caps`.
pub(super) fn linux(
    o: &SpecOptions,
    caps: &[String],
    host: &seccomp::Host<'_>,
    swap_ok: bool,
) -> Result<Value, SpecError> {
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
    } else if !o.devices.is_empty() {
        let list: Vec<Value> = o
            .devices
            .iter()
            .map(|d| {
                json!({"path": d.path, "type": d.kind.to_string(), "major": d.major,
                    "minor": d.minor, "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid})
            })
            .collect();
        linux["devices"] = Value::from(list);
    }
    if !o.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let profile = match &o.seccomp_profile {
            _ if o.seccomp_unconfined => None,
            Some(json) => super::seccomp_profile::resolve(json, caps, host)?,
            None => Some(seccomp::default_profile(caps, host)?),
        };
        if let Some(profile) = profile {
            linux["seccomp"] = serde_json::to_value(profile).map_err(SpecError::build)?;
        }
    }
    Ok(linux)
}

#[cfg(test)]
mod tests {
    use crate::spec::tests::{opts, r#gen};
    use crate::spec::{NetworkNs, Resources};

    #[test]
    fn network_modes() {
        let mut o = opts();
        o.network = NetworkNs::Host;
        let v = r#gen(&o);
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        o.network = NetworkNs::Path("/run/pier/netns/x".into());
        let v = r#gen(&o);
        let net = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/pier/netns/x");
    }

    #[test]
    fn joined_and_shared_namespaces() {
        use crate::spec::{Namespace, Shm};
        let ns_of = |v: &serde_json::Value, t: &str| {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] == t)
                .cloned()
        };
        let mut o = opts();
        o.pid = Namespace::Join("/proc/7/ns/pid".into());
        o.ipc = Namespace::Host;
        o.shm = Shm::Bind("/dev/shm".into());
        o.cgroup_ns = false;
        o.domainname = Some("example.org".into());
        let v = r#gen(&o);
        assert_eq!(ns_of(&v, "pid").unwrap()["path"], "/proc/7/ns/pid");
        assert!(ns_of(&v, "ipc").is_none());
        assert!(ns_of(&v, "cgroup").is_none());
        assert_eq!(v["domainname"], "example.org");
        let mounts = v["mounts"].as_array().unwrap();
        let shm = mounts
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert_eq!(shm["type"], "bind");
        assert!(!mounts.iter().any(|m| m["destination"] == "/dev/mqueue"));
        o.ipc = Namespace::New;
        o.shm = Shm::None;
        o.uts_host = true;
        let v = r#gen(&o);
        assert!(ns_of(&v, "ipc").unwrap().get("path").is_none());
        assert!(!v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/dev/shm"));
        assert!(v.get("domainname").is_none());
    }

    #[test]
    fn devices_and_their_rules() {
        use crate::spec::{Device, DeviceRule};
        let mut o = opts();
        o.devices = vec![Device {
            path: "/dev/xnull".into(),
            kind: 'c',
            major: 1,
            minor: 3,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
        }];
        o.device_rules = vec![DeviceRule {
            kind: 'c',
            major: Some(42),
            minor: None,
            access: "rm".into(),
        }];
        let v = r#gen(&o);
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/xnull");
        assert_eq!(v["linux"]["devices"][0]["major"], 1);
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        let last = rules.last().unwrap();
        assert_eq!(last["major"], 42);
        assert!(last.get("minor").is_none_or(|m| m.is_null()));
        assert_eq!(last["access"], "rm");
        assert_eq!(rules[0]["allow"], false);
    }

    #[test]
    fn resources_and_sysctls() {
        let mut o = opts();
        o.resources = Resources {
            memory: Some(100 << 20),
            memory_swap: None,
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(512),
            pids_limit: Some(100),
            ..Default::default()
        };
        o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        let v = r#gen(&o);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 100 << 20);
        assert_eq!(r["memory"]["swap"], 200 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        o.resources = Resources {
            cpu_period: Some(50_000),
            cpu_quota: Some(25_000),
            ..Default::default()
        };
        let r = &r#gen(&o)["linux"]["resources"];
        assert_eq!(r["cpu"]["quota"], 25_000);
        assert_eq!(r["cpu"]["period"], 50_000);
    }

    #[test]
    fn cpuset_memory_extras_and_block_io() {
        use crate::spec::{ThrottleDevice, WeightDevice};
        let mut o = opts();
        let t = |rate| ThrottleDevice {
            major: 254,
            minor: 0,
            rate,
        };
        o.resources = Resources {
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            memory_reservation: Some(64 << 20),
            memory_swappiness: Some(10),
            oom_kill_disable: true,
            blkio_weight: Some(300),
            blkio_weight_device: vec![WeightDevice {
                major: 254,
                minor: 0,
                weight: 200,
            }],
            device_read_bps: vec![t(1 << 20)],
            device_write_bps: vec![t(2 << 20)],
            device_read_iops: vec![t(100)],
            device_write_iops: vec![t(200)],
            ..Default::default()
        };
        let v = r#gen(&o);
        let r = &v["linux"]["resources"];
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["cpu"]["mems"], "0");
        assert_eq!(r["memory"]["reservation"], 64 << 20);
        assert_eq!(r["memory"]["swappiness"], 10);
        assert_eq!(r["memory"]["disableOOMKiller"], true);
        assert!(r["memory"].get("limit").is_none());
        let io = &r["blockIO"];
        assert_eq!(io["weight"], 300);
        assert_eq!(io["weightDevice"][0]["weight"], 200);
        assert_eq!(io["throttleReadBpsDevice"][0]["rate"], 1 << 20);
        assert_eq!(io["throttleWriteBpsDevice"][0]["rate"], 2 << 20);
        assert_eq!(io["throttleReadIOPSDevice"][0]["rate"], 100);
        assert_eq!(io["throttleWriteIOPSDevice"][0]["major"], 254);
    }
}
