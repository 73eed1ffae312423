//! Persistent network namespaces: a namespace bind-mounted on a file so it
//! outlives the processes in it, like `ip netns add`.
//!
//! The daemon is a multi-threaded tokio process, and `unshare`/`setns` act on
//! the calling thread only; so each switch happens on a short-lived dedicated
//! thread that never returns to a pool with the wrong namespace.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetError, Result};

/// Creates a new network namespace pinned at `path` (which must not exist
/// as a mount already). Loopback is left down; [`crate::link::setup_loopback`]
/// brings it up.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| NetError::io(format!("create {}", dir.display()), e))?;
    }
    File::create(path).map_err(|e| NetError::io(format!("create {}", path.display()), e))?;
    let p = path.to_path_buf();
    let r = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io("unshare(CLONE_NEWNET)", e.into()))?;
        // This thread now sits alone in the new namespace; pin it before the
        // thread (and with it the last reference) goes away.
        let src = PathBuf::from(format!("/proc/self/task/{}/ns/net", nix::unistd::gettid()));
        pier_sys::bind_mount(&src, &p, false)
            .map_err(|e| NetError::io(format!("bind {} on {}", src.display(), p.display()), e))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetError::io(
            "netns thread",
            std::io::Error::other("panicked"),
        ))
    });
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Unpins and removes a namespace made by [`create`]; the kernel frees it
/// (and the interfaces in it) when no process is left inside. Missing is fine.
pub fn delete(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    // A half-made namespace is a plain file, not a mount.
    if exists(path) {
        pier_sys::unmount(path, true)
            .map_err(|e| NetError::io(format!("unmount {}", path.display()), e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io(format!("remove {}", path.display()), e)),
    }
}

/// True when `path` holds a live pinned namespace.
pub fn exists(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    // A bind-mounted nsfs file lives on another device than its directory.
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != m.dev())
}

/// Opens a namespace file (a pinned one, or `/proc/<pid>/ns/net`).
pub fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| NetError::io(format!("open netns {}", path.display()), e))
}

/// Runs `f` on a dedicated thread that has joined the namespace at `path`.
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let ns = open(path)?;
    let what = path.display().to_string();
    std::thread::spawn(move || -> Result<T> {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io(format!("setns {what}"), e.into()))?;
        Ok(f())
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetError::io(
            "netns thread",
            std::io::Error::other("panicked"),
        ))
    })
}
