//! Images: import, load, save, tag, remove, list, inspect, history, prune.
//!
//! These methods block (they unpack and hash layers): the server calls them on
//! a blocking thread.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pier_api::image::{History, ImageConfig, RootFs};
use pier_api::models::{
    ContainerConfig, ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse,
    ImageSummary,
};
use pier_content::archive::{self, ImageToSave, LayerRef};
use pier_reference::{chain_id, Digest, Reference};

use crate::image_filter;
use crate::names::parse_ref;
use crate::records::{ImageRecord, StoredLayer};
use crate::util::{now_rfc3339, unix_of};
use crate::views::ImageDetails;
use crate::{Engine, EngineError, Result};

pub(crate) const LAYER_SIZES: &str = "layer-size";

fn digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|e| EngineError::internal(format!("bad digest {s}")).with_source(e))
}

impl Engine {
    /// Unpacks every layer not yet unpacked; returns the top chain ID. The
    /// missing ones unpack side by side (each into its own directory): a
    /// layer is mostly decompression and file writes, which use every core.
    pub(crate) fn unpack_layers(&self, layers: &[StoredLayer]) -> Result<Option<String>> {
        let mut diff_ids = Vec::new();
        let mut base: Option<Digest> = None;
        let mut missing = Vec::new();
        for layer in layers {
            let diff_id = digest(&layer.diff_id)?;
            diff_ids.push(diff_id.clone());
            let chain = chain_id(&diff_ids);
            if missing.is_empty() && self.snaps.exists(&chain) {
                base = Some(chain);
            } else {
                missing.push((digest(&layer.blob)?, diff_id));
            }
        }
        if missing.is_empty() {
            return Ok(base.map(|d| d.to_string()));
        }
        let mut readers = Vec::new();
        let mut counts = Vec::new();
        for (blob, diff_id) in &missing {
            let file = self.content.open_blob(blob)?;
            let reader = pier_content::compression::decompress(file)
                .map_err(|e| EngineError::internal(format!("layer {blob}")).with_source(e))?;
            let n = Arc::new(AtomicU64::new(0));
            counts.push((diff_id.clone(), n.clone()));
            readers.push((diff_id.clone(), CountingReader { inner: reader, n }));
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chains = self.snaps.apply_layers(base.as_ref(), readers, threads)?;
        debug_assert_eq!(chains.last(), Some(&chain_id(&diff_ids)));
        for (diff_id, n) in counts {
            let n = n.load(Ordering::Relaxed);
            // A reused snapshot reads nothing; keep the size recorded then.
            if n > 0 {
                self.meta.kv_put(LAYER_SIZES, diff_id.as_str(), &n)?;
            }
        }
        Ok(chains.last().map(|d| d.to_string()))
    }

    fn layer_size(&self, diff_id: &str) -> u64 {
        self.meta
            .kv_get::<u64>(LAYER_SIZES, diff_id)
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Registers an image whose config blob and layer blobs are in the content
    /// store: unpacks layers, records it, points `tags` at it.
    pub(crate) fn register_image(
        &self,
        config_digest: &Digest,
        layers: Vec<StoredLayer>,
        tags: &[String],
        parent: &str,
    ) -> Result<ImageRecord> {
        let raw = self.content.read(config_digest)?;
        let config = ImageConfig::from_slice(&raw).map_err(|e| {
            EngineError::invalid_argument(format!("image config {config_digest}: {e}"))
        })?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(EngineError::invalid_argument(format!(
                "image config {config_digest} lists {} layers but the image has {}",
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        for (l, d) in layers.iter().zip(&config.rootfs.diff_ids) {
            if &l.diff_id != d {
                return Err(EngineError::invalid_argument(format!(
                    "layer {} has diff ID {} but the config expects {d}",
                    l.blob, l.diff_id
                )));
            }
        }
        let chain_id = self.unpack_layers(&layers)?;
        let size = layers
            .iter()
            .map(|l| self.layer_size(&l.diff_id) as i64)
            .sum();
        let id = config_digest.to_string();
        let mut rec = match self.meta.image::<ImageRecord>(&id)? {
            Some(old) => old,
            None => ImageRecord {
                id: id.clone(),
                config,
                layers,
                chain_id,
                size,
                repo_digests: Vec::new(),
                parent: parent.to_string(),
            },
        };
        if rec.parent.is_empty() {
            rec.parent = parent.to_string();
        }
        self.meta.put_image(&id, &rec)?;
        for t in tags {
            self.tag_image(&id, t)?;
        }
        Ok(rec)
    }

    /// Writes a new image config blob and registers the image.
    pub(crate) fn create_image(
        &self,
        config: &ImageConfig,
        layers: Vec<StoredLayer>,
        tags: &[String],
        parent: &str,
    ) -> Result<ImageRecord> {
        let d = self.content.put(&config.to_json())?;
        self.register_image(&d, layers, tags, parent)
    }

    /// `docker import`: a root filesystem tarball becomes a one-layer image.
    pub fn import_image(
        &self,
        reader: Box<dyn Read + Send>,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<ImageRecord> {
        let tag = reference.map(parse_ref).transpose()?;
        let layer = archive::import_rootfs(reader, &self.content)?;
        let mut cfg = ContainerConfig::default();
        crate::changes::apply(&mut cfg, changes)?;
        if cfg.env.is_none() {
            cfg.env = Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ]);
        }
        let now = now_rfc3339();
        let config = ImageConfig {
            architecture: host_arch().into(),
            os: "linux".into(),
            created: Some(now.clone()),
            comment: message.map(str::to_string),
            config: Some(cfg),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.to_string()],
            },
            history: vec![History {
                created: Some(now),
                created_by: Some(String::new()),
                comment: Some(message.unwrap_or("Imported from -").to_string()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let tags: Vec<String> = tag.iter().map(|r| r.full()).collect();
        let rec = self.create_image(&config, vec![stored(&layer)], &tags, "")?;
        self.image_event("import", &rec.id, reference.unwrap_or(""));
        Ok(rec)
    }

    /// `docker load`: returns the lines to print (`Loaded image: ...`).
    pub fn load_images(&self, reader: Box<dyn Read + Send>) -> Result<Vec<String>> {
        let loaded = archive::read_docker_archive(reader, &self.content)?;
        if loaded.is_empty() {
            return Err(EngineError::invalid_argument(
                "no images found in the archive",
            ));
        }
        let mut lines = Vec::new();
        for img in loaded {
            let mut tags = Vec::new();
            for t in &img.repo_tags {
                tags.push(parse_ref(t)?.full());
            }
            let layers = img.layers.iter().map(stored).collect();
            let rec = self.register_image(&img.config, layers, &tags, "")?;
            if img.repo_tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", rec.id));
            }
            for t in &img.repo_tags {
                lines.push(format!("Loaded image: {}", parse_ref(t)?.familiar()));
                self.image_event("load", &rec.id, t);
            }
        }
        Ok(lines)
    }

    /// `docker save`: writes a docker-archive (or an OCI layout when `oci`).
    pub fn save_images(
        &self,
        names: &[String],
        oci: bool,
        out: &mut dyn std::io::Write,
    ) -> Result<()> {
        let mut images = Vec::new();
        for n in names {
            let rec = self.find_image(n)?;
            let repo_tags = match Reference::parse_normalized(n) {
                Ok(r) if !pier_reference::looks_like_id(n) => {
                    if r.tag().is_some() {
                        vec![r.familiar()]
                    } else {
                        // `docker save busybox` saves every tag of that repository.
                        self.meta
                            .tags_of(&rec.id)?
                            .into_iter()
                            .filter_map(|t| Reference::parse(&t).ok())
                            .filter(|t| t.name() == r.name())
                            .map(|t| t.familiar())
                            .collect()
                    }
                }
                _ => Vec::new(),
            };
            images.push(ImageToSave {
                config: digest(&rec.id)?,
                layers: rec
                    .layers
                    .iter()
                    .map(|l| -> Result<LayerRef> {
                        Ok(LayerRef {
                            blob: digest(&l.blob)?,
                            media_type: l.media_type.clone(),
                            size: l.size,
                            diff_id: digest(&l.diff_id)?,
                        })
                    })
                    .collect::<Result<_>>()?,
                repo_tags,
            });
        }
        let r = if oci {
            archive::write_oci_layout(&self.content, &images, out)
        } else {
            archive::write_docker_archive(&self.content, &images, out)
        };
        r?;
        for n in names {
            self.image_event("save", n, n);
        }
        Ok(())
    }

    /// Points `reference` at image `id`; returns the image that lost the tag.
    pub fn tag_image(&self, id: &str, reference: &str) -> Result<Option<String>> {
        let r = parse_ref(reference)?;
        if r.digest().is_some() {
            return Err(EngineError::invalid_argument(
                "refusing to create a tag with a digest reference",
            ));
        }
        let old = self.meta.set_tag(&r.full(), id)?;
        self.image_event("tag", id, &r.familiar());
        Ok(old)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let rec = self.find_image(source)?;
        self.tag_image(&rec.id, target).map(|_| ())
    }

    /// `docker rmi`; with `prune` (unless `--no-prune`) also the untagged
    /// parents the image leaves childless.
    pub fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let rec = self.find_image(name)?;
        let tags = self.meta.tags_of(&rec.id)?;
        let named = Reference::parse(name)
            .ok()
            .filter(|r| tags.contains(&r.full()));
        let users = self.meta.containers_using_image(&rec.id)?;
        let mut running_user = None;
        for cid in &users {
            if self
                .meta
                .container::<crate::ContainerRecord>(cid)?
                .is_some_and(|c| c.state.running())
            {
                running_user = Some(cid.clone());
            }
        }
        let mut out = Vec::new();
        if let Some(r) = &named {
            // Removing one of several names, or a name of an image in use
            // with --force, only untags (as Docker does).
            if tags.len() > 1 || (force && !users.is_empty()) {
                self.meta.delete_tag(&r.full())?;
                self.image_event("untag", &rec.id, &r.familiar());
                out.push(untagged(&r.familiar()));
                return Ok(out);
            }
            if let Some(cid) = users.first() {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &cid[..12],
                    short(&rec.id)
                )));
            }
        } else {
            if let Some(cid) = running_user {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    short(&rec.id),
                    &cid[..12]
                )));
            }
            if !force {
                if let Some(cid) = users.first() {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                        short(&rec.id),
                        &cid[..12]
                    )));
                }
                if tags.len() > 1 {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        short(&rec.id)
                    )));
                }
            }
        }
        // An image others were built on: by name it only loses the name
        // (and stays as an intermediate image), by ID it is refused.
        let has_children =
            crate::image_chain::parents_of(&self.meta.images::<ImageRecord>()?).contains(&rec.id);
        if has_children && named.is_none() {
            self.refuse_if_parent(&rec.id)?;
        }
        for t in &tags {
            if let Ok(r) = Reference::parse(t) {
                if has_children {
                    self.meta.delete_tag(t)?;
                }
                out.push(untagged(&r.familiar()));
                self.image_event("untag", &rec.id, &r.familiar());
            }
        }
        if has_children {
            return Ok(out);
        }
        self.meta.delete_image(&rec.id)?;
        self.image_event("delete", &rec.id, "");
        out.push(ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(rec.id.clone()),
        });
        if prune {
            self.delete_parents(&rec, &mut out)?;
        }
        self.collect_garbage()?;
        Ok(out)
    }

    /// Removes snapshots and blobs that no image or container needs any more.
    // Its callers (image remove and prune, build cache prune) run on
    // blocking threads: the server spawns them there.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let images = self.meta.images::<ImageRecord>()?;
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        for (id, img) in &images {
            blobs.insert(id.clone());
            let mut diff_ids = Vec::new();
            for l in &img.layers {
                blobs.insert(l.blob.clone());
                diff_ids.push(digest(&l.diff_id)?);
                chains.insert(chain_id(&diff_ids).to_string());
            }
        }
        blobs.extend(self.build_cache_blobs()?);
        let containers = self.meta.containers::<crate::ContainerRecord>()?;
        for c in &containers {
            if let Some(ch) = &c.chain_id {
                let d = digest(ch)?;
                let mut cur = Some(d);
                while let Some(c) = cur {
                    cur = self.snaps.parent(&c)?;
                    chains.insert(c.to_string());
                }
            }
        }
        // Children before parents: a snapshot with a child cannot go, and
        // the list is in digest order, not chain order.
        let mut garbage = Vec::new();
        for snap in self.snaps.list()? {
            if !chains.contains(snap.as_str()) {
                let depth = self.snaps.lowers_chain(&snap)?.len();
                garbage.push((depth, snap));
            }
        }
        garbage.sort_by_key(|g| std::cmp::Reverse(g.0));
        for (_, snap) in garbage {
            // A large image's files take seconds to delete: `rmi` returns
            // once the snapshot is out of the way (see trash.rs).
            let doomed = self.snaps.detach(&snap)?;
            self.discard_dir(&self.cfg.data_root, &doomed)?;
            let init = self.cfg.init_layer_dir(Some(&snap.to_string()));
            if let Err(e) = std::fs::remove_dir_all(&init)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("removing init layer {}: {e}", init.display());
            }
        }
        for blob in self.content.list()? {
            if !blobs.contains(blob.as_str()) && self.is_layer_or_config_blob(&blob) {
                self.content.delete(&blob)?;
            }
        }
        Ok(())
    }

    fn is_layer_or_config_blob(&self, _d: &Digest) -> bool {
        // Every blob in the store belongs to an image (builds keep their cache
        // elsewhere); an unreferenced one is garbage.
        true
    }

    /// `GET /images/json`.
    pub fn list_images(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummary>> {
        let mut tag_map: HashMap<String, Vec<String>> = HashMap::new();
        for (t, id) in self.meta.all_tags()? {
            if let Ok(r) = Reference::parse(&t) {
                tag_map.entry(id).or_default().push(r.familiar());
            }
        }
        let mut users: HashMap<String, i64> = HashMap::new();
        for c in self.meta.containers::<crate::ContainerRecord>()? {
            *users.entry(c.image_id).or_default() += 1;
        }
        let bounds = image_filter::ImageBounds::new(self, filters)?;
        let images = self.meta.images::<ImageRecord>()?;
        let parents = crate::image_chain::parents_of(&images);
        let mut out = Vec::new();
        for (id, img) in images {
            let tags = tag_map.remove(&id).unwrap_or_default();
            // As Docker: intermediate images (untagged, built on) only with -a.
            if !all && tags.is_empty() && parents.contains(&id) {
                continue;
            }
            let labels = img
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            if !image_filter::image_matches(filters, &tags, &labels) || !bounds.admit(&img) {
                continue;
            }
            let tags = image_filter::shown_tags(filters, tags);
            out.push(ImageSummary {
                id: id.clone(),
                parent_id: img.parent.clone(),
                repo_tags: tags,
                repo_digests: img.repo_digests.clone(),
                created: img.config.created.as_deref().map(unix_of).unwrap_or(0),
                size: img.size,
                shared_size: -1,
                labels,
                containers: users.get(&id).copied().unwrap_or(0),
                manifests: None,
                descriptor: None,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect_image(&self, name: &str) -> Result<ImageDetails> {
        let img = self.find_image(name)?;
        let repo_tags: Vec<String> = self
            .meta
            .tags_of(&img.id)?
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| r.familiar())
            .collect();
        let c = img.config;
        Ok(ImageDetails {
            id: img.id,
            repo_tags,
            repo_digests: img.repo_digests,
            parent: img.parent,
            comment: c.comment.unwrap_or_default(),
            created: c.created.unwrap_or_default(),
            container: c.container.unwrap_or_default(),
            container_config: c.container_config,
            docker_version: c.docker_version.unwrap_or_default(),
            author: c.author.unwrap_or_default(),
            config: c.config,
            architecture: c.architecture,
            // `Variant` is `omitempty` in Docker's ImageInspect.
            variant: c.variant.filter(|v| !v.is_empty()),
            os: c.os,
            size: img.size,
            layers: c.rootfs.diff_ids,
        })
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>> {
        let img = self.find_image(name)?;
        let tags: Vec<String> = self
            .meta
            .tags_of(&img.id)?
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| r.familiar())
            .collect();
        let mut layer_iter = img.layers.iter();
        let mut items = Vec::new();
        let history = if img.config.history.is_empty() {
            img.layers.iter().map(|_| History::default()).collect()
        } else {
            img.config.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                layer_iter
                    .next()
                    .map(|l| self.layer_size(&l.diff_id) as i64)
                    .unwrap_or(0)
            };
            items.push(ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: h.created.as_deref().map(unix_of).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = img.id.clone();
            top.tags = tags;
        }
        Ok(items)
    }

    /// `POST /images/prune`: dangling images (all unused ones with `all`)
    /// that the filters allow.
    pub fn prune_images(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<ImagePruneResponse> {
        let f = crate::prune_filter::PruneFilter::parse(filters, &["dangling"])?;
        let used: HashSet<String> = self
            .meta
            .containers::<crate::ContainerRecord>()?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        // Images built on others go first; their parents are then checked
        // again (as Docker, a parent goes with its last child when untagged).
        let mut again = true;
        while again {
            again = false;
            let images = self.meta.images::<ImageRecord>()?;
            let parents = crate::image_chain::parents_of(&images);
            for (id, img) in images {
                if used.contains(&id) || parents.contains(&id) {
                    continue;
                }
                if self.meta.image::<ImageRecord>(&id)?.is_none() {
                    continue;
                }
                let tags = self.meta.tags_of(&id)?;
                if !tags.is_empty() && !all {
                    continue;
                }
                let cfg = &img.config;
                let labels = cfg.config.as_ref().and_then(|c| c.labels.clone());
                if !f.allows(
                    cfg.created.as_deref().unwrap_or(""),
                    &labels.unwrap_or_default(),
                ) {
                    continue;
                }
                for t in &tags {
                    if let Ok(r) = Reference::parse(t) {
                        deleted.push(untagged(&r.familiar()));
                    }
                }
                self.meta.delete_image(&id)?;
                reclaimed += img.size;
                deleted.push(ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(id),
                });
                self.delete_parents(&img, &mut deleted)?;
                again = true;
            }
        }
        self.collect_garbage()?;
        Ok(ImagePruneResponse {
            images_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }
}

struct CountingReader<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn stored(l: &LayerRef) -> StoredLayer {
    StoredLayer {
        blob: l.blob.to_string(),
        media_type: l.media_type.clone(),
        size: l.size,
        diff_id: l.diff_id.to_string(),
    }
}

fn untagged(name: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: Some(name.to_string()),
        deleted: None,
    }
}

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
