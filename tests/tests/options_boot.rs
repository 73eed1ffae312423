//! Boot: containers whose restart policy asks for it come back after a
//! reboot, and the daemon takes the sockets systemd passes (`-H fd://`), as
//! `contrib/systemd/pier.socket` hands it the API socket.

use std::time::{Duration, Instant};

mod options_util;

use options_util::*;
use pier_tests::{wait_until, TestDaemon};

#[test]
fn after_a_reboot_restart_policies_bring_containers_back() {
    let mut d = TestDaemon::with_busybox();
    let always = run_d(&d, &["--restart", "always", "busybox", "sleep", "600"]);
    let unless = run_d(
        &d,
        &["--restart", "unless-stopped", "busybox", "sleep", "600"],
    );
    let held = run_d(
        &d,
        &["--restart", "unless-stopped", "busybox", "sleep", "600"],
    );
    let plain = run_d(&d, &["busybox", "sleep", "600"]);
    d.pier_ok(&["stop", "-t", "0", &held]);
    // A reboot: the daemon, every shim and container process gone, and the
    // exec root (a tmpfs under /run on a real host) empty, its mounts with it.
    d.kill9();
    let netns =
        pier_tests::cleanup::netns_inode(&std::path::Path::new("/run/netns").join(&d.netns));
    let left = pier_tests::cleanup::kill_procs(&d.roots(), &d.cgroup_parent, netns, &[]);
    assert!(left.is_empty(), "{left:?}");
    for root in [&d.exec_root, &d.data_root] {
        let m = pier_tests::cleanup::unmount_all(root);
        assert!(m.is_empty(), "{m:?}");
    }
    for e in std::fs::read_dir(&d.exec_root).unwrap() {
        let p = e.unwrap().path();
        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
    }
    d.restart();
    for c in [&always, &unless] {
        assert!(
            wait_until(Duration::from_secs(30), || state(&d, c).0 == "running"),
            "{c} comes back: {}",
            d.inspect(c)["State"]
        );
    }
    assert_eq!(
        state(&d, &held).0,
        "exited",
        "stopped by hand before the reboot"
    );
    assert_eq!(state(&d, &plain).0, "exited", "no restart policy");
    assert_eq!(
        d.pier_ok(&["exec", &always, "echo", "alive"]),
        "alive\n",
        "a working container, not a record"
    );
    d.pier_ok(&["rm", "-f", &always, &unless, &held, &plain]);
}

/// A daemon in its own network namespace, started as systemd starts a
/// socket-activated service: the unit's socket as fd 3, `LISTEN_FDS=1` and
/// `LISTEN_PID` naming the daemon itself (sh's `$$`, kept across `exec`).
struct Activated {
    dir: TmpDir,
    netns: String,
    cgroup: String,
    child: Option<std::process::Child>,
}

impl Activated {
    fn spawn(tag: &str, listen_pid: &str, hosts: &[&str]) -> (Activated, std::path::PathBuf) {
        let dir = tmp_dir(tag);
        let sock = dir.0.join("activated.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let netns = format!("pier-act-{}-{tag}", std::process::id());
        let cgroup = format!("pier-act-{}-{tag}", std::process::id());
        for argv in [
            vec!["ip", "netns", "add", &netns],
            vec!["ip", "-n", &netns, "link", "set", "lo", "up"],
        ] {
            let st = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .status()
                .unwrap();
            assert!(st.success(), "{argv:?}");
        }
        let script =
            format!("exec 3<&0 </dev/null; LISTEN_PID={listen_pid} LISTEN_FDS=1 exec \"$@\"");
        let mut c = std::process::Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{netns}"))
            .args(["--", "sh", "-c", &script, "sh"])
            .arg(pier_tests::pier_bin())
            .arg("daemon")
            .arg("--data-root")
            .arg(dir.0.join("data"))
            .arg("--exec-root")
            .arg(dir.0.join("exec"))
            .args(["--cgroup-parent", &cgroup])
            .args(hosts.iter().flat_map(|h| ["-H", h]))
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                listener,
            )))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("daemon.log")).unwrap());
        let child = c.spawn().unwrap();
        (
            Activated {
                dir,
                netns,
                cgroup,
                child: Some(child),
            },
            sock,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    /// Waits for the daemon to exit (it is expected to refuse to start).
    fn exit_code(&mut self) -> i32 {
        let mut c = self.child.take().unwrap();
        let t = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        self.stop();
        pier_tests::cleanup::remove_cgroups(&self.cgroup);
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

impl Activated {
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_daemon_serves_sockets_passed_by_systemd() {
    let (mut d, sock) = Activated::spawn("ok", "$$", &["fd://"]);
    let ping = || pier_tests::http::request(&sock, "GET", "/_ping", None, b"");
    assert!(
        wait_until(Duration::from_secs(60), || ping()
            .is_ok_and(|r| r.status == 200)),
        "no answer on the activated socket; log:\n{}",
        d.log()
    );
    let r = pier_tests::http::request(&sock, "GET", "/containers/json", None, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let o = std::process::Command::new(pier_tests::pier_bin())
        .args(["-H", &format!("unix://{}", sock.display()), "version"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.stop();
    // The socket belongs to the service manager: the daemon leaves it.
    assert!(sock.exists());
}

#[test]
fn socket_activation_refuses_what_systemd_did_not_pass() {
    // LISTEN_PID names another process: these sockets are not ours.
    let (mut d, _) = Activated::spawn("notours", "1", &["fd://"]);
    assert_ne!(d.exit_code(), 0);
    assert!(
        d.log().contains(
            "no sockets found via socket activation: make sure the service was started by systemd"
        ),
        "{}",
        d.log()
    );
    let (mut d, _) = Activated::spawn("few", "$$", &["fd://5"]);
    assert_ne!(d.exit_code(), 0);
    assert!(
        d.log()
            .contains("too few socket activated files passed in by systemd"),
        "{}",
        d.log()
    );
    assert!(
        !d.dir.0.join("data").exists(),
        "refused before touching anything"
    );
    let (mut d, _) = Activated::spawn("nan", "$$", &["fd://x"]);
    assert_ne!(d.exit_code(), 0);
    assert!(
        d.log()
            .contains("failed to parse systemd fd address: should be a number: x"),
        "{}",
        d.log()
    );
}
