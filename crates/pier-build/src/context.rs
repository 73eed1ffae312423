//! Unpacking tar archives safely: the build context sent with `POST /build`
//! and local archives auto-extracted by `ADD`. Entries cannot write outside
//! the destination: `..` is refused, and every path (including hard link
//! targets) is resolved as if the destination were `/`, so a symlink entry
//! pointing out of it only ever leads back inside.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{BuildError, Result};
use crate::fsutil::{lchown, mkdir_all_in_root, remove_any, resolve_in_root};

/// Unpacks a build context tar (plain or gzip-compressed) into `dest`, which
/// must exist. Ownership in the archive is ignored (Docker treats context
/// files as root's); modes and modification times are kept. Devices and
/// fifos are skipped.
pub fn unpack_context(reader: impl Read, dest: &Path) -> Result<()> {
    let mut buf = BufReader::new(reader);
    let head = buf
        .fill_buf()
        .map_err(BuildError::io("reading build context for", dest))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        extract_inner(MultiGzDecoder::new(buf), dest, "/", None)
    } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(BuildError::Invalid(
            "build context: only plain and gzip-compressed tar archives are supported".into(),
        ))
    } else {
        extract_inner(buf, dest, "/", None)
    }
}

/// What kind of archive a file is, for `ADD`'s auto-extraction.
pub fn archive_kind(path: &Path) -> Result<Option<bool>> {
    let f = fs::File::open(path).map_err(BuildError::io("opening", path))?;
    let mut head = Vec::new();
    f.take(512)
        .read_to_end(&mut head)
        .map_err(BuildError::io("reading", path))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let f = fs::File::open(path).map_err(BuildError::io("opening", path))?;
        let mut inner = Vec::new();
        // A gzip file that is not a tar is copied as it is.
        if MultiGzDecoder::new(f)
            .take(512)
            .read_to_end(&mut inner)
            .is_err()
        {
            return Ok(None);
        }
        return Ok(is_tar_header(&inner).then_some(true));
    }
    Ok(is_tar_header(&head).then_some(false))
}

fn is_tar_header(b: &[u8]) -> bool {
    b.len() >= 263 && &b[257..262] == b"ustar"
}

/// Extracts an `ADD` archive into `dir` (a path inside `root`), keeping the
/// owners recorded in the archive unless `owner` overrides them.
pub fn extract_archive(
    path: &Path,
    gzip: bool,
    root: &Path,
    dir: &str,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let f = fs::File::open(path).map_err(BuildError::io("opening", path))?;
    let r: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    extract_inner(r, root, dir, Some(owner))
}

/// `owners`: None = leave ownership to whoever extracts; Some(None) = the
/// archive's; Some(Some(o)) = `o`.
fn extract_inner(
    r: impl Read,
    root: &Path,
    dir: &str,
    owners: Option<Option<(u32, u32)>>,
) -> Result<()> {
    let bad = |m: String| BuildError::Invalid(format!("invalid archive: {m}"));
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let Some(rel) = clean_entry_path(&raw) else {
            return Err(bad(format!(
                "path {} leaves the destination",
                raw.display()
            )));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let rel = rel.to_string_lossy().into_owned();
        let inside = format!("{}/{rel}", dir.trim_end_matches('/'));
        let (parent, _) = inside.rsplit_once('/').unwrap_or(("", &inside));
        mkdir_all_in_root(root, parent, None)?;
        let target =
            resolve_in_root(root, &inside, false).map_err(BuildError::io("resolving", &inside))?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&target)?;
                        fs::create_dir(&target).map_err(BuildError::io("creating", &target))?;
                    }
                    Err(_) => {
                        fs::create_dir(&target).map_err(BuildError::io("creating", &target))?
                    }
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(BuildError::io("setting mode of", &target))?;
            }
            tar::EntryType::Regular => {
                remove_non_dir(&target)?;
                let mut f =
                    fs::File::create_new(&target).map_err(BuildError::io("creating", &target))?;
                io::copy(&mut entry, &mut f).map_err(BuildError::io("writing", &target))?;
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(BuildError::io("setting mode of", &target))?;
                // The client's tar sets mtime (up to u64::MAX): adding it
                // to the epoch must not overflow.
                let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(mtime));
                if let Some(t) = t {
                    let _ = f.set_modified(t);
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("symlink {rel} has no target")))?;
                remove_non_dir(&target)?;
                std::os::unix::fs::symlink(&*link, &target)
                    .map_err(BuildError::io("creating link", &target))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("hard link {rel} has no target")))?;
                let Some(link_rel) = clean_entry_path(&link) else {
                    return Err(bad(format!(
                        "hard link {rel} points out of the destination"
                    )));
                };
                let link_inside = format!(
                    "{}/{}",
                    dir.trim_end_matches('/'),
                    link_rel.to_string_lossy()
                );
                let src = resolve_in_root(root, &link_inside, false)
                    .map_err(BuildError::io("resolving", &link_inside))?;
                match fs::symlink_metadata(&src) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(bad(format!(
                            "hard link {rel} to a missing or non-regular file"
                        )))
                    }
                }
                remove_non_dir(&target)?;
                fs::hard_link(&src, &target).map_err(BuildError::io("linking", &target))?;
                continue;
            }
            tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Fifo
            | tar::EntryType::XGlobalHeader => continue,
            // A GNU sparse entry of a few bytes expands to gigabytes; Docker refuses
            // it and the other types it does not know ("unhandled tar header type").
            other => {
                return Err(bad(format!(
                    "unsupported tar entry type {other:?} at {}",
                    raw.display()
                )))
            }
        }
        if let Some(o) = owners {
            let (u, g) = o.unwrap_or((uid, gid));
            lchown(&target, u, g)?;
        }
    }
    Ok(())
}

fn remove_non_dir(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Err(BuildError::Invalid(format!(
            "invalid archive: a directory is in the way of {}",
            p.display()
        ))),
        Ok(_) => fs::remove_file(p).map_err(BuildError::io("removing", p)),
        Err(_) => Ok(()),
    }
}

/// The entry path made relative (a leading `/` dropped, `.` removed); None
/// when it uses `..`.
fn clean_entry_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
