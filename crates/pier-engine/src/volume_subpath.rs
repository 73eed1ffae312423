//! `VolumeOptions.Subpath` (API 1.45): a directory or file inside a volume
//! as the mount's source. As moby's `safepath`, the subpath is resolved by
//! descriptor beneath the volume (a symlink or `..` cannot leave it), and
//! what it names is bind-mounted through that descriptor onto a spot in the
//! container's bundle; that spot is the source in the OCI spec, so no host
//! path is resolved again between the check and the container's mount.

use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::records::ContainerRecord;
use crate::{EngineError, Result};

const DIR: &str = "subpaths";

/// moby's mount validation: the subpath must stay lexically inside the volume.
pub(crate) fn check(sub: &str) -> Result<()> {
    let p = Path::new(sub);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(EngineError::invalid_argument(
            "invalid mount config for type \"volume\": subpath must be a relative path within the volume",
        ));
    }
    Ok(())
}

/// Opens `sub` beneath `vol` without following anything out of it.
fn open_beneath(vol: &Path, sub: &str) -> Result<rustix::fd::OwnedFd> {
    let root = rustix::fs::open(
        vol,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::from_io(vol, e.into()))?;
    rustix::fs::openat2(
        &root,
        sub,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        // moby's safepath errors, word for word: escaping is the caller's
        // mistake (400), a missing path is "not found" (404).
        Errno::XDEV => EngineError::invalid_argument(format!(
            "path concatenation escapes the base directory, base: {}, subpath: {sub}",
            vol.display()
        )),
        e => EngineError::not_found(format!(
            "cannot access path {}: {}",
            vol.join(sub).display(),
            std::io::Error::from(e)
        )),
    })
}

/// Mounts the subpaths of `rec`'s volume mounts into its bundle and points
/// those mounts at them. Blocking; undone by [`release`].
pub(crate) fn mount(rec: &mut ContainerRecord, bundle: &Path) -> Result<()> {
    for (i, m) in rec.mounts.iter_mut().enumerate() {
        if m.kind != "volume" || m.subpath.is_empty() {
            continue;
        }
        check(&m.subpath)?;
        let fd = open_beneath(Path::new(&m.source), &m.subpath)?;
        let is_dir = rustix::fs::fstat(&fd)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
            .map_err(|e| EngineError::from_io(&Path::new(&m.source).join(&m.subpath), e.into()))?;
        let dir = bundle.join(DIR);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, e))?;
        let target = dir.join(i.to_string());
        crate::mountinfo::unmount_dir(&target);
        let made = if is_dir {
            std::fs::create_dir_all(&target)
        } else {
            std::fs::File::create(&target).map(drop)
        };
        made.map_err(|e| EngineError::from_io(&target, e))?;
        // Through the descriptor: what was checked is what gets mounted.
        let via = PathBuf::from(format!(
            "/proc/self/fd/{}",
            rustix::fd::AsRawFd::as_raw_fd(&fd)
        ));
        pier_sys::bind_mount(&via, &target, false).map_err(|e| {
            EngineError::internal(format!(
                "error mounting volume subpath {:?} of {} on {}: {e}",
                m.subpath,
                m.name,
                target.display()
            ))
        })?;
        m.source = target.display().to_string();
    }
    Ok(())
}

/// Unmounts `rec`'s subpath mounts from `bundle` (stop, failed start,
/// removal), before the bundle is discarded: the trash must never reach
/// into a volume through one of them.
pub(crate) fn release(rec: &ContainerRecord, bundle: &Path) {
    let dir = bundle.join(DIR);
    for (i, m) in rec.mounts.iter().enumerate() {
        if m.kind == "volume"
            && !m.subpath.is_empty()
            && crate::mountinfo::unmount_dir(&dir.join(i.to_string()))
        {
            tracing::warn!(id = %rec.id, subpath = %m.subpath, "volume subpath still mounted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn subpaths_must_stay_inside_lexically() {
        assert!(check("a/b").is_ok());
        assert!(check("a/./b").is_ok());
        assert!(check("/etc").is_err());
        assert!(check("../x").is_err());
        assert!(check("a/../../x").is_err());
        assert!(check("a/..").is_err());
    }
}
