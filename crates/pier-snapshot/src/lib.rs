//! Layer snapshots and container root filesystems on overlayfs.
//!
//! ```text
//! root/snapshots/<chain-id hex>/fs        one layer unpacked, whiteouts as overlayfs wants
//! root/snapshots/<chain-id hex>/parent    parent chain ID (absent for a base layer)
//! root/snapshots/.tmp-*                   unpacks in progress; removed by cleanup()
//! root/containers/<key>/{upper,work,merged}
//! root/empty                              the lower of a container with no image layers
//! ```
//!
//! Like containerd's snapshotters this crate describes mounts; it does not mount.
//! Reference counting and garbage collection belong to the metadata layer.

// A synchronous store: the engine calls it from blocking threads
// (the size walks of `ps -s` and `inspect --size` among them).
#![allow(clippy::disallowed_methods)]

mod adopt;
#[cfg(test)]
mod adopt_tests;
mod apply;
mod changes;
mod error;
pub mod spare;
mod staged;
#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pier_reference::Digest;

pub use changes::{export_tar, usage, Change, ChangeKind};
pub use error::{Result, SnapshotError};
pub use staged::Staged;

use error::io_err;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TMP_PREFIX: &str = ".tmp-";

/// What to mount for a container root: `mount -t overlay overlay -o <options()> target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    /// Topmost first, as `lowerdir=` wants them.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

impl OverlayMount {
    /// The overlay mount data. Long stacks may pass the kernel's one-page limit for
    /// mount data; callers with many layers should use the new mount API (`fsconfig`
    /// with `lowerdir+`), which has no such limit.
    pub fn options(&self) -> String {
        let lowers: Vec<String> = self.lowers.iter().map(|p| escape(p)).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            escape(&self.upper),
            escape(&self.work)
        )
    }
}

/// overlayfs splits options on `,` and lower dirs on `:`; both may be escaped with `\`.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    /// Container directory skeletons (see [`spare`]), made on first use.
    spares: std::sync::Arc<std::sync::OnceLock<Option<spare::SparePool>>>,
}

/// How many container skeletons are kept ready.
const SPARE_CONTAINERS: usize = 4;

fn container_skeleton(dir: &Path) -> io::Result<()> {
    for d in ["upper", "work", "merged"] {
        fs::create_dir(dir.join(d))?;
    }
    fs::write(dir.join("parent"), b"")
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshot tree at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Snapshotter> {
        let root = root.into();
        for d in ["snapshots", "containers", "empty"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        Ok(Snapshotter {
            root,
            spares: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes unpacks interrupted by a crash. Call at start-up. Returns how many.
    pub fn cleanup(&self) -> Result<usize> {
        let dir = self.root.join("snapshots");
        let mut n = 0;
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            if ent.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = ent.path();
                fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex())
    }

    /// The unpacked layer directory of a snapshot (exists or not).
    pub fn path(&self, chain: &Digest) -> PathBuf {
        self.snapshot_dir(chain).join("fs")
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.path(chain).is_dir()
    }

    /// Unpacks an uncompressed layer tar on top of `parent` (a chain ID) and returns the
    /// new chain ID. Idempotent: an existing snapshot is reused without reading `layer`.
    /// The stream must hash to `diff_id`, or nothing is kept.
    pub fn apply_layer(
        &self,
        parent: Option<&Digest>,
        layer: impl Read,
        diff_id: &Digest,
    ) -> Result<Digest> {
        if let Some(p) = parent.filter(|p| !self.exists(p)) {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        let chain = Self::chain_of(parent, diff_id);
        if self.exists(&chain) {
            return Ok(chain);
        }
        let tmp = self.tmp_dir();
        let res = self.unpack_into(&tmp, parent, layer, diff_id, &chain);
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res.map(|()| chain)
    }

    /// Unpacks a stack of layers, the first on top of `parent`, each on the
    /// one before; returns their chain IDs. Layers go to separate directories,
    /// so up to `threads` unpack at once; they are committed bottom first once
    /// all are unpacked, or none is (as with [`Self::apply_layer`]).
    pub fn apply_layers<R: Read + Send>(
        &self,
        parent: Option<&Digest>,
        layers: Vec<(Digest, R)>,
        threads: usize,
    ) -> Result<Vec<Digest>> {
        if let Some(p) = parent
            && !self.exists(p)
        {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        let mut chains = Vec::new();
        let mut todo = Vec::new();
        let mut below = parent.cloned();
        for (diff_id, reader) in layers {
            let chain = Self::chain_of(below.as_ref(), &diff_id);
            if !self.exists(&chain) {
                let tmp = self.tmp_dir();
                todo.push((tmp, below.clone(), diff_id, chain.clone(), reader));
            }
            chains.push(chain.clone());
            below = Some(chain);
        }
        let queue = std::sync::Mutex::new(todo.iter_mut().map(|t| (&t.0, &t.1, &t.2, &mut t.4)));
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|sc| {
            for _ in 0..threads.clamp(1, 8) {
                sc.spawn(|| loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((tmp, below, diff_id, reader)) = next else {
                        return;
                    };
                    if let Err(e) = self.fill(tmp, below.as_ref(), reader, diff_id) {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                });
            }
        });
        let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut res = failed.map_or(Ok(()), Err);
        for (tmp, _, _, chain, _) in &todo {
            if res.is_ok() {
                res = self.commit(tmp, chain);
            }
            if res.is_err() {
                let _ = fs::remove_dir_all(tmp);
            }
        }
        res.map(|()| chains)
    }

    /// A fresh hidden directory name for an unpack in progress.
    fn tmp_dir(&self) -> PathBuf {
        self.root.join("snapshots").join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn unpack_into(
        &self,
        tmp: &Path,
        parent: Option<&Digest>,
        layer: impl Read,
        diff_id: &Digest,
        chain: &Digest,
    ) -> Result<()> {
        self.fill(tmp, parent, layer, diff_id)?;
        self.commit(tmp, chain)
    }

    /// Unpacks `layer` into the temporary snapshot directory `tmp`.
    fn fill(
        &self,
        tmp: &Path,
        parent: Option<&Digest>,
        layer: impl Read,
        diff_id: &Digest,
    ) -> Result<()> {
        let fs_dir = tmp.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err("create directory", &fs_dir))?;
        apply::unpack(&fs_dir, layer, diff_id)?;
        if let Some(p) = parent {
            let f = tmp.join("parent");
            fs::write(&f, p.as_str()).map_err(io_err("write", &f))?;
        }
        let f = tmp.join("diff_id");
        fs::write(&f, diff_id.as_str()).map_err(io_err("write", &f))?;
        Ok(())
    }

    /// Moves a filled temporary directory into place as snapshot `chain`.
    fn commit(&self, tmp: &Path, chain: &Digest) -> Result<()> {
        let dest = self.snapshot_dir(chain);
        match fs::rename(tmp, &dest) {
            Ok(()) => Ok(()),
            // Someone else unpacked the same chain meanwhile: theirs is as good.
            Err(_) if self.exists(chain) => {
                let _ = fs::remove_dir_all(tmp);
                Ok(())
            }
            Err(e) => Err(io_err("rename into", &dest)(e)),
        }
    }

    /// The parent chain ID of a snapshot.
    pub fn parent(&self, chain: &Digest) -> Result<Option<Digest>> {
        if !self.exists(chain) {
            return Err(SnapshotError::NotFound(chain.to_string()));
        }
        let f = self.snapshot_dir(chain).join("parent");
        match fs::read_to_string(&f) {
            Ok(s) => s.trim().parse().map(Some).map_err(|e| {
                SnapshotError::Layer(format!("corrupt parent file {}: {e}", f.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &f)(e)),
        }
    }

    /// Layer directories of `chain` and its ancestors, topmost first.
    pub fn lowers(&self, chain: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self
            .lowers_chain(chain)?
            .iter()
            .map(|c| self.path(c))
            .collect())
    }

    /// Chain IDs of `chain` and its ancestors, topmost first.
    pub fn lowers_chain(&self, chain: &Digest) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        let mut cur = Some(chain.clone());
        while let Some(c) = cur {
            if out.len() > 500 {
                return Err(SnapshotError::Layer(format!(
                    "parent chain of {chain} loops"
                )));
            }
            cur = self.parent(&c)?;
            out.push(c);
        }
        Ok(out)
    }

    /// Every snapshot's chain ID.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("snapshots");
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            if let Some(d) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_sha256_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a snapshot that no other snapshot builds on.
    pub fn remove(&self, chain: &Digest) -> Result<()> {
        let doomed = self.detach(chain)?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// [`Snapshotter::remove`] without the deleting: the snapshot is gone
    /// at once (renamed to a temporary name in the snapshot root, which
    /// [`Snapshotter::cleanup`] clears after a crash); the caller deletes
    /// the returned directory, in the background if it likes.
    pub fn detach(&self, chain: &Digest) -> Result<PathBuf> {
        if !self.exists(chain) {
            return Err(SnapshotError::NotFound(chain.to_string()));
        }
        for other in self.list()? {
            if &other != chain && self.parent(&other)?.as_ref() == Some(chain) {
                return Err(SnapshotError::InUse(
                    chain.to_string(),
                    format!("snapshot {other} is its child"),
                ));
            }
        }
        // Rename first so a crash mid-delete leaves a temp dir for cleanup(), not a
        // half-empty snapshot that looks whole.
        let dir = self.snapshot_dir(chain);
        let doomed = self.root.join("snapshots").join(format!(
            "{TMP_PREFIX}rm-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        Ok(doomed)
    }

    fn container_dir(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && key != "."
            && key != ".."
            && key.len() <= 255
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(SnapshotError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join("containers").join(key))
    }

    /// Creates (or finds again) a container's writable layer over `parent` and returns
    /// the overlay to mount. With no parent the only lower is an empty directory.
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<OverlayMount> {
        let dir = self.container_dir(key)?;
        if !dir.exists()
            && let Some(pool) = self.spares()
        {
            pool.take_into(&dir);
        }
        let lowers = match parent {
            Some(p) => self.lowers(p)?,
            None => vec![self.root.join("empty")],
        };
        for d in ["upper", "work", "merged"] {
            let p = dir.join(d);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
        }
        let pf = dir.join("parent");
        match parent {
            Some(p) => fs::write(&pf, p.as_str()).map_err(io_err("write", &pf))?,
            None => {
                let _ = fs::remove_file(&pf);
            }
        }
        Ok(OverlayMount {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("merged"),
        })
    }

    /// The overlay of a container prepared earlier (e.g. after a daemon restart).
    pub fn mounts(&self, key: &str) -> Result<OverlayMount> {
        let dir = self.container_dir(key)?;
        if !dir.join("upper").is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let parent = self.container_parent(key)?;
        self.prepare(key, parent.as_ref())
    }

    /// The image top layer (chain ID) a container was prepared on.
    pub fn container_parent(&self, key: &str) -> Result<Option<Digest>> {
        let pf = self.container_dir(key)?.join("parent");
        match fs::read_to_string(&pf) {
            Ok(s) => s.trim().parse().map(Some).map_err(|e| {
                SnapshotError::Layer(format!("corrupt parent file {}: {e}", pf.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &pf)(e)),
        }
    }

    fn spares(&self) -> Option<&spare::SparePool> {
        self.spares
            .get_or_init(|| {
                spare::SparePool::new(
                    self.root.join("spare"),
                    SPARE_CONTAINERS,
                    container_skeleton,
                )
                .ok()
            })
            .as_ref()
    }

    /// Returns a removed container's layer directory to the spare pool when
    /// the container wrote nothing (the common `run --rm` of a command that
    /// only reads), instead of deleting it. Only an untouched upper qualifies
    /// (no entries, and the owner, mode and attributes of a new one: a
    /// `chmod /` in the container lands on the upper directory itself), so
    /// nothing of one container can reach the next; overlayfs' own marks and
    /// its scratch space in `work` are cleared. False when the caller must
    /// remove it the usual way.
    pub fn recycle_container(&self, key: &str) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.container_dir(key)?;
        let empty = |p: &Path| fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_none());
        let (upper, merged, work) = (dir.join("upper"), dir.join("merged"), dir.join("work"));
        if is_mount_point(&merged)? || !empty(&upper) || !empty(&merged) {
            return Ok(false);
        }
        let (Ok(u), Ok(w)) = (fs::symlink_metadata(&upper), fs::symlink_metadata(&work)) else {
            return Ok(false);
        };
        // `work` is made like `upper` and never seen by the container.
        if (u.mode(), u.uid(), u.gid()) != (w.mode(), w.uid(), w.gid()) {
            return Ok(false);
        }
        let overlay_own = |name: &[u8]| name.starts_with(b"trusted.overlay.");
        if !changes::read_xattrs(&upper)
            .iter()
            .all(|(n, _)| overlay_own(n.as_bytes()))
        {
            return Ok(false);
        }
        adopt::strip_xattrs(&upper, |(n, _)| overlay_own(n))?;
        for ent in fs::read_dir(&work).map_err(io_err("read", &work))? {
            let p = ent.map_err(io_err("read", &work))?.path();
            fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
        }
        let pf = dir.join("parent");
        fs::write(&pf, b"").map_err(io_err("write", &pf))?;
        let is_skeleton = fs::read_dir(&dir).is_ok_and(|rd| rd.count() == 4);
        Ok(is_skeleton && self.spares().is_some_and(|pool| pool.give_back(&dir)))
    }

    /// Deletes a container's layer; a missing one is no error, so removal can be
    /// retried after a crash. Its root must be unmounted first.
    pub fn remove_container(&self, key: &str) -> Result<()> {
        let dir = self.container_dir(key)?;
        if !dir.exists() {
            return Ok(());
        }
        let merged = dir.join("merged");
        if is_mount_point(&merged)? {
            return Err(SnapshotError::InUse(
                key.to_string(),
                format!("{} is still mounted", merged.display()),
            ));
        }
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// The upper (writable) directory of a container.
    pub fn upper(&self, key: &str) -> Result<PathBuf> {
        Ok(self.container_dir(key)?.join("upper"))
    }

    /// Where a container's root is mounted. An invalid key gives a path that never
    /// exists rather than an error, so callers can test it directly.
    pub fn merged_path(&self, key: &str) -> PathBuf {
        match self.container_dir(key) {
            Ok(d) => d.join("merged"),
            Err(_) => self.root.join("containers/.invalid/merged"),
        }
    }

    /// Bytes in a container's writable layer (Docker's `SizeRw`).
    pub fn upper_usage(&self, key: &str) -> Result<u64> {
        let upper = self.upper(key)?;
        if !upper.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        usage(&upper)
    }

    /// What changed in a container relative to the image it was prepared on, as
    /// `docker diff` shows it.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>> {
        let upper = self.upper(key)?;
        if !upper.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let lowers = match self.container_parent(key)? {
            Some(p) => self.lowers(&p)?,
            None => Vec::new(),
        };
        changes::changes(&upper, &lowers)
    }

    /// Writes the container's changes as an OCI layer tar (whiteouts as `.wh.` files)
    /// and returns its diff ID, for `docker commit`.
    pub fn write_diff_tar(&self, key: &str, writer: impl Write) -> Result<Digest> {
        let upper = self.upper(key)?;
        if !upper.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        changes::write_tar(&upper, writer, true)
    }
}

/// `docker cp` into a container: extracts the tar `input` into `dir`, which must be
/// inside `root` (the container's mounted root). Paths and symlinks resolve inside
/// `root`; `..` climbing out of `dir` is refused. Entries are owned by root (0:0), as
/// `docker cp` does without `--archive`.
pub fn extract_into(root: &Path, dir: &Path, input: impl Read) -> Result<()> {
    apply::extract(root, dir, input, Some((0, 0)))
}

/// Like [`extract_into`] but keeps the archive's uid/gid (`docker cp --archive`).
pub fn extract_into_preserving_owner(root: &Path, dir: &Path, input: impl Read) -> Result<()> {
    apply::extract(root, dir, input, None)
}

/// `docker cp` into a container by descriptor: extracts `input` into `dir` (a path
/// relative to `root`, resolved inside it on every entry with `RESOLVE_IN_ROOT`, so a
/// container renaming its directories meanwhile cannot lead a write out of `root`).
/// `what` names `root` in errors. Entries are owned by 0:0 unless `preserve_owner`.
pub fn extract_at(
    root: std::os::fd::OwnedFd,
    what: &Path,
    dir: &Path,
    input: impl Read,
    preserve_owner: bool,
) -> Result<()> {
    let owner = if preserve_owner { None } else { Some((0, 0)) };
    apply::extract_at(root, what, dir, input, owner)
}

pub use apply::refused_entry_type;

/// Checks a whole archive for what extraction would refuse (entry types Docker
/// refuses, paths climbing out), reading it to the end and writing nothing.
pub fn check_archive(input: impl Read) -> Result<()> {
    apply::check_archive(input)
}

fn is_mount_point(p: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::symlink_metadata(p) else {
        return Ok(false);
    };
    let parent = p.parent().unwrap_or(Path::new("/"));
    let pm = fs::symlink_metadata(parent).map_err(io_err("stat", parent))?;
    Ok(m.dev() != pm.dev() || m.ino() == pm.ino())
}
