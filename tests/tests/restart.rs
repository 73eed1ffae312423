//! Containers outlive the daemon: kill -9 the daemon, restart it, and find them again.

use std::fs;
use std::time::Duration;

use pier_tests::{alive, short, wait_until, TestDaemon};

/// Waits (in the container) for a file the test drops through /proc/PID/root.
const GATED: &str = "echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; exit 7";

fn release(pid: i32) {
    fs::write(format!("/proc/{pid}/root/tmp/go"), "").expect("drop /tmp/go into the container");
}

#[test]
fn daemon_kill9_keeps_containers_and_records_exits() {
    let mut d = TestDaemon::serial_with_busybox();
    let a = d.pier_ok(&["run", "-d", "--name", "ctr-a", "busybox", "sh", "-c", GATED]);
    let a = a.trim().to_string();
    let b = d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "ctr-b",
        "busybox",
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.1; done; echo b-done; exit 9",
    ]);
    let b = b.trim().to_string();
    assert!(wait_until(Duration::from_secs(5), || d
        .pier_ok(&["logs", "ctr-a"])
        == "before\n"));
    let (pa, pb) = (d.container_pid(&a), d.container_pid(&b));

    d.kill9();
    assert!(alive(pa) && alive(pb), "containers die with the daemon");
    // b ends while no daemon runs: its shim must keep the exit code.
    release(pb);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pb)),
        "b did not end"
    );

    d.restart();
    let ps = d.pier_ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(short(&a)) && l.contains("Up")),
        "a is running after the restart:\n{ps}"
    );
    assert!(!ps.contains(short(&b)), "b ended:\n{ps}");
    let all = d.pier_ok(&["ps", "-a"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with(short(&b)) && l.contains("Exited (9)")),
        "{all}"
    );
    assert_eq!(d.inspect("ctr-b")["State"]["ExitCode"], 9);
    assert_eq!(d.pier_ok(&["logs", "ctr-b"]), "b-done\n");
    assert_eq!(d.pier_ok(&["logs", "ctr-a"]), "before\n");
    assert_eq!(
        d.container_pid("ctr-a"),
        pa,
        "the same process, not a restarted one"
    );

    // a ends under the new daemon: wait, logs and the exit code all work.
    release(pa);
    assert_eq!(d.pier_ok(&["wait", "ctr-a"]).trim(), "7");
    assert_eq!(d.pier_ok(&["logs", "ctr-a"]), "before\nafter\n");
    let v = d.inspect("ctr-a");
    assert_eq!(
        (
            v["State"]["Running"].clone(),
            v["State"]["ExitCode"].clone()
        ),
        (false.into(), 7.into())
    );

    // A graceful restart keeps everything too.
    let c = d.pier_ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let c = c.trim().to_string();
    let pc = d.container_pid(&c);
    d.restart();
    assert!(alive(pc));
    assert!(d.pier_ok(&["ps", "-q"]).contains(short(&c)));
    d.pier_ok(&["rm", "-f", &c, "ctr-a", "ctr-b"]);
    d.assert_clean();
}
