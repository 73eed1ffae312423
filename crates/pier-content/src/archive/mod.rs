//! Image archives: `docker save`/`docker load` tarballs (legacy and Docker 25+ layouts),
//! OCI layout tarballs, and `docker import` root filesystems. Pure functions over a
//! [`ContentStore`]: they move blobs in and out and report what they found; recording
//! images and tags is the caller's business.

mod load;
#[cfg(test)]
mod round_trip;
mod save;

use std::io::{self, Read};

use pier_reference::{Digest, Sha256Writer};
use serde::{Deserialize, Serialize};

use crate::compression::{decompress_detect, media_types, Compression};
use crate::error::{stream_err, ContentError, Result};
use crate::store::ContentStore;

pub use load::read_docker_archive;
pub use save::{write_docker_archive, write_oci_layout};

/// One layer of an image as stored: the blob (possibly compressed) and the digest of its
/// uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

/// An image found in an archive; its config, manifest (if the archive had one) and
/// layers are in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedImage {
    pub config: Digest,
    pub manifest: Option<Digest>,
    pub layers: Vec<LayerRef>,
    /// As written in the archive, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
}

/// An image to write into an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageToSave {
    pub config: Digest,
    pub layers: Vec<LayerRef>,
    /// Familiar or full references (`busybox:latest`); may be empty.
    pub repo_tags: Vec<String>,
}

/// Stores a `docker import` root filesystem: a tar, plain or gzip/zstd-compressed, is
/// stored uncompressed, so its blob digest is its diff ID.
pub fn import_rootfs(reader: impl Read + Send, store: &ContentStore) -> Result<LayerRef> {
    let (_, mut plain) = decompress_detect(reader).map_err(stream_err("reading import stream"))?;
    let (digest, size) = store.ingest(&mut plain, None, None)?;
    // Refuse non-tar input now rather than when a container first starts.
    if let Err(e) = check_tar(store, &digest) {
        let _ = store.delete(&digest);
        return Err(e);
    }
    Ok(LayerRef {
        blob: digest.clone(),
        media_type: media_types::OCI_LAYER.to_string(),
        size,
        diff_id: digest,
    })
}

fn check_tar(store: &ContentStore, digest: &Digest) -> Result<()> {
    let bad = |e: io::Error| ContentError::Invalid(format!("archive/tar: invalid tar header: {e}"));
    let mut ar = tar::Archive::new(store.open_blob(digest)?);
    for e in ar.entries().map_err(bad)? {
        let mut e = e.map_err(bad)?;
        // Refused before its body is read: a GNU sparse entry of a few bytes
        // expands to gigabytes (Docker refuses it too).
        if let Some(why) = refused_entry_type(e.header().entry_type()) {
            return Err(ContentError::Invalid(format!(
                "archive/tar: unsupported entry: {why} at {}",
                String::from_utf8_lossy(&e.path_bytes())
            )));
        }
        // Reading the body catches a truncated archive.
        io::copy(&mut e, &mut io::sink()).map_err(bad)?;
    }
    Ok(())
}

/// Tar entry types Docker refuses ("unhandled tar header type"), with why.
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

/// The compression and diff ID of a stored layer blob.
pub fn layer_diff_id(store: &ContentStore, blob: &Digest) -> Result<(Compression, Digest)> {
    let path = store.path(blob);
    let f = store.open_blob(blob)?;
    let (c, mut r) =
        decompress_detect(f).map_err(stream_err(format!("reading {}", path.display())))?;
    if c == Compression::None {
        return Ok((c, blob.clone()));
    }
    let mut h = Sha256Writer::new();
    io::copy(&mut r, &mut h).map_err(stream_err(format!("decompressing layer {blob}")))?;
    Ok((c, h.digest()))
}

/// Normalises a path inside an archive: strips `./` and empty parts; refuses absolute
/// paths and `..`, which would reach outside the archive.
pub(crate) fn clean_archive_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(ContentError::Invalid(format!(
            "invalid archive: absolute path {raw:?} in archive"
        )));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(ContentError::Invalid(format!(
                    "invalid archive: path {raw:?} points outside the archive"
                )))
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink `target` found at archive path `at`, lexically, inside the archive.
pub(crate) fn resolve_link(at: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(ContentError::Invalid(format!(
            "invalid archive: symlink {at:?} points to absolute path {target:?}"
        )));
    }
    let mut parts: Vec<&str> = at.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ContentError::Invalid(format!(
                        "invalid archive: symlink {at:?} points outside the archive"
                    )));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn path_cleaning() {
        assert_eq!(clean_archive_path("./a//b/./c").unwrap(), "a/b/c");
        assert!(clean_archive_path("../x").is_err());
        assert!(clean_archive_path("a/../../x").is_err());
        assert!(clean_archive_path("/etc/passwd").is_err());
        assert_eq!(
            resolve_link("a/b/layer.tar", "../c/layer.tar").unwrap(),
            "a/c/layer.tar"
        );
        assert!(resolve_link("a/layer.tar", "../../x").is_err());
        assert!(resolve_link("a/layer.tar", "/x").is_err());
    }

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn import_plain_gzip_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let tar = tar_with("etc/hostname", b"pier\n");
        let want = Digest::sha256(&tar);
        let mut gz = crate::compression::gzip_writer(Vec::new());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&tar[..], 3).unwrap();
        for input in [tar.clone(), gz, zs] {
            let l = import_rootfs(&input[..], &store).unwrap();
            assert_eq!(l.blob, want);
            assert_eq!(l.diff_id, want);
            assert_eq!(l.size, tar.len() as u64);
            assert_eq!(l.media_type, media_types::OCI_LAYER);
        }
        assert_eq!(
            layer_diff_id(&store, &want).unwrap(),
            (Compression::None, want)
        );
    }

    #[test]
    fn import_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let err = import_rootfs(&[b'x'; 4096][..], &store).unwrap_err();
        assert!(err.to_string().contains("invalid tar header"), "{err}");
    }

    /// A GNU sparse ('S') tar: 512 bytes of data that claim a 4 GiB file.
    fn sparse_tar() -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_path("big").unwrap();
        h.set_mode(0o644);
        h.set_size(512);
        h.set_entry_type(tar::EntryType::GNUSparse);
        let g = h.as_gnu_mut().unwrap();
        // One chunk at the end of the file; the rest is a hole.
        g.sparse[0].offset = *b"37777777000\0";
        g.sparse[0].numbytes = *b"00000001000\0";
        g.realsize = *b"40000000000\0";
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend([b'x'; 512]);
        out.extend([0; 1024]);
        out
    }

    #[test]
    fn import_refuses_sparse_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let err = import_rootfs(&sparse_tar()[..], &store).unwrap_err();
        assert!(err.to_string().contains("sparse"), "{err}");
    }
}
