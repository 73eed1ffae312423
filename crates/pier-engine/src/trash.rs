//! Deleting a container's directories off the path a client waits on.
//!
//! Removing files is slow on hosts whose filesystem is mounted with `discard`:
//! every freed block costs a synchronous discard request (2-6 ms each on the
//! benchmark VM), and a container leaves a dozen small files behind (the OCI
//! spec, hosts, resolv.conf, runtime state, exit status). So a directory is
//! first renamed into a `.trash` directory under the same root (one atomic
//! rename: the name is free for reuse at once) and deleted by a low-priority
//! background thread.
//! Whatever a crash leaves in `.trash` goes at the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::{Engine, EngineError, Result};

const TRASH: &str = ".trash";

/// Makes trash names unique within this process (with the pid, across restarts).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Batches handed to the background deleter and not yet deleted.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

impl Engine {
    /// Takes `dir` (somewhere below `root`) out of the way now and deletes it
    /// in the background. A missing `dir` is fine.
    pub(crate) fn discard_dir(&self, root: &Path, dir: &Path) -> Result<()> {
        discard_dir(root, dir)
    }

    /// Empties the trash of the data and exec roots (left by a daemon that
    /// stopped before its deletions finished).
    pub(crate) fn empty_trash(&self) {
        empty(&[&self.cfg.data_root, &self.cfg.exec_root]);
    }

    /// Deletes what waits in the data root's trash now and waits for the
    /// background deleter: on a full disk the space is needed before the
    /// next write. (A file the deleter is unlinking is gone from its
    /// directory before its blocks are free, so deleting beside it is not
    /// enough.)
    // Its one caller, container removal on a full disk, is on a blocking
    // thread already.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn empty_trash_now(&self) {
        if let Ok(rd) = std::fs::read_dir(self.cfg.data_root.join(TRASH)) {
            delete_all(rd.flatten().map(|e| e.path()).collect());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while QUEUED.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// [`Engine::discard_dir`] for services that hold no `Engine`.
pub(crate) fn discard_dir(root: &Path, dir: &Path) -> Result<()> {
    discard(root, dir).map_err(|(p, e)| EngineError::from_io(&p, e))
}

fn discard(root: &Path, dir: &Path) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    let trash = root.join(TRASH);
    if std::fs::create_dir_all(&trash).is_err() {
        // No trash (a full disk has no block for a new directory): delete
        // in place, which frees space rather than needing it.
        return remove_in_place(dir);
    }
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let leaf = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = trash.join(format!("{leaf}.{}.{n}", std::process::id()));
    match std::fs::rename(dir, &to) {
        Ok(()) => {
            delete_in_background(vec![to]);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // Another filesystem below root (or no room for a new entry in the
        // trash): delete in place, as before.
        Err(_) => remove_in_place(dir),
    }
}

// The fallback when nothing can be renamed into the trash (a full disk,
// another filesystem): it frees space, which matters more there than the
// thread it blocks. Its callers are on blocking threads or at start-up,
// except a volume or container-create cleanup on such a disk.
#[allow(clippy::disallowed_methods)]
fn remove_in_place(dir: &Path) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err((dir.to_path_buf(), e)),
    }
}

// At start-up, before the API listens.
#[allow(clippy::disallowed_methods)]
fn empty(roots: &[&Path]) {
    let mut left = Vec::new();
    for root in roots {
        if let Ok(rd) = std::fs::read_dir(root.join(TRASH)) {
            left.extend(rd.flatten().map(|e| e.path()));
        }
    }
    if !left.is_empty() {
        delete_in_background(left);
    }
}

fn delete_in_background(paths: Vec<PathBuf>) {
    // One long-lived deleter at the lowest CPU priority: deletions run beside
    // container starts, which are latency-bound, and should take only time
    // nobody waits for. Outside a runtime (tests, tools) deletion is inline.
    static DELETER: OnceLock<Option<Mutex<Sender<Vec<PathBuf>>>>> = OnceLock::new();
    if tokio::runtime::Handle::try_current().is_err() {
        return delete_all(paths);
    }
    let tx = DELETER.get_or_init(|| {
        let (tx, rx) = channel::<Vec<PathBuf>>();
        std::thread::Builder::new()
            .name("trash".into())
            .spawn(move || {
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                for paths in rx {
                    delete_all(paths);
                    QUEUED.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    QUEUED.fetch_add(1, Ordering::AcqRel);
    let sent = match tx {
        Some(tx) => tx.lock().unwrap_or_else(|e| e.into_inner()).send(paths),
        None => Err(std::sync::mpsc::SendError(paths)),
    };
    if let Err(std::sync::mpsc::SendError(paths)) = sent {
        QUEUED.fetch_sub(1, Ordering::AcqRel);
        delete_all(paths);
    }
}

// On the trash thread, or inline where there is no runtime (tests, tools).
#[allow(clippy::disallowed_methods)]
fn delete_all(paths: Vec<PathBuf>) {
    for p in paths {
        if let Err(e) = std::fs::remove_dir_all(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("deleting {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
// Test set-up and checks, not daemon code.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn entries(p: &Path) -> usize {
        std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0)
    }

    #[test]
    fn discarded_dirs_go_at_once_and_leftovers_at_start() {
        let root = std::env::temp_dir().join(format!("pier-trash-test-{}", std::process::id()));
        let dir = root.join("containers/abc");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), "x").unwrap();
        // Outside a runtime the deletion happens inline.
        discard(&root, &dir).unwrap();
        assert!(!dir.exists());
        assert_eq!(entries(&root.join(TRASH)), 0);
        discard(&root, &dir).unwrap(); // missing is fine
                                       // A crash left something in the trash: the next start deletes it.
        std::fs::create_dir_all(root.join(TRASH).join("old.1.0/x")).unwrap();
        empty(&[&root]);
        assert_eq!(entries(&root.join(TRASH)), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn in_a_runtime_the_name_is_free_before_deletion_ends() {
        let root = std::env::temp_dir().join(format!("pier-trash-rt-{}", std::process::id()));
        let dir = root.join("c");
        std::fs::create_dir_all(&dir).unwrap();
        discard(&root, &dir).unwrap();
        assert!(!dir.exists());
        std::fs::create_dir_all(&dir).unwrap(); // reusable at once
        for _ in 0..200 {
            if entries(&root.join(TRASH)) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(entries(&root.join(TRASH)), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
