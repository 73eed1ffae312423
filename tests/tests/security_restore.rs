//! Issue #11, items 6 and 10: nothing runs or stays mounted that the daemon
//! does not know of.
//!
//! - A container whose shim is killed does not run on unseen: its processes
//!   are killed, it is recorded as Exited (137) with an error, and `rm`
//!   leaves no cgroup, mount or process; also when the shim dies while no
//!   daemon runs.
//! - A daemon killed (-9) in the middle of a build's RUN step leaves no
//!   mount, namespace, process or cgroup of the build after its restart,
//!   while a container started before keeps running.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pier_tests::cleanup::{cgroup_children, mounts_under};
use pier_tests::{alive, wait_until, TestDaemon};

/// The pid of the shim serving container `id` (not one of its helpers).
fn shim_pid(id: &str) -> i32 {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let shim = argv.first().is_some_and(|a| a.ends_with("pier-shim"));
        if shim && argv.windows(2).any(|w| w[0] == "--id" && w[1] == id) {
            found.push(pid);
        }
    }
    let ppid = |pid: i32| -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    let top: Vec<i32> = found
        .iter()
        .copied()
        .filter(|p| !found.contains(&ppid(*p)))
        .collect();
    assert_eq!(top.len(), 1, "shims of {id}: {found:?}");
    top[0]
}

/// Gone: no such process, or only its zombie left for a parent to reap.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

fn sigkill(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
}

/// Every process in the cgroups of `cgroup_parent`'s child `name`.
fn cgroup_procs(d: &TestDaemon, name: &str) -> Vec<i32> {
    let mut v: Vec<i32> = cgroup_children(&d.cgroup_parent)
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == name))
        .filter_map(|p| std::fs::read_to_string(p.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The processes of container `id` once there are `n` of them (a shell
/// forks its background job a moment after the start returns).
fn procs_once(d: &TestDaemon, id: &str, n: usize) -> Vec<i32> {
    wait_until(Duration::from_secs(5), || cgroup_procs(d, id).len() == n);
    let procs = cgroup_procs(d, id);
    assert_eq!(procs.len(), n, "{procs:?}");
    procs
}

fn assert_shim_death_recorded(d: &TestDaemon, id: &str) {
    let st = d.inspect(id)["State"].clone();
    assert_eq!(st["Status"], "exited", "{st}");
    assert_eq!(st["Running"], false, "{st}");
    assert_eq!(st["ExitCode"], 137, "{st}");
    let err = st["Error"].as_str().unwrap_or("");
    assert!(err.contains("shim") && err.contains("died"), "{st}");
    let ps = d.pier_ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
}

#[test]
fn a_killed_shim_takes_its_container_down() {
    let d = TestDaemon::with_busybox();
    let a = d
        .pier_ok(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "sleep 1001 & exec sleep 1000",
        ])
        .trim()
        .to_string();
    // A paused container: its frozen processes die only once thawed.
    let b = d
        .pier_ok(&["run", "-d", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    d.pier_ok(&["pause", &b]);
    let procs_a = procs_once(&d, &a, 2);
    let procs_b = procs_once(&d, &b, 1);

    for id in [&a, &b] {
        sigkill(shim_pid(id));
    }
    for pid in procs_a.iter().chain(&procs_b) {
        assert!(
            wait_until(Duration::from_secs(5), || gone(*pid)),
            "container process {pid} outlives its shim"
        );
    }
    for id in [&a, &b] {
        assert!(
            wait_until(Duration::from_secs(5), || d.inspect(id)["State"]["Status"]
                == "exited"),
            "{id} not recorded as exited"
        );
        assert_shim_death_recorded(&d, id);
        assert!(cgroup_procs(&d, id).is_empty());
    }
    // Startable again: nothing of the dead run is in the way.
    d.pier_ok(&["start", &a]);
    d.pier_ok(&["exec", &a, "true"]);
    d.pier_ok(&["rm", "-f", &a, &b]);
    d.assert_clean();
}

#[test]
fn a_shim_killed_while_no_daemon_runs_is_reaped_at_start() {
    let mut d = TestDaemon::with_busybox();
    let id = d
        .pier_ok(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "sleep 1001 & exec sleep 1000",
        ])
        .trim()
        .to_string();
    let procs = procs_once(&d, &id, 2);
    d.kill9();
    sigkill(shim_pid(&id));
    std::thread::sleep(Duration::from_millis(300));
    // Nobody is left who knows of them: the daemon must find them.
    assert!(procs.iter().all(|p| alive(*p) && !gone(*p)));

    d.restart();
    for pid in &procs {
        assert!(
            wait_until(Duration::from_secs(5), || gone(*pid)),
            "container process {pid} runs on after the restart"
        );
    }
    assert_shim_death_recorded(&d, &id);
    assert!(cgroup_children(&d.cgroup_parent).is_empty());
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

/// The paths of `d`'s roots that are mount points.
fn mounts(d: &TestDaemon) -> Vec<PathBuf> {
    d.roots().iter().flat_map(|r| mounts_under(r)).collect()
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill9_mid_build_leaves_nothing_after_restart() {
    let mut d = TestDaemon::with_busybox();
    let keep = d
        .pier_ok(&["run", "-d", "--name", "keep", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let keep_pid = d.container_pid(&keep);
    let keep_mounts = mounts(&d);

    let ctx = std::env::temp_dir().join(format!("pier-sec-build-{}", d.id));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo step-started && sleep 1000\n",
    )
    .unwrap();
    let mut build: Child = d
        .pier_cmd()
        .args(["build", "-t", "never"])
        .arg(&ctx)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pier build");
    let step_running = wait_until(Duration::from_secs(60), || {
        cgroup_children(&d.cgroup_parent).iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("build-"))
                && std::fs::read_to_string(p.join("cgroup.procs"))
                    .is_ok_and(|s| !s.trim().is_empty())
        })
    });
    assert!(step_running, "the RUN step never ran");
    // What the step holds: its root (overlay) and its namespace.
    let during = mounts(&d);
    assert!(
        during.len() >= keep_mounts.len() + 2,
        "build mounts: {during:?} (container's: {keep_mounts:?})"
    );
    // The step's cgroup can hold a runtime helper that is about to exit before the
    // step's own process joins it: look until the process is there.
    let step_procs_now = || -> Vec<i32> {
        d.leftover_procs()
            .into_iter()
            .map(|p| p.pid)
            .filter(|p| {
                let cg = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
                cg.contains("/build-")
            })
            .collect()
    };
    let mut step_procs = Vec::new();
    wait_until(Duration::from_secs(10), || {
        step_procs = step_procs_now();
        !step_procs.is_empty()
    });
    assert!(!step_procs.is_empty(), "no process of the RUN step");

    // The daemon dies before the client goes: a daemon that notices its client
    // leaving cancels the build, and this test is about a build it never finished.
    d.kill9();
    let _ = build.kill();
    let _ = build.wait();
    d.restart();

    // The container started before is untouched and usable.
    assert!(alive(keep_pid) && !gone(keep_pid), "keep died");
    assert_eq!(d.container_pid(&keep), keep_pid);
    assert_eq!(d.pier_ok(&["exec", "keep", "echo", "ok"]), "ok\n");
    let mut after = mounts(&d);
    let mut want = keep_mounts.clone();
    after.sort();
    want.sort();
    assert_eq!(after, want, "mounts after the restart");
    let cgroups: Vec<String> = cgroup_children(&d.cgroup_parent)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n != &keep)
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    for p in &step_procs {
        assert!(
            wait_until(Duration::from_secs(5), || gone(*p)),
            "process {p} of the RUN step survives"
        );
    }
    let others: Vec<_> = d
        .leftover_procs()
        .into_iter()
        .filter(|p| {
            let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid)).unwrap_or_default();
            !cg.contains(&keep) && !p.cmdline.contains(&keep) && !gone(p.pid)
        })
        .collect();
    assert!(others.is_empty(), "processes left: {others:?}");
    assert_eq!(names(&d.exec_root.join("netns")), vec![keep.clone()]);
    assert_eq!(names(&d.exec_root.join("runtime")), vec![keep.clone()]);
    assert_eq!(names(&d.exec_root.join("containers")), vec![keep.clone()]);
    assert!(names(&d.data_root.join("build-run")).is_empty());
    let build_roots: Vec<String> = names(&d.data_root.join("snapshots/containers"))
        .into_iter()
        .filter(|n| n.starts_with("build-"))
        .collect();
    assert!(build_roots.is_empty(), "build roots left: {build_roots:?}");
    // And again: a second restart finds nothing more to do and keeps `keep`.
    d.restart();
    assert_eq!(d.pier_ok(&["exec", "keep", "echo", "ok"]), "ok\n");
    d.pier_ok(&["rm", "-f", "keep"]);
    let _ = std::fs::remove_dir_all(&ctx);
    d.assert_clean();
}
