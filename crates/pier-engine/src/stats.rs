//! `GET /containers/{id}/stats`: one sample of a container's cgroup counters,
//! shaped as Docker's `StatsResponse`. Deltas (`precpu_stats`, `preread`) are
//! the caller's job: it keeps the previous sample and passes it to
//! [`with_previous`], as dockerd's stats publisher does per subscriber.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::system::{cgroup_dirs, mem_total};
use crate::{Engine, Result};

/// Docker's zero time, used for `preread` when there is no previous sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

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
pub(crate) fn parse_net_dev(s: &str) -> Map<String, Value> {
    let mut out = Map::new();
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
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    out
}

/// cgroup v1 blkio `*_recursive` lines (`8:0 Read 4096`, and a `Total` line)
/// as Docker's `BlkioStatEntry` list.
pub(crate) fn parse_blkio_v1(s: &str) -> Vec<Value> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(json!({
                "major": maj.parse::<u64>().ok()?, "minor": min.parse::<u64>().ok()?,
                "op": f[1], "value": f[2].parse::<u64>().ok()?,
            }))
        })
        .collect()
}

/// cgroup v2 `io.stat` (`8:0 rbytes=.. wbytes=.. rios=.. wios=..`) as the two
/// lists dockerd fills from it: bytes and operations, ops `read`/`write`.
pub(crate) fn parse_io_stat(s: &str) -> (Vec<Value>, Vec<Value>) {
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
            list.push(json!({"major": maj, "minor": min, "op": op, "value": v}));
        }
    }
    (bytes, ios)
}

/// The counters of one running container, read from its cgroups.
fn sample_cgroups(cgroups_path: &str, out: &mut Map<String, Value>) {
    let machine_mem = mem_total();
    let mut cpu = json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    let mut mem = Map::new();
    let mut pids = Map::new();
    let mut blkio = json!({
        "io_service_bytes_recursive": null, "io_serviced_recursive": null,
        "io_queue_recursive": null, "io_service_time_recursive": null,
        "io_wait_time_recursive": null, "io_merged_recursive": null,
        "io_time_recursive": null, "sectors_recursive": null,
    });
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
            sample_v2(&d, machine_mem, &mut cpu, &mut mem, &mut pids, &mut blkio);
            continue;
        }
        if has("memory") {
            let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            let mut limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(0);
            // No limit reads as a page-rounded i64::MAX; dockerd shows the host's memory.
            if limit > machine_mem && machine_mem > 0 {
                limit = machine_mem;
            }
            mem.insert("usage".into(), usage.into());
            mem.insert(
                "max_usage".into(),
                read_u64(&d.join("memory.max_usage_in_bytes"))
                    .unwrap_or(0)
                    .into(),
            );
            mem.insert(
                "failcnt".into(),
                read_u64(&d.join("memory.failcnt")).unwrap_or(0).into(),
            );
            mem.insert("limit".into(), limit.into());
            let stats = read(&d.join("memory.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default();
            mem.insert("stats".into(), json!(stats));
        }
        if has("cpuacct") {
            cpu["cpu_usage"]["total_usage"] =
                read_u64(&d.join("cpuacct.usage")).unwrap_or(0).into();
            let percpu: Vec<u64> = read(&d.join("cpuacct.usage_percpu"))
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|v| v.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            cpu["cpu_usage"]["percpu_usage"] = json!(percpu);
            // cpuacct.stat counts USER_HZ ticks.
            let st = read(&d.join("cpuacct.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default();
            cpu["cpu_usage"]["usage_in_usermode"] =
                (st.get("user").copied().unwrap_or(0) * 10_000_000).into();
            cpu["cpu_usage"]["usage_in_kernelmode"] =
                (st.get("system").copied().unwrap_or(0) * 10_000_000).into();
        }
        if has("cpu") {
            let st = read(&d.join("cpu.stat"))
                .map(|s| flat_keyed(&s))
                .unwrap_or_default();
            cpu["throttling_data"] = json!({
                "periods": st.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": st.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": st.get("throttled_time").copied().unwrap_or(0),
            });
        }
        if has("pids") {
            pids.insert(
                "current".into(),
                read_u64(&d.join("pids.current")).unwrap_or(0).into(),
            );
            if let Some(l) = read_u64(&d.join("pids.max")) {
                pids.insert("limit".into(), l.into());
            }
        }
        if has("blkio") {
            let f = |n: &str| json!(parse_blkio_v1(&read(&d.join(n)).unwrap_or_default()));
            blkio["io_service_bytes_recursive"] = f("blkio.throttle.io_service_bytes_recursive");
            blkio["io_serviced_recursive"] = f("blkio.throttle.io_serviced_recursive");
        }
    }
    let proc_stat = read(Path::new("/proc/stat")).unwrap_or_default();
    cpu["system_cpu_usage"] = system_cpu_usage(&proc_stat).into();
    cpu["online_cpus"] = online_cpus(&proc_stat).into();
    out.insert("cpu_stats".into(), cpu);
    out.insert("memory_stats".into(), Value::Object(mem));
    out.insert("pids_stats".into(), Value::Object(pids));
    out.insert("blkio_stats".into(), blkio);
}

fn sample_v2(
    d: &Path,
    machine_mem: u64,
    cpu: &mut Value,
    mem: &mut Map<String, Value>,
    pids: &mut Map<String, Value>,
    blkio: &mut Value,
) {
    let st = read(&d.join("cpu.stat"))
        .map(|s| flat_keyed(&s))
        .unwrap_or_default();
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    cpu["cpu_usage"] = json!({
        "total_usage": us("usage_usec"),
        "usage_in_usermode": us("user_usec"),
        "usage_in_kernelmode": us("system_usec"),
    });
    cpu["throttling_data"] = json!({
        "periods": st.get("nr_periods").copied().unwrap_or(0),
        "throttled_periods": st.get("nr_throttled").copied().unwrap_or(0),
        "throttled_time": us("throttled_usec"),
    });
    let limit = read_u64(&d.join("memory.max"))
        .filter(|l| *l < machine_mem || machine_mem == 0)
        .unwrap_or(machine_mem);
    mem.insert(
        "usage".into(),
        read_u64(&d.join("memory.current")).unwrap_or(0).into(),
    );
    mem.insert("limit".into(), limit.into());
    let stats = read(&d.join("memory.stat"))
        .map(|s| flat_keyed(&s))
        .unwrap_or_default();
    mem.insert("stats".into(), json!(stats));
    pids.insert(
        "current".into(),
        read_u64(&d.join("pids.current")).unwrap_or(0).into(),
    );
    if let Some(l) = read_u64(&d.join("pids.max")) {
        pids.insert("limit".into(), l.into());
    }
    let (bytes, ios) = parse_io_stat(&read(&d.join("io.stat")).unwrap_or_default());
    blkio["io_service_bytes_recursive"] = json!(bytes);
    blkio["io_serviced_recursive"] = json!(ios);
}

/// Fills `precpu_stats` and `preread` of `cur` from the sample before it.
pub fn with_previous(cur: &mut Value, prev: Option<&Value>) {
    let (pre, preread) = match prev {
        Some(p) => (p["cpu_stats"].clone(), p["read"].clone()),
        None => (
            json!({
                "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            }),
            ZERO_TIME.into(),
        ),
    };
    cur["precpu_stats"] = pre;
    cur["preread"] = preread;
}

impl Engine {
    /// One stats sample of a container (blocking file reads: call it off the
    /// async workers). `precpu_stats` is empty; see [`with_previous`].
    pub fn stats(&self, key: &str) -> Result<Value> {
        let rec = self.find_container(key)?;
        let mut out = Map::new();
        out.insert("read".into(), crate::util::now_rfc3339().into());
        out.insert("name".into(), format!("/{}", rec.name).into());
        out.insert("id".into(), rec.id.clone().into());
        out.insert("num_procs".into(), 0.into());
        out.insert("storage_stats".into(), json!({}));
        if rec.state.running() {
            sample_cgroups(&rec.cgroups_path, &mut out);
            // In the daemon's own netns (`--network host`) the container has
            // no endpoints of its own; dockerd reports no networks then.
            let own_netns = std::fs::read_link(format!("/proc/{}/ns/net", rec.state.pid))
                .ok()
                .filter(|ns| std::fs::read_link("/proc/self/ns/net").ok().as_ref() != Some(ns));
            if rec.state.pid > 0 && own_netns.is_some() {
                let p = PathBuf::from(format!("/proc/{}/net/dev", rec.state.pid));
                if let Some(s) = read(&p) {
                    let nets = parse_net_dev(&s);
                    if !nets.is_empty() {
                        out.insert("networks".into(), Value::Object(nets));
                    }
                }
            }
        } else {
            // A stopped container: dockerd answers with zeroed counters.
            out.insert("read".into(), ZERO_TIME.into());
            out.insert(
                "cpu_stats".into(),
                json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}),
            );
            out.insert("memory_stats".into(), json!({}));
            out.insert("pids_stats".into(), json!({}));
            out.insert(
                "blkio_stats".into(),
                json!({"io_service_bytes_recursive": null, "io_serviced_recursive": null}),
            );
        }
        let mut v = Value::Object(out);
        with_previous(&mut v, None);
        Ok(v)
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
        assert_eq!(n["eth0"]["rx_bytes"], 1500);
        assert_eq!(n["eth0"]["tx_packets"], 7);
        assert_eq!(n["eth0"]["tx_dropped"], 4);
    }

    #[test]
    fn blkio_parsers() {
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(v1[1]["op"], "Write");
        assert_eq!(v1[1]["value"], 8192);
        let (b, i) = parse_io_stat("259:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n");
        assert_eq!(b[0]["op"], "read");
        assert_eq!(b[1]["value"], 200);
        assert_eq!(i[1]["value"], 4);
    }

    #[test]
    fn previous_becomes_precpu() {
        let prev = json!({"read": "t0", "cpu_stats": {"cpu_usage": {"total_usage": 5}, "system_cpu_usage": 9}});
        let mut cur = json!({"read": "t1", "cpu_stats": {}});
        with_previous(&mut cur, Some(&prev));
        assert_eq!(cur["precpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(cur["preread"], "t0");
    }
}
