//! API 1.45 `VolumeOptions.Subpath` (`--mount volume-subpath=`): a directory
//! or file inside a volume is mounted, resolved beneath the volume by
//! descriptor, so a symlink in the volume never exposes the host.

use std::path::PathBuf;
use std::time::Duration;

use pier_tests::{wait_until, TestDaemon};

fn data_dir(d: &TestDaemon, vol: &str) -> PathBuf {
    let out = d.pier_ok(&["volume", "inspect", vol]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    PathBuf::from(v[0]["Mountpoint"].as_str().unwrap())
}

/// Subpath mounts of this daemon (in its containers' bundles).
fn subpath_mounts(d: &TestDaemon) -> usize {
    let below = format!("{}/containers/", d.exec_root.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&below) && p.contains("/subpaths/"))
        .count()
}

#[test]
fn subdir_and_file_of_a_volume_are_mounted_and_writable() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "sv"]);
    let data = data_dir(&d, "sv");
    std::fs::create_dir_all(data.join("sub/dir")).unwrap();
    std::fs::write(data.join("sub/dir/hello"), "from-dir\n").unwrap();
    std::fs::write(data.join("conf.txt"), "from-file\n").unwrap();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=sv,dst=/d,volume-subpath=sub/dir",
        "--mount",
        "type=volume,src=sv,dst=/f.txt,volume-subpath=conf.txt",
        "busybox",
        "sh",
        "-c",
        "cat /d/hello /f.txt && echo written > /d/new && echo changed > /f.txt && ls /d",
    ]);
    assert_eq!(out, "from-dir\nfrom-file\nhello\nnew\n");
    assert_eq!(
        std::fs::read_to_string(data.join("sub/dir/new")).unwrap(),
        "written\n"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("conf.txt")).unwrap(),
        "changed\n"
    );
    assert!(!data.join("hello").exists(), "only the subpath is exposed");

    // A symlink that stays inside the volume is followed (moby's "subdir link").
    std::fs::create_dir_all(data.join("hack")).unwrap();
    std::os::unix::fs::symlink("../sub/dir", data.join("hack/good")).unwrap();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=sv,dst=/g,volume-subpath=hack/good",
        "busybox",
        "cat",
        "/g/hello",
    ]);
    assert_eq!(out, "from-dir\n");

    // An empty subpath directory is filled from the image on the first start.
    std::fs::create_dir_all(data.join("bin")).unwrap();
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=sv,dst=/bin,volume-subpath=bin",
        "busybox",
        "ls",
        "/bin/busybox",
    ]);
    assert_eq!(out, "/bin/busybox\n");
    assert!(data.join("bin/busybox").exists());
    d.assert_clean();
}

#[test]
fn subpath_mounts_live_while_the_container_runs() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "lv"]);
    std::fs::create_dir_all(data_dir(&d, "lv").join("keep")).unwrap();
    let before = subpath_mounts(&d);
    assert_eq!(before, 0);
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--mount",
        "type=volume,src=lv,dst=/k,volume-subpath=keep",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(subpath_mounts(&d), before + 1);
    d.pier_ok(&["stop", "-t", "0", "sleeper"]);
    assert_eq!(subpath_mounts(&d), before, "unmounted at stop");
    d.pier_ok(&["start", "sleeper"]);
    assert_eq!(subpath_mounts(&d), before + 1);
    d.pier_ok(&["rm", "-f", "sleeper"]);
    assert_eq!(subpath_mounts(&d), before, "unmounted at rm");
    d.assert_clean();
}

#[test]
fn symlinks_out_of_the_volume_and_missing_subpaths_are_refused() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "ev"]);
    let data = data_dir(&d, "ev");
    std::os::unix::fs::symlink("/", data.join("root")).unwrap();
    std::os::unix::fs::symlink("../..", data.join("up")).unwrap();
    std::fs::create_dir_all(data.join("a")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("a/etc")).unwrap();
    for (i, sub) in ["root", "up", "a/etc", "root/etc"].iter().enumerate() {
        let name = format!("esc{i}");
        let m = format!("type=volume,src=ev,dst=/x,volume-subpath={sub}");
        let out = d.pier(&["run", "--name", &name, "--mount", &m, "busybox", "ls", "/x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{sub}: {err}");
        assert!(
            err.contains("path concatenation escapes the base directory"),
            "{sub}: {err}"
        );
        assert!(out.stdout.is_empty(), "{sub}: the host was listed");
        d.pier_ok(&["rm", "-f", &name]);
    }
    let out = d.pier(&[
        "run",
        "--name",
        "missing",
        "--mount",
        "type=volume,src=ev,dst=/x,volume-subpath=nope",
        "busybox",
        "true",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("cannot access path"), "{err}");
    d.pier_ok(&["rm", "-f", "missing"]);
    for sub in ["../../../../../../etc/passwd", "/etc"] {
        let m = format!("type=volume,src=ev,dst=/x,volume-subpath={sub}");
        let out = d.pier(&["create", "--mount", &m, "busybox"]);
        let err = String::from_utf8_lossy(&out.stderr);
        // `docker create` exits 1 on a daemon error (only `run` says 125).
        assert_eq!(out.status.code(), Some(1), "{sub}: {err}");
        assert!(
            err.contains("subpath must be a relative path within the volume"),
            "{err}"
        );
    }
    assert_eq!(subpath_mounts(&d), 0);
    d.assert_clean();
}

#[test]
fn subpath_mounts_of_a_container_that_died_while_the_daemon_was_away_are_swept() {
    let mut d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "av"]);
    std::fs::create_dir_all(data_dir(&d, "av").join("keep")).unwrap();
    let id = d
        .pier_ok(&[
            "run",
            "-d",
            "--mount",
            "type=volume,src=av,dst=/k,volume-subpath=keep",
            "busybox",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let pid = d.container_pid(&id);
    assert_eq!(subpath_mounts(&d), 1);
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
        wait_until(Duration::from_secs(10), || subpath_mounts(&d) == 0),
        "a subpath is still mounted after the restart"
    );
    // And it mounts again for the next start.
    d.pier_ok(&["start", &id]);
    assert_eq!(subpath_mounts(&d), 1);
    d.pier_ok(&["rm", "-f", &id]);
    assert_eq!(subpath_mounts(&d), 0);
    d.assert_clean();
}

#[test]
fn api_start_errors_say_which_kind_and_read_only_holds() {
    let d = TestDaemon::with_busybox();
    d.pier_ok(&["volume", "create", "kv"]);
    let data = data_dir(&d, "kv");
    std::fs::create_dir_all(data.join("ro")).unwrap();
    std::os::unix::fs::symlink("/", data.join("root")).unwrap();
    // moby's safepath: escaping is invalid (400), missing is not found (404).
    for (sub, status) in [("root", 400), ("nope", 404)] {
        let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Mounts": [
            {"Type": "volume", "Source": "kv", "Target": "/x", "VolumeOptions": {"Subpath": sub}}
        ]}});
        let r = d.http(
            "POST",
            "/v1.45/containers/create",
            Some("application/json"),
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = serde_json::from_str::<serde_json::Value>(&r.text()).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = d.http("POST", &format!("/v1.45/containers/{id}/start"), None, b"");
        assert_eq!(r.status, status, "{sub}: {}", r.text());
        d.pier_ok(&["rm", "-f", &id]);
    }
    let out = d.pier(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=kv,dst=/r,volume-subpath=ro,readonly",
        "busybox",
        "touch",
        "/r/x",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!data.join("ro/x").exists());
    assert_eq!(subpath_mounts(&d), 0);
    d.assert_clean();
}
