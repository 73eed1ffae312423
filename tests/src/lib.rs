//! End-to-end test harness for Pier.
//!
//! [`TestDaemon::start`] runs a real `pier daemon` with its own data root, exec root,
//! socket, cgroup parent and network namespace, all named after one unique id, so
//! tests can run in parallel without seeing each other or the host. Dropping it kills
//! the daemon and everything it started, unmounts, removes cgroups, the namespace and
//! the temp dirs; [`TestDaemon::assert_clean`] checks that the engine itself cleaned
//! up after its containers before that safety net runs.

pub mod cleanup;
pub mod cmd;
pub mod http;
pub mod registry;
pub mod tar;

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use cmd::{Input, OutputExt};
pub use http::HttpResponse;

/// How long one CLI command may take before the test fails as hung.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fresh daemon may take to answer `/_ping`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `pier` and `pier-shim` are: `$PIER_BIN_DIR`, else the cargo profile dir
/// this test binary was built into, else `$CARGO_TARGET_DIR/debug`, else the
/// project's shared target dir.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PIER_BIN_DIR") {
        return PathBuf::from(d);
    }
    // Test binaries live in <target>/<profile>/deps/.
    if let Some(profile) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(Path::to_path_buf))
        && profile.join("pier").is_file()
    {
        return profile;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pier/target"));
    target.join("debug")
}

/// The `pier` binary; panics with a hint when it has not been built.
pub fn pier_bin() -> PathBuf {
    let p = bin_dir().join("pier");
    assert!(
        p.is_file(),
        "{} not found: build it first (cargo build --workspace) or set PIER_BIN_DIR",
        p.display()
    );
    p
}

/// The repository root (this crate lives in `<repo>/tests`).
pub fn repo_root() -> PathBuf {
    // `cargo test` sets the variable at run time too; prefer that: a test
    // binary reused from a checkout elsewhere (a shared target dir keeps it
    // fresh) would otherwise look for scripts where it was compiled.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent()
        .expect("tests crate has a parent dir")
        .to_path_buf()
}

fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

fn pid_alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// The busybox root tarball, made once per test process by
/// `scripts/mk-busybox-rootfs.sh` (deterministic, so every import has one digest).
pub fn busybox_rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        // Tarballs of earlier test processes that died before cleaning up.
        if let Ok(rd) = fs::read_dir("/tmp") {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name
                    .strip_prefix("pier-test-busybox-")
                    .and_then(|r| r.strip_suffix(".tar"))
                    .and_then(|p| p.parse::<i32>().ok())
                    && !pid_alive(pid)
                {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let out = PathBuf::from(format!("/tmp/pier-test-busybox-{}.tar", std::process::id()));
        let script = repo_root().join("scripts/mk-busybox-rootfs.sh");
        let o = cmd::run(
            {
                let mut c = Command::new("bash");
                c.arg(&script).arg(&out);
                c
            },
            Input::Null,
            CMD_TIMEOUT,
        );
        assert!(
            o.status.success(),
            "{} failed: {}",
            script.display(),
            o.describe()
        );
        out
    })
}

/// A lock shared by all test processes on the machine: ordinary daemons hold it
/// shared, [`TestDaemon::start_serial`] holds it exclusively (for tests that load the
/// machine or measure it and must not overlap with others).
pub struct SerialGuard {
    _lock: Flock<File>,
}

fn global_lock(exclusive: bool) -> SerialGuard {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/pier-tests.lock")
        .expect("open /tmp/pier-tests.lock");
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let lock =
        Flock::lock(f, arg).unwrap_or_else(|(_, e)| panic!("flock /tmp/pier-tests.lock: {e}"));
    SerialGuard { _lock: lock }
}

/// One running `pier daemon` with private roots, socket, netns and cgroup parent.
pub struct TestDaemon {
    pub id: String,
    /// `/tmp/pier-test-<id>`: data root, socket, log live below it.
    pub root: PathBuf,
    pub data_root: PathBuf,
    /// `/tmp/pier-x-<id>`: kept short, like moby's test daemons do, because unix
    /// socket paths below it (per-container shim sockets) must fit in 108 bytes.
    pub exec_root: PathBuf,
    pub sock: PathBuf,
    /// Daemon stdout+stderr, appended across restarts.
    pub log: PathBuf,
    pub netns: String,
    pub cgroup_parent: String,
    /// Directory holding the `pier` binary used for the daemon and the CLI.
    pub bin_dir: PathBuf,
    /// More `pier daemon` flags (`--bridge`, `--group`, ...), used from the next (re)start on.
    pub extra_args: Vec<String>,
    /// False when the namespace is another daemon's (see [`TestDaemon::start_in_netns_of`]).
    own_netns: bool,
    child: Option<Child>,
    _guard: SerialGuard,
}

impl TestDaemon {
    /// Starts a daemon that may run alongside other tests' daemons.
    pub fn start() -> Self {
        Self::start_with(global_lock(false), bin_dir())
    }

    /// Starts a daemon while no other test daemon (in any process) runs.
    pub fn start_serial() -> Self {
        Self::start_with(global_lock(true), bin_dir())
    }

    /// Starts a daemon from another build (or a stand-in, for testing this harness).
    pub fn start_with_bin_dir(dir: PathBuf) -> Self {
        Self::start_with(global_lock(false), dir)
    }

    /// Starts a daemon with more `pier daemon` flags.
    pub fn start_with_args(args: &[&str]) -> Self {
        Self::start_full(global_lock(false), bin_dir(), args, None, |_| {})
    }

    /// Starts a daemon in the network namespace of `other` (which keeps
    /// owning it), with more `pier daemon` flags: two engines on one host.
    pub fn start_in_netns_of(other: &TestDaemon, args: &[&str]) -> Self {
        Self::start_full(
            global_lock(false),
            bin_dir(),
            args,
            Some(&other.netns),
            |_| {},
        )
    }

    /// Starts a daemon after `prepare` has set up its (empty) data root, e.g.
    /// mounted a small filesystem on it. Mounts below the roots go on drop.
    pub fn start_on_data_root(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_full(global_lock(false), bin_dir(), &[], None, prepare)
    }

    fn start_with(guard: SerialGuard, bin_dir: PathBuf) -> Self {
        Self::start_full(guard, bin_dir, &[], None, |_| {})
    }

    fn start_full(
        guard: SerialGuard,
        bin_dir: PathBuf,
        args: &[&str],
        shared_netns: Option<&str>,
        prepare: impl FnOnce(&Path),
    ) -> Self {
        let pier = bin_dir.join("pier");
        assert!(
            pier.is_file(),
            "{} not found: build it first (cargo build --workspace) or set PIER_BIN_DIR",
            pier.display()
        );
        let id = unique_id();
        let root = PathBuf::from(format!("/tmp/pier-test-{id}"));
        let d = TestDaemon {
            data_root: root.join("data"),
            exec_root: PathBuf::from(format!("/tmp/pier-x-{id}")),
            sock: root.join("pier.sock"),
            log: root.join("daemon.log"),
            netns: shared_netns.map_or_else(|| format!("pier-t-{id}"), str::to_string),
            cgroup_parent: format!("pier-test-{id}"),
            bin_dir,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            own_netns: shared_netns.is_none(),
            root,
            id,
            child: None,
            _guard: guard,
        };
        let mut d = d;
        for dir in [&d.data_root, &d.exec_root] {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        // scripts/clean-test-leftovers.sh sweeps roots whose owner died without Drop.
        let _ = fs::write(d.root.join("owner.pid"), std::process::id().to_string());
        if d.own_netns {
            d.sh(&["ip", "netns", "add", &d.netns]);
            d.sh(&["ip", "-n", &d.netns, "link", "set", "lo", "up"]);
        }
        prepare(&d.data_root);
        d.spawn();
        d
    }

    fn sh(&self, argv: &[&str]) {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
        assert!(o.status.success(), "{argv:?}: {}", o.describe());
    }

    /// `unix:///tmp/pier-test-<id>/pier.sock`
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn spawn(&mut self) {
        let _ = fs::remove_file(&self.sock);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let bin = self.bin_dir.clone();
        // nsenter --net (not `ip netns exec`): the latter also makes a private mount
        // namespace with a fresh /sys, which hides /sys/fs/cgroup from the daemon and
        // its mounts from our cleanup.
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(bin.join("pier"))
            .arg("daemon")
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(self.host())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(&self.extra_args)
            .env("PATH", prepend_path(&bin))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start daemon {c:?}: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http::request(&self.sock, "GET", "/_ping", None, b"")
                && r.status == 200
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!(
                    "daemon exited during start-up ({st}); log:\n{}",
                    self.log_tail(80)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "daemon did not answer /_ping within {START_TIMEOUT:?}; log:\n{}",
                    self.log_tail(80)
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// The daemon's pid, when it runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A `pier -H <sock>` command, for callers that need to set more up.
    pub fn pier_cmd(&self) -> Command {
        let mut c = Command::new(self.bin_dir.join("pier"));
        c.arg("-H").arg(self.host());
        c.env_remove("PIER_HOST").env_remove("DOCKER_HOST");
        c
    }

    /// Runs the CLI against this daemon.
    pub fn pier(&self, args: &[&str]) -> Output {
        self.pier_input(args, Input::Null)
    }

    pub fn pier_input(&self, args: &[&str], input: Input<'_>) -> Output {
        let mut c = self.pier_cmd();
        c.args(args);
        let o = cmd::run(c, input, CMD_TIMEOUT);
        eprintln!("$ pier {}\n{}", args.join(" "), o.describe());
        o
    }

    /// Runs the CLI, asserts success, returns stdout.
    pub fn pier_ok(&self, args: &[&str]) -> String {
        let o = self.pier(args);
        if !o.status.success() {
            panic!(
                "pier {args:?} failed: {}\n--- daemon log ---\n{}",
                o.describe(),
                self.log_tail(40)
            );
        }
        o.out()
    }

    /// [`TestDaemon::pier_ok`]'s output lines, sorted and joined by commas:
    /// listings compared whatever their order.
    pub fn pier_sorted(&self, args: &[&str]) -> String {
        let out = self.pier_ok(args);
        let mut v: Vec<&str> = out.lines().collect();
        v.sort_unstable();
        v.join(",")
    }

    /// Imports the busybox root as `busybox:latest` (CMD sh); returns the image id.
    pub fn import_busybox(&self) -> String {
        let f = File::open(busybox_rootfs_tar()).expect("open busybox tar");
        let o = self.pier_input(
            &["import", "-c", r#"CMD ["sh"]"#, "-", "busybox:latest"],
            Input::File(f),
        );
        assert!(
            o.status.success(),
            "import busybox: {}\n--- daemon log ---\n{}",
            o.describe(),
            self.log_tail(40)
        );
        o.out().trim().to_string()
    }

    /// `pier inspect` of one object, as JSON.
    pub fn inspect(&self, what: &str) -> serde_json::Value {
        let out = self.pier_ok(&["inspect", what]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("inspect {what}: not JSON ({e}): {out}"));
        match v {
            serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
            other => panic!("inspect {what}: expected a one-element array, got {other}"),
        }
    }

    /// One raw HTTP request to the daemon's socket.
    pub fn http(&self, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> HttpResponse {
        http::request(&self.sock, method, path, ctype, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A command that runs inside the daemon's network namespace (to reach published
    /// ports on its loopback, for instance).
    pub fn in_netns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        c
    }

    /// The two directory trees this daemon owns.
    pub fn roots(&self) -> [&Path; 2] {
        [&self.root, &self.exec_root]
    }

    /// None for a daemon in another's namespace: its processes there are
    /// not all this daemon's (the owner's cleanup sweeps the namespace).
    fn netns_inode(&self) -> Option<u64> {
        if !self.own_netns {
            return None;
        }
        cleanup::netns_inode(&Path::new("/run/netns").join(&self.netns))
    }

    /// Starts a daemon and imports `busybox:latest` into it.
    pub fn with_busybox() -> Self {
        let d = Self::start();
        d.import_busybox();
        d
    }

    /// Like [`TestDaemon::with_busybox`], holding the global lock exclusively.
    pub fn serial_with_busybox() -> Self {
        let d = Self::start_serial();
        d.import_busybox();
        d
    }

    /// The host pid of a running container's main process (`State.Pid`).
    pub fn container_pid(&self, ctr: &str) -> i32 {
        let v = self.inspect(ctr);
        let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
        assert!(pid > 0, "container {ctr} has no pid: {}", v["State"]);
        pid as i32
    }

    /// SIGKILLs the daemon (not its shims or containers) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            eprintln!("daemon ignored SIGTERM for 20 s; killing it");
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon if it runs, then starts it again on the same roots.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Processes of this test other than the daemon: shims and container processes.
    pub fn leftover_procs(&self) -> Vec<cleanup::Proc> {
        let daemon = self.daemon_pid();
        cleanup::procs_of(&self.roots(), &self.cgroup_parent, self.netns_inode())
            .into_iter()
            .filter(|p| Some(p.pid) != daemon)
            .collect()
    }

    /// Asserts the engine left nothing behind for its removed containers: no
    /// containers, no mounts under the roots, no cgroups below the parent, no shim or
    /// container process. Waits up to 10 s for things to settle.
    pub fn assert_clean(&self) {
        self.assert_clean_within(Duration::from_secs(10))
    }

    /// [`TestDaemon::assert_clean`] with a chosen grace period.
    pub fn assert_clean_within(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            let mut c = self.pier_cmd();
            c.args(["ps", "-aq"]);
            let ps = cmd::run(c, Input::Null, CMD_TIMEOUT);
            let containers = ps.out().trim().to_string();
            let mounts: Vec<PathBuf> = self
                .roots()
                .iter()
                .flat_map(|r| cleanup::mounts_under(r))
                .collect();
            let cgroups = cleanup::cgroup_children(&self.cgroup_parent);
            let procs = self.leftover_procs();
            let clean = ps.status.success()
                && containers.is_empty()
                && mounts.is_empty()
                && cgroups.is_empty()
                && procs.is_empty();
            if clean {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "not clean:\n containers: {containers:?} (ps: {})\n mounts: {mounts:?}\n \
                     cgroups: {cgroups:?}\n processes: {procs:?}\n--- daemon log ---\n{}",
                    ps.describe(),
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn prepend_path(dir: &Path) -> String {
    let old = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    format!("{}:{old}", dir.display())
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- daemon log ({}) ---\n{}",
                self.log.display(),
                self.log_tail(60)
            );
        }
        let ns = self.netns_inode();
        self.kill9();
        let mut problems = Vec::new();
        let left = cleanup::kill_procs(&self.roots(), &self.cgroup_parent, ns, &[]);
        if !left.is_empty() {
            problems.push(format!("processes survive SIGKILL: {left:?}"));
        }
        let mounts: Vec<PathBuf> = self
            .roots()
            .iter()
            .flat_map(|r| cleanup::unmount_all(r))
            .collect();
        if !mounts.is_empty() {
            problems.push(format!("cannot unmount: {mounts:?}"));
        }
        let cgroups = cleanup::remove_cgroups(&self.cgroup_parent);
        if !cgroups.is_empty() {
            problems.push(format!("cannot remove cgroups: {cgroups:?}"));
        }
        if self.own_netns {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .stderr(Stdio::null())
                .status();
        }
        // Never recurse into a directory that still has something mounted below it.
        if mounts.is_empty() {
            for r in self.roots() {
                if let Err(e) = fs::remove_dir_all(r) {
                    problems.push(format!("rm -rf {}: {e}", r.display()));
                }
            }
        }
        if !problems.is_empty() {
            eprintln!("pier-tests cleanup of {}: {}", self.id, problems.join("; "));
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a host pid is alive.
pub fn alive(pid: i32) -> bool {
    pid_alive(pid)
}

/// Reads a cgroup file of a process: `v1_file` in its `controller` hierarchy (cgroup
/// v1), else `v2_file` in its unified cgroup. `None` when neither exists.
pub fn cgroup_value(pid: i32, controller: &str, v1_file: &str, v2_file: &str) -> Option<String> {
    let info = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount_of = |want_v2: bool| -> Option<PathBuf> {
        mounts.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut f = post.split(' ');
            let fstype = f.next()?;
            let opts = f.nth(1).unwrap_or("");
            let ok = if want_v2 {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && opts.split(',').any(|o| o == controller)
            };
            ok.then(|| PathBuf::from(pre.split(' ').nth(4).unwrap_or("")))
        })
    };
    for line in info.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == controller)
            && let Some(m) = mount_of(false)
            && let Ok(v) = fs::read_to_string(m.join(path).join(v1_file))
        {
            return Some(v.trim().to_string());
        }
        if ctrls.is_empty()
            && let Some(m) = mount_of(true)
            && let Ok(v) = fs::read_to_string(m.join(path).join(v2_file))
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Short (12 hex digit) form of a container or image id.
pub fn short(id: &str) -> &str {
    let id = id.trim().trim_start_matches("sha256:");
    &id[..id.len().min(12)]
}
