//! Finding and removing what a test daemon left behind: processes, mounts, cgroups.
//!
//! Everything here is keyed on the test's unique root directory and cgroup-parent
//! name, so parallel tests never touch each other's leftovers (or the host's).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn under(p: &Path, root: &Path) -> bool {
    p.starts_with(root)
}

/// Mount points at or below `root` in our mount namespace, deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| under(m, root))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// Lazily unmounts everything below `root`, deepest first; returns what remains.
pub fn unmount_all(root: &Path) -> Vec<PathBuf> {
    for _ in 0..10 {
        let ms = mounts_under(root);
        if ms.is_empty() {
            return ms;
        }
        for m in &ms {
            let _ = umount2(m, MntFlags::MNT_DETACH);
        }
    }
    mounts_under(root)
}

fn read_lossy(p: impl AsRef<Path>) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn mentions_root(s: &str, root: &str) -> bool {
    s.match_indices(root).any(|(i, _)| {
        let next = s.as_bytes().get(i + root.len()).copied();
        matches!(next, None | Some(b'/') | Some(b'\0') | Some(b' '))
    })
}

/// A process that belongs to a test: its command line or cwd names the test root, or
/// it sits in a cgroup below `cgroup_name`.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub cmdline: String,
}

/// The inode of a network namespace file (`/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn netns_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| m.ino())
}

/// Processes of a test: command line or cwd naming `root`, a cgroup path containing
/// `cgroup_name`, or (when given) membership of the test's network namespace, which
/// shims inherit from the daemon whatever their command line says.
pub fn procs_of(roots: &[&Path], cgroup_name: &str, netns: Option<u64>) -> Vec<Proc> {
    let roots_s: Vec<String> = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = e.path();
        let cmdline = read_lossy(base.join("cmdline")).replace('\0', " ");
        let cwd = fs::read_link(base.join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let in_cgroup = read_lossy(base.join("cgroup")).lines().any(|l| {
            l.splitn(3, ':')
                .nth(2)
                .is_some_and(|p| p.split('/').any(|c| c == cgroup_name))
        });
        let in_netns = netns.is_some() && netns == netns_inode(&base.join("ns/net"));
        let named = roots_s
            .iter()
            .any(|r| mentions_root(&cmdline, r) || mentions_root(&cwd, r));
        if named || in_cgroup || in_netns {
            let status = read_lossy(base.join("stat"));
            // Zombies are gone already; their parent (or init) reaps them.
            if status
                .split(") ")
                .nth(1)
                .is_some_and(|s| s.starts_with('Z'))
            {
                continue;
            }
            found.push(Proc { pid, cmdline });
        }
    }
    found
}

/// SIGKILLs every process of the test (except `spare`) until none are left or 10 s pass.
pub fn kill_procs(
    roots: &[&Path],
    cgroup_name: &str,
    netns: Option<u64>,
    spare: &[i32],
) -> Vec<Proc> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<Proc> = procs_of(roots, cgroup_name, netns)
            .into_iter()
            .filter(|p| !spare.contains(&p.pid))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        thaw_all(cgroup_name);
        for p in &left {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The roots of the mounted cgroup hierarchies (v1 controllers and the v2 tree).
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mnt = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(unescape(mnt)))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn find_named(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_str() == Some(name) {
            out.push(p);
        } else if depth > 1 {
            find_named(&p, name, depth - 1, out);
        }
    }
}

fn descendants(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            descendants(&e.path(), out);
        }
    }
}

/// Every cgroup directory named `name` (searched three levels deep in each hierarchy)
/// and all of their descendants, deepest first.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut tops = Vec::new();
    for h in cgroup_hierarchies() {
        find_named(&h, name, 3, &mut tops);
    }
    let mut all = Vec::new();
    for t in &tops {
        descendants(t, &mut all);
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    all.dedup();
    all
}

/// Directories strictly below the `name` cgroups: what containers left behind.
pub fn cgroup_children(name: &str) -> Vec<PathBuf> {
    cgroup_dirs(name)
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(name))
        .collect()
}

fn thaw_all(name: &str) {
    for d in cgroup_dirs(name) {
        let f = d.join("freezer.state");
        if f.exists() {
            let _ = fs::write(&f, "THAWED");
        }
        let f = d.join("cgroup.freeze");
        if f.exists() {
            let _ = fs::write(&f, "0");
        }
    }
}

/// Kills what is in the `name` cgroups and removes them; returns what could not go.
pub fn remove_cgroups(name: &str) -> Vec<PathBuf> {
    thaw_all(name);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = cgroup_dirs(name);
        if dirs.is_empty() || Instant::now() > deadline {
            return dirs;
        }
        for d in &dirs {
            for pid in read_lossy(d.join("cgroup.procs"))
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = fs::remove_dir(d);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), "/end\\");
    }

    #[test]
    fn root_matching_is_exact() {
        assert!(mentions_root(
            "x /tmp/pier-test-ab/run y",
            "/tmp/pier-test-ab"
        ));
        assert!(mentions_root("/tmp/pier-test-ab", "/tmp/pier-test-ab"));
        assert!(!mentions_root("/tmp/pier-test-abc", "/tmp/pier-test-ab"));
    }

    #[test]
    fn finds_cgroup_hierarchies() {
        // Every Linux host we run on has at least one cgroup hierarchy mounted.
        assert!(!cgroup_hierarchies().is_empty());
    }
}
