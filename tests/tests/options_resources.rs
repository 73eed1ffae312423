//! Issue #15: every resource flag lands in the container's cgroups (or its
//! process), or is refused with exit 125 / 400 when the host cannot apply it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pier_tests::{cgroup_value, OutputExt, TestDaemon};
use serde_json::json;

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn run_d(d: &TestDaemon, flags: &[&str]) -> (String, i32) {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    let id = d.pier_ok(&args).trim().to_string();
    let pid = d.container_pid(&id);
    (id, pid)
}

fn refused(d: &TestDaemon, flags: &[&str], msg: &str) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    let o = d.pier(&args);
    assert_eq!(o.code(), 125, "{flags:?}: {}", o.describe());
    assert!(o.err().contains(msg), "{flags:?}: {}", o.describe());
}

/// The whole disk holding `/` as `(/dev/NAME, "major:minor")`.
fn root_disk() -> (String, String) {
    let dev = std::fs::metadata("/").unwrap().dev();
    let (maj, min) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{maj}:{min}")).unwrap();
    if sys.join("partition").exists() {
        sys.pop();
    }
    let mm = std::fs::read_to_string(sys.join("dev"))
        .unwrap()
        .trim()
        .to_string();
    let name = sys.file_name().unwrap().to_string_lossy().into_owned();
    (format!("/dev/{name}"), mm)
}

#[test]
fn cpuset_cpus_and_mems_pin_the_container_and_update_live() {
    let d = TestDaemon::with_busybox();
    let (id, pid) = run_d(&d, &["--cpuset-cpus", "1", "--cpuset-mems", "0"]);
    let cpus = cgroup_value(pid, "cpuset", "cpuset.cpus", "cpuset.cpus");
    assert_eq!(cpus.as_deref(), Some("1"));
    let mems = cgroup_value(pid, "cpuset", "cpuset.mems", "cpuset.mems");
    assert_eq!(mems.as_deref(), Some("0"));
    let status = d.pier_ok(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert!(status.trim().ends_with("\t1"), "{status}");
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(hc["CpusetCpus"], "1");
    assert_eq!(hc["CpusetMems"], "0");

    d.pier_ok(&["update", "--cpuset-cpus", "0", &id]);
    let cpus = cgroup_value(pid, "cpuset", "cpuset.cpus", "cpuset.cpus");
    assert_eq!(cpus.as_deref(), Some("0"));
    assert_eq!(d.inspect(&id)["HostConfig"]["CpusetCpus"], "0");
    d.pier_ok(&["rm", "-f", &id]);

    refused(
        &d,
        &["--cpuset-cpus", "64"],
        "Requested CPUs are not available",
    );
    refused(
        &d,
        &["--cpuset-cpus", "x"],
        "Invalid value x for cpuset cpus",
    );
    d.assert_clean();
}

#[test]
fn cpu_shares_period_and_quota_are_set_and_update_live() {
    let d = TestDaemon::with_busybox();
    let (id, pid) = run_d(
        &d,
        &[
            "--cpu-shares",
            "512",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
        ],
    );
    if v2() {
        let max = cgroup_value(pid, "cpu", "", "cpu.max");
        assert_eq!(max.as_deref(), Some("25000 50000"));
    } else {
        let v = |f| cgroup_value(pid, "cpu", f, "");
        assert_eq!(v("cpu.shares").as_deref(), Some("512"));
        assert_eq!(v("cpu.cfs_period_us").as_deref(), Some("50000"));
        assert_eq!(v("cpu.cfs_quota_us").as_deref(), Some("25000"));
    }
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(hc["CpuShares"], 512);
    assert_eq!(hc["CpuPeriod"], 50000);
    assert_eq!(hc["CpuQuota"], 25000);

    d.pier_ok(&["update", "--cpu-shares", "256", "--cpu-quota", "30000", &id]);
    if v2() {
        let max = cgroup_value(pid, "cpu", "", "cpu.max");
        assert_eq!(max.as_deref(), Some("30000 50000"));
    } else {
        let v = |f| cgroup_value(pid, "cpu", f, "");
        assert_eq!(v("cpu.shares").as_deref(), Some("256"));
        assert_eq!(v("cpu.cfs_quota_us").as_deref(), Some("30000"));
    }
    assert_eq!(d.inspect(&id)["HostConfig"]["CpuShares"], 256);
    d.pier_ok(&["update", "--pids-limit", "20", &id]);
    assert_eq!(
        cgroup_value(pid, "pids", "pids.max", "pids.max").as_deref(),
        Some("20")
    );
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

#[test]
fn memory_reservation_swap_and_swappiness_are_set() {
    let d = TestDaemon::with_busybox();
    let mut flags = vec![
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swap",
        "128m",
    ];
    if !v2() {
        flags.extend_from_slice(&["--memory-swappiness", "10"]);
    }
    let (id, pid) = run_d(&d, &flags);
    let m = |v1, v2| cgroup_value(pid, "memory", v1, v2);
    if v2() {
        assert_eq!(m("", "memory.low").as_deref(), Some("33554432"));
        assert_eq!(m("", "memory.swap.max").as_deref(), Some("67108864"));
    } else {
        assert_eq!(
            m("memory.soft_limit_in_bytes", "").as_deref(),
            Some("33554432")
        );
        assert_eq!(m("memory.swappiness", "").as_deref(), Some("10"));
        if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                m("memory.memsw.limit_in_bytes", "").as_deref(),
                Some("134217728")
            );
        }
    }
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(hc["MemoryReservation"], 32 << 20);
    assert_eq!(hc["MemorySwap"], 128 << 20);

    d.pier_ok(&["update", "--memory-reservation", "16m", &id]);
    let low = m("memory.soft_limit_in_bytes", "memory.low");
    assert_eq!(low.as_deref(), Some("16777216"));
    assert_eq!(d.inspect(&id)["HostConfig"]["MemoryReservation"], 16 << 20);
    d.pier_ok(&["rm", "-f", &id]);
    if v2() {
        refused(&d, &["--memory-swappiness", "10"], "memory swappiness");
    }
    d.assert_clean();
}

#[test]
fn oom_kill_disable_and_oom_score_adj_are_applied() {
    let d = TestDaemon::with_busybox();
    if v2() {
        refused(
            &d,
            &["--memory", "32m", "--oom-kill-disable"],
            "OomKillDisable",
        );
    } else {
        let (id, pid) = run_d(&d, &["--memory", "32m", "--oom-kill-disable"]);
        let ctl = cgroup_value(pid, "memory", "memory.oom_control", "").unwrap();
        assert!(ctl.contains("oom_kill_disable 1"), "{ctl}");
        assert_eq!(d.inspect(&id)["HostConfig"]["OomKillDisable"], true);
        d.pier_ok(&["rm", "-f", &id]);
        let (id, pid) = run_d(&d, &["--memory", "32m"]);
        let ctl = cgroup_value(pid, "memory", "memory.oom_control", "").unwrap();
        assert!(ctl.contains("oom_kill_disable 0"), "{ctl}");
        d.pier_ok(&["rm", "-f", &id]);
    }
    let (id, pid) = run_d(&d, &["--oom-score-adj", "300"]);
    let host = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(host.trim(), "300");
    let inside = d.pier_ok(&["exec", &id, "cat", "/proc/self/oom_score_adj"]);
    assert_eq!(inside.trim(), "300");
    assert_eq!(d.inspect(&id)["HostConfig"]["OomScoreAdj"], 300);
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

#[test]
fn device_throttles_land_in_the_block_io_cgroup() {
    let d = TestDaemon::with_busybox();
    let (disk, mm) = root_disk();
    let (id, pid) = run_d(
        &d,
        &[
            "--device-read-bps",
            &format!("{disk}:1mb"),
            "--device-write-bps",
            &format!("{disk}:2mb"),
            "--device-read-iops",
            &format!("{disk}:100"),
            "--device-write-iops",
            &format!("{disk}:200"),
        ],
    );
    if v2() {
        let max = cgroup_value(pid, "io", "", "io.max").unwrap();
        let want = format!("{mm} rbps=1048576 wbps=2097152 riops=100 wiops=200");
        assert!(max.contains(&want), "{max}");
    } else {
        let v = |f| cgroup_value(pid, "blkio", f, "").unwrap();
        assert_eq!(v("blkio.throttle.read_bps_device"), format!("{mm} 1048576"));
        assert_eq!(
            v("blkio.throttle.write_bps_device"),
            format!("{mm} 2097152")
        );
        assert_eq!(v("blkio.throttle.read_iops_device"), format!("{mm} 100"));
        assert_eq!(v("blkio.throttle.write_iops_device"), format!("{mm} 200"));
    }
    let hc = &d.inspect(&id)["HostConfig"];
    assert_eq!(hc["BlkioDeviceReadBps"][0]["Path"], disk.as_str());
    assert_eq!(hc["BlkioDeviceReadBps"][0]["Rate"], 1 << 20);
    assert_eq!(hc["BlkioDeviceWriteIOps"][0]["Rate"], 200);
    d.pier_ok(&["rm", "-f", &id]);

    refused(
        &d,
        &["--device-read-bps", "/dev/null:1mb"],
        "/dev/null is not a block device",
    );
    refused(
        &d,
        &["--device-read-bps", "vda:1mb"],
        "bad format for device path",
    );
    refused(
        &d,
        &["--device-write-iops", &format!("{disk}:1mb")],
        "invalid rate for device",
    );
    d.assert_clean();
}

/// Applied when the host has a proportional-weight I/O scheduler, refused
/// (not dropped, as Docker does) when it has none.
#[test]
fn blkio_weight_is_applied_or_refused() {
    let d = TestDaemon::with_busybox();
    let (disk, _) = root_disk();
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists());
    match weight_file {
        Some(f) if !v2() => {
            let (id, pid) = run_d(&d, &["--blkio-weight", "300"]);
            let w = cgroup_value(pid, "blkio", f, "").unwrap();
            assert!(w.contains("300"), "{w}");
            d.pier_ok(&["update", "--blkio-weight", "400", &id]);
            let w = cgroup_value(pid, "blkio", f, "").unwrap();
            assert!(w.contains("400"), "{w}");
            d.pier_ok(&["rm", "-f", &id]);
        }
        _ if v2() => {}
        _ => {
            refused(
                &d,
                &["--blkio-weight", "300"],
                "does not support Block I/O weight",
            );
            let dev = format!("{disk}:200");
            refused(
                &d,
                &["--blkio-weight-device", &dev],
                "Block I/O weight_device",
            );
            let r = d.http(
                "POST",
                "/v1.43/containers/create",
                Some("application/json"),
                json!({"Image": "busybox", "HostConfig": {"BlkioWeight": 300}})
                    .to_string()
                    .as_bytes(),
            );
            assert_eq!(r.status, 400, "{}", r.text());
            assert!(r.text().contains("Block I/O weight"), "{}", r.text());
        }
    }
    refused(
        &d,
        &["--blkio-weight", "5"],
        "Range of blkio weight is from 10 to 1000",
    );
    d.assert_clean();
}

#[test]
fn kernel_memory_and_realtime_cpu_are_refused() {
    let d = TestDaemon::with_busybox();
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        json!({"Image": "busybox", "HostConfig": {"CpuRealtimeRuntime": 950000}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("not supported by Pier: CpuRealtimeRuntime"),
        "{}",
        r.text()
    );
    refused(
        &d,
        &["--kernel-memory", "64m"],
        "not supported by Pier: --kernel-memory",
    );
    // The API's models no longer carry these fields: a set one is refused, not dropped.
    for key in ["KernelMemory", "KernelMemoryTCP"] {
        let r = d.http(
            "POST",
            "/v1.43/containers/create",
            Some("application/json"),
            json!({"Image": "busybox", "HostConfig": {key: 64 << 20}})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r.status, 400, "{key}: {}", r.text());
        assert!(
            r.text().contains(&format!("not supported by Pier: {key}")),
            "{}",
            r.text()
        );
    }
    // Zero asks for nothing (docker-py and old CLIs send it).
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        json!({"Image": "busybox", "HostConfig": {"KernelMemory": 0}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let zero = r.json()["Id"].as_str().unwrap().to_string();
    d.pier_ok(&["rm", &zero]);
    let (id, _) = run_d(&d, &[]);
    let o = d.pier(&["update", "--kernel-memory", "64m", &id]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("--kernel-memory"), "{}", o.describe());
    let r = d.http(
        "POST",
        &format!("/v1.43/containers/{id}/update"),
        Some("application/json"),
        json!({"KernelMemory": 64 << 20}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("not supported by Pier: KernelMemory"),
        "{}",
        r.text()
    );
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

/// The same fields as docker-py sends them.
#[test]
fn api_fields_reach_the_cgroups_and_update_refuses_what_it_cannot_change() {
    let d = TestDaemon::with_busybox();
    let (disk, mm) = root_disk();
    let mut hc = json!({
        "CpusetCpus": "0",
        "MemoryReservation": 32 << 20,
        "OomScoreAdj": 200,
        "BlkioDeviceReadBps": [{"Path": disk, "Rate": 4096}],
    });
    if !v2() {
        hc["OomKillDisable"] = json!(true);
        hc["Memory"] = json!(64 << 20);
    }
    let body = json!({"Image": "busybox", "Cmd": ["sleep", "1000"], "HostConfig": hc});
    let r = d.http(
        "POST",
        "/v1.43/containers/create",
        Some("application/json"),
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    d.pier_ok(&["start", &id]);
    let pid = d.container_pid(&id);
    let cpus = cgroup_value(pid, "cpuset", "cpuset.cpus", "cpuset.cpus");
    assert_eq!(cpus.as_deref(), Some("0"));
    let low = cgroup_value(pid, "memory", "memory.soft_limit_in_bytes", "memory.low");
    assert_eq!(low.as_deref(), Some("33554432"));
    let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(adj.trim(), "200");
    let bps = cgroup_value(pid, "blkio", "blkio.throttle.read_bps_device", "io.max").unwrap();
    assert!(
        bps.contains(&format!("{mm} ")) && bps.contains("4096"),
        "{bps}"
    );
    if !v2() {
        let ctl = cgroup_value(pid, "memory", "memory.oom_control", "").unwrap();
        assert!(ctl.contains("oom_kill_disable 1"), "{ctl}");
    }

    let r = d.http(
        "POST",
        &format!("/v1.43/containers/{id}/update"),
        Some("application/json"),
        json!({"BlkioDeviceReadBps": [{"Path": disk, "Rate": 8192}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("not supported by Pier: updating BlkioDeviceReadBps"),
        "{}",
        r.text()
    );
    let r = d.http(
        "POST",
        &format!("/v1.43/containers/{id}/update"),
        Some("application/json"),
        json!({"CpusetCpus": "1"}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cpus = cgroup_value(pid, "cpuset", "cpuset.cpus", "cpuset.cpus");
    assert_eq!(cpus.as_deref(), Some("1"));
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}
