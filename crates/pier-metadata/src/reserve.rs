//! Space held back for the database on a full disk.
//!
//! SQLite needs free blocks even to delete a row (WAL frames, a grown WAL
//! index), so once the data root is full nothing could be removed through the
//! daemon and the disk could not be freed from Pier itself. A file of
//! preallocated blocks beside the database is given back the moment a write
//! reports a full disk, and taken again once the disk has room.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How much is held back: room for a few thousand WAL frames of deletions.
pub const RESERVE_BYTES: u64 = 8 << 20;

pub(crate) struct Reserve {
    path: PathBuf,
    size: u64,
    held: AtomicBool,
}

impl Reserve {
    /// Adopts a reserve left by an earlier daemon, or makes one if the disk
    /// has room; a full disk leaves it for [`Reserve::restore`].
    pub(crate) fn open(path: PathBuf, size: u64) -> Reserve {
        let held = std::fs::metadata(&path).is_ok_and(|m| m.len() == size);
        let r = Reserve {
            path,
            size,
            held: AtomicBool::new(held),
        };
        if !held {
            r.restore();
        }
        r
    }

    pub(crate) fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Gives the reserved space back to the filesystem; true when there was
    /// some to give (so a write that failed may now succeed).
    pub(crate) fn release(&self) -> bool {
        if !self.held.swap(false, Ordering::AcqRel) {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(
                    "disk full under {}: released the {} MiB reserve",
                    self.dir().display(),
                    self.size >> 20
                );
                true
            }
            Err(e) => {
                tracing::warn!("disk full: releasing {}: {e}", self.path.display());
                false
            }
        }
    }

    /// Takes the reserve again once the filesystem has clearly more room
    /// than it holds (so retaking it does not fill the disk itself).
    /// Returns whether the reserve is held.
    pub(crate) fn restore(&self) -> bool {
        if self.held() {
            return true;
        }
        match rustix::fs::statvfs(self.dir()) {
            Ok(st) if st.f_bavail.saturating_mul(st.f_frsize) >= 4 * self.size => {}
            _ => return false,
        }
        match self.allocate() {
            Ok(()) => {
                self.held.store(true, Ordering::Release);
                true
            }
            Err(e) => {
                tracing::warn!("reserving space at {}: {e}", self.path.display());
                false
            }
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// Writes the reserve under a temporary name and renames it into place,
    /// so a crash never leaves a short file that would pass for a reserve.
    fn allocate(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            match rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, self.size) {
                Ok(()) => {}
                // Filesystems without fallocate get their blocks written.
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    let zeros = vec![0u8; 1 << 20];
                    let mut left = self.size;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        f.write_all(&zeros[..n])?;
                        left -= n as u64;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_is_made_released_once_and_restored() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".reserve");
        let r = Reserve::open(path.clone(), 1 << 20);
        assert!(r.held());
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.len(), 1 << 20);
        // Preallocated, not sparse: the blocks are really taken.
        use std::os::unix::fs::MetadataExt;
        assert!(m.blocks() * 512 >= 1 << 20, "{} blocks", m.blocks());
        assert!(r.release());
        assert!(!path.exists());
        assert!(!r.release(), "nothing left to release");
        assert!(r.restore());
        assert!(path.exists());
        // A later daemon adopts it.
        assert!(Reserve::open(path, 1 << 20).held());
    }
}
