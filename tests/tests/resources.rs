//! Resource limits land in the container's cgroups.

use std::time::Duration;

use pier_tests::{cgroup_value, wait_until, OutputExt, TestDaemon};

#[test]
fn memory_limit_is_set_in_the_cgroup() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&["run", "-d", "--memory", "32m", "busybox", "sleep", "1000"]);
    let id = id.trim().to_string();
    let pid = d.container_pid(&id);
    let limit = cgroup_value(pid, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(
        limit.as_deref(),
        Some("33554432"),
        "cgroups of {pid}: {:?}",
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
    );
    assert_eq!(d.inspect(&id)["HostConfig"]["Memory"], 33554432);
    // The cgroup sits below the daemon's --cgroup-parent.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .filter(|l| l.contains(":memory:"))
            .all(|l| l.contains(&d.cgroup_parent)),
        "{cg}"
    );
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

#[test]
fn pids_limit_is_set_and_enforced() {
    let d = TestDaemon::with_busybox();
    let id = d.pier_ok(&[
        "run",
        "-d",
        "--pids-limit",
        "10",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim().to_string();
    let pid = d.container_pid(&id);
    assert_eq!(
        cgroup_value(pid, "pids", "pids.max", "pids.max").as_deref(),
        Some("10")
    );
    d.pier_ok(&["rm", "-f", &id]);

    let o = d.pier(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait",
    ]);
    assert!(
        o.err().contains("fork"),
        "the 6th process must fail to fork: {}",
        o.describe()
    );
    d.assert_clean();
}

#[test]
fn memory_limit_kills_a_hog() {
    let d = TestDaemon::with_busybox();
    // 64 MiB of zeros held in a shell variable: far over a 16 MiB limit.
    let o = d.pier(&[
        "run",
        "--rm",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
    ]);
    // The kernel kills the shell (exit 137) or the `tr` feeding it; either way the
    // 64 MiB never fits.
    assert!(!o.out().contains("survived 67108864"), "{}", o.describe());
    assert!(wait_until(Duration::from_secs(5), || d
        .pier_ok(&["ps", "-aq"])
        .trim()
        .is_empty()));
    d.assert_clean();
}
