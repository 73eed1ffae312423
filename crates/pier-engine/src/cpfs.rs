//! `docker cp` by descriptor: reaching a container's files without ever resolving a
//! host path through the container's symlinks.
//!
//! A container can rename its directories while the daemon copies (swap `/d` with a
//! symlink to `/`), so a path resolved once and then reopened by name may lead to the
//! host. Here every step is an `openat(O_PATH | O_NOFOLLOW)` relative to a directory
//! descriptor already inside the container; symlinks are read and resolved by this
//! code, `..` pops a stack of descriptors the walk came through (never the kernel's
//! `..`), and absolute targets restart at the container's root descriptor. Whatever
//! the container renames meanwhile, each descriptor was reached from the container's
//! root by descending, so the walk stays inside it.
//!
//! The root is the container's root as its processes see it: `/proc/<pid>/root` of a
//! running container (its volumes, binds and tmpfs mounts are crossed by the kernel),
//! checked to be the container's overlay so a recycled pid cannot lend the host's root.
//! A stopped container has no mount namespace: the walk starts at its mounted root and
//! switches to a volume's or bind's own descriptor where the container would see it.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::records::ContainerRecord;
use crate::{EngineError, Result};

/// More symlinks than Linux follows (40) is a loop.
const MAX_HOPS: usize = 40;
/// A deeper tree would need one open descriptor per level; PATH_MAX bounds Docker's
/// walk to about this depth too.
const MAX_DEPTH: usize = 2048;

struct ViewMount {
    dest: PathBuf,
    fd: OwnedFd,
    rw: bool,
}

/// The container's filesystem as its processes see it, by descriptors.
pub(crate) struct View {
    root: OwnedFd,
    /// Volumes and binds of a stopped container (a running one's are in `root`).
    mounts: Vec<ViewMount>,
    /// Names the container in errors.
    id: String,
}

/// A path found in a [`View`].
pub(crate) struct Found {
    /// `O_PATH` descriptor of the object itself.
    pub fd: OwnedFd,
    pub st: Stat,
    /// The tree holding it (the root or a mount's) and its path in that tree, free of
    /// symlinks as they were during the walk.
    pub tree: OwnedFd,
    pub rel: PathBuf,
    /// Its path in the container.
    pub logical: PathBuf,
    /// Inside a read-only volume or bind of a stopped container.
    pub read_only: bool,
}

fn opath(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn dup(fd: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

/// Reopens an `O_PATH` descriptor for reading: the same inode, whatever its name
/// now points to.
fn reopen(fd: &OwnedFd, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rfs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        flags | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
}

fn same_inode(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

fn split(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

struct Level {
    fd: OwnedFd,
    name: OsString,
    tree: usize,
    rel: PathBuf,
}

impl View {
    /// The view of `rec`, whose root is mounted at `merged`; `key` (what the client
    /// called the container) names it in errors, as Docker's do.
    pub(crate) fn open(rec: &ContainerRecord, key: &str, merged: &Path) -> Result<View> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rfs::open(merged, flags | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| EngineError::from_io(merged, e.into()))?;
        if rec.state.running() && rec.state.pid > 0 {
            let proc_root = PathBuf::from(format!("/proc/{}/root", rec.state.pid));
            // Only the container's own root will do: a pid the kernel recycled for
            // a host process would lend the host's `/`.
            if let Ok(fd) = rfs::open(&proc_root, flags, Mode::empty())
                && let (Ok(a), Ok(b)) = (rfs::fstat(&fd), rfs::fstat(&root))
                && same_inode(&a, &b)
            {
                return Ok(View {
                    root: fd,
                    mounts: Vec::new(),
                    id: key.to_string(),
                });
            }
        }
        let mut mounts = Vec::new();
        for m in rec.mounts.iter().filter(|m| m.kind != "tmpfs") {
            // The source is the daemon's volume directory or the host path the user
            // chose for a bind: trusted, unlike anything inside the container.
            let fd = rfs::open(&m.source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| EngineError::from_io(Path::new(&m.source), e.into()))?;
            mounts.push(ViewMount {
                dest: Path::new("/").join(&m.destination).components().collect(),
                fd,
                rw: m.rw,
            });
        }
        // The innermost mount wins.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.dest.as_os_str().len()));
        Ok(View {
            root,
            mounts,
            id: key.to_string(),
        })
    }

    fn mount_at(&self, logical: &Path) -> Option<usize> {
        self.mounts.iter().position(|m| m.dest == logical)
    }

    fn tree_fd(&self, tree: usize) -> &OwnedFd {
        match tree {
            0 => &self.root,
            i => &self.mounts[i - 1].fd,
        }
    }

    fn err(&self, path: &str, what: &str, e: Errno) -> EngineError {
        match e {
            Errno::NOENT | Errno::NOTDIR => EngineError::not_found(format!(
                "Could not find the file {path} in container {}",
                self.id
            )),
            e => EngineError::internal(format!("{what} {path} in container {}", self.id))
                .with_source(io::Error::from(e)),
        }
    }

    /// Finds `path` as the container sees it. The final component is a symlink
    /// itself unless `follow_last`.
    pub(crate) fn walk(&self, path: &str, follow_last: bool) -> Result<Found> {
        let mut stack = vec![Level {
            fd: dup(&self.root).map_err(|e| self.err(path, "open", e))?,
            name: OsString::new(),
            tree: 0,
            rel: PathBuf::new(),
        }];
        let mut pending = split(Path::new(path));
        pending.reverse();
        let mut hops = 0;
        let logical = |stack: &[Level]| -> PathBuf {
            let mut p = PathBuf::from("/");
            for l in &stack[1..] {
                p.push(&l.name);
            }
            p
        };
        while let Some(c) = pending.pop() {
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let last = pending.is_empty();
            let cur = stack.last().expect("the root stays on the stack");
            let here = logical(&stack).join(&c);
            let (fd, tree, rel) = match self.mount_at(&here) {
                Some(i) => (dup(&self.mounts[i].fd), i + 1, PathBuf::new()),
                None => (opath(&cur.fd, &c), cur.tree, cur.rel.join(&c)),
            };
            let fd = fd.map_err(|e| self.err(path, "open", e))?;
            let st = rfs::fstat(&fd).map_err(|e| self.err(path, "stat", e))?;
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft == FileType::Symlink && (!last || follow_last) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(self.err(path, "resolve", Errno::LOOP));
                }
                let target =
                    rfs::readlinkat(&fd, "", Vec::new()).map_err(|e| self.err(path, "read", e))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    stack.truncate(1);
                }
                let mut t = split(&target);
                t.reverse();
                pending.extend(t);
                continue;
            }
            if last {
                return self.found(fd, st, tree, rel, here);
            }
            if ft != FileType::Directory {
                return Err(self.err(path, "open", Errno::NOTDIR));
            }
            stack.push(Level {
                fd,
                name: c,
                tree,
                rel,
            });
        }
        let here = logical(&stack);
        let top = stack.pop().expect("the root stays on the stack");
        let st = rfs::fstat(&top.fd).map_err(|e| self.err(path, "stat", e))?;
        self.found(top.fd, st, top.tree, top.rel, here)
    }

    /// `mkdir -p` of `path` as the container sees it (Docker creates a missing
    /// working directory), each directory made with `mkdirat` in its parent's
    /// descriptor: a symlink swapped in meanwhile cannot lead it to the host.
    pub(crate) fn mkdir_all(&self, path: &str) -> Result<()> {
        let mut clean: Vec<OsString> = Vec::new();
        for c in split(Path::new(path)) {
            if c == ".." {
                clean.pop();
            } else {
                clean.push(c);
            }
        }
        let mut prefix = PathBuf::from("/");
        for c in clean {
            let parent = self.walk(&prefix.display().to_string(), true)?;
            prefix.push(&c);
            match rfs::mkdirat(&parent.fd, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(self.err(&prefix.display().to_string(), "create", e)),
            }
        }
        Ok(())
    }

    fn found(
        &self,
        fd: OwnedFd,
        st: Stat,
        tree: usize,
        rel: PathBuf,
        logical: PathBuf,
    ) -> Result<Found> {
        let read_only = tree > 0 && !self.mounts[tree - 1].rw;
        let tree = dup(self.tree_fd(tree)).map_err(|e| {
            EngineError::internal(format!("container {}", self.id)).with_source(io::Error::from(e))
        })?;
        Ok(Found {
            fd,
            st,
            tree,
            rel,
            logical,
            read_only,
        })
    }

    /// Writes `found` as a tar whose top entry is named `top`, descending by
    /// descriptors only.
    pub(crate) fn write_tar(&self, found: &Found, top: &[u8], out: &mut dyn Write) -> Result<()> {
        let ioerr = |e: io::Error| {
            EngineError::internal(format!(
                "archiving {} in container {}",
                found.logical.display(),
                self.id
            ))
            .with_source(e)
        };
        let sys = |e: Errno| ioerr(e.into());
        let mut b = tar::Builder::new(out);
        emit(&mut b, &found.fd, &found.st, top).map_err(ioerr)?;
        if FileType::from_raw_mode(found.st.st_mode) == FileType::Directory
            && !is_pseudo_fs(&found.fd)
        {
            struct Frame {
                dir: OwnedFd,
                arc: Vec<u8>,
                logical: PathBuf,
                names: std::vec::IntoIter<OsString>,
            }
            let mut stack = vec![Frame {
                names: list(&found.fd).map_err(sys)?.into_iter(),
                dir: dup(&found.fd).map_err(sys)?,
                arc: top.to_vec(),
                logical: found.logical.clone(),
            }];
            while let Some(f) = stack.last_mut() {
                let Some(name) = f.names.next() else {
                    stack.pop();
                    continue;
                };
                let logical = f.logical.join(&name);
                let fd = match self.mount_at(&logical) {
                    Some(i) => dup(&self.mounts[i].fd),
                    None => opath(&f.dir, &name),
                };
                let fd = match fd {
                    Ok(fd) => fd,
                    // Removed since it was listed.
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(sys(e)),
                };
                let st = rfs::fstat(&fd).map_err(sys)?;
                let mut arc = f.arc.clone();
                if arc.last() != Some(&b'/') {
                    arc.push(b'/');
                }
                arc.extend_from_slice(name.as_bytes());
                emit(&mut b, &fd, &st, &arc).map_err(ioerr)?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory && !is_pseudo_fs(&fd)
                {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ioerr(io::Error::other("directory tree too deep")));
                    }
                    stack.push(Frame {
                        names: list(&fd).map_err(sys)?.into_iter(),
                        dir: fd,
                        arc,
                        logical,
                    });
                }
            }
        }
        b.finish().map_err(ioerr)
    }
}

/// True for kernel pseudo filesystems (a running container's /proc, /sys, ...): their
/// files are not data, report sizes they do not have, and can fail to read. Their
/// directories are archived empty.
fn is_pseudo_fs(fd: &OwnedFd) -> bool {
    const PSEUDO: &[i64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6367_7270, // cgroup2
        0x0027_e0eb, // cgroup
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
        0x6165_676c, // pstore
        0x6265_6570, // configfs
        0x6573_5543, // fusectl
        0x4249_4e4d, // binfmt_misc
    ];
    rfs::fstatfs(fd).is_ok_and(|s| PSEUDO.contains(&s.f_type))
}

/// The names in directory `fd` (an `O_PATH` descriptor), sorted.
fn list(fd: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
    let d = rfs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in rfs::Dir::read_from(&d)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Appends one entry named `name` (written as given: `./x` stays `./x`, a link to
/// `/` stays `/`), with GNU long-name entries when a name does not fit the header.
fn emit<W: Write>(b: &mut tar::Builder<W>, fd: &OwnedFd, st: &Stat, name: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    let ft = FileType::from_raw_mode(st.st_mode);
    let kind = match ft {
        FileType::RegularFile => tar::EntryType::Regular,
        FileType::Directory => tar::EntryType::Directory,
        FileType::Symlink => tar::EntryType::Symlink,
        FileType::CharacterDevice => tar::EntryType::Char,
        FileType::BlockDevice => tar::EntryType::Block,
        FileType::Fifo => tar::EntryType::Fifo,
        // Sockets cannot be archived (Docker skips them too).
        _ => return Ok(()),
    };
    h.set_entry_type(kind);
    if matches!(ft, FileType::CharacterDevice | FileType::BlockDevice) {
        h.set_device_major(rfs::major(st.st_rdev))?;
        h.set_device_minor(rfs::minor(st.st_rdev))?;
    }
    if ft == FileType::Symlink {
        let target = rfs::readlinkat(fd, "", Vec::new())?;
        let target = target.as_bytes();
        if target.len() > 100 {
            long_entry(b, tar::EntryType::GNULongLink, target)?;
        }
        let n = target.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&target[..n]);
    }
    if name.len() > 100 {
        long_entry(b, tar::EntryType::GNULongName, name)?;
    }
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    if ft != FileType::RegularFile {
        h.set_cksum();
        return b.append(&h, io::empty());
    }
    // Reading through the descriptor the walk stat'ed: never another inode (a device
    // node swapped in by the container), and a file that shrinks or grows meanwhile
    // still fills exactly the size in the header.
    let size = st.st_size.max(0) as u64;
    let f = std::fs::File::from(reopen(fd, OFlags::empty())?);
    let fst = rfs::fstat(&f)?;
    if !same_inode(st, &fst) {
        return Err(io::Error::other("file changed while archiving"));
    }
    h.set_size(size);
    h.set_cksum();
    let data = f.take(size).chain(io::repeat(0)).take(size);
    b.append(&h, data)
}

fn long_entry<W: Write>(b: &mut tar::Builder<W>, kind: tar::EntryType, v: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_mode(0o644);
    h.set_entry_type(kind);
    let mut data = v.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

/// Go's os.FileMode bits, as Docker reports them in the path stat header.
pub(crate) fn go_mode(st: &Stat) -> u32 {
    let m = st.st_mode;
    let mut out = m & 0o777;
    if m & 0o4000 != 0 {
        out |= 1 << 23;
    }
    if m & 0o2000 != 0 {
        out |= 1 << 22;
    }
    if m & 0o1000 != 0 {
        out |= 1 << 20;
    }
    out | match FileType::from_raw_mode(m) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(root: &Path) -> View {
        View {
            root: rfs::open(root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            mounts: Vec::new(),
            id: "test".into(),
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "in").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("etc/esc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("top")).unwrap();
        let v = view(root);
        assert_eq!(
            v.walk("/link/passwd", false).unwrap().logical,
            Path::new("/etc/passwd")
        );
        assert_eq!(
            v.walk("/etc/esc/passwd", false).unwrap().logical,
            Path::new("/etc/passwd")
        );
        assert_eq!(v.walk("/../../etc", false).unwrap().rel, Path::new("etc"));
        assert_eq!(v.walk("/top", true).unwrap().logical, Path::new("/"));
        // Not followed: the link itself.
        let f = v.walk("/top", false).unwrap();
        assert_eq!(FileType::from_raw_mode(f.st.st_mode), FileType::Symlink);
        assert_eq!(
            v.walk("/nope", false).err().map(|e| e.kind()),
            Some(crate::ErrorKind::NotFound)
        );
    }

    #[test]
    fn mounts_are_reached_where_the_container_sees_them() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let vol = d.path().join("vol");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("f"), "in the volume").unwrap();
        std::os::unix::fs::symlink("/data", root.join("tolink")).unwrap();
        // A link inside the volume that climbs: it lands in the container's root.
        std::os::unix::fs::symlink("../../../etc", vol.join("up")).unwrap();
        let mut v = view(&root);
        v.mounts.push(ViewMount {
            dest: PathBuf::from("/data"),
            fd: rfs::open(&vol, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap(),
            rw: false,
        });
        let f = v.walk("/tolink/f", false).unwrap();
        assert_eq!(f.logical, Path::new("/data/f"));
        assert_eq!(f.rel, Path::new("f"));
        assert!(f.read_only);
        assert_eq!(f.st.st_size, 13);
        let up = v.walk("/data/up", true).unwrap();
        assert_eq!(
            (up.logical.as_path(), up.rel.as_path()),
            (Path::new("/etc"), Path::new("etc"))
        );
        assert!(!up.read_only);
        // The root's archive includes the volume's content at its mount point.
        let top = v.walk("/", false).unwrap();
        let mut out = Vec::new();
        v.write_tar(&top, b"/", &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        assert!(names.contains(&"/data/f".to_string()), "{names:?}");
    }

    #[test]
    fn mkdir_all_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/", root.join("a")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let v = view(&root);
        v.mkdir_all("/a/b/../c/d").unwrap();
        assert!(root.join("c/d").is_dir());
        v.mkdir_all("/up/e").unwrap();
        assert!(root.join("e").is_dir());
        assert!(!d.path().join("e").exists());
        v.mkdir_all("/").unwrap();
    }

    #[test]
    fn tar_names_are_written_as_given() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink("/", root.join("a/top")).unwrap();
        let long = "x".repeat(150);
        std::fs::write(root.join("a").join(&long), "data").unwrap();
        let v = view(root);
        let f = v.walk("/", false).unwrap();
        let mut out = Vec::new();
        v.write_tar(&f, b".", &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            seen.push((name, link));
        }
        assert_eq!(seen[0].0, ".");
        assert!(seen.contains(&("./a/top".into(), Some("/".into()))));
        assert!(seen.iter().any(|(n, _)| *n == format!("./a/{long}")));
    }
}
