//! `GET /containers/{id}/stats`: one sample of a container's cgroup counters
//! ([`StatsSample`]). Deltas (`precpu_stats`, `preread`) are the caller's
//! job: it keeps the previous sample, as dockerd's stats publisher does per
//! subscriber.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pier_api::models::{ContainerBlkioStatEntry, ContainerNetworkStats, ContainerPidsStats};

use crate::system::{cgroup_dirs, mem_total};
use crate::views::{BlkioSample, CgroupSample, MemorySample, StatsSample};
use crate::{Engine, Result};

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p).and_then(|s| s.trim().parse().ok())
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat) as a map.
fn flat_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// Host CPU time in nanoseconds as dockerd computes `system_cpu_usage`: the
/// first seven fields of /proc/stat's `cpu` line (user .. softirq, leaving
/// out steal and guest), converted from USER_HZ ticks.
pub(crate) fn system_cpu_usage(proc_stat: &str) -> u64 {
    // USER_HZ is 100 on every Linux ABI the kernel exports to /proc/stat.
    const NS_PER_TICK: u64 = 1_000_000_000 / 100;
    proc_stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .unwrap_or(0)
        * NS_PER_TICK
}

/// Online CPUs as dockerd counts them (the CPUs this process may run on).
fn online_cpus(proc_stat: &str) -> u64 {
    let n = proc_stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u64;
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
    }
}

/// Per-interface counters from a `/proc/<pid>/net/dev` table, loopback left
/// out as Docker reports only the container's endpoints.
pub(crate) fn parse_net_dev(s: &str) -> Vec<(String, ContainerNetworkStats)> {
    let mut out = Vec::new();
    for l in s.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.push((
            name.to_string(),
            ContainerNetworkStats {
                rx_bytes: Some(v[0]),
                rx_packets: Some(v[1]),
                rx_errors: Some(v[2]),
                rx_dropped: Some(v[3]),
                tx_bytes: Some(v[8]),
                tx_packets: Some(v[9]),
                tx_errors: Some(v[10]),
                tx_dropped: Some(v[11]),
                ..Default::default()
            },
        ));
    }
    out
}

fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> ContainerBlkioStatEntry {
    ContainerBlkioStatEntry {
        major: Some(major),
        minor: Some(minor),
        op: Some(op.to_string()),
        value: Some(value),
    }
}

/// cgroup v1 blkio `*_recursive` lines (`8:0 Read 4096`, and a `Total` line)
/// as Docker's `BlkioStatEntry` list.
pub(crate) fn parse_blkio_v1(s: &str) -> Vec<ContainerBlkioStatEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(blkio_entry(
                maj.parse().ok()?,
                min.parse().ok()?,
                f[1],
                f[2].parse().ok()?,
            ))
        })
        .collect()
}

/// cgroup v2 `io.stat` (`8:0 rbytes=.. wbytes=.. rios=.. wios=..`) as the two
/// lists dockerd fills from it: bytes and operations, ops `read`/`write`.
pub(crate) fn parse_io_stat(
    s: &str,
) -> (Vec<ContainerBlkioStatEntry>, Vec<ContainerBlkioStatEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(blkio_entry(maj, min, op, v));
        }
    }
    (bytes, ios)
}

/// The counters of one running container, read from its cgroups.
fn sample_cgroups(cgroups_path: &str) -> CgroupSample {
    let machine_mem = mem_total();
    let mut out = CgroupSample::default();
    // Only a pure v2 host is read as v2: a hybrid host's `unified` hierarchy
    // has a cgroup.controllers file but no controllers in it.
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for d in cgroup_dirs(cgroups_path) {
        // A v1 hierarchy may carry several controllers (`cpu,cpuacct`).
        let hier = d
            .strip_prefix("/sys/fs/cgroup")
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let has = |c: &str| hier.split(',').any(|h| h == c);
        if v2 {
            sample_v2(&d, machine_mem, &mut out);
            continue;
        }
        if has("memory") {
            let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            let mut limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(0);
            // No limit reads as a page-rounded i64::MAX; dockerd shows the host's memory.
            if limit > machine_mem && machine_mem > 0 {
                limit = machine_mem;
            }
            out.memory = MemorySample {
                usage: Some(usage),
                max_usage: Some(read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0)),
                failcnt: Some(read_u64(&d.join("memory.failcnt")).unwrap_or(0)),
                limit: Some(limit),
                stats: Some(
                    read(&d.join("memory.stat"))
                        .map(|s| flat_keyed(&s))
                        .unwrap_or_default(),
                ),
            };
        }
        if has("cpuacct") {
            let u = &mut out.cpu;
            u.total_usage = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
            u.percpu_usage = Some(
                read(&d.join("cpuacct.usage_percpu"))
                    .map(|s| {
                        s.split_whitespace()
                            .filter_map(|v| v.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            );
            // cpuacct.stat counts USER_HZ ticks.
            let st = read(&d.join("cpuacct.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default();
            u.usage_in_usermode = st.get("user").copied().unwrap_or(0) * 10_000_000;
            u.usage_in_kernelmode = st.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        if has("cpu") {
            let st = read(&d.join("cpu.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default();
            let c = &mut out.cpu;
            c.periods = st.get("nr_periods").copied().unwrap_or(0);
            c.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            c.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
        }
        if has("pids") {
            out.pids = ContainerPidsStats {
                current: Some(read_u64(&d.join("pids.current")).unwrap_or(0)),
                limit: read_u64(&d.join("pids.max")),
            };
        }
        if has("blkio") {
            let f = |n: &str| Some(parse_blkio_v1(&read(&d.join(n)).unwrap_or_default()));
            out.blkio = BlkioSample {
                io_service_bytes_recursive: f("blkio.throttle.io_service_bytes_recursive"),
                io_serviced_recursive: f("blkio.throttle.io_serviced_recursive"),
            };
        }
    }
    let proc_stat = read(Path::new("/proc/stat")).unwrap_or_default();
    out.cpu.system_cpu_usage = system_cpu_usage(&proc_stat);
    out.cpu.online_cpus = online_cpus(&proc_stat);
    out
}

fn sample_v2(d: &Path, machine_mem: u64, out: &mut CgroupSample) {
    let st = read(&d.join("cpu.stat"))
        .map(|s| flat_keyed(&s))
        .unwrap_or_default();
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    let c = &mut out.cpu;
    c.total_usage = us("usage_usec");
    c.usage_in_usermode = us("user_usec");
    c.usage_in_kernelmode = us("system_usec");
    c.periods = st.get("nr_periods").copied().unwrap_or(0);
    c.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    c.throttled_time = us("throttled_usec");
    let limit = read_u64(&d.join("memory.max"))
        .filter(|l| *l < machine_mem || machine_mem == 0)
        .unwrap_or(machine_mem);
    out.memory = MemorySample {
        usage: Some(read_u64(&d.join("memory.current")).unwrap_or(0)),
        limit: Some(limit),
        stats: Some(
            read(&d.join("memory.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default(),
        ),
        ..Default::default()
    };
    out.pids = ContainerPidsStats {
        current: Some(read_u64(&d.join("pids.current")).unwrap_or(0)),
        limit: read_u64(&d.join("pids.max")),
    };
    let (bytes, ios) = parse_io_stat(&read(&d.join("io.stat")).unwrap_or_default());
    out.blkio = BlkioSample {
        io_service_bytes_recursive: Some(bytes),
        io_serviced_recursive: Some(ios),
    };
}

impl Engine {
    /// One stats sample of a container (blocking file reads: call it off the
    /// async workers).
    pub fn stats(&self, key: &str) -> Result<StatsSample> {
        let rec = self.find_container(key)?;
        let mut out = StatsSample {
            read: crate::util::now_rfc3339(),
            name: rec.name.clone(),
            id: rec.id.clone(),
            cgroup: None,
            networks: Vec::new(),
        };
        if rec.state.running() {
            out.cgroup = Some(sample_cgroups(&rec.cgroups_path));
            // In the daemon's own netns (`--network host`) the container has
            // no endpoints of its own; dockerd reports no networks then.
            let own_netns = std::fs::read_link(format!("/proc/{}/ns/net", rec.state.pid))
                .ok()
                .filter(|ns| std::fs::read_link("/proc/self/ns/net").ok().as_ref() != Some(ns));
            if rec.state.pid > 0 && own_netns.is_some() {
                let p = PathBuf::from(format!("/proc/{}/net/dev", rec.state.pid));
                if let Some(s) = read(&p) {
                    out.networks = parse_net_dev(&s);
                }
            }
        } else {
            // A stopped container: dockerd answers with zeroed counters.
            out.read = crate::util::ZERO_TIME.into();
        }
        Ok(out)
    }

    /// Whether the container is running (a stats stream of a stopped one is
    /// a single zeroed object, as dockerd's).
    pub fn container_running(&self, key: &str) -> Result<bool> {
        Ok(self.find_container(key)?.state.running())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_usage_sums_seven_fields() {
        let s = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(system_cpu_usage(s), 28 * 10_000_000);
        assert_eq!(online_cpus(s), 2);
    }

    #[test]
    fn net_dev_skips_lo() {
        let s = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1500 12 1 2 0 0 0 0 900 7 3 4 0 0 0 0\n";
        let n = parse_net_dev(s);
        assert_eq!(n.len(), 1);
        let (name, eth0) = &n[0];
        assert_eq!(name, "eth0");
        assert_eq!(eth0.rx_bytes, Some(1500));
        assert_eq!(eth0.tx_packets, Some(7));
        assert_eq!(eth0.tx_dropped, Some(4));
    }

    #[test]
    fn blkio_parsers() {
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(v1[1], blkio_entry(8, 0, "Write", 8192));
        let (b, i) = parse_io_stat("259:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n");
        assert_eq!(b[0].op.as_deref(), Some("read"));
        assert_eq!(b[1].value, Some(200));
        assert_eq!(i[1], blkio_entry(259, 0, "write", 4));
    }
}
