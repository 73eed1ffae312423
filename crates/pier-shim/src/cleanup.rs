//! Removal of a stopped container's cgroups and runtime state.
//!
//! libcontainer's `delete` first builds a cgroup manager. On cgroup v1 that reads
//! /proc/self/mountinfo and /proc/self/cgroup once per controller, each through
//! a hardened procfs handle: about 600 system calls and 2-4 ms of CPU for every
//! container, spent while the next container is being started. A stopped
//! container needs much less: its cgroup directories removed (after killing
//! anything left in them, as libcgroups does) and its state directory deleted.
//! Anything out of the ordinary (not stopped, hooks to run, an odd cgroup path)
//! goes to libcontainer's own `delete`.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Deletes `c` if it is stopped and plain; `Ok(false)` means "use libcontainer".
/// `cfg` is its saved configuration, read before anyone could remove the state
/// directory.
pub fn delete_stopped(c: &Container, cfg: Option<&YoukiConfig>) -> Result<bool, String> {
    let Some(cfg) = cfg else {
        return Ok(false);
    };
    if c.status() != ContainerStatus::Stopped {
        return Ok(false);
    }
    if cfg.hooks.is_some() {
        return Ok(false);
    }
    let Some(rel) = relative_cgroup(&cfg.cgroup_path) else {
        return Ok(false);
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    for mount in cgroup_mounts(&mountinfo) {
        remove_cgroup(&mount.join(&rel))?;
    }
    let root = c.root.as_path();
    match std::fs::remove_dir_all(root) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(format!("removing {}: {e}", root.display())),
    }
}

/// The container's cgroup path below a hierarchy's root, or `None` when it is
/// empty or leaves its hierarchy (which libcontainer would refuse anyway).
fn relative_cgroup(path: &Path) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => rel.push(p),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// Mount points of every cgroup (v1) and cgroup2 filesystem in `mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            left.split(' ').nth(4).map(|m| PathBuf::from(unescape(m)))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space and the like).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Kills what is left in the cgroup at `dir` and removes it, retrying while the
/// killed processes go (the same bounded retry as libcgroups).
fn remove_cgroup(dir: &Path) -> Result<(), String> {
    let procs = dir.join("cgroup.procs");
    let list = match std::fs::read_to_string(&procs) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", procs.display())),
    };
    for pid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 1..=5 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if attempt == 5 => {
                return Err(format!("removing cgroup {}: {e}", dir.display()))
            }
            Err(_) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup_mounts_of_both_versions() {
        let mi = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
32 25 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
33 32 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
36 32 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
37 32 0:33 / /sys/fs/cgroup/odd\\040name rw shared:9 - cgroup cgroup rw,pids
";
        assert_eq!(
            cgroup_mounts(mi),
            vec![
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/odd name"),
            ]
        );
    }

    #[test]
    fn cgroup_path_stays_below_the_hierarchy() {
        assert_eq!(
            relative_cgroup(Path::new("/pier/abc")),
            Some(PathBuf::from("pier/abc"))
        );
        assert_eq!(
            relative_cgroup(Path::new("pier/./abc")),
            Some(PathBuf::from("pier/abc"))
        );
        assert_eq!(relative_cgroup(Path::new("/")), None);
        assert_eq!(relative_cgroup(Path::new("")), None);
        assert_eq!(relative_cgroup(Path::new("/pier/../../etc")), None);
    }

    #[test]
    fn a_missing_cgroup_is_already_removed() {
        assert_eq!(
            remove_cgroup(Path::new("/nonexistent/pier-test-cgroup")),
            Ok(())
        );
    }
}
