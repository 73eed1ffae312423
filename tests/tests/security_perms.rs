//! Issue #11, item 1: nothing below the data root or the exec root is
//! reachable by other local users (as dockerd: data root 0710, `containers/`
//! and `snapshots/` 0710, the rest 0700, database 0600, logs 0640, exec root
//! 0700), older installs are tightened at start, and the socket is 0660
//! root:docker (or root:root without that group; `--group` chooses).
//! Checked as a real unprivileged user (`nobody`, through `setpriv`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pier_tests::{cmd, Input, OutputExt, TestDaemon, CMD_TIMEOUT};

/// Runs `argv` as nobody:nogroup with no supplementary groups (plus `groups`).
fn as_nobody_in(groups: &[u32], argv: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "nobody", "--regid", "nogroup"]);
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let g: Vec<String> = groups.iter().map(u32::to_string).collect();
        c.arg("--groups").arg(g.join(","));
    }
    c.arg("--").args(argv);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    eprintln!("$ (nobody {groups:?}) {}\n{}", argv.join(" "), o.describe());
    o
}

fn as_nobody(argv: &[&str]) -> Output {
    as_nobody_in(&[], argv)
}

/// Asserts nobody gets "Permission denied" doing `argv` on `what`.
fn denied(argv: &[&str], what: &str) {
    let o = as_nobody(argv);
    // The tools say "Permission denied", the CLI "permission denied".
    assert!(
        !o.status.success() && o.err().contains("ermission denied"),
        "nobody could {what}: {}",
        o.describe()
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn gid_of(group: &str) -> Option<u32> {
    let o = Command::new("getent")
        .args(["group", group])
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    String::from_utf8_lossy(&o.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The container's upper directory (where its writes land).
fn upper_of(d: &TestDaemon, id: &str) -> PathBuf {
    d.data_root
        .join("snapshots/containers")
        .join(id)
        .join("upper")
}

/// The modes issue #11 asks for, on every top-level entry of both roots.
fn assert_tight(d: &TestDaemon, log: &Path) {
    assert_eq!(mode(&d.data_root), 0o710, "data root");
    assert_eq!(mode(&d.exec_root), 0o700, "exec root");
    for e in std::fs::read_dir(&d.data_root).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        let want = if ft.is_dir() {
            if name == "containers" || name == "snapshots" {
                0o710
            } else {
                0o700
            }
        } else {
            0o600
        };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    for e in std::fs::read_dir(&d.exec_root).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            assert_eq!(mode(&e.path()), 0o700, "{}", e.path().display());
        }
    }
    assert_eq!(mode(&d.data_root.join("meta.db")), 0o600, "database");
    for f in ["meta.db-wal", "meta.db-shm"] {
        let p = d.data_root.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode(log), 0o640, "container log");
}

#[test]
fn nobody_reaches_nothing_below_the_roots() {
    let d = TestDaemon::with_busybox();
    // A container leaves a setuid-root binary in its upper directory and
    // prints a secret to its log.
    let id = d
        .pier_ok(&[
            "run",
            "-d",
            "-e",
            "SECRET=hunter2",
            "busybox",
            "sh",
            "-c",
            "cp /bin/busybox /suid && chmod 4755 /suid && echo $SECRET && sleep 1000",
        ])
        .trim()
        .to_string();
    let upper = upper_of(&d, &id);
    let suid = upper.join("suid");
    assert!(
        pier_tests::wait_until(std::time::Duration::from_secs(10), || suid
            .metadata()
            .is_ok_and(|m| m.mode() & 0o4000 != 0)),
        "no setuid file at {}",
        suid.display()
    );
    let log = PathBuf::from(
        d.inspect(&id)["LogPath"]
            .as_str()
            .expect("LogPath")
            .to_string(),
    );
    assert!(pier_tests::wait_until(
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hunter2"))
    ));
    assert_tight(&d, &log);

    // setpriv works, and nobody may see what is meant to be seen: the
    // test's own directory, above the data root, is 0755.
    let o = as_nobody(&["ls", s(&d.root)]);
    assert!(o.status.success(), "control: {}", o.describe());
    assert!(o.out().contains("data"));

    denied(&["ls", s(&d.data_root)], "list the data root");
    denied(
        &["cat", s(&d.data_root.join("meta.db"))],
        "read the database",
    );
    denied(&["cat", s(&log)], "read a container log");
    denied(&["ls", s(&upper)], "list a container's upper directory");
    // Through a shell: setpriv itself looks its program up before it drops
    // privileges.
    let run_suid = format!("{} id -u", s(&suid));
    denied(&["sh", "-c", &run_suid], "run a container's setuid binary");
    denied(&["stat", s(&suid)], "reach a container's setuid binary");
    denied(&["ls", s(&d.exec_root)], "list the exec root");
    denied(
        &["ls", s(&d.exec_root.join("containers").join(&id))],
        "list a container's bundle",
    );
    // The socket: 0660, root-owned, group docker when there is one.
    let sock = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(sock.mode() & 0o7777, 0o660, "socket mode");
    assert_eq!(sock.uid(), 0);
    assert_eq!(sock.gid(), gid_of("docker").unwrap_or(0), "socket group");
    let host = d.host();
    let pier = d.bin_dir.join("pier");
    let version = [s(&pier), "-H", host.as_str(), "version"];
    let o = as_nobody(&version);
    assert!(
        !o.status.success() && o.err().contains("ermission denied"),
        "nobody reached the API: {}",
        o.describe()
    );
    if let Some(docker) = gid_of("docker") {
        // A member of the group may use the socket, as with dockerd.
        let o = as_nobody_in(&[docker], &version);
        assert!(o.status.success(), "docker group member: {}", o.describe());
    }
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}

/// Makes the modes an older Pier left: directories 0755, files 0644.
fn loosen(p: &Path) {
    let md = std::fs::symlink_metadata(p).unwrap();
    let m = if md.is_dir() {
        0o755
    } else if md.is_file() {
        0o644
    } else {
        return;
    };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn an_old_install_is_tightened_at_start() {
    let mut d = TestDaemon::with_busybox();
    assert_eq!(
        d.pier_ok(&["run", "busybox", "echo", "old-log"]),
        "old-log\n"
    );
    let id = d.pier_ok(&["ps", "-aq", "--no-trunc"]).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let log = PathBuf::from(d.inspect(&id)["LogPath"].as_str().unwrap().to_string());
    d.stop();
    for root in [&d.data_root, &d.exec_root] {
        loosen(root);
        for e in std::fs::read_dir(root).unwrap().flatten() {
            loosen(&e.path());
        }
    }
    loosen(&log);
    assert_eq!(mode(&d.data_root), 0o755);
    assert_eq!(mode(&d.data_root.join("meta.db")), 0o644);
    assert_eq!(mode(&log), 0o644);
    let o = as_nobody(&["cat", s(&d.data_root.join("meta.db"))]);
    assert!(o.status.success(), "control: {}", o.describe());

    d.restart();
    assert_tight(&d, &log);
    denied(
        &["cat", s(&d.data_root.join("meta.db"))],
        "read the database",
    );
    assert_eq!(d.pier_ok(&["logs", &id]), "old-log\n");
    d.pier_ok(&["rm", &id]);
    d.assert_clean();
}

#[test]
fn group_sets_the_socket_group() {
    let mut d = TestDaemon::start();
    let group = "pier-test-sock";
    let made = gid_of(group).is_none();
    if made {
        let o = Command::new("groupadd")
            .args(["-f", group])
            .output()
            .unwrap();
        assert!(o.status.success(), "groupadd: {}", o.describe());
    }
    let gid = gid_of(group).expect("group made");
    d.extra_args = vec!["--group".into(), group.into()];
    d.restart();
    let md = std::fs::metadata(&d.sock).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o660, 0, gid));
    let host = d.host();
    let pier = d.bin_dir.join("pier");
    let o = as_nobody_in(&[gid], &[s(&pier), "-H", host.as_str(), "version"]);
    assert!(o.status.success(), "group member: {}", o.describe());

    // An empty group: root's, as dockerd's `-G ""`.
    d.extra_args = vec!["--group".into(), String::new()];
    d.restart();
    let md = std::fs::metadata(&d.sock).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o660, 0, 0));
    d.stop();

    // A group that does not exist is an error at start, before anything.
    let mut c = Command::new(&pier);
    c.args(["daemon", "--data-root", s(&d.data_root), "--exec-root"])
        .arg(&d.exec_root)
        .args(["-H", host.as_str(), "--cgroup-parent", &d.cgroup_parent])
        .args(["--group", "pier-no-such-group"]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    assert!(!o.status.success(), "{}", o.describe());
    assert!(
        o.err().contains("group pier-no-such-group not found"),
        "{}",
        o.describe()
    );
    assert!(
        !d.sock.exists(),
        "no socket for a daemon that did not start"
    );
    d.extra_args.clear();
    d.restart();
    d.assert_clean();
    if made {
        let _ = Command::new("groupdel").arg(group).status();
    }
}

#[test]
fn a_socket_in_the_exec_root_opens_it_to_the_socket_group_only() {
    // The default layout: /run/pier is the exec root and holds pier.sock.
    let mut d = TestDaemon::with_busybox();
    d.stop();
    d.sock = d.exec_root.join("pier.sock");
    d.restart();
    let id = d
        .pier_ok(&["run", "-d", "busybox", "sleep", "1000"])
        .trim()
        .to_string();
    let gid = gid_of("docker").unwrap_or(0);
    let md = std::fs::metadata(&d.exec_root).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o710, 0, gid));
    for e in std::fs::read_dir(&d.exec_root).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            assert_eq!(mode(&e.path()), 0o700, "{}", e.path().display());
        }
    }
    let host = d.host();
    let pier = d.bin_dir.join("pier");
    let version = [s(&pier), "-H", host.as_str(), "version"];
    denied(&version, "use the socket");
    denied(&["ls", s(&d.exec_root)], "list the exec root");
    if gid != 0 {
        // The group reaches the socket, and nothing else there.
        let o = as_nobody_in(&[gid], &version);
        assert!(o.status.success(), "group member: {}", o.describe());
        let bundle = d.exec_root.join("containers").join(&id);
        for argv in [vec!["ls", s(&d.exec_root)], vec!["ls", s(&bundle)]] {
            let o = as_nobody_in(&[gid], &argv);
            assert!(
                !o.status.success() && o.err().contains("Permission denied"),
                "group member: {}",
                o.describe()
            );
        }
    }
    d.pier_ok(&["rm", "-f", &id]);
    d.assert_clean();
}
