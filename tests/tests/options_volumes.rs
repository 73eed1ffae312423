//! Issue #15: options of the `local` volume driver (`type`, `device`, `o`)
//! are mounted like Docker's: when a container using the volume starts, and
//! unmounted when the last one stops. Unknown options are refused.

use std::path::{Path, PathBuf};

use std::time::Duration;

use pier_tests::{wait_until, OutputExt, TestDaemon};

/// Whether `p` is a mount point in this (the daemon's) mount namespace.
fn mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

fn data_dir(d: &TestDaemon, vol: &str) -> PathBuf {
    let out = d.pier_ok(&["volume", "inspect", vol]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    PathBuf::from(v[0]["Mountpoint"].as_str().unwrap())
}

#[test]
fn bind_device_volume_shows_the_host_directory() {
    let d = TestDaemon::with_busybox();
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello\n").unwrap();
    let dev = format!("device={}", host.display());
    d.pier_ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "hostvol",
    ]);
    let v = d.pier_ok(&["volume", "inspect", "hostvol"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v[0]["Options"]["type"], "none");
    assert_eq!(v[0]["Options"]["o"], "bind");
    let data = data_dir(&d, "hostvol");
    assert!(!mounted(&data));

    let out = d.pier_ok(&[
        "run",
        "--rm",
        "-v",
        "hostvol:/data",
        "busybox",
        "sh",
        "-c",
        "cat /data/from-host && echo back > /data/from-container",
    ]);
    assert_eq!(out.trim(), "hello");
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "back\n"
    );
    // Unmounted with its last user (the exit is recorded just after the
    // CLI saw it), and the host's files outlive the volume.
    assert!(
        wait_until(Duration::from_secs(10), || !mounted(&data)),
        "{} still mounted",
        data.display()
    );
    d.pier_ok(&["volume", "rm", "hostvol"]);
    assert!(host.join("from-host").exists());
    assert!(host.join("from-container").exists());
    d.assert_clean();
}

#[test]
fn tmpfs_volume_is_mounted_while_any_user_runs() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m,uid=1000",
        "tmpvol",
    ]);
    let data = data_dir(&d, "tmpvol");
    let a = d
        .pier_ok(&["run", "-d", "-v", "tmpvol:/t", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    assert!(mounted(&data));
    let m = d.pier_ok(&["exec", &a, "grep", " /t ", "/proc/mounts"]);
    assert!(m.starts_with("tmpfs /t tmpfs"), "{m}");
    assert!(m.contains("size=1024k"), "{m}");
    assert!(m.contains("uid=1000"), "{m}");
    d.pier_ok(&["exec", &a, "sh", "-c", "echo one > /t/f"]);
    let b = d
        .pier_ok(&["run", "-d", "-v", "tmpvol:/t", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let f = d.pier_ok(&["exec", &b, "cat", "/t/f"]);
    assert_eq!(f.trim(), "one");

    d.pier_ok(&["stop", "-t", "0", &a]);
    assert!(mounted(&data), "unmounted while another container uses it");
    d.pier_ok(&["stop", "-t", "0", &b]);
    assert!(!mounted(&data), "still mounted after its last user stopped");
    // A tmpfs starts empty at the next mount.
    let f = d.pier_ok(&["run", "--rm", "-v", "tmpvol:/t", "busybox", "ls", "/t"]);
    assert_eq!(f.trim(), "");
    d.pier_ok(&["rm", &a, &b]);
    d.pier_ok(&["volume", "rm", "tmpvol"]);
    d.assert_clean();
}

#[test]
fn mount_flag_volume_opts_and_failures() {
    let d = TestDaemon::with_busybox();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=mvol,target=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
        "busybox",
        "grep",
        " /m ",
        "/proc/mounts",
    ]);
    assert!(
        out.contains("tmpfs /m tmpfs") && out.contains("size=2048k"),
        "{out}"
    );
    d.pier_ok(&["volume", "rm", "mvol"]);

    // A device that is not there fails the start, as Docker's does.
    let missing = d.root.join("nowhere");
    let dev = format!("device={}", missing.display());
    d.pier_ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "badvol",
    ]);
    let o = d.pier(&["run", "--rm", "-v", "badvol:/x", "busybox", "true"]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(
        o.err().contains("failed to mount local volume"),
        "{}",
        o.describe()
    );
    d.pier_ok(&["volume", "rm", "badvol"]);

    for (opts, msg) in [
        (&["-o", "foo=bar"][..], "invalid option: \"foo\""),
        (
            &["-o", "type=tmpfs"][..],
            "missing required option: \"device\"",
        ),
        (
            &["-o", "size=1g"][..],
            "quota size requested but no quota support",
        ),
    ] {
        let mut args = vec!["volume", "create"];
        args.extend_from_slice(opts);
        args.push("refused");
        let o = d.pier(&args);
        assert_ne!(o.code(), 0, "{opts:?}: {}", o.describe());
        assert!(o.err().contains(msg), "{opts:?}: {}", o.describe());
    }
    let r = d.http(
        "POST",
        "/volumes/create",
        Some("application/json"),
        br#"{"Name":"apivol","DriverOpts":{"bogus":"1"}}"#,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // Compose's driver_opts arrive as DriverOpts.
    let r = d.http(
        "POST",
        "/volumes/create",
        Some("application/json"),
        br#"{"Name":"apivol","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "-v",
        "apivol:/a",
        "busybox",
        "grep",
        " /a ",
        "/proc/mounts",
    ]);
    assert!(out.contains("tmpfs /a tmpfs"), "{out}");
    d.pier_ok(&["volume", "rm", "apivol"]);
    assert!(d.pier(&["volume", "inspect", "refused"]).code() != 0);
    d.assert_clean();
}

#[test]
fn a_volume_whose_user_died_while_the_daemon_was_away_is_unmounted() {
    let mut d = TestDaemon::with_busybox();
    d.pier_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "awayvol",
    ]);
    let data = data_dir(&d, "awayvol");
    let id = d
        .pier_ok(&["run", "-d", "-v", "awayvol:/t", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let pid = d.container_pid(&id);
    assert!(mounted(&data));
    d.kill9();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || !pier_tests::alive(
        pid
    )));
    d.restart();
    assert!(
        wait_until(Duration::from_secs(10), || !mounted(&data)),
        "{} still mounted after the restart",
        data.display()
    );
    // And it mounts again for the next user.
    d.pier_ok(&["start", &id]);
    assert!(mounted(&data));
    d.pier_ok(&["rm", "-f", &id]);
    d.pier_ok(&["volume", "rm", "awayvol"]);
    d.assert_clean();
}
