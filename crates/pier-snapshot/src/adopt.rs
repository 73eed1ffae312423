//! Turning a container's upper directory into a layer snapshot in place.
//!
//! A build step's changes are written once into the overlay upper directory;
//! unpacking the layer tar made from it into a new snapshot would write every
//! file a second time (the dominant cost of a COPY of many small files on a
//! `discard` mount). When the upper directory holds nothing the tar could not
//! express, it is renamed into place instead, after bringing it into exactly
//! the form [`crate::apply`] gives a layer: whiteouts are 0/0 character
//! devices and opaque directories carry `trusted.overlay.opaque=y` in both.
//! What differs is only what the tar does not carry: sub-second mtimes and
//! atimes (nothing reads them: layer tars store whole seconds).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use pier_reference::Digest;
use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

use crate::apply::OPAQUE_XATTR;
use crate::error::{io_err, Result};
use crate::{is_mount_point, SnapshotError, Snapshotter};

impl Snapshotter {
    /// Makes the upper directory of container `key` the snapshot of its layer
    /// (`diff_id` on top of the chain the container was prepared on) by a
    /// rename, instead of unpacking the layer tar again. Returns the chain ID,
    /// or None when the directory holds something the tar represents
    /// differently (a `.wh.` or non-UTF-8 name) or lies on another filesystem:
    /// then nothing is moved and the layer must be unpacked from its blob.
    ///
    /// The caller guarantees that `diff_id` is the digest of
    /// [`Self::write_diff_tar`] of this very directory, unchanged since, and
    /// that the overlay is unmounted (checked). Sockets (which the tar skips)
    /// and overlayfs' bookkeeping attributes are removed first; afterwards the
    /// container has no upper directory and is only good for removal.
    pub fn commit_upper_as_snapshot(&self, key: &str, diff_id: &Digest) -> Result<Option<Digest>> {
        let dir = self.container_dir(key)?;
        let upper = dir.join("upper");
        if !upper.is_dir() {
            return Err(SnapshotError::NotFound(key.to_string()));
        }
        let merged = dir.join("merged");
        if is_mount_point(&merged)? {
            return Err(SnapshotError::InUse(
                key.to_string(),
                format!("{} is still mounted", merged.display()),
            ));
        }
        let parent = self.container_parent(key)?;
        if let Some(p) = parent.as_ref().filter(|p| !self.exists(p)) {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        let chain = Self::chain_of(parent.as_ref(), diff_id);
        if self.exists(&chain) {
            return Ok(Some(chain));
        }
        if !representable(&upper)? {
            return Ok(None);
        }
        normalize(&upper)?;
        // The root's own metadata is not in the tar (a lower root is never
        // visible anyway): give it what an unpack's fresh directory has.
        strip_xattrs(&upper, |_| true)?;
        rfs::chown(
            &upper,
            Some(rfs::Uid::from_raw(0)),
            Some(rfs::Gid::from_raw(0)),
        )
        .map_err(|e| io_err("chown", &upper)(e.into()))?;
        rfs::chmod(&upper, Mode::from_raw_mode(0o755))
            .map_err(|e| io_err("chmod", &upper)(e.into()))?;

        let tmp = self.tmp_dir();
        fs::create_dir(&tmp).map_err(io_err("create directory", &tmp))?;
        let res = (|| {
            let fs_dir = tmp.join("fs");
            match fs::rename(&upper, &fs_dir) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(Errno::XDEV.raw_os_error()) => return Ok(false),
                Err(e) => return Err(io_err("rename into", &fs_dir)(e)),
            }
            if let Some(p) = &parent {
                let f = tmp.join("parent");
                fs::write(&f, p.as_str()).map_err(io_err("write", &f))?;
            }
            let f = tmp.join("diff_id");
            fs::write(&f, diff_id.as_str()).map_err(io_err("write", &f))?;
            self.commit(&tmp, &chain)?;
            Ok(true)
        })();
        match res {
            Ok(true) => Ok(Some(chain)),
            other => {
                let _ = fs::remove_dir_all(&tmp);
                other.map(|_| None)
            }
        }
    }
}

/// Whether every name below `dir` survives the tar round trip unchanged: the
/// tar writer stores names lossily as UTF-8, and an unpack turns `.wh.` names
/// into whiteouts.
fn representable(dir: &Path) -> Result<bool> {
    for ent in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let ent = ent.map_err(io_err("read directory", dir))?;
        let name = ent.file_name();
        if name.to_str().is_none() || name.as_bytes().starts_with(b".wh.") {
            return Ok(false);
        }
        let ft = ent.file_type().map_err(io_err("stat", &ent.path()))?;
        if ft.is_dir() && !representable(&ent.path())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes below `dir` what an unpack of the tar would not create: sockets,
/// overlayfs' own attributes except a directory's opaque mark, and any
/// attribute of symlinks and device nodes (the tar writer stores attributes
/// of files and directories only); whiteouts get an inode of their own.
fn normalize(dir: &Path) -> Result<()> {
    for ent in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let ent = ent.map_err(io_err("read directory", dir))?;
        let path = ent.path();
        let ft = ent.file_type().map_err(io_err("stat", &path))?;
        if ft.is_socket() {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        } else if ft.is_dir() {
            strip_xattrs(&path, |(k, v)| {
                k.starts_with(b"trusted.overlay.") && !(k == OPAQUE_XATTR.as_bytes() && v == b"y")
            })?;
            normalize(&path)?;
        } else if ft.is_file() {
            strip_xattrs(&path, |(k, _)| k.starts_with(b"trusted.overlay."))?;
        } else if ft.is_char_device() && is_shared_whiteout(&path)? {
            // Overlay links every whiteout to one inode of its work directory;
            // an unpack makes each its own node.
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            rfs::mknodat(
                rfs::CWD,
                &path,
                rfs::FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|e| io_err("create whiteout", &path)(e.into()))?;
        } else {
            strip_xattrs(&path, |_| true)?;
        }
    }
    Ok(())
}

fn is_shared_whiteout(path: &Path) -> Result<bool> {
    let m = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
    Ok(crate::changes::is_whiteout(&m) && m.nlink() > 1)
}

/// Removes the attributes of `path` (not following a symlink) that `doomed`
/// picks, given name and value.
pub(crate) fn strip_xattrs(path: &Path, doomed: impl Fn((&[u8], &[u8])) -> bool) -> Result<()> {
    let mut small = [0u8; 512];
    let mut big = Vec::new();
    let names: &[u8] = match rfs::llistxattr(path, &mut small[..]) {
        Ok(0) => return Ok(()),
        Ok(n) => &small[..n],
        Err(Errno::RANGE) => {
            big.resize(64 * 1024, 0);
            let n = rfs::llistxattr(path, &mut big[..])
                .map_err(|e| io_err("list xattrs of", path)(e.into()))?;
            &big[..n]
        }
        // A filesystem without xattrs has nothing to strip.
        Err(Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(io_err("list xattrs of", path)(e.into())),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let n = rfs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..]).unwrap_or(0);
        if doomed((name, &value[..n])) {
            match rfs::lremovexattr(path, OsStr::from_bytes(name)) {
                Ok(()) | Err(Errno::NODATA) => {}
                Err(e) => return Err(io_err("remove xattr of", path)(e.into())),
            }
        }
    }
    Ok(())
}
