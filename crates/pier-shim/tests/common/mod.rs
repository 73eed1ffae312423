//! Shared fixture: a busybox rootfs, a bundle from build_spec, a shim.

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pier_runtime::spec::{build_spec, SpecOptions};
use pier_runtime::{spawn_shim, ShimClient, ShimHandle, ShimOptions};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub id: String,
    pub cgroup_parent: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    pub runtime_root: PathBuf,
    pub shim_pid: std::cell::Cell<u32>,
}

fn rand_suffix() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:x}", std::process::id(), t)
}

pub fn make_rootfs(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in [
        "sh", "echo", "true", "false", "cat", "sleep", "ls", "id", "hostname", "stty", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("bin/noexec"), "not executable").unwrap();
}

impl Fixture {
    pub fn new(name: &str, args: &[&str], tweak: impl FnOnce(&mut SpecOptions)) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let id = format!("{name}-{}", rand_suffix());
        let cgroup_parent = format!("pier-test-{}", rand_suffix());
        let bundle = tmp.path().join("bundle");
        make_rootfs(&bundle.join("rootfs"));
        let mut o = SpecOptions {
            args: args.iter().map(|s| s.to_string()).collect(),
            hostname: Some("pier-test".into()),
            cgroups_path: format!("/{cgroup_parent}/{id}"),
            ..Default::default()
        };
        tweak(&mut o);
        let spec = build_spec(&o).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        let state_dir = tmp.path().join("state");
        let runtime_root = tmp.path().join("runtime");
        let log = tmp.path().join("log.json");
        Fixture {
            tmp,
            id,
            cgroup_parent,
            bundle,
            state_dir,
            log,
            runtime_root,
            shim_pid: std::cell::Cell::new(0),
        }
    }

    pub fn options(&self, tty: bool, stdin: bool) -> ShimOptions {
        ShimOptions {
            // PIER_SHIM_BIN picks another build (e.g. release, to measure RSS).
            binary: std::env::var_os("PIER_SHIM_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pier-shim"))),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            state_dir: self.state_dir.clone(),
            runtime_root: self.runtime_root.clone(),
            log_path: Some(self.log.clone()),
            log_rotation: Default::default(),
            tty,
            stdin,
            stdin_once: stdin,
        }
    }

    pub async fn spawn(&self, tty: bool, stdin: bool) -> ShimHandle {
        let h = spawn_shim(&self.options(tty, stdin)).await.unwrap();
        self.shim_pid.set(h.pid);
        h
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for base in [
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup/freezer",
            "/sys/fs/cgroup",
        ] {
            v.push(Path::new(base).join(&self.cgroup_parent).join(&self.id));
        }
        v
    }

    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn finish(&self, client: &ShimClient) {
        let _ = client.shutdown_and_wait(Duration::from_secs(10)).await;
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal::SIGKILL};
        use nix::unistd::Pid;
        // A failed test may leave the container and its shim running.
        let procs = Path::new("/sys/fs/cgroup/pids")
            .join(&self.cgroup_parent)
            .join(&self.id)
            .join("cgroup.procs");
        let mut killed = false;
        for pid in std::fs::read_to_string(procs).unwrap_or_default().lines() {
            if let Ok(p) = pid.trim().parse::<i32>() {
                let _ = kill(Pid::from_raw(p), SIGKILL);
                killed = true;
            }
        }
        let shim = self.shim_pid.get();
        if shim > 0 && Path::new(&format!("/proc/{shim}")).exists() {
            let _ = kill(Pid::from_raw(shim as i32), SIGKILL);
            killed = true;
        }
        if killed {
            std::thread::sleep(Duration::from_millis(200));
        }
        // Remove the per-test cgroup parents in every hierarchy.
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let leaf = e.path().join(&self.cgroup_parent).join(&self.id);
                let _ = std::fs::remove_dir(&leaf);
                let _ = std::fs::remove_dir(e.path().join(&self.cgroup_parent));
            }
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.cgroup_parent));
    }
}

/// Reads an attach stream to its end.
pub async fn read_all(mut s: tokio::net::UnixStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("attach stream did not end")
        .unwrap();
    out
}

pub fn stdout_of(frames: &[u8]) -> String {
    pier_runtime::client::demux(frames)
        .into_iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, d)| String::from_utf8_lossy(&d).into_owned())
        .collect()
}

pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
