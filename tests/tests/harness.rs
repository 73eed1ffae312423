//! Tests of the harness itself, against a stand-in daemon (a Python script) that
//! leaves behind exactly what a sloppy engine would: a process, a mount, a cgroup.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pier_tests::{cleanup, TestDaemon};

const FAKE: &str = r#"#!/usr/bin/env python3
import os, socket, subprocess, sys
args = sys.argv[1:]
if args[:1] != ["daemon"]:
    print("fake pier: only 'daemon'", file=sys.stderr); sys.exit(2)
opt = dict(zip(args[1::2], args[2::2]))
data, sock, cg = opt["--data-root"], opt["-H"][len("unix://"):], opt["--cgroup-parent"]
mnt = os.path.join(data, "mnt", "inner")
os.makedirs(mnt, exist_ok=True)
subprocess.check_call(["mount", "-t", "tmpfs", "fake", os.path.join(data, "mnt")])
os.makedirs(mnt, exist_ok=True)
subprocess.check_call(["mount", "-t", "tmpfs", "fake2", mnt])
cgdir = None
for h in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"):
    if os.path.isdir(h):
        cgdir = os.path.join(h, cg, "ctr1"); os.makedirs(cgdir, exist_ok=True); break
child = subprocess.Popen(["sleep", "1000"], cwd=data, start_new_session=True)
if cgdir:
    open(os.path.join(cgdir, "cgroup.procs"), "w").write(str(child.pid))
s = socket.socket(socket.AF_UNIX); s.bind(sock); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"); c.close()
"#;

fn fake_bin_dir() -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/pier-fake-bin-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join("pier");
    fs::write(&p, FAKE).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn drop_removes_processes_mounts_cgroups_netns_and_dirs() {
    let bin = fake_bin_dir();
    let d = TestDaemon::start_with_bin_dir(bin.clone());
    let (root, cg, ns) = (d.root.clone(), d.cgroup_parent.clone(), d.netns.clone());
    let xroot = d.exec_root.clone();
    assert!(xroot.is_dir());
    assert!(netns_exists(&ns));
    assert_eq!(
        cleanup::mounts_under(&root).len(),
        2,
        "fake daemon mounts two tmpfs"
    );
    assert!(
        !d.leftover_procs().is_empty(),
        "the fake container process is seen"
    );
    assert!(
        !cleanup::cgroup_children(&cg).is_empty(),
        "the fake container cgroup is seen"
    );
    let r = d.http("GET", "/_ping", None, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    // assert_clean must notice the mess (it panics; catch it).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The fake cannot answer `ps`, which alone makes it unclean; the message
        // must still list the real leftovers.
        d.assert_clean_within(std::time::Duration::from_millis(300))
    }));
    let msg = caught.expect_err("assert_clean passed on a dirty daemon");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("mounts: [") && msg.contains("sleep 1000"),
        "{msg}"
    );
    drop(d);
    assert!(cleanup::mounts_under(&root).is_empty());
    assert!(cleanup::procs_of(&[&root], &cg, None).is_empty());
    assert!(cleanup::cgroup_dirs(&cg).is_empty());
    assert!(!netns_exists(&ns));
    assert!(!root.exists() && !xroot.exists());
    let _ = fs::remove_dir_all(bin);
}

#[test]
fn busybox_rootfs_is_deterministic_and_complete() {
    let tar = pier_tests::busybox_rootfs_tar();
    let list = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(tar)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    for want in [
        "./bin/busybox",
        "./bin/sh -> busybox",
        "./etc/passwd",
        "./tmp/",
        "./proc/",
    ] {
        assert!(text.contains(want), "{want} missing from rootfs:\n{text}");
    }
    assert!(text
        .lines()
        .any(|l| l.starts_with("drwxrwxrwt") && l.ends_with("./tmp/")));
    let again = format!("{}.again", tar.display());
    let st = std::process::Command::new("bash")
        .arg(pier_tests::repo_root().join("scripts/mk-busybox-rootfs.sh"))
        .arg(&again)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(fs::read(tar).unwrap(), fs::read(&again).unwrap());
    let _ = fs::remove_file(again);
}
