//! Unpacking one layer tar into an empty directory, overlayfs style.
//!
//! Containment: every parent directory is opened with `openat2(RESOLVE_IN_ROOT)` from a
//! descriptor of the layer root, so `..`, absolute symlinks and symlink chains all
//! resolve inside the layer, never above it; the final component is always created
//! with `*at` calls relative to that parent and never followed. Paths are cleaned
//! lexically first, and a path that climbs above the root is refused, as Docker does.
//!
//! Whiteouts become what overlayfs understands: `.wh.name` -> a 0/0 character device
//! `name`; `.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on the directory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pier_reference::{Digest, HashingReader};
use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::error::{Result, SnapshotError};

const WHITEOUT_PREFIX: &str = ".wh.";
const COPY_BUF: usize = 256 << 10;
const OPAQUE: &str = ".wh..wh..opq";
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks the tar stream `layer` into `dest` (an existing, empty directory) and checks
/// that the stream's sha256 is `diff_id`.
pub(crate) fn unpack(dest: &Path, layer: impl Read, diff_id: &Digest) -> Result<()> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", dest))?;
    let mut u = Unpacker {
        root,
        dest: dest.to_path_buf(),
        base: PathBuf::new(),
        resolve: ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        overlay: true,
        owner: None,
        dir_times: Vec::new(),
        buf: Vec::new(),
    };
    let mut ar = tar::Archive::new(HashingReader::new(layer));
    let entries = ar.entries().map_err(layer_io("reading layer"))?;
    for entry in entries {
        let mut e = entry.map_err(layer_io("reading layer"))?;
        u.entry(&mut e)?;
    }
    u.finish_dirs()?;
    // The digest covers the whole stream, including the end-of-archive padding.
    let mut hr = ar.into_inner();
    io::copy(&mut hr, &mut io::sink()).map_err(layer_io("reading layer"))?;
    let (_, actual, _) = hr.finish();
    if &actual != diff_id {
        return Err(SnapshotError::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

/// Extracts a plain tar (`docker cp` into a container) into `base`, a directory path
/// relative to `root` (a descriptor of the container's root as its processes see it,
/// or of a volume). Every entry resolves inside `root` with `openat2(RESOLVE_IN_ROOT)`:
/// symlinks in the container, even ones swapped in while this runs, cannot lead the
/// writes out. Mounts under `root` are crossed (volumes of a running container).
/// `.wh.` names are ordinary files here. With `owner`, every entry gets that uid/gid
/// instead of the archive's (Docker's default for `docker cp`). `what` names the root
/// in errors.
pub(crate) fn extract_at(
    root: OwnedFd,
    what: &Path,
    base: &Path,
    input: impl Read,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let base: PathBuf = base
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    let mut u = Unpacker {
        root,
        dest: what.to_path_buf(),
        base,
        resolve: ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        overlay: false,
        owner,
        dir_times: Vec::new(),
        buf: Vec::new(),
    };
    let mut ar = tar::Archive::new(input);
    for entry in ar.entries().map_err(layer_io("reading archive"))? {
        let mut e = entry.map_err(layer_io("reading archive"))?;
        u.entry(&mut e)?;
    }
    u.finish_dirs()
}

/// Reads a whole archive and checks every entry without extracting anything: entry
/// types Docker refuses and paths that climb out are found before the first write,
/// so a refused archive leaves nothing behind.
pub(crate) fn check_archive(input: impl Read) -> Result<()> {
    let mut ar = tar::Archive::new(input);
    for entry in ar.entries().map_err(layer_io("reading archive"))? {
        let e = entry.map_err(layer_io("reading archive"))?;
        if let Some(why) = refused_entry_type(e.header().entry_type()) {
            return Err(SnapshotError::Layer(format!(
                "unsupported tar entry: {why} at {}",
                String::from_utf8_lossy(&e.path_bytes())
            )));
        }
        clean(&e.path_bytes())?;
    }
    Ok(())
}

/// [`extract_at`] with host paths: `dir` must be inside `root`.
pub(crate) fn extract(
    root: &Path,
    dir: &Path,
    input: impl Read,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let base = dir.strip_prefix(root).map_err(|_| {
        SnapshotError::Breakout(format!(
            "{} is not inside {}",
            dir.display(),
            root.display()
        ))
    })?;
    let root_fd = rfs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", root))?;
    extract_at(root_fd, root, base, input, owner)
}

/// How often `openat2(RESOLVE_IN_ROOT)` is retried when it answers EAGAIN (a rename
/// raced the walk; the kernel refuses rather than risk a `..` escape).
const EAGAIN_RETRIES: usize = 128;

/// `openat2` that retries EAGAIN a bounded number of times.
pub(crate) fn openat2_retry<Fd: AsFd>(
    dir: Fd,
    path: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(&dir, path, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => {
                tries += 1;
                std::thread::yield_now();
            }
            r => return r,
        }
    }
}

/// Tar entry types Pier refuses, as Docker does ("unhandled tar header type"): a GNU
/// sparse entry expands a few bytes of archive into gigabytes of file, and volume or
/// multi-volume headers have no meaning for a filesystem.
pub fn refused_entry_type(kind: tar::EntryType) -> Option<&'static str> {
    use tar::EntryType as T;
    match kind {
        T::Regular
        | T::Link
        | T::Symlink
        | T::Char
        | T::Block
        | T::Directory
        | T::Fifo
        | T::XGlobalHeader
        | T::XHeader
        | T::GNULongName
        | T::GNULongLink => None,
        T::GNUSparse => Some("GNU sparse file (type 'S')"),
        T::Continuous => Some("contiguous file (type '7')"),
        _ => Some("unknown or multi-volume entry"),
    }
}

struct Unpacker {
    root: OwnedFd,
    dest: PathBuf,
    /// Where entries go, relative to `root`.
    base: PathBuf,
    /// How parent directories resolve from `root`.
    resolve: ResolveFlags,
    /// Layer mode: turn `.wh.` entries into overlayfs whiteouts.
    overlay: bool,
    owner: Option<(u32, u32)>,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, u64)>,
    /// File contents go through this (allocated on the first file).
    buf: Vec<u8>,
}

/// A cleaned path inside the layer: parent components and the final name.
struct Target {
    parent: PathBuf,
    name: Vec<u8>,
}

impl Target {
    fn full(&self) -> PathBuf {
        self.parent.join(OsStr::from_bytes(&self.name))
    }
}

/// Lexically cleans a tar path (like Go's `filepath.Clean("/" + name)`): drops `.` and
/// empty parts and a leading `/`; refuses paths whose `..` climbs above the root.
fn clean(raw: &[u8]) -> Result<Option<Target>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(SnapshotError::Breakout(format!(
                        "{:?} is outside of the layer root",
                        String::from_utf8_lossy(raw)
                    )));
                }
            }
            c => parts.push(c),
        }
    }
    let Some(name) = parts.pop() else {
        return Ok(None);
    };
    let mut parent = PathBuf::new();
    for p in parts {
        parent.push(OsStr::from_bytes(p));
    }
    Ok(Some(Target {
        parent,
        name: name.to_vec(),
    }))
}

impl Unpacker {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = e.header().entry_type();
        if let Some(why) = refused_entry_type(kind) {
            return Err(SnapshotError::Layer(format!(
                "unsupported tar entry: {why} at {}",
                String::from_utf8_lossy(&e.path_bytes())
            )));
        }
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let Some(t) = clean(&raw)? else {
            // The root itself ("./"): its metadata belongs to the parent snapshot.
            return Ok(());
        };
        let name = t.name.clone();
        if self.overlay && name == OPAQUE.as_bytes() {
            let dir = self.open_dir(&t.parent, true)?;
            return set_xattr(&dir, OPAQUE_XATTR, b"y").map_err(sys("set opaque on", &t.parent));
        }
        if let Some(hidden) = name
            .strip_prefix(WHITEOUT_PREFIX.as_bytes())
            .filter(|_| self.overlay)
        {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other `.wh..wh.` names are aufs bookkeeping, meaningless here.
                return Ok(());
            }
            let parent = self.open_dir(&t.parent, true)?;
            let hidden = OsStr::from_bytes(hidden);
            self.clear(&parent, hidden, false, &t.parent)?;
            return rfs::mknodat(
                &parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(sys("create whiteout", &t.parent.join(hidden)));
        }

        let h = e.header().clone();
        let mode = Mode::from_raw_mode(h.mode().map_err(layer_io("reading header"))? & 0o7777);
        let (uid, gid) = match self.owner {
            Some(o) => o,
            None => (
                h.uid().map_err(layer_io("reading header"))? as u32,
                h.gid().map_err(layer_io("reading header"))? as u32,
            ),
        };
        let mtime = h.mtime().unwrap_or(0);
        let xattrs = pax_xattrs(e)?;
        let parent = self.open_dir(&t.parent, true)?;
        let name_os = OsStr::from_bytes(&name);
        let path = t.full();
        let is_dir = kind.is_dir();
        self.clear(&parent, name_os, is_dir, &path)?;

        match kind {
            k if k.is_file() => {
                let fd = rfs::openat(
                    &parent,
                    name_os,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(sys("create", &path))?;
                let mut f = File::from(fd);
                copy_big(e, &mut f, &mut self.buf)
                    .map_err(layer_io(format!("writing {}", path.display())))?;
                self.finish_fd(f.as_fd(), uid, gid, mode, &xattrs, Some(mtime), &path)?;
            }
            tar::EntryType::Directory => {
                match rfs::mkdirat(&parent, name_os, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(err) => return Err(sys("create directory", &path)(err)),
                }
                let fd = rfs::openat(
                    &parent,
                    name_os,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys("open directory", &path))?;
                self.finish_fd(fd.as_fd(), uid, gid, mode, &xattrs, None, &path)?;
                self.dir_times.push((self.base.join(&path), mtime));
            }
            tar::EntryType::Symlink => {
                let target = e.link_name_bytes().unwrap_or_default().into_owned();
                rfs::symlinkat(OsStr::from_bytes(&target), &parent, name_os)
                    .map_err(sys("create symlink", &path))?;
                rfs::chownat(
                    &parent,
                    name_os,
                    Some(uid_of(uid)),
                    Some(gid_of(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(sys("chown", &path))?;
                for (k, v) in &xattrs {
                    // Only trusted./security. attributes are allowed on symlinks; reach
                    // the link through its parent's descriptor, never by a walked path.
                    let via = proc_path(&parent, name_os);
                    ignore_unsupported(rfs::lsetxattr(&via, k.as_str(), v, XattrFlags::empty()))
                        .map_err(sys("set xattr on", &path))?;
                }
                set_times_at(&parent, name_os, mtime).map_err(sys("set times on", &path))?;
            }
            tar::EntryType::Link => {
                let raw_target = e.link_name_bytes().unwrap_or_default().into_owned();
                let Some(src) = clean(&raw_target)? else {
                    return Err(SnapshotError::Breakout(format!(
                        "hardlink {} has no target",
                        path.display()
                    )));
                };
                // The source's parent resolves inside the root too; the final component
                // is linked as is (a symlink is linked, not followed).
                let src_parent = self.open_dir(&src.parent, false)?;
                rfs::linkat(
                    &src_parent,
                    OsStr::from_bytes(&src.name),
                    &parent,
                    name_os,
                    AtFlags::empty(),
                )
                .map_err(sys(
                    "hardlink",
                    &PathBuf::from(format!("{} -> {}", path.display(), src.full().display())),
                ))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (ft, dev) = match kind {
                    tar::EntryType::Fifo => (FileType::Fifo, rfs::makedev(0, 0)),
                    _ => {
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == tar::EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rfs::makedev(major, minor))
                    }
                };
                rfs::mknodat(&parent, name_os, ft, mode, dev).map_err(sys("create node", &path))?;
                rfs::chownat(
                    &parent,
                    name_os,
                    Some(uid_of(uid)),
                    Some(gid_of(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(sys("chown", &path))?;
                rfs::chmodat(&parent, name_os, mode, AtFlags::empty())
                    .map_err(sys("chmod", &path))?;
                set_times_at(&parent, name_os, mtime).map_err(sys("set times on", &path))?;
            }
            other => {
                return Err(SnapshotError::Layer(format!(
                    "unsupported tar entry type {other:?} at {}",
                    path.display()
                )))
            }
        }
        Ok(())
    }

    /// Opens `rel` (a directory inside the root), creating missing components when
    /// `create` is set. Symlinks along the way resolve inside the root.
    fn open_dir(&self, rel: &Path, create: bool) -> Result<OwnedFd> {
        let rel = &self.base.join(rel);
        let how = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let resolve = self.resolve;
        let mut cur = openat2_retry(&self.root, Path::new("."), how, resolve)
            .map_err(sys("open", &self.dest))?;
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            cur = match openat2_retry(&self.root, &prefix, how, resolve) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        Err(Errno::EXIST) => {
                            return Err(SnapshotError::Layer(format!(
                                "cannot create directory {}: a dangling symlink is in the way",
                                prefix.display()
                            )))
                        }
                        Err(e) => return Err(sys("create directory", &prefix)(e)),
                    }
                    openat2_retry(&self.root, &prefix, how, resolve)
                        .map_err(sys("open", &prefix))?
                }
                Err(e) => return Err(sys("open directory", &prefix)(e)),
            };
        }
        Ok(cur)
    }

    /// Makes room for a new entry `name`: an existing directory stays when the new entry
    /// is a directory too; anything else is removed.
    fn clear(&self, parent: &OwnedFd, name: &OsStr, keep_dir: bool, path: &Path) -> Result<()> {
        let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(sys("stat", path)(e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if keep_dir {
                return Ok(());
            }
            // std's remove_dir_all never follows symlinks; reach the directory through
            // the parent's descriptor so no walked path can be swapped underneath.
            std::fs::remove_dir_all(proc_path(parent, name)).map_err(|e| SnapshotError::Io {
                what: "remove",
                path: path.to_path_buf(),
                source: e,
            })
        } else {
            rfs::unlinkat(parent, name, AtFlags::empty()).map_err(sys("remove", path))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_fd(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        uid: u32,
        gid: u32,
        mode: Mode,
        xattrs: &[(String, Vec<u8>)],
        mtime: Option<u64>,
        path: &Path,
    ) -> Result<()> {
        rfs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid))).map_err(sys("chown", path))?;
        // After chown, which clears set-id bits.
        rfs::fchmod(fd, mode).map_err(sys("chmod", path))?;
        for (k, v) in xattrs {
            ignore_unsupported(set_xattr(fd, k, v)).map_err(sys("set xattr on", path))?;
        }
        if let Some(t) = mtime {
            rfs::futimens(fd, &times(t)).map_err(sys("set times on", path))?;
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let resolve = self.resolve | ResolveFlags::NO_SYMLINKS;
        for (path, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            // A later entry may have replaced the directory; then there is nothing to do.
            let Ok(fd) = openat2_retry(
                &self.root,
                &path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                resolve,
            ) else {
                continue;
            };
            rfs::futimens(&fd, &times(mtime)).map_err(sys("set times on", &path))?;
        }
        Ok(())
    }
}

/// Copies with a large buffer: `io::copy`'s 8 KiB would cost a write(2)
/// per 8 KiB of a layer (thousands for one big file).
fn copy_big(r: &mut impl Read, w: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Write;
    if buf.is_empty() {
        buf.resize(COPY_BUF, 0);
    }
    loop {
        let mut filled = 0;
        // Fill the buffer (the decompressor hands out small pieces) before
        // each write.
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        w.write_all(&buf[..filled])?;
    }
}

fn pax_xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions().map_err(layer_io("reading PAX header"))? {
        for ext in exts {
            let ext = ext.map_err(layer_io("reading PAX header"))?;
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                // Overlay's own attributes in a layer would corrupt the mount.
                if !name.starts_with("trusted.overlay.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn set_xattr<Fd: AsFd>(fd: Fd, name: &str, value: &[u8]) -> rustix::io::Result<()> {
    rfs::fsetxattr(fd, name, value, XattrFlags::empty())
}

fn ignore_unsupported(r: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match r {
        Err(Errno::OPNOTSUPP) | Err(Errno::PERM) => Ok(()),
        other => other,
    }
}

fn set_times_at(dir: &OwnedFd, name: &OsStr, mtime: u64) -> rustix::io::Result<()> {
    rfs::utimensat(dir, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// `/proc/self/fd/<dir>/<name>`: a path that reaches `name` through an open descriptor.
pub(crate) fn proc_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

fn uid_of(uid: u32) -> rfs::Uid {
    rfs::Uid::from_raw(uid)
}

fn gid_of(gid: u32) -> rfs::Gid {
    rfs::Gid::from_raw(gid)
}

fn sys(what: &'static str, path: &Path) -> impl FnOnce(Errno) -> SnapshotError + use<> {
    let path = path.to_path_buf();
    move |e| SnapshotError::Io {
        what,
        path,
        source: e.into(),
    }
}

fn layer_io(context: impl Into<String>) -> impl FnOnce(io::Error) -> SnapshotError {
    let context = context.into();
    move |e| SnapshotError::Layer(format!("{context}: {e}"))
}
