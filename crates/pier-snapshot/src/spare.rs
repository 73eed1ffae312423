//! Directory skeletons made ahead of time and renamed into place.
//!
//! Creating an inode is not free: on ext4 without a journal, every allocation
//! scans past the inodes deleted in the last 30 seconds, which a host starting
//! and removing containers all the time has plenty of (about a millisecond per
//! new file was measured on the start path). A container's snapshot and state
//! directories always have the same shape, so a few are made by a background
//! thread and a start only renames one into place, which allocates nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Builds one skeleton in the (new, empty) directory given.
pub type MakeSkeleton = fn(&Path) -> io::Result<()>;

/// A directory of ready skeletons, topped up in the background.
#[derive(Debug)]
pub struct SparePool {
    dir: PathBuf,
    want: usize,
    make: MakeSkeleton,
    busy: Arc<AtomicBool>,
}

/// Names of skeletons being built; never taken.
const BUILDING: &str = ".building-";

static SEQ: AtomicU64 = AtomicU64::new(0);

impl SparePool {
    /// A pool of `want` skeletons in `dir` (created if needed; half-built
    /// leftovers of a crash are removed). The first ones are made at once in
    /// the background.
    pub fn new(dir: PathBuf, want: usize, make: MakeSkeleton) -> io::Result<SparePool> {
        std::fs::create_dir_all(&dir)?;
        for ent in std::fs::read_dir(&dir)? {
            let ent = ent?;
            if ent.file_name().to_string_lossy().starts_with(BUILDING) {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
        let pool = SparePool {
            dir,
            want,
            make,
            busy: Arc::new(AtomicBool::new(false)),
        };
        pool.top_up();
        Ok(pool)
    }

    /// Renames a skeleton to `target` (which must not exist). False when none
    /// was left; the caller then makes the directory itself.
    pub fn take_into(&self, target: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return false;
        };
        let mut taken = false;
        for ent in entries.flatten() {
            if ent.file_name().to_string_lossy().starts_with(BUILDING) {
                continue;
            }
            // Concurrent takers race on the rename; the loser tries the next.
            if std::fs::rename(ent.path(), target).is_ok() {
                taken = true;
                break;
            }
        }
        self.top_up();
        taken
    }

    /// Puts back `from`, an unused skeleton (the caller has checked it is as
    /// [`MakeSkeleton`] makes them), unless the pool holds twice what it
    /// wants: the slack lets a start/remove cycle run on returned skeletons
    /// alone, the top-up having refilled the pool long before the removal.
    /// Saves deleting one and making another: on ext4 without a journal both
    /// cost.
    pub fn give_back(&self, from: &Path) -> bool {
        if count_ready(&self.dir) >= 2 * self.want {
            return false;
        }
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        std::fs::rename(from, self.dir.join(format!("{}-r{n}", std::process::id()))).is_ok()
    }

    /// Makes skeletons on a background thread until `want` are ready.
    fn top_up(&self) {
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, want, make, busy) = (self.dir.clone(), self.want, self.make, self.busy.clone());
        let spawned = std::thread::Builder::new()
            .name("spare-dirs".into())
            .spawn(move || {
                // Refills run beside container starts, which are latency-bound:
                // at the lowest priority they take only CPU time nobody waits for.
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                while count_ready(&dir) < want {
                    if let Err(e) = add_one(&dir, make) {
                        tracing::warn!("making a spare directory in {}: {e}", dir.display());
                        break;
                    }
                }
                busy.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.busy.store(false, Ordering::Release);
        }
    }
}

fn count_ready(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with(BUILDING))
                .count()
        })
        .unwrap_or(usize::MAX)
}

fn add_one(dir: &Path, make: MakeSkeleton) -> io::Result<()> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}-{n}", std::process::id());
    let tmp = dir.join(format!("{BUILDING}{name}"));
    std::fs::create_dir(&tmp)?;
    if let Err(e) = make(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skel(p: &Path) -> io::Result<()> {
        std::fs::create_dir(p.join("upper"))?;
        std::fs::write(p.join("f"), b"")
    }

    #[test]
    fn skeletons_are_taken_and_topped_up() {
        let t = tempfile::tempdir().unwrap();
        let pool = SparePool::new(t.path().join("spare"), 2, skel).unwrap();
        let ready = || {
            for _ in 0..500 {
                if count_ready(&t.path().join("spare")) == 2 {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            false
        };
        assert!(ready());
        for i in 0..5 {
            let target = t.path().join(format!("c{i}"));
            // Taking faster than the refill falls back to "no skeleton".
            if pool.take_into(&target) {
                assert!(target.join("upper").is_dir() && target.join("f").is_file());
            } else {
                assert!(!target.exists());
            }
            assert!(ready());
        }
    }
}
