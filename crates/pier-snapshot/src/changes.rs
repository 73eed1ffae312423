//! Reading a container's upper directory back out: `docker diff`, `docker commit`
//! (an OCI layer tar with `.wh.` whiteouts), `docker export`, and disk usage.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use pier_reference::{Digest, HashingWriter};
use rustix::fs::{self as rfs, Mode, OFlags};

use crate::apply::OPAQUE_XATTR;
use crate::error::{io_err, Result};

/// Docker's change kinds; `as u8` gives the Engine API's `Kind` (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints: C, A or D.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// Absolute path inside the container, e.g. `/etc/hosts`.
    pub path: String,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

pub(crate) fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

pub(crate) fn is_opaque(path: &Path) -> bool {
    let mut buf = [0u8; 8];
    matches!(rfs::lgetxattr(path, OPAQUE_XATTR, &mut buf[..]), Ok(n) if &buf[..n] == b"y")
}

fn sorted_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let mut v = Vec::new();
    for ent in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let ent = ent.map_err(io_err("read directory", dir))?;
        v.push((ent.file_name(), ent.path()));
    }
    v.sort();
    Ok(v)
}

/// Changes in `upper` relative to `lowers` (topmost first), sorted by path.
pub(crate) fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(upper, Path::new(""), lowers, false, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk_changes(
    dir: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    under_opaque: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    for (name, path) in sorted_entries(dir)? {
        let rel = rel.join(&name);
        let m = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let shown = format!("/{}", rel.display());
        if is_whiteout(&m) {
            out.push(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let in_lower = !under_opaque && exists_in_lowers(&rel, lowers);
        out.push(Change {
            path: shown,
            kind: if in_lower {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            },
        });
        if m.is_dir() {
            let opaque = under_opaque || is_opaque(&path);
            walk_changes(&path, &rel, lowers, opaque, out)?;
        }
    }
    Ok(())
}

/// Whether `rel` is visible through the lower layers, honouring whiteouts and opaque
/// directories the way overlayfs does.
fn exists_in_lowers(rel: &Path, lowers: &[PathBuf]) -> bool {
    let comps: Vec<&OsStr> = rel.iter().collect();
    'layers: for layer in lowers {
        let mut cur = layer.clone();
        let mut opaque_above = false;
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Err(_) if opaque_above => return false,
                Err(_) => continue 'layers,
                Ok(m) if is_whiteout(&m) => return false,
                Ok(_) if i + 1 == comps.len() => return true,
                // A non-directory here hides everything below it in lower layers.
                Ok(m) if !m.is_dir() => return false,
                Ok(_) => opaque_above |= is_opaque(&cur),
            }
        }
    }
    false
}

/// Writes the tree at `root` as a tar. With `overlay`, 0/0 character devices become
/// `.wh.<name>` files and opaque directories get a `.wh..wh..opq` entry (an OCI layer
/// diff). Returns the sha256 of the tar stream.
pub(crate) fn write_tar(root: &Path, writer: impl Write, overlay: bool) -> Result<Digest> {
    let root_dev = fs::symlink_metadata(root)
        .map_err(io_err("stat", root))?
        .dev();
    let mut w = TarWalker {
        tar: tar::Builder::new(HashingWriter::new(writer)),
        overlay,
        root_dev,
        links: HashMap::new(),
    };
    w.walk(root, "")?;
    let hw = w.tar.into_inner().map_err(io_err("write tar of", root))?;
    let (mut inner, digest, _) = hw.finish();
    inner.flush().map_err(io_err("write tar of", root))?;
    Ok(digest)
}

/// `docker export`: the container's merged root as a plain tar. Other filesystems
/// mounted below it are not entered.
pub fn export_tar(merged: &Path, writer: impl Write) -> Result<()> {
    write_tar(merged, writer, false).map(|_| ())
}

struct TarWalker<W: Write> {
    tar: tar::Builder<HashingWriter<W>>,
    overlay: bool,
    root_dev: u64,
    /// (dev, ino) of multiply-linked files already written -> their tar path.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWalker<W> {
    fn walk(&mut self, dir: &Path, rel: &str) -> Result<()> {
        for (name, path) in sorted_entries(dir)? {
            let name = name.to_string_lossy().into_owned();
            let tpath = format!("{rel}{name}");
            let m = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            let ft = m.file_type();
            if self.overlay && is_whiteout(&m) {
                let mut h = header(&m, tar::EntryType::Regular);
                h.set_size(0);
                self.append(&mut h, &format!("{rel}.wh.{name}"), io::empty(), &path)?;
                continue;
            }
            if ft.is_dir() {
                let mut h = header(&m, tar::EntryType::Directory);
                self.xattrs(&path, &format!("{tpath}/"))?;
                self.append(&mut h, &format!("{tpath}/"), io::empty(), &path)?;
                if self.overlay && is_opaque(&path) {
                    let mut h = header(&m, tar::EntryType::Regular);
                    h.set_size(0);
                    self.append(&mut h, &format!("{tpath}/.wh..wh..opq"), io::empty(), &path)?;
                }
                if m.dev() == self.root_dev {
                    self.walk(&path, &format!("{tpath}/"))?;
                }
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = self.links.get(&(m.dev(), m.ino())).cloned() {
                        let mut h = header(&m, tar::EntryType::Link);
                        h.set_size(0);
                        self.tar
                            .append_link(&mut h, &tpath, &first)
                            .map_err(io_err("write tar entry for", &path))?;
                        continue;
                    }
                    self.links.insert((m.dev(), m.ino()), tpath.clone());
                }
                // O_NOFOLLOW: a running container may swap the file for a symlink.
                let fd = rfs::open(
                    &path,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err("open", &path)(e.into()))?;
                let f = File::from(fd);
                let mut h = header(&m, tar::EntryType::Regular);
                h.set_size(m.len());
                self.xattrs(&path, &tpath)?;
                self.append(&mut h, &tpath, io::Read::take(f, m.len()), &path)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).map_err(io_err("read link", &path))?;
                let mut h = header(&m, tar::EntryType::Symlink);
                h.set_size(0);
                self.tar
                    .append_link(&mut h, &tpath, &target)
                    .map_err(io_err("write tar entry for", &path))?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                };
                let mut h = header(&m, kind);
                h.set_size(0);
                let dev = m.rdev();
                h.set_device_major(rfs::major(dev)).ok();
                h.set_device_minor(rfs::minor(dev)).ok();
                self.append(&mut h, &tpath, io::empty(), &path)?;
            }
            // Sockets are not archived, as in Docker.
        }
        Ok(())
    }

    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &str,
        data: impl io::Read,
        src: &Path,
    ) -> Result<()> {
        self.tar
            .append_data(h, name, data)
            .map_err(io_err("write tar entry for", src))
    }

    /// Emits a PAX header carrying the entry's xattrs (overlayfs' own excluded).
    fn xattrs(&mut self, path: &Path, tpath: &str) -> Result<()> {
        let mut records = Vec::new();
        for (k, v) in read_xattrs(path) {
            if k.starts_with("trusted.overlay.") {
                continue;
            }
            records.extend(pax_record(&format!("SCHILY.xattr.{k}"), &v));
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(records.len() as u64);
        h.set_mode(0o644);
        let short: String = format!("PaxHeaders/{tpath}").chars().take(99).collect();
        self.append(&mut h, &short, &records[..], path)
    }
}

fn header(m: &Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h
}

/// `"<len> <key>=<value>\n"` where len counts the whole record, itself included.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

pub(crate) fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rfs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut val = vec![0u8; 64 * 1024];
        if let Ok(len) = rfs::lgetxattr(path, name.as_str(), &mut val[..]) {
            val.truncate(len);
            out.push((name, val));
        }
    }
    out
}

/// Bytes used under `path`, as Docker counts them: file sizes, hardlinks once,
/// directories not counted, other filesystems not entered.
pub fn usage(path: &Path) -> Result<u64> {
    let m = fs::symlink_metadata(path).map_err(io_err("stat", path))?;
    if !m.is_dir() {
        return Ok(m.len());
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            let p = ent.path();
            let Ok(em) = fs::symlink_metadata(&p) else {
                continue; // removed while we looked
            };
            if em.is_dir() {
                if em.dev() == m.dev() {
                    stack.push(p);
                }
            } else if em.nlink() <= 1 || seen.insert((em.dev(), em.ino())) {
                total += em.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let r = pax_record("SCHILY.xattr.user.a", b"b");
        let s = String::from_utf8(r.clone()).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
        // Crossing a digit boundary: 9-byte body needs "10 " not "9 ".
        for n in 0..200 {
            let r = pax_record("k", &vec![b'x'; n]);
            let s = String::from_utf8(r.clone()).unwrap();
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "n={n}");
        }
    }
}
