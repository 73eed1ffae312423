//! Overlay, bind and unmount helpers.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

// Constants of the new mount API (linux/mount.h); the libc crate has the syscall
// numbers but not these.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// The kernel copies at most one page of mount(2) data.
const MOUNT_DATA_MAX: usize = 4095;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", p.display()),
        )
    })
}

fn ctx(err: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Mounts an overlay at `target`. `lowers[0]` is the topmost read-only layer.
///
/// Uses the new mount API with one `lowerdir+` per layer when the kernel has it
/// (Linux 6.8+), so any number of layers fits; otherwise falls back to mount(2),
/// switching to paths relative to a common parent when the option string would
/// not fit in one page.
pub fn mount_overlay(lowers: &[&Path], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    mount_overlay_with(&Overlay {
        lowers,
        upper,
        work,
        target,
        volatile: false,
    })
}

/// The parts of an overlay mount, as the internal helpers take them.
#[derive(Clone, Copy)]
struct Overlay<'a> {
    lowers: &'a [&'a Path],
    upper: &'a Path,
    work: &'a Path,
    target: &'a Path,
    volatile: bool,
}

/// [`mount_overlay`] with overlayfs' `volatile` option: no sync of the upper
/// layer ever, not even the whole-filesystem sync an overlay unmount does
/// otherwise. Only for layers thrown away with their container (as Podman
/// does for `--rm`). Clears the marker a previous clean volatile mount left in
/// `work`, without which the kernel refuses the mount.
pub fn mount_overlay_volatile(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    let incompat = work.join("work").join("incompat");
    match std::fs::remove_dir_all(&incompat) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e, format!("remove {}", incompat.display()))),
    }
    mount_overlay_with(&Overlay {
        lowers,
        upper,
        work,
        target,
        volatile: true,
    })
}

fn mount_overlay_with(o: &Overlay<'_>) -> io::Result<()> {
    if o.lowers.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay mount needs at least one lower layer",
        ));
    }
    match mount_overlay_fsconfig(o) {
        Ok(()) => Ok(()),
        Err(FsConfigError::Unsupported) => legacy(o),
        Err(FsConfigError::Io(e)) => Err(e),
    }
}

enum FsConfigError {
    /// The kernel lacks fsopen or `lowerdir+`: use mount(2).
    Unsupported,
    Io(io::Error),
}

/// Reads the messages the kernel queued on an fs context, to explain a failure.
fn fs_context_log(fsfd: &OwnedFd) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(fsfd, &mut buf) {
            Ok(n) if n > 0 => {
                if !out.is_empty() {
                    out.push_str("; ");
                }
                out.push_str(String::from_utf8_lossy(&buf[..n]).trim_end());
            }
            _ => break,
        }
    }
    out
}

fn fsconfig_string(fsfd: &OwnedFd, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: plain syscall; both strings are NUL-terminated and outlive the call,
    // and fsfd is an open fs context we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn mount_overlay_fsconfig(o: &Overlay<'_>) -> Result<(), FsConfigError> {
    let (lowers, upper, work, target) = (o.lowers, o.upper, o.work, o.target);
    let volatile = o.volatile;
    let io = |e: io::Error| FsConfigError::Io(e);
    // SAFETY: plain syscall with a static NUL-terminated name.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EPERM) => Err(FsConfigError::Unsupported),
            _ => Err(io(ctx(e, "fsopen overlay"))),
        };
    }
    // SAFETY: fsopen just returned this fd; nothing else owns it.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };

    for (i, lower) in lowers.iter().enumerate() {
        let c = cpath(lower).map_err(io)?;
        if let Err(e) = fsconfig_string(&fsfd, c"lowerdir+", &c) {
            // Kernels before 6.8 reject the key itself: only then fall back.
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) && lower.is_dir() {
                return Err(FsConfigError::Unsupported);
            }
            let log = fs_context_log(&fsfd);
            return Err(io(ctx(
                e,
                format!("overlay lowerdir {} ({log})", lower.display()),
            )));
        }
    }
    for (key, p) in [(c"upperdir", upper), (c"workdir", work)] {
        let c = cpath(p).map_err(io)?;
        fsconfig_string(&fsfd, key, &c).map_err(|e| {
            let log = fs_context_log(&fsfd);
            io(ctx(
                e,
                format!("overlay {} {} ({log})", key.to_string_lossy(), p.display()),
            ))
        })?;
    }
    if volatile {
        // SAFETY: plain syscall on our fs context; a flag takes a NUL-terminated
        // key and a null value.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                c"volatile".as_ptr(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if r < 0 {
            let log = fs_context_log(&fsfd);
            return Err(io(ctx(
                io::Error::last_os_error(),
                format!("overlay volatile for {} ({log})", target.display()),
            )));
        }
    }
    // SAFETY: plain syscall on our fs context; null key/value are what CMD_CREATE takes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        let log = fs_context_log(&fsfd);
        return Err(io(ctx(
            e,
            format!("create overlay for {} ({log})", target.display()),
        )));
    }
    // SAFETY: plain syscall on our configured fs context.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if m < 0 {
        return Err(io(ctx(
            io::Error::last_os_error(),
            format!("fsmount overlay for {}", target.display()),
        )));
    }
    // SAFETY: fsmount just returned this fd; nothing else owns it.
    let mfd = unsafe { OwnedFd::from_raw_fd(m as libc::c_int) };
    let ct = cpath(target).map_err(io)?;
    // SAFETY: plain syscall; the empty path and target are NUL-terminated and live,
    // mfd is the detached mount we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io(ctx(
            io::Error::last_os_error(),
            format!("move overlay mount to {}", target.display()),
        )));
    }
    Ok(())
}

fn overlay_data(lowers: &[&Path], upper: &Path, work: &Path, volatile: bool) -> Vec<u8> {
    let mut d = b"lowerdir=".to_vec();
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            d.push(b':');
        }
        d.extend_from_slice(l.as_os_str().as_bytes());
    }
    d.extend_from_slice(b",upperdir=");
    d.extend_from_slice(upper.as_os_str().as_bytes());
    d.extend_from_slice(b",workdir=");
    d.extend_from_slice(work.as_os_str().as_bytes());
    if volatile {
        d.extend_from_slice(b",volatile");
    }
    d
}

/// Longest common directory of absolute paths.
fn common_parent(paths: &[&Path]) -> PathBuf {
    let mut common: Vec<_> = paths[0].components().collect();
    for p in &paths[1..] {
        let n = common
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(n);
    }
    // Never use a path itself as the parent: relative paths must stay non-empty.
    let full = common.iter().collect::<PathBuf>();
    if paths.iter().any(|p| *p == full) {
        full.parent().map(Path::to_path_buf).unwrap_or(full)
    } else {
        full
    }
}

pub fn mount_overlay_legacy(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    legacy(&Overlay {
        lowers,
        upper,
        work,
        target,
        volatile: false,
    })
}

fn legacy(o: &Overlay<'_>) -> io::Result<()> {
    let (lowers, upper, work, target) = (o.lowers, o.upper, o.work, o.target);
    let volatile = o.volatile;
    let data = overlay_data(lowers, upper, work, volatile);
    let ct = cpath(target)?;
    if data.len() <= MOUNT_DATA_MAX {
        let cdata = CString::new(data).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "overlay path with NUL byte")
        })?;
        return nix::mount::mount(
            Some(c"overlay"),
            ct.as_c_str(),
            Some(c"overlay"),
            MsFlags::empty(),
            Some(cdata.as_c_str()),
        )
        .map_err(|e| ctx(e.into(), format!("mount overlay on {}", target.display())));
    }

    // Too long for one page: mount from the layers' common parent with relative paths.
    let mut all: Vec<&Path> = lowers.to_vec();
    all.push(upper);
    all.push(work);
    if all.iter().any(|p| !p.is_absolute()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay layer paths must be absolute",
        ));
    }
    let parent = common_parent(&all);
    let rel = |p: &Path| p.strip_prefix(&parent).map(Path::to_path_buf);
    let rel_lowers: Vec<PathBuf> = lowers
        .iter()
        .map(|p| rel(p))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::other("overlay path outside common parent"))?;
    let rel_lowers_ref: Vec<&Path> = rel_lowers.iter().map(PathBuf::as_path).collect();
    let data = overlay_data(
        &rel_lowers_ref,
        &rel(upper).map_err(|_| io::Error::other("upper outside common parent"))?,
        &rel(work).map_err(|_| io::Error::other("work outside common parent"))?,
        volatile,
    );
    if data.len() > MOUNT_DATA_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "overlay options for {} are {} bytes even with relative paths (max {MOUNT_DATA_MAX})",
                target.display(),
                data.len()
            ),
        ));
    }
    let cdata = CString::new(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "overlay path with NUL byte"))?;
    let cparent = cpath(&parent)?;
    // The cwd is process-wide, so change it only in a throwaway child. The caller may
    // be multi-threaded (the engine), so the child only makes raw syscalls.
    // SAFETY: after fork the child runs only async-signal-safe calls (chdir, mount,
    // _exit) on strings built before the fork, so locks held by other threads of
    // the parent cannot be touched.
    match unsafe { nix::unistd::fork() }.map_err(|e| ctx(e.into(), "fork overlay mount helper"))? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: see above; only raw syscalls, then _exit.
            unsafe {
                if libc::chdir(cparent.as_ptr()) != 0 {
                    libc::_exit(*libc::__errno_location());
                }
                let r = libc::mount(
                    c"overlay".as_ptr(),
                    ct.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    cdata.as_ptr().cast(),
                );
                libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None)
                .map_err(|e| ctx(e.into(), "wait for overlay mount helper"))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                nix::sys::wait::WaitStatus::Exited(_, errno) => Err(ctx(
                    io::Error::from_raw_os_error(errno),
                    format!(
                        "mount overlay on {} (relative to {})",
                        target.display(),
                        parent.display()
                    ),
                )),
                other => Err(io::Error::other(format!(
                    "overlay mount helper ended with {other:?}"
                ))),
            }
        }
    }
}

/// Unmounts `target`; `detach` makes it lazy (MNT_DETACH).
pub fn unmount(target: &Path, detach: bool) -> io::Result<()> {
    let flags = if detach {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(target, flags)
        .map_err(|e| ctx(e.into(), format!("unmount {}", target.display())))
}

/// Recursively bind-mounts `source` on `target`, read-only if asked.
pub fn bind_mount(source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
    let what = || format!("bind mount {} on {}", source.display(), target.display());
    nix::mount::mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| ctx(e.into(), what()))?;
    if readonly {
        // MS_RDONLY is ignored on the first bind call; it needs a remount.
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| ctx(e.into(), format!("{} read-only", what())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_parent_of_siblings() {
        let a = Path::new("/var/lib/pier/snap/1/fs");
        let b = Path::new("/var/lib/pier/snap/2/fs");
        let c = Path::new("/var/lib/pier/snap/3/work");
        assert_eq!(common_parent(&[a, b, c]), Path::new("/var/lib/pier/snap"));
        assert_eq!(
            common_parent(&[Path::new("/x/y"), Path::new("/x/y")]),
            Path::new("/x")
        );
    }

    #[test]
    fn overlay_data_order() {
        let d = overlay_data(
            &[Path::new("/a"), Path::new("/b")],
            Path::new("/u"),
            Path::new("/w"),
            false,
        );
        assert_eq!(d, b"lowerdir=/a:/b,upperdir=/u,workdir=/w");
        let d = overlay_data(&[Path::new("/a")], Path::new("/u"), Path::new("/w"), true);
        assert_eq!(d, b"lowerdir=/a,upperdir=/u,workdir=/w,volatile");
    }
}
