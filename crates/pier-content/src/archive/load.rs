//! `docker load`: read a `docker save` tarball or an OCI layout tarball into the store.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use pier_api::image::ImageConfig;
use pier_reference::{Digest, Reference};
use serde::Deserialize;

use super::{clean_archive_path, layer_diff_id, resolve_link, LayerRef, LoadedImage};
use crate::compression::{decompress_detect, media_types, Compression};
use crate::error::{stream_err, ContentError, Result};
use crate::store::ContentStore;

/// Metadata files are held in memory; anything bigger than this is not metadata.
const METADATA_LIMIT: u64 = 16 << 20;

enum Item {
    Blob(Digest),
    Small(Vec<u8>),
    Link(String),
}

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Reads a `docker save` tarball (legacy `<id>/layer.tar` layout, the Docker 25+ layout
/// with `blobs/sha256/`, or a plain OCI layout with only `index.json`), optionally
/// gzip/zstd-compressed as a whole. Every blob goes into `store`; layers are stored as
/// they are and their diff IDs checked against each config's `rootfs.diff_ids`.
pub fn read_docker_archive(
    reader: impl Read + Send,
    store: &ContentStore,
) -> Result<Vec<LoadedImage>> {
    let (_, plain) = decompress_detect(reader).map_err(stream_err("reading archive"))?;
    let items = ingest_entries(plain, store)?;
    let archive = Archive { items, store };

    let oci_manifests = match archive.small_opt("index.json")? {
        Some(raw) => archive.index_manifests(&raw)?,
        None => Vec::new(),
    };
    match archive.small_opt("manifest.json")? {
        Some(raw) => archive.load_docker_manifest(&raw, &oci_manifests),
        None if !oci_manifests.is_empty() => archive.load_oci(oci_manifests),
        None if archive.small_opt("index.json")?.is_some() => Ok(Vec::new()),
        None => Err(ContentError::Invalid(
            "invalid archive: no manifest.json or index.json found (legacy pre-1.10 \
             archives are not supported)"
                .into(),
        )),
    }
}

fn ingest_entries(plain: impl Read, store: &ContentStore) -> Result<HashMap<String, Item>> {
    let mut ar = tar::Archive::new(plain);
    let mut items = HashMap::new();
    let entries = ar.entries().map_err(stream_err("reading archive"))?;
    for entry in entries {
        let mut e = entry.map_err(stream_err("reading archive"))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = clean_archive_path(&raw)?;
        let kind = e.header().entry_type();
        let item = if kind.is_file() {
            if is_metadata(&path) {
                let mut buf = Vec::new();
                (&mut e)
                    .take(METADATA_LIMIT + 1)
                    .read_to_end(&mut buf)
                    .map_err(stream_err(format!("reading {path} from archive")))?;
                if buf.len() as u64 > METADATA_LIMIT {
                    return Err(ContentError::Invalid(format!(
                        "invalid archive: {path} is too large"
                    )));
                }
                Item::Small(buf)
            } else {
                let expected = digest_from_name(&path);
                let (d, _) =
                    store
                        .ingest(&mut e, expected.as_ref(), None)
                        .map_err(|err| match err {
                            ContentError::DigestMismatch { expected, actual } => {
                                ContentError::Invalid(format!(
                                    "invalid archive: {path} has digest {actual}, not {expected}"
                                ))
                            }
                            other => other,
                        })?;
                Item::Blob(d)
            }
        } else if kind.is_symlink() {
            let target = e.link_name_bytes().unwrap_or_default();
            Item::Link(resolve_link(&path, &String::from_utf8_lossy(&target))?)
        } else if kind.is_hard_link() {
            let target = e.link_name_bytes().unwrap_or_default();
            Item::Link(clean_archive_path(&String::from_utf8_lossy(&target))?)
        } else {
            continue;
        };
        items.insert(path, item);
    }
    Ok(items)
}

fn is_metadata(path: &str) -> bool {
    matches!(
        path,
        "manifest.json" | "repositories" | "index.json" | "oci-layout"
    ) || path.ends_with("/json")
        || path.ends_with("/VERSION")
}

/// `blobs/sha256/<hex>` and legacy `<hex>.json` name their own digest.
fn digest_from_name(path: &str) -> Option<Digest> {
    if let Some(rest) = path.strip_prefix("blobs/") {
        return rest.replacen('/', ":", 1).parse().ok();
    }
    let hex = path.strip_suffix(".json")?;
    Digest::from_sha256_hex(hex).ok()
}

struct Archive<'a> {
    items: HashMap<String, Item>,
    store: &'a ContentStore,
}

impl Archive<'_> {
    fn resolve(&self, path: &str) -> Result<&Item> {
        let mut p = clean_archive_path(path)?;
        for _ in 0..16 {
            match self.items.get(&p) {
                Some(Item::Link(next)) => p = next.clone(),
                Some(item) => return Ok(item),
                None => break,
            }
        }
        Err(ContentError::Invalid(format!(
            "invalid archive: {path} is missing from the archive"
        )))
    }

    fn small_opt(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if !self.items.contains_key(path) {
            return Ok(None);
        }
        self.bytes(path).map(Some)
    }

    fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        match self.resolve(path)? {
            Item::Small(b) => Ok(b.clone()),
            Item::Blob(d) => self.store.read_limited(d, METADATA_LIMIT),
            Item::Link(_) => Err(ContentError::Invalid(format!(
                "invalid archive: too many links at {path}"
            ))),
        }
    }

    fn blob(&self, path: &str) -> Result<Digest> {
        match self.resolve(path)? {
            Item::Blob(d) => Ok(d.clone()),
            Item::Small(b) => self.store.put(b),
            Item::Link(_) => Err(ContentError::Invalid(format!(
                "invalid archive: too many links at {path}"
            ))),
        }
    }

    /// Image manifests named by `index.json` (nested indexes narrowed to our platform),
    /// with the descriptor annotations of the outermost entry.
    fn index_manifests(&self, raw: &[u8]) -> Result<Vec<(Digest, BTreeMap<String, String>)>> {
        let index: Index = parse_json("index.json", raw)?;
        let mut out = Vec::new();
        for desc in index.manifests {
            // Multi-platform saves name an index whose other platforms' blobs are not
            // in the archive: only manifests actually present count.
            if let Ok(d) = self.pick_manifest(&desc, 0)
                && self.store.exists(&d)
            {
                out.push((d, desc.annotations));
            }
        }
        Ok(out)
    }

    fn pick_manifest(&self, desc: &Descriptor, depth: u32) -> Result<Digest> {
        let is_index = desc.media_type == media_types::OCI_INDEX
            || desc.media_type == media_types::DOCKER_MANIFEST_LIST;
        if !is_index {
            return Ok(desc.digest.clone());
        }
        if depth > 4 {
            return Err(ContentError::Invalid(
                "invalid archive: index nested too deeply".into(),
            ));
        }
        let raw = self.store.read_limited(&desc.digest, METADATA_LIMIT)?;
        let inner: Index = parse_json(desc.digest.as_str(), &raw)?;
        let arch = host_arch();
        let present: Vec<&Descriptor> = inner
            .manifests
            .iter()
            .filter(|m| self.store.exists(&m.digest))
            .collect();
        let chosen = present
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .or_else(|| present.first())
            .ok_or_else(|| {
                ContentError::Invalid(format!("invalid archive: index {} is empty", desc.digest))
            })?;
        self.pick_manifest(chosen, depth + 1)
    }

    fn load_docker_manifest(
        &self,
        raw: &[u8],
        oci: &[(Digest, BTreeMap<String, String>)],
    ) -> Result<Vec<LoadedImage>> {
        let items: Vec<ManifestItem> = parse_json("manifest.json", raw)?;
        // Config digest -> OCI manifest digest, when the archive also is an OCI layout.
        let mut by_config = HashMap::new();
        for (m, _) in oci {
            if let Ok(raw) = self.store.read_limited(m, METADATA_LIMIT)
                && let Ok(man) = serde_json::from_slice::<Manifest>(&raw)
            {
                by_config.insert(man.config.digest, m.clone());
            }
        }
        let repos = self.legacy_repositories()?;
        let mut out = Vec::new();
        for item in items {
            let config = self.blob(&item.config)?;
            let diff_ids = self.config_diff_ids(&config)?;
            if diff_ids.len() != item.layers.len() {
                return Err(ContentError::Invalid(format!(
                    "invalid manifest, layers length mismatch: expected {}, got {}",
                    diff_ids.len(),
                    item.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (i, (path, want)) in item.layers.iter().zip(&diff_ids).enumerate() {
                let blob = self.blob(path)?;
                layers.push(self.layer(i, blob, None, want)?);
            }
            let mut repo_tags = item.repo_tags.unwrap_or_default();
            if repo_tags.is_empty() {
                // Legacy `repositories` names images by the v1 ID of their top layer,
                // which is the directory holding its layer.tar.
                if let Some(top) = item.layers.last().and_then(|p| p.split('/').next()) {
                    repo_tags = repos.get(top).cloned().unwrap_or_default();
                }
            }
            for t in &repo_tags {
                Reference::parse(t).map_err(|e| {
                    ContentError::Invalid(format!("invalid tag {t:?} in manifest.json: {e}"))
                })?;
            }
            out.push(LoadedImage {
                manifest: by_config.get(&config).cloned(),
                config,
                layers,
                repo_tags,
            });
        }
        Ok(out)
    }

    /// `repositories`: {"name": {"tag": "<v1 id>"}} -> v1 id -> ["name:tag"].
    fn legacy_repositories(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let Some(raw) = self.small_opt("repositories")? else {
            return Ok(out);
        };
        let repos: BTreeMap<String, BTreeMap<String, String>> = parse_json("repositories", &raw)?;
        for (name, tags) in repos {
            for (tag, id) in tags {
                out.entry(id).or_default().push(format!("{name}:{tag}"));
            }
        }
        Ok(out)
    }

    fn load_oci(
        &self,
        manifests: Vec<(Digest, BTreeMap<String, String>)>,
    ) -> Result<Vec<LoadedImage>> {
        // Several index entries may name the same manifest with different tags.
        let mut out: Vec<LoadedImage> = Vec::new();
        for (mdigest, annotations) in manifests {
            let tag = name_from_annotations(&annotations);
            if let Some(img) = out
                .iter_mut()
                .find(|i| i.manifest.as_ref() == Some(&mdigest))
            {
                img.repo_tags.extend(tag);
                continue;
            }
            let raw = self.store.read_limited(&mdigest, METADATA_LIMIT)?;
            let man: Manifest = parse_json(mdigest.as_str(), &raw)?;
            let config = man.config.digest.clone();
            if !self.store.exists(&config) {
                return Err(ContentError::Invalid(format!(
                    "invalid archive: config {config} is missing"
                )));
            }
            let diff_ids = self.config_diff_ids(&config)?;
            if diff_ids.len() != man.layers.len() {
                return Err(ContentError::Invalid(format!(
                    "invalid manifest, layers length mismatch: expected {}, got {}",
                    diff_ids.len(),
                    man.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (i, (desc, want)) in man.layers.iter().zip(&diff_ids).enumerate() {
                if !self.store.exists(&desc.digest) {
                    return Err(ContentError::Invalid(format!(
                        "invalid archive: layer {} is missing",
                        desc.digest
                    )));
                }
                let l = self.layer(i, desc.digest.clone(), Some(&desc.media_type), want)?;
                if desc.size != 0 && desc.size != l.size {
                    return Err(ContentError::Invalid(format!(
                        "invalid archive: layer {} has size {}, manifest says {}",
                        desc.digest, l.size, desc.size
                    )));
                }
                layers.push(l);
            }
            out.push(LoadedImage {
                config,
                manifest: Some(mdigest),
                layers,
                repo_tags: tag.into_iter().collect(),
            });
        }
        Ok(out)
    }

    fn config_diff_ids(&self, config: &Digest) -> Result<Vec<Digest>> {
        let raw = self.store.read_limited(config, METADATA_LIMIT)?;
        let c: ImageConfig = parse_json(config.as_str(), &raw)?;
        c.rootfs
            .diff_ids
            .iter()
            .map(|d| {
                d.parse().map_err(|e| {
                    ContentError::Invalid(format!(
                        "invalid archive: config {config}: diff ID {d:?}: {e}"
                    ))
                })
            })
            .collect()
    }

    fn layer(
        &self,
        i: usize,
        blob: Digest,
        declared: Option<&str>,
        want: &Digest,
    ) -> Result<LayerRef> {
        let (c, diff_id) = layer_diff_id(self.store, &blob)?;
        if &diff_id != want {
            return Err(ContentError::Invalid(format!(
                "invalid diffID for layer {i}: expected {want:?}, got {diff_id:?}",
                want = want.as_str(),
                diff_id = diff_id.as_str()
            )));
        }
        // Keep a declared type when it agrees with the bytes (e.g. Docker media types).
        let media_type = match declared {
            Some(mt) if Compression::from_media_type(mt) == Some(c) => mt.to_string(),
            _ => c.oci_media_type().to_string(),
        };
        Ok(LayerRef {
            size: self.store.size(&blob)?,
            blob,
            media_type,
            diff_id,
        })
    }
}

/// `io.containerd.image.name` holds a full name; `org.opencontainers.image.ref.name` is
/// often just a tag, which names nothing on its own.
fn name_from_annotations(a: &BTreeMap<String, String>) -> Option<String> {
    let full = a.get("io.containerd.image.name").or_else(|| {
        a.get("org.opencontainers.image.ref.name")
            .filter(|n| n.contains(':') || n.contains('/'))
    })?;
    Reference::parse(full).ok().map(|r| r.familiar())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw)
        .map_err(|e| ContentError::Invalid(format!("invalid archive: parsing {what}: {e}")))
}

#[cfg(test)]
pub(crate) fn tests_host_arch() -> &'static str {
    host_arch()
}
