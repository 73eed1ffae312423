//! File operations confined to a root directory: resolving paths the way a
//! process chrooted there would (symlinks cannot leave the root), copying
//! trees with ownership and modes, and hashing trees for the cache.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pier_reference::{Digest, Sha256Writer};

use crate::error::{BuildError, Result};

const MAX_LINKS: usize = 255;

/// `path` (absolute or relative to `/`) inside `root`, with every symlink
/// resolved as if `root` were `/`. The last component is followed only when
/// `follow_last`. Missing components are fine (they are taken literally).
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: VecDeque<String> = split(path);
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            cur.pop();
            continue;
        }
        cur.push(part);
        if todo.is_empty() && !follow_last {
            break;
        }
        let host = join(root, &cur);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {path}"
                    )));
                }
                let target = fs::read_link(&host)?;
                let target = target.to_string_lossy().into_owned();
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for p in split(&target).into_iter().rev() {
                    todo.push_front(p);
                }
            }
            _ => {}
        }
    }
    Ok(join(root, &cur))
}

fn split(p: &str) -> VecDeque<String> {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

/// Ownership and mode changes applied to copied files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyAttrs {
    /// uid/gid for everything copied; None keeps the source's.
    pub owner: Option<(u32, u32)>,
    /// Permission bits for everything copied (`--chmod`).
    pub mode: Option<u32>,
}

/// Creates `dir` (a host path inside a root whose parents are already
/// resolved) and missing parents below `root`, owned by `owner`.
pub fn mkdir_all_in_root(root: &Path, path: &str, owner: Option<(u32, u32)>) -> Result<PathBuf> {
    let mut cur = String::new();
    let mut host = root.to_path_buf();
    for part in split(path) {
        cur.push('/');
        cur.push_str(&part);
        host = resolve_in_root(root, &cur, true).map_err(BuildError::io("resolving", &cur))?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BuildError::Invalid(format!(
                    "cannot create directory {cur}: a file is in the way"
                )))
            }
            Err(_) => create_missing(root, &host, owner)?,
        }
    }
    Ok(host)
}

/// Creates `host` and its missing ancestors below `root`. Every existing
/// component of a path from [`resolve_in_root`] is a real directory, so
/// nothing here can follow a link.
fn create_missing(root: &Path, host: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = host;
    while p != root && fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        fs::create_dir(&dir).map_err(BuildError::io("creating directory", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(BuildError::io("setting mode of", &dir))?;
        if let Some((u, g)) = owner {
            lchown(&dir, u, g)?;
        }
    }
    Ok(())
}

pub fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(BuildError::io("chown", path))
}

/// Removes whatever is at `path` (file, link or tree), if anything.
pub fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(BuildError::io("removing", path)),
        Ok(_) => fs::remove_file(path).map_err(BuildError::io("removing", path)),
        Err(_) => Ok(()),
    }
}

/// Filter deciding, from a path relative to the copied item, whether to skip
/// it.
pub type Skip<'a> = &'a dyn Fn(&str) -> bool;

/// Copies `src` (a file, symlink or directory on the host) to `dst`. A
/// directory's contents are merged into `dst`; links are copied as links.
/// `rel` is `src`'s name for `skip`.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &str,
    attrs: CopyAttrs,
    skip: Skip<'_>,
) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(BuildError::io("reading", src))?;
    let ft = meta.file_type();
    let owner = attrs.owner.unwrap_or((meta.uid(), meta.gid()));
    if ft.is_dir() {
        match fs::symlink_metadata(dst) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove_any(dst)?;
                fs::create_dir(dst).map_err(BuildError::io("creating directory", dst))?;
            }
            Err(_) => fs::create_dir(dst).map_err(BuildError::io("creating directory", dst))?,
        }
        for name in sorted_names(src)? {
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if skip(&child_rel) && !has_kept_below(&src.join(&name), &child_rel, skip) {
                continue;
            }
            copy_tree(&src.join(&name), &dst.join(&name), &child_rel, attrs, skip)?;
        }
        lchown(dst, owner.0, owner.1)?;
        let mode = attrs.mode.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
            .map_err(BuildError::io("setting mode of", dst))?;
        set_mtime(dst, &meta);
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(BuildError::io("reading link", src))?;
        remove_any(dst)?;
        std::os::unix::fs::symlink(&target, dst).map_err(BuildError::io("creating link", dst))?;
        lchown(dst, owner.0, owner.1)?;
    } else if ft.is_file() {
        if fs::symlink_metadata(dst).is_ok() {
            remove_any(dst)?;
        }
        fs::copy(src, dst).map_err(|e| BuildError::Io {
            context: "copying to",
            path: dst.to_path_buf(),
            source: e,
        })?;
        lchown(dst, owner.0, owner.1)?;
        let mode = attrs.mode.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
            .map_err(BuildError::io("setting mode of", dst))?;
        set_mtime(dst, &meta);
    }
    // Devices, fifos and sockets are not copied (contexts never carry them).
    Ok(())
}

/// An excluded directory is still walked when something below it is kept
/// (dockerignore exceptions).
fn has_kept_below(path: &Path, rel: &str, skip: Skip<'_>) -> bool {
    let Ok(m) = fs::symlink_metadata(path) else {
        return false;
    };
    if !m.is_dir() {
        return !skip(rel);
    }
    let Ok(names) = sorted_names(path) else {
        return false;
    };
    names
        .iter()
        .any(|n| has_kept_below(&path.join(n), &format!("{rel}/{n}"), skip))
}

fn set_mtime(path: &Path, meta: &fs::Metadata) {
    if let (Ok(f), Ok(t)) = (fs::File::open(path), meta.modified()) {
        let _ = f.set_modified(t);
    }
}

pub fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(BuildError::io("reading directory", dir))? {
        let e = e.map_err(BuildError::io("reading directory", dir))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Feeds a tree into `h`: names, types, modes, owners (when `owners`), file
/// contents and link targets, in sorted order. Modification times are left
/// out so that a fresh checkout of the same files hits the cache.
pub fn hash_tree(
    h: &mut Sha256Writer,
    src: &Path,
    rel: &str,
    owners: bool,
    skip: Skip<'_>,
) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(BuildError::io("reading", src))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else {
        return Ok(());
    };
    h.update(format!("{kind} {rel} {:o}", meta.mode() & 0o7777).as_bytes());
    if owners {
        h.update(format!(" {}:{}", meta.uid(), meta.gid()).as_bytes());
    }
    h.update(b"\0");
    match kind {
        'd' => {
            for name in sorted_names(src)? {
                let child_rel = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if skip(&child_rel) && !has_kept_below(&src.join(&name), &child_rel, skip) {
                    continue;
                }
                hash_tree(h, &src.join(&name), &child_rel, owners, skip)?;
            }
        }
        'l' => {
            let t = fs::read_link(src).map_err(BuildError::io("reading link", src))?;
            h.update(t.as_os_str().as_encoded_bytes());
            h.update(b"\0");
        }
        _ => {
            h.update(file_digest(src, &meta)?.hex().as_bytes());
            h.update(format!("\0{}\0", meta.len()).as_bytes());
        }
    }
    Ok(())
}

/// What identifies a file's content without reading it: device, inode,
/// size, mtime and ctime (ctime cannot be set back, so a rewrite that keeps
/// size and mtime still changes it).
type StatKey = (u64, u64, u64, i64, i64, i64, i64);

/// Digests of files already read, so a rebuild from the same context
/// directory hashes only what changed (BuildKit keeps a similar cache).
static DIGESTS: std::sync::Mutex<Option<std::collections::HashMap<StatKey, Digest>>> =
    std::sync::Mutex::new(None);
/// Bound on remembered files; past it the cache starts over.
const MAX_DIGESTS: usize = 500_000;

fn file_digest(src: &Path, meta: &fs::Metadata) -> Result<Digest> {
    let key: StatKey = (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    );
    let cached = DIGESTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&key).cloned());
    if let Some(d) = cached {
        return Ok(d);
    }
    let mut f = fs::File::open(src).map_err(BuildError::io("opening", src))?;
    let mut fh = Sha256Writer::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(BuildError::io("reading", src))?;
        if n == 0 {
            break;
        }
        fh.update(&buf[..n]);
    }
    let d = fh.digest();
    let mut g = DIGESTS.lock().unwrap_or_else(|e| e.into_inner());
    let m = g.get_or_insert_with(Default::default);
    if m.len() >= MAX_DIGESTS {
        m.clear();
    }
    m.insert(key, d.clone());
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_in_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/esc")).unwrap();
        std::os::unix::fs::symlink("/a/b", root.join("ab")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let r = |p: &str| resolve_in_root(root, p, true).unwrap();
        assert_eq!(r("/up/etc"), root.join("etc"));
        assert_eq!(r("a/b/esc/x"), root.join("x"));
        assert_eq!(r("/ab/c"), root.join("a/b/c"));
        assert_eq!(r("../../x"), root.join("x"));
        assert_eq!(
            resolve_in_root(root, "/ab", false).unwrap(),
            root.join("ab")
        );
        assert!(resolve_in_root(root, "/loop", true).is_err());
    }

    #[test]
    fn mkdir_owner_and_blocked() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let d = mkdir_all_in_root(root, "/x/y/z", Some((7, 8))).unwrap();
        assert_eq!(d, root.join("x/y/z"));
        let m = fs::metadata(root.join("x/y")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (7, 8, 0o755));
        fs::write(root.join("f"), "").unwrap();
        assert!(mkdir_all_in_root(root, "/f/g", None).is_err());
    }

    #[test]
    fn hash_ignores_mtime_but_not_mode() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "x").unwrap();
        let hash = || {
            let mut h = Sha256Writer::new();
            hash_tree(&mut h, t.path(), "", false, &|_| false).unwrap();
            h.digest()
        };
        let a = hash();
        let file = fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(a, hash());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(a, hash());
    }
}
