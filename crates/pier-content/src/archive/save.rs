//! `docker save`: write images as a tarball in the Docker 25+ layout, which is at once a
//! docker-archive (`manifest.json`, `repositories`) and an OCI layout (`index.json`,
//! `oci-layout`, `blobs/sha256/`). Layers are written uncompressed, named by diff ID, as
//! `docker save` does, because older `docker load` and skopeo expect tar layers there.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};

use pier_reference::{Digest, HashingWriter, Reference};
use serde_json::{json, Value};

use super::{ImageToSave, LayerRef};
use crate::compression::{decompress_detect, media_types, Compression};
use crate::error::{io_err, stream_err, ContentError, Result};
use crate::store::ContentStore;

/// Writes a tarball that `docker load` (20.10 and later) and `skopeo ... docker-archive:`
/// accept, and that is also a valid OCI layout.
pub fn write_docker_archive(
    store: &ContentStore,
    images: &[ImageToSave],
    writer: impl Write,
) -> Result<()> {
    write_archive(store, images, writer, true)
}

/// Writes an OCI image layout tarball (`index.json`, `oci-layout`, `blobs/`); layers are
/// kept as stored, compressed or not.
pub fn write_oci_layout(
    store: &ContentStore,
    images: &[ImageToSave],
    writer: impl Write,
) -> Result<()> {
    write_archive(store, images, writer, false)
}

struct Out<'a, W: Write> {
    tar: tar::Builder<W>,
    store: &'a ContentStore,
    written: HashSet<Digest>,
}

fn write_archive(
    store: &ContentStore,
    images: &[ImageToSave],
    writer: impl Write,
    docker: bool,
) -> Result<()> {
    let mut out = Out {
        tar: tar::Builder::new(writer),
        store,
        written: HashSet::new(),
    };
    out.dir("blobs/")?;
    out.dir("blobs/sha256/")?;

    let mut index = Vec::new();
    let mut manifest_json = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for img in images {
        let config_size = store.size(&img.config)?;
        out.blob_from_store(&img.config)?;
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for l in &img.layers {
            let (digest, size, mt) = if docker {
                let size = out.plain_layer(l)?;
                (l.diff_id.clone(), size, media_types::OCI_LAYER.to_string())
            } else {
                out.blob_from_store(&l.blob)?;
                (l.blob.clone(), store.size(&l.blob)?, oci_layer_type(l))
            };
            layer_paths.push(blob_path(&digest));
            layer_descs.push(json!({"mediaType": mt, "digest": digest, "size": size}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": {
                "mediaType": media_types::OCI_CONFIG,
                "digest": img.config,
                "size": config_size,
            },
            "layers": layer_descs,
        });
        let manifest_bytes = to_vec(&manifest);
        let manifest_digest = Digest::sha256(&manifest_bytes);
        out.blob_bytes(&manifest_digest, &manifest_bytes)?;
        let desc = |annotations: Option<Value>| {
            let mut d = json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_bytes.len(),
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };

        let mut tags = Vec::new();
        for t in &img.repo_tags {
            let r = Reference::parse(t)
                .map_err(|e| ContentError::Invalid(format!("invalid tag {t:?}: {e}")))?;
            let tag = r.tag().unwrap_or("latest").to_string();
            index.push(desc(Some(json!({
                "io.containerd.image.name": r.full(),
                "org.opencontainers.image.ref.name": tag,
            }))));
            if let Some(top) = img.layers.last() {
                repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(tag, top.diff_id.hex().to_string());
            }
            tags.push(r.familiar());
        }
        if img.repo_tags.is_empty() {
            index.push(desc(None));
        }
        manifest_json.push(json!({
            "Config": blob_path(&img.config),
            "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "Layers": layer_paths,
        }));
    }

    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": index,
    });
    out.file("index.json", &to_vec(&index))?;
    out.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if docker {
        out.file("manifest.json", &to_vec(&Value::Array(manifest_json)))?;
        if !repositories.is_empty() {
            out.file("repositories", &to_vec(&json!(repositories)))?;
        }
    }
    let mut w = out
        .tar
        .into_inner()
        .map_err(stream_err("finishing archive"))?;
    w.flush().map_err(stream_err("finishing archive"))?;
    Ok(())
}

fn oci_layer_type(l: &LayerRef) -> String {
    match Compression::from_media_type(&l.media_type) {
        Some(c) => c.oci_media_type().to_string(),
        None => l.media_type.clone(),
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values always serialise")
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

impl<W: Write> Out<'_, W> {
    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = header(0, 0o755, tar::EntryType::Directory);
        self.tar
            .append_data(&mut h, path, io::empty())
            .map_err(stream_err(format!("writing {path} to archive")))
    }

    fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = header(data.len() as u64, 0o644, tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(stream_err(format!("writing {path} to archive")))
    }

    fn blob_bytes(&mut self, d: &Digest, data: &[u8]) -> Result<()> {
        if self.written.insert(d.clone()) {
            self.file(&blob_path(d), data)?;
        }
        Ok(())
    }

    fn blob_from_store(&mut self, d: &Digest) -> Result<()> {
        if !self.written.insert(d.clone()) {
            return Ok(());
        }
        let size = self.store.size(d)?;
        let f = self.store.open_blob(d)?;
        self.stream(&blob_path(d), size, f)
    }

    fn stream(&mut self, path: &str, size: u64, r: impl Read) -> Result<()> {
        let mut h = header(size, 0o644, tar::EntryType::Regular);
        // `take` guards against a file that grew: the header promised `size` bytes.
        self.tar
            .append_data(&mut h, path, r.take(size))
            .map_err(stream_err(format!("writing {path} to archive")))
    }

    /// Writes the layer as an uncompressed tar named by its diff ID; returns its size.
    fn plain_layer(&mut self, l: &LayerRef) -> Result<u64> {
        let path = blob_path(&l.diff_id);
        let blob_is_plain = l.blob == l.diff_id;
        if blob_is_plain {
            let size = self.store.size(&l.blob)?;
            if self.written.insert(l.diff_id.clone()) {
                let f = self.store.open_blob(&l.blob)?;
                self.stream(&path, size, f)?;
            }
            return Ok(size);
        }
        // The tar header needs the uncompressed size first: inflate to a scratch file.
        let tmp = self.store.temp_path("save");
        let res = (|| {
            let src = self.store.open_blob(&l.blob)?;
            let (_, mut r) =
                decompress_detect(src).map_err(stream_err(format!("reading layer {}", l.blob)))?;
            let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut w = HashingWriter::new(f);
            io::copy(&mut r, &mut w)
                .map_err(stream_err(format!("decompressing layer {}", l.blob)))?;
            let (_, got, size) = w.finish();
            if got != l.diff_id {
                return Err(ContentError::Invalid(format!(
                    "layer {} decompresses to {got}, not its diff ID {}",
                    l.blob, l.diff_id
                )));
            }
            if self.written.insert(l.diff_id.clone()) {
                let f = File::open(&tmp).map_err(io_err("open", &tmp))?;
                self.stream(&path, size, f)?;
            }
            Ok(size)
        })();
        let _ = fs::remove_file(&tmp);
        res
    }
}
