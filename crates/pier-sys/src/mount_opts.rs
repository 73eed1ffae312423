//! mount(2) with an option string the way Docker's `local` volume driver
//! passes one (moby/sys/mount): known words become flags, the rest is the
//! filesystem's data.

use std::io;
use std::path::Path;

use nix::mount::MsFlags;

/// Words that are flags, as moby/sys/mount's `parseOptions` knows them:
/// (word, flags set, flags cleared).
const FLAGS: &[(&str, MsFlags, MsFlags)] = &[
    ("defaults", MsFlags::empty(), MsFlags::empty()),
    ("ro", MsFlags::MS_RDONLY, MsFlags::empty()),
    ("rw", MsFlags::empty(), MsFlags::MS_RDONLY),
    ("suid", MsFlags::empty(), MsFlags::MS_NOSUID),
    ("nosuid", MsFlags::MS_NOSUID, MsFlags::empty()),
    ("dev", MsFlags::empty(), MsFlags::MS_NODEV),
    ("nodev", MsFlags::MS_NODEV, MsFlags::empty()),
    ("exec", MsFlags::empty(), MsFlags::MS_NOEXEC),
    ("noexec", MsFlags::MS_NOEXEC, MsFlags::empty()),
    ("sync", MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
    ("async", MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC, MsFlags::empty()),
    ("remount", MsFlags::MS_REMOUNT, MsFlags::empty()),
    ("mand", MsFlags::MS_MANDLOCK, MsFlags::empty()),
    ("nomand", MsFlags::empty(), MsFlags::MS_MANDLOCK),
    ("atime", MsFlags::empty(), MsFlags::MS_NOATIME),
    ("noatime", MsFlags::MS_NOATIME, MsFlags::empty()),
    ("diratime", MsFlags::empty(), MsFlags::MS_NODIRATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME, MsFlags::empty()),
    ("bind", MsFlags::MS_BIND, MsFlags::empty()),
    (
        "rbind",
        MsFlags::MS_BIND.union(MsFlags::MS_REC),
        MsFlags::empty(),
    ),
    ("relatime", MsFlags::MS_RELATIME, MsFlags::empty()),
    ("norelatime", MsFlags::empty(), MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME, MsFlags::empty()),
    ("nostrictatime", MsFlags::empty(), MsFlags::MS_STRICTATIME),
];

/// Propagation words: applied by a second mount(2) call, as moby does.
const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// An option string split into flags, propagation and filesystem data.
#[derive(Debug, PartialEq)]
struct ParsedOptions {
    flags: MsFlags,
    propagation: MsFlags,
    data: String,
}

/// Splits `o=` of a volume (`size=64m,uid=1000,ro`) as moby/sys/mount does.
fn parse_mount_options(options: &str) -> ParsedOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        if let Some((_, set, clear)) = FLAGS.iter().find(|(w, _, _)| *w == o) {
            flags.remove(*clear);
            flags.insert(*set);
        } else if let Some((_, p)) = PROPAGATION.iter().find(|(w, _)| *w == o) {
            propagation.insert(*p);
        } else {
            data.push(o);
        }
    }
    ParsedOptions {
        flags,
        propagation,
        data: data.join(","),
    }
}

fn ctx(err: nix::Error, what: &str) -> io::Error {
    let e: io::Error = err.into();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Mounts `device` (type `fstype`, `options` as a volume's `o=`) on `target`.
/// A read-only bind needs a remount, which moby's `mount.Mount` does too.
pub fn mount_with_options(
    device: &str,
    target: &Path,
    fstype: &str,
    options: &str,
) -> io::Result<()> {
    let p = parse_mount_options(options);
    let what = format!("mount {device} ({fstype}) on {}", target.display());
    let data = (!p.data.is_empty()).then_some(p.data.as_str());
    let fstype = (!fstype.is_empty()).then_some(fstype);
    nix::mount::mount(Some(device), target, fstype, p.flags, data).map_err(|e| ctx(e, &what))?;
    let bind_ro = MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    if p.flags.contains(bind_ro) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            p.flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| ctx(e, &format!("{what} read-only")))?;
    }
    if !p.propagation.is_empty() {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            p.propagation,
            None::<&str>,
        )
        .map_err(|e| ctx(e, &format!("{what}: propagation")))?;
    }
    Ok(())
}

/// Mounts a tmpfs with `data` (`mode=1777,size=...`) on `target`.
pub fn mount_tmpfs(target: &Path, data: &str) -> io::Result<()> {
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data),
    )
    .map_err(|e| ctx(e, &format!("mount tmpfs on {}", target.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_data_are_split_like_moby() {
        let p = parse_mount_options("bind,ro");
        assert_eq!(p.flags, MsFlags::MS_BIND | MsFlags::MS_RDONLY);
        assert_eq!(p.data, "");
        let p = parse_mount_options("size=64m,uid=1000,noexec,rshared");
        assert_eq!(p.flags, MsFlags::MS_NOEXEC);
        assert_eq!(p.propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(p.data, "size=64m,uid=1000");
        // A later word undoes an earlier one.
        assert_eq!(parse_mount_options("ro,rw").flags, MsFlags::empty());
        assert_eq!(parse_mount_options("").data, "");
    }
}
