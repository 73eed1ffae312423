//! Blobs addressed by digest under `root/blobs/<alg>/<hex>`: an OCI image layout.
//! Writers stream into `root/ingest/`, hash as they go, and rename into place only once
//! the digest (and size) check out, so a crash never leaves a wrong blob behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pier_reference::{Algorithm, Digest, Sha256Writer};

use crate::error::{io_err, ContentError, Result};

/// Default cap for [`ContentStore::read`]: manifests and configs, not layers.
pub const DEFAULT_READ_LIMIT: u64 = 64 << 20;

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A content store rooted at a directory. Cheap to clone; all state is on disk.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        for (name, body) in [("oci-layout", OCI_LAYOUT), ("index.json", EMPTY_INDEX)] {
            let p = root.join(name);
            if !p.exists() {
                fs::write(&p, body).map_err(io_err("write", &p))?;
            }
        }
        Ok(ContentStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("open", &p)(e)),
        }
    }

    /// Reads a small blob whole (at most [`DEFAULT_READ_LIMIT`]) and checks its digest.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        self.read_limited(d, DEFAULT_READ_LIMIT)
    }

    /// Reads a blob of at most `limit` bytes and checks its digest.
    pub fn read_limited(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let size = self.size(d)?;
        if size > limit {
            return Err(ContentError::TooLarge {
                digest: d.clone(),
                size,
                limit,
            });
        }
        let p = self.path(d);
        let mut buf = Vec::with_capacity(size as usize);
        self.open_blob(d)?
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read", &p))?;
        if !d.verify(&buf) {
            return Err(ContentError::Corrupt(d.clone()));
        }
        Ok(buf)
    }

    /// Starts a new blob in the ingest directory.
    pub fn writer(&self) -> Result<BlobWriter> {
        let path = self.temp_path("blob");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            path,
            hasher: Sha256Writer::new(),
        })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::sha256(bytes);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err("write", &w.path))?;
        Ok(w.commit(Some(&d), Some(bytes.len() as u64))?.0)
    }

    /// Streams `r` into the store, optionally checking the expected digest and size.
    pub fn ingest(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let mut w = self.writer()?;
        io::copy(r, &mut w).map_err(|e| ContentError::Stream {
            context: format!("copying into {}", w.path.display()),
            source: e,
        })?;
        w.commit(expected, expected_size)
    }

    /// Removes a blob. Removing a missing blob is `NotFound`.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Every stored blob, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.as_str());
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read directory", &dir)(e)),
            };
            for ent in rd {
                let ent = ent.map_err(io_err("read directory", &dir))?;
                if let Some(name) = ent.file_name().to_str() {
                    // Foreign files in the layout are not ours to report.
                    if let Ok(d) = Digest::new(alg, name) {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes temp files left in `ingest/` by a crash. Call at start-up, before any
    /// writer exists. Returns how many were removed.
    pub fn cleanup_ingest(&self) -> Result<usize> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            let p = ent.path();
            let res = if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            res.map_err(io_err("remove", &p))?;
            n += 1;
        }
        Ok(n)
    }

    /// A fresh path in `ingest/` for scratch files (removed by `cleanup_ingest`).
    pub fn temp_path(&self, prefix: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("ingest")
            .join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()))
    }
}

/// A blob being written. Hashes while writing; [`BlobWriter::commit`] verifies, fsyncs and
/// renames it into place. Dropping it uncommitted deletes the temp file.
pub struct BlobWriter {
    store: ContentStore,
    file: Option<File>,
    path: PathBuf,
    hasher: Sha256Writer,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Verifies and publishes the blob; returns its digest and size. If the blob already
    /// exists the temp file is dropped and the existing one kept.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let file = self.file.take().expect("file present until commit");
        let (digest, size) = std::mem::take(&mut self.hasher).finish();
        if let Some(want) = expected_size
            && want != size
        {
            return Err(ContentError::SizeMismatch {
                expected: want,
                actual: size,
            });
        }
        if let Some(want) = expected
            && want != &digest
        {
            return Err(ContentError::DigestMismatch {
                expected: want.clone(),
                actual: digest,
            });
        }
        let dest = self.store.path(&digest);
        if dest.is_file() {
            return Ok((digest, size));
        }
        file.sync_all().map_err(io_err("fsync", &self.path))?;
        drop(file);
        fs::rename(&self.path, &dest).map_err(io_err("rename into", &dest))?;
        if let Some(dir) = dest.parent() {
            // The rename is durable only once the directory entry is.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        // Published: nothing left for Drop to remove.
        self.path = PathBuf::new();
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path().join("content")).unwrap();
        (dir, s)
    }

    fn ingest_count(s: &ContentStore) -> usize {
        fs::read_dir(s.root().join("ingest")).unwrap().count()
    }

    #[test]
    fn layout_files_exist() {
        let (_d, s) = store();
        assert!(s.root().join("oci-layout").is_file());
        assert!(s.root().join("index.json").is_file());
        assert!(s.root().join("blobs/sha256").is_dir());
        // Reopening keeps everything.
        let d = s.put(b"x").unwrap();
        let s2 = ContentStore::open(s.root()).unwrap();
        assert!(s2.exists(&d));
    }

    #[test]
    fn put_read_delete_list() {
        let (_d, s) = store();
        let a = s.put(b"hello").unwrap();
        assert_eq!(a, Digest::sha256(b"hello"));
        assert_eq!(s.put(b"hello").unwrap(), a);
        let b = s.put(b"world").unwrap();
        assert!(s.exists(&a));
        assert_eq!(s.read(&a).unwrap(), b"hello");
        assert_eq!(s.size(&b).unwrap(), 5);
        assert_eq!(s.path(&a), s.root().join("blobs/sha256").join(a.hex()));
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(s.list().unwrap(), want);
        s.delete(&a).unwrap();
        assert!(!s.exists(&a));
        assert!(matches!(s.delete(&a), Err(ContentError::NotFound(_))));
        assert!(matches!(s.read(&a), Err(ContentError::NotFound(_))));
        assert!(s.read(&a).unwrap_err().is_not_found());
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn read_limit_and_corruption() {
        let (_d, s) = store();
        let a = s.put(&[7u8; 100]).unwrap();
        assert!(matches!(
            s.read_limited(&a, 10),
            Err(ContentError::TooLarge { size: 100, .. })
        ));
        fs::write(s.path(&a), [8u8; 100]).unwrap();
        assert!(matches!(s.read(&a), Err(ContentError::Corrupt(_))));
    }

    #[test]
    fn writer_verifies() {
        let (_d, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"abc").unwrap();
        assert_eq!(w.written(), 3);
        let err = w.commit(Some(&Digest::sha256(b"abd")), None).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert_eq!(ingest_count(&s), 0);

        let mut w = s.writer().unwrap();
        w.write_all(b"abc").unwrap();
        let err = w.commit(None, Some(4)).unwrap_err();
        assert!(matches!(
            err,
            ContentError::SizeMismatch {
                expected: 4,
                actual: 3
            }
        ));
        assert_eq!(ingest_count(&s), 0);

        let mut w = s.writer().unwrap();
        w.write_all(b"abc").unwrap();
        let (d, n) = w.commit(Some(&Digest::sha256(b"abc")), Some(3)).unwrap();
        assert_eq!((d.clone(), n), (Digest::sha256(b"abc"), 3));
        assert!(s.exists(&d));
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (_d, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"partial").unwrap();
        assert_eq!(ingest_count(&s), 1);
        drop(w);
        assert_eq!(ingest_count(&s), 0);
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn cleanup_ingest_removes_leftovers() {
        let (_d, s) = store();
        fs::write(s.root().join("ingest/blob-crashed"), b"junk").unwrap();
        fs::create_dir(s.root().join("ingest/dir-crashed")).unwrap();
        assert_eq!(s.cleanup_ingest().unwrap(), 2);
        assert_eq!(ingest_count(&s), 0);
    }

    #[test]
    fn ingest_from_reader() {
        let (_d, s) = store();
        let data = vec![1u8; 1 << 20];
        let (d, n) = s.ingest(&mut &data[..], None, Some(1 << 20)).unwrap();
        assert_eq!(n, 1 << 20);
        assert_eq!(d, Digest::sha256(&data));
    }
}
