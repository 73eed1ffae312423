//! Issue #11 item 9: a full data root is recoverable from Pier itself.
//!
//! The daemon's data root is a 64 MiB tmpfs. A container fills it; then exits
//! must still be recorded (never "Up" for a dead process), and stop, kill,
//! rm -f, rmi, prune and volume rm must work, first with the daemon's space
//! reserve, then with even that eaten, by freeing files before writing and
//! keeping exit records in memory until space returns. Nothing else is lost.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pier_tests::{wait_until, OutputExt, TestDaemon};

fn mount_small_tmpfs(data_root: &Path) {
    let o = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m,mode=0710", "pier-disk-test"])
        .arg(data_root)
        .output()
        .expect("run mount");
    assert!(o.status.success(), "mount tmpfs: {}", o.describe());
}

fn avail_bytes(p: &Path) -> u64 {
    let o = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df {}: {}", p.display(), o.describe()))
}

/// Writes `path` until the filesystem refuses (ENOSPC).
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create filler");
    let block = [0u8; 4096];
    loop {
        match f.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

fn state(d: &TestDaemon, ctr: &str) -> (String, i64) {
    let v = d.inspect(ctr);
    (
        v["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["State"]["ExitCode"].as_i64().unwrap_or(-1),
    )
}

fn wait_exited(d: &TestDaemon, ctr: &str, code: i64) {
    let ok = wait_until(Duration::from_secs(20), || {
        state(d, ctr) == ("exited".to_string(), code)
    });
    assert!(
        ok,
        "{ctr} should be exited ({code}), is {:?}\n{}",
        state(d, ctr),
        d.log_tail(30)
    );
    let ps = d.pier_ok(&["ps", "-a"]);
    let row = ps
        .lines()
        .find(|l| l.split_whitespace().last() == Some(ctr))
        .unwrap_or_else(|| panic!("{ctr} not in ps -a:\n{ps}"));
    assert!(
        row.contains(&format!("Exited ({code})")) && !row.contains(" Up "),
        "{row}"
    );
}

fn run_d(d: &TestDaemon, name: &str, cmd: &str) {
    d.pier_ok(&["run", "-d", "--name", name, "busybox", "sh", "-c", cmd]);
}

/// The shell exits 3 on SIGTERM (so its exit code shows who recorded it).
const TRAP: &str = "trap 'exit 3' TERM; while true; do sleep 0.1; done";

#[test]
fn a_full_data_root_is_recoverable_from_pier_itself() {
    let d = TestDaemon::start_on_data_root(mount_small_tmpfs);
    let data = d.data_root.clone();
    d.import_busybox();
    assert!(
        data.join(".reserve").is_file(),
        "the daemon keeps a space reserve under its data root"
    );

    // Records that must survive all of this.
    d.pier_ok(&["create", "--name", "keep", "busybox", "true"]);
    d.pier_ok(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo x > /x",
    ]);
    d.pier_ok(&["volume", "create", "keepvol"]);
    // Things to remove once the disk is full.
    d.pier_ok(&["commit", "done", "img2:latest"]);
    d.pier_ok(&["commit", "done"]); // dangling, for image prune
    d.pier_ok(&["volume", "create", "gone"]);
    d.pier_ok(&[
        "run",
        "--name",
        "pr1",
        "--label",
        "prune=yes",
        "busybox",
        "true",
    ]);
    for name in ["stopme", "killme", "rmme", "stopme2"] {
        run_d(&d, name, "exec sleep 1000");
    }
    run_d(&d, "dies2", TRAP);
    run_d(&d, "dies3", TRAP);

    // A container writes until the disk is full, then exits: its exit is
    // recorded (the first write to fail gives the reserve back).
    run_d(
        &d,
        "filler",
        "dd if=/dev/zero of=/fill bs=1M; dd if=/dev/zero of=/fill2 bs=4k; exit 3",
    );
    wait_exited(&d, "filler", 3);

    // Phase A: the disk is full but the reserve makes room for removals.
    d.pier_ok(&["stop", "-t", "1", "stopme"]);
    wait_exited(&d, "stopme", 137);
    d.pier_ok(&["kill", "killme"]);
    wait_exited(&d, "killme", 137);
    d.pier_ok(&["rm", "-f", "rmme"]);
    d.pier_ok(&["rmi", "img2"]);
    d.pier_ok(&["container", "prune", "-f", "--filter", "label=prune=yes"]);
    let pruned = d.pier_ok(&["image", "prune", "-f"]);
    assert!(pruned.contains("deleted: sha256:"), "{pruned}");
    d.pier_ok(&["volume", "rm", "gone"]);
    for gone in ["rmme", "pr1"] {
        let o = d.pier(&["inspect", gone]);
        assert_ne!(o.code(), 0, "{gone} should be gone: {}", o.describe());
    }
    assert_ne!(d.pier(&["image", "inspect", "img2"]).code(), 0);

    // Phase B: something else eats what the reserve gave back. Exits and
    // stops are still recorded, and the filler can still be removed.
    fill(&data.join("topup"));
    assert!(avail_bytes(&data) < 64 << 10, "{}", avail_bytes(&data));
    d.pier_ok(&["kill", "-s", "TERM", "dies2"]);
    wait_exited(&d, "dies2", 3);
    d.pier_ok(&["stop", "-t", "1", "stopme2"]);
    wait_exited(&d, "stopme2", 137);

    // The daemon stops (the records above live only in its memory) and a
    // container exits while it is away: a daemon started on the full disk
    // still reports all three as exited, from the shims' exit files.
    let pid = d.container_pid("dies3");
    let mut d = d;
    d.stop();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill dies3");
    assert!(wait_until(Duration::from_secs(10), || !pier_tests::alive(
        pid
    )));
    d.restart();
    wait_exited(&d, "dies3", 3);
    wait_exited(&d, "dies2", 3);
    wait_exited(&d, "stopme2", 137);

    d.pier_ok(&["rm", "-f", "filler"]);
    assert!(
        avail_bytes(&data) > 32 << 20,
        "removing the filler freed its space: {}",
        avail_bytes(&data)
    );
    std::fs::remove_file(data.join("topup")).expect("rm topup");

    // Space is back: the reserve is taken again and the records kept in
    // memory are written (a restart reads them from the database).
    assert!(
        wait_until(Duration::from_secs(15), || data.join(".reserve").is_file()),
        "the reserve is not taken again\n{}",
        d.log_tail(30)
    );
    d.restart();
    assert_eq!(state(&d, "dies2"), ("exited".into(), 3));
    assert_eq!(state(&d, "dies3"), ("exited".into(), 3));
    assert_eq!(state(&d, "stopme2"), ("exited".into(), 137));
    assert_eq!(state(&d, "stopme"), ("exited".into(), 137));
    assert_ne!(d.pier(&["inspect", "filler"]).code(), 0, "filler is gone");
    assert_eq!(state(&d, "keep"), ("created".into(), 0));
    assert_eq!(state(&d, "done"), ("exited".into(), 0));
    let vols = d.pier_ok(&["volume", "ls", "-q"]);
    assert!(
        vols.lines().any(|l| l == "keepvol") && !vols.contains("gone"),
        "{vols}"
    );

    // And everything works as before.
    assert_eq!(
        d.pier_ok(&["run", "--rm", "busybox", "echo", "ok"]).trim(),
        "ok"
    );
    d.pier_ok(&[
        "rm", "-f", "keep", "done", "stopme", "killme", "stopme2", "dies2", "dies3",
    ]);
    d.pier_ok(&["rmi", "busybox"]);
    d.pier_ok(&["volume", "rm", "keepvol"]);
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    // The tmpfs on the data root is undone by the harness (mounts below the
    // test's roots); nothing else may be mounted there.
    let mounts = pier_tests::cleanup::mounts_under(&d.data_root);
    assert_eq!(mounts, vec![d.data_root.clone()], "{mounts:?}");
}
