//! The builder's backend: `pier_build::BuildBackend` over the engine's
//! stores and shims. RUN steps are containers without a database record.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pier_api::models::{ContainerConfig, HostConfig};
use pier_build::{
    BackendError, BackendResult, BaseImage, BuildBackend, CacheRecord, ImageRole, LayerInfo,
    Network, OutputStream, RunMount, RunProcess, WorkRoot,
};
use pier_reference::{chain_id, Digest};

use crate::records::{ContainerRecord, ImageRecord, StateRecord, StoredLayer};
use crate::shim::AttachOptions;
use crate::shim::Shim;
use crate::util::random_id;
use crate::{Engine, EngineError, ErrorKind};

const CACHE_NS: &str = "build-cache";

fn be(e: EngineError) -> BackendError {
    match e.kind() {
        ErrorKind::NotFound => BackendError::not_found(e.to_string()),
        ErrorKind::InvalidArgument => BackendError::invalid(e.to_string()),
        _ => BackendError::internal(e.to_string()),
    }
}

fn stored(l: &LayerInfo) -> StoredLayer {
    StoredLayer {
        blob: l.blob.clone(),
        media_type: l.media_type.clone(),
        size: l.size,
        diff_id: l.diff_id.clone(),
    }
}

/// The engine as seen by the builder. Lives on a blocking thread and
/// re-enters the runtime for the async parts (shims).
pub struct EngineBackend {
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
}

/// Files and directories the runtime may create as mount points in a RUN
/// root; removed after the step when they were not there before.
const MOUNT_POINTS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "proc",
    "sys",
    "dev",
    "etc",
];

// The builder's backend runs on the build's blocking thread (the server
// spawns the build there), as does everything it calls here.
#[allow(clippy::disallowed_methods)]
impl EngineBackend {
    pub fn new(engine: Arc<Engine>, rt: tokio::runtime::Handle) -> Self {
        EngineBackend { engine, rt }
    }

    fn run_async(
        &self,
        root: &WorkRoot,
        p: &RunProcess,
        output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> crate::Result<i32> {
        let e = &self.engine;
        let id = random_id();
        let dir = e.cfg.data_root.join("build-run").join(&id);
        std::fs::create_dir_all(&dir).map_err(|err| EngineError::from_io(&dir, err))?;
        let mut binds = Vec::new();
        let mut tmpfs = std::collections::HashMap::new();
        for m in &p.mounts {
            match m {
                RunMount::Bind {
                    source,
                    target,
                    readonly,
                } => binds.push(format!(
                    "{}:{}{}",
                    source.display(),
                    target,
                    if *readonly { ":ro" } else { "" }
                )),
                RunMount::Tmpfs { target, size } => {
                    let opts = if *size > 0 {
                        format!("size={size}")
                    } else {
                        String::new()
                    };
                    tmpfs.insert(target.clone(), opts);
                }
            }
        }
        // As Docker's builder: RUN steps sit on the default bridge (outbound
        // through its NAT) unless asked otherwise.
        let network = match &p.network {
            Network::None => "none".to_string(),
            Network::Host => "host".to_string(),
            Network::Default => "bridge".to_string(),
            Network::Named(n) => {
                let n = e.networks.find(n)?;
                match n.driver.as_str() {
                    "host" => "host".to_string(),
                    "null" => "none".to_string(),
                    _ => n.name,
                }
            }
        };
        let rec = ContainerRecord {
            id: id.clone(),
            name: format!("build-{}", &id[..12]),
            created: crate::now_rfc3339(),
            image: String::new(),
            image_id: String::new(),
            config: ContainerConfig {
                hostname: Some(id[..12].to_string()),
                env: Some(p.env.clone()),
                working_dir: Some(p.cwd.clone()),
                user: Some(p.user.clone()),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: Some(network.clone()),
                extra_hosts: Some(p.extra_hosts.clone()),
                binds: Some(binds),
                tmpfs: Some(tmpfs),
                privileged: Some(p.privileged),
                shm_size: (p.shm_size > 0).then_some(p.shm_size),
                ..Default::default()
            },
            path: p.args.first().cloned().unwrap_or_default(),
            args: p.args.iter().skip(1).cloned().collect(),
            state: StateRecord::default(),
            restart_count: 0,
            chain_id: None,
            log_path: dir.join("log.json").display().to_string(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            cgroups_path: format!(
                "/{}/build-{}",
                e.cfg.cgroup_parent.trim_matches('/'),
                &id[..12]
            ),
            mounts: Vec::new(),
            network: Default::default(),
            cri: None,
        };
        let mut rec = rec;
        if network != "none" && network != "host" {
            rec.network.requested.insert(network, Default::default());
        }
        rec.mounts = e.resolve_mounts(&rec)?;
        let result = (|| -> crate::Result<i32> {
            self.rt.block_on(e.network_setup(&mut rec))?;
            let cwd = crate::fsops::resolve_in_root(&root.root, &p.cwd)?;
            std::fs::create_dir_all(&cwd).map_err(|err| EngineError::from_io(&cwd, err))?;
            crate::fsops::write_etc_files(&rec)?;
            let bundle = e.cfg.bundle_dir(&id);
            std::fs::create_dir_all(&bundle).map_err(|err| EngineError::from_io(&bundle, err))?;
            let spec = crate::spec::spec_for(&rec, &root.root)?;
            let cfg_path = bundle.join("config.json");
            let data = serde_json::to_vec(&spec)
                .map_err(|err| EngineError::internal("OCI spec").with_source(err))?;
            std::fs::write(&cfg_path, data).map_err(|err| EngineError::from_io(&cfg_path, err))?;
            let r = self.rt.block_on(async {
                let shim = Shim::spawn(&e.cfg, &rec, &bundle).await?;
                let stream = shim
                    .attach(
                        None,
                        AttachOptions {
                            stdin: false,
                            stdout: true,
                            stderr: true,
                        },
                    )
                    .await?;
                let started = shim.start().await;
                let code = match started {
                    Ok(_) => {
                        let std_stream = stream
                            .into_std()
                            .map_err(|err| EngineError::internal("attach").with_source(err))?;
                        std_stream
                            .set_nonblocking(false)
                            .map_err(|err| EngineError::internal("attach").with_source(err))?;
                        Ok::<_, EngineError>((Some(std_stream), shim.clone()))
                    }
                    Err(err) => {
                        let _ = shim.shutdown().await;
                        return match err.start_exit_code() {
                            Some(code) => Ok(Err((err.to_string(), code))),
                            None => Err(err),
                        };
                    }
                }?;
                Ok(Ok(code))
            })?;
            match r {
                Err((message, code)) => {
                    output(OutputStream::Stderr, format!("{message}\n").as_bytes());
                    Ok(code)
                }
                Ok((stream, shim)) => {
                    if let Some(mut s) = stream {
                        demux_copy(&mut s, output);
                    }
                    let info = self.rt.block_on(shim.wait(None))?;
                    let _ = self.rt.block_on(shim.shutdown());
                    Ok(info.exit_code as i32)
                }
            }
        })();
        self.rt.block_on(e.network_teardown(&mut rec));
        let _ = std::fs::remove_dir_all(e.cfg.bundle_dir(&id));
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

/// The paths (relative to `root`, parents first) that do not exist yet
/// along each of `targets`. Nothing is listed below a symlink: removing
/// through one could reach outside the root.
fn missing_paths<'a>(root: &Path, targets: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in targets {
        let mut rel = String::new();
        for comp in t.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == ".." {
                break;
            }
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(comp);
            match std::fs::symlink_metadata(root.join(&rel)) {
                Ok(md) if md.file_type().is_symlink() => break,
                Ok(_) => {}
                Err(_) => {
                    if !out.contains(&rel) {
                        out.push(rel.clone());
                    }
                }
            }
        }
    }
    out
}

/// Removes mount stubs: empty directories and empty files, deepest first.
fn remove_stubs<'a>(root: &Path, rels: impl Iterator<Item = &'a str>) {
    for rel in rels {
        let path = root.join(rel);
        if let Ok(md) = std::fs::symlink_metadata(&path) {
            if md.is_dir() {
                let _ = std::fs::remove_dir(&path);
            } else if md.is_file() && md.len() == 0 {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Reads Docker frames from `s` and hands each payload to `output`.
fn demux_copy(s: &mut impl Read, output: &mut dyn FnMut(OutputStream, &[u8])) {
    let mut header = [0u8; 8];
    loop {
        if s.read_exact(&mut header).is_err() {
            return;
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut buf = vec![0u8; len];
        if s.read_exact(&mut buf).is_err() {
            return;
        }
        let which = if header[0] == 2 {
            OutputStream::Stderr
        } else {
            OutputStream::Stdout
        };
        output(which, &buf);
    }
}

// The builder's backend runs on the build's blocking thread (the server
// spawns the build there), as does everything it calls here.
#[allow(clippy::disallowed_methods)]
impl EngineBackend {
    /// Makes the step's upper directory the new layer's snapshot (a rename)
    /// so the next step need not unpack the tar just written from it: files
    /// are written once per step, not twice. The root is unmounted first
    /// (only `release` follows a commit). Best effort: on any failure the
    /// layer is unpacked from its blob when next needed, as before.
    fn adopt_upper(&self, root: &WorkRoot, diff_id: &Digest, size: u64) {
        let e = &self.engine;
        let _ = pier_sys::unmount(&root.root, false);
        if crate::fsops::is_mountpoint(&root.root) {
            return;
        }
        match e.snaps.commit_upper_as_snapshot(&root.key, diff_id) {
            // The size an unpack would have counted (the blob is the plain tar).
            Ok(Some(_)) => {
                if let Err(err) = e
                    .meta
                    .kv_put(crate::image::LAYER_SIZES, diff_id.as_str(), &size)
                {
                    tracing::warn!("recording size of layer {diff_id}: {err}");
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!("build step {}: keeping upper directory: {err}", root.key),
        }
    }
}

// The builder's backend runs on the build's blocking thread (the server
// spawns the build there), as does everything it calls here.
#[allow(clippy::disallowed_methods)]
impl BuildBackend for EngineBackend {
    fn find_image(&self, name: &str) -> BackendResult<Option<BaseImage>> {
        let rec = match self.engine.find_image(name) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(be(e)),
        };
        // The record holds the config as read from its blob at registration.
        Ok(Some(BaseImage {
            id: rec.id.clone(),
            config: rec.config.clone(),
            layers: rec
                .layers
                .iter()
                .map(|l| LayerInfo {
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    diff_id: l.diff_id.clone(),
                })
                .collect(),
        }))
    }

    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
        progress: &mut dyn FnMut(&str),
    ) -> BackendResult<BaseImage> {
        crate::registry::pull_blocking(&self.engine, &self.rt, name, platform, progress)
            .map_err(be)?;
        self.find_image(name)?
            .ok_or_else(|| BackendError::not_found(format!("{name}: not found after pulling")))
    }

    fn prepare(&self, layers: &[LayerInfo]) -> BackendResult<WorkRoot> {
        let e = &self.engine;
        let stored: Vec<StoredLayer> = layers.iter().map(stored).collect();
        let chain = e.unpack_layers(&stored).map_err(be)?;
        let parent: Option<Digest> = chain
            .as_deref()
            .map(|c| c.parse())
            .transpose()
            .map_err(|err| BackendError::internal(format!("chain id: {err}")))?;
        let key = format!("build-{}", random_id());
        let m = e
            .snaps
            .prepare(&key, parent.as_ref())
            .map_err(|err| BackendError::internal(err.to_string()))?;
        let lowers: Vec<&Path> = m.lowers.iter().map(PathBuf::as_path).collect();
        // Volatile: no overlay unmount syncs the whole upper filesystem. A
        // build root's files end as a snapshot, which unpacks never sync
        // either; a crash mid-build loses nothing a rebuild does not redo.
        pier_sys::mount_overlay_volatile(&lowers, &m.upper, &m.work, &m.target)
            .map_err(|err| BackendError::internal(format!("mounting build root: {err}")))?;
        let mut missing = Vec::new();
        for p in MOUNT_POINTS {
            if std::fs::symlink_metadata(m.target.join(p)).is_err() {
                missing.push(p.to_string());
            }
        }
        let marker = m
            .target
            .parent()
            .unwrap_or(&m.target)
            .join("created-mountpoints");
        let _ = std::fs::write(&marker, missing.join("\n"));
        Ok(WorkRoot {
            key,
            root: m.target,
        })
    }

    fn run(
        &self,
        root: &WorkRoot,
        p: &RunProcess,
        output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> BackendResult<i32> {
        let targets = p.mounts.iter().map(|m| match m {
            RunMount::Bind { target, .. } | RunMount::Tmpfs { target, .. } => target.as_str(),
        });
        let stubs = missing_paths(&root.root, targets);
        let code = self.run_async(root, p, output);
        // Drop the empty files the runtime made to bind files onto, as
        // Docker 20.10's BuildKit does; it keeps directory stubs (newer
        // BuildKit drops those too: see docs/build-parity.md).
        for rel in stubs.iter().rev() {
            let path = root.root.join(rel);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&path);
            }
        }
        let code = code.map_err(be)?;
        let marker = root
            .root
            .parent()
            .unwrap_or(&root.root)
            .join("created-mountpoints");
        if let Ok(list) = std::fs::read_to_string(&marker) {
            remove_stubs(&root.root, list.lines().filter(|l| !l.is_empty()));
        }
        Ok(code)
    }

    fn commit(&self, root: &WorkRoot) -> BackendResult<Option<LayerInfo>> {
        let e = &self.engine;
        let internal = |err: &dyn std::fmt::Display| BackendError::internal(err.to_string());
        // Every entry of the upper directory is a change, so an empty one
        // means none (a full diff would stat each entry in every lower).
        let upper = e.snaps.upper(&root.key).map_err(|err| internal(&err))?;
        let mut entries = std::fs::read_dir(&upper)
            .map_err(|err| internal(&format!("{}: {err}", upper.display())))?;
        if entries.next().is_none() {
            return Ok(None);
        }
        let (diff_id, size) = e.store_diff_layer(&root.key).map_err(be)?;
        self.adopt_upper(root, &diff_id, size);
        Ok(Some(LayerInfo {
            blob: diff_id.to_string(),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size,
            diff_id: diff_id.to_string(),
        }))
    }

    fn release(&self, root: WorkRoot) -> BackendResult<()> {
        let _ =
            pier_sys::unmount(&root.root, false).or_else(|_| pier_sys::unmount(&root.root, true));
        if crate::fsops::is_mountpoint(&root.root) {
            return Err(BackendError::internal(format!(
                "{} is still mounted",
                root.root.display()
            )));
        }
        // Renamed away now, deleted in the background: a COPY's thousands of
        // files cost seconds to delete on a `discard` mount (see trash.rs).
        let dir = root.root.parent().unwrap_or(&root.root);
        self.engine
            .discard_dir(&self.engine.cfg.data_root, dir)
            .map_err(be)
    }

    fn create_image(
        &self,
        config_json: &[u8],
        layers: &[LayerInfo],
        tags: &[String],
        role: ImageRole<'_>,
    ) -> BackendResult<String> {
        let e = &self.engine;
        let parent = match role {
            ImageRole::Step { parent } => parent,
            ImageRole::Result => "",
        };
        // A cached build meets its step images again: one lookup, no writes.
        if let ImageRole::Step { .. } = role {
            let id = Digest::sha256(config_json).to_string();
            if e.meta
                .image::<ImageRecord>(&id)
                .map_err(|err| BackendError::internal(err.to_string()))?
                .is_some()
            {
                return Ok(id);
            }
        }
        let d = e
            .content
            .put(config_json)
            .map_err(|err| BackendError::internal(err.to_string()))?;
        let mut full = Vec::new();
        for t in tags {
            full.push(crate::names::parse_ref(t).map_err(be)?.full());
        }
        let rec = e
            .register_image(&d, layers.iter().map(stored).collect(), &full, parent)
            .map_err(be)?;
        // API 1.46: a built image is announced whether or not it is tagged;
        // the classic builder's step images are not.
        if role == ImageRole::Result {
            e.image_event("create", &rec.id, &rec.id);
        }
        for t in tags {
            e.image_event("tag", &rec.id, t);
        }
        Ok(rec.id)
    }

    fn cache_get(&self, key: &str) -> BackendResult<Option<CacheRecord>> {
        let rec: Option<CacheRecord> = self
            .engine
            .meta
            .kv_get(CACHE_NS, key)
            .map_err(|err| BackendError::internal(err.to_string()))?;
        Ok(rec.filter(|r| {
            r.layer.as_ref().is_none_or(|l| {
                l.blob
                    .parse::<Digest>()
                    .is_ok_and(|d| self.engine.content.exists(&d))
            })
        }))
    }

    fn cache_put(&self, key: &str, rec: &CacheRecord) -> BackendResult<()> {
        self.engine
            .meta
            .kv_put(CACHE_NS, key, rec)
            .map_err(|err| BackendError::internal(err.to_string()))
    }

    fn cache_mount_dir(&self, id: &str) -> BackendResult<PathBuf> {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self
            .engine
            .cfg
            .data_root
            .join("build-cache-mounts")
            .join(format!(
                "{safe}-{}",
                &pier_reference::Digest::sha256(id.as_bytes()).hex()[..8]
            ));
        std::fs::create_dir_all(&dir)
            .map_err(|err| BackendError::internal(format!("{}: {err}", dir.display())))?;
        Ok(dir)
    }
}

impl Engine {
    /// Stores the changes of container (or build root) `key` as an
    /// uncompressed layer blob; returns its digest, which is also its diff
    /// ID, and size. The tar streams straight into the content store (no
    /// temporary copy to write, read back and hash again).
    pub(crate) fn store_diff_layer(&self, key: &str) -> crate::Result<(Digest, u64)> {
        let err = || EngineError::internal(format!("commit {key}"));
        let blob = self.content.writer().map_err(|e| err().with_source(e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, blob);
        let diff_id = self
            .snaps
            .write_diff_tar(key, &mut w)
            .map_err(|e| err().with_source(e))?;
        let blob = w
            .into_inner()
            .map_err(|e| err().with_source(e.into_error()))?;
        let (_, size) = blob
            .commit(Some(&diff_id), None)
            .map_err(|e| err().with_source(e))?;
        Ok((diff_id, size))
    }

    /// The build cache as `GET /system/df` lists it: one record per cached
    /// step that made a layer, `Shared` when an image holds the same layer
    /// (pruning the cache then frees nothing of it).
    pub(crate) fn build_cache_usage(&self) -> crate::Result<Vec<crate::views::BuildCacheEntry>> {
        let image_blobs: std::collections::HashSet<String> = self
            .meta
            .images::<crate::records::ImageRecord>()?
            .into_iter()
            .flat_map(|(_, img)| img.layers.into_iter().map(|l| l.blob))
            .collect();
        Ok(self
            .meta
            .kv_list::<CacheRecord>(CACHE_NS)?
            .into_iter()
            .filter_map(|(key, r)| {
                let l = r.layer?;
                Some(crate::views::BuildCacheEntry {
                    id: key.rsplit(':').next().unwrap_or(&key).to_string(),
                    shared: image_blobs.contains(&l.blob),
                    size: l.size as i64,
                    created: r.created,
                })
            })
            .collect())
    }

    /// Blobs the build cache still points at (kept by the garbage collector).
    pub(crate) fn build_cache_blobs(&self) -> crate::Result<Vec<String>> {
        Ok(self
            .meta
            .kv_list::<CacheRecord>(CACHE_NS)?
            .into_iter()
            .filter_map(|(_, r)| r.layer.map(|l| l.blob))
            .collect())
    }

    /// `POST /build/prune`: forgets the chosen cache records (build_prune.rs)
    /// and collects the layers nothing else holds.
    pub fn prune_build_cache(
        &self,
        o: &crate::BuildPruneOptions,
    ) -> crate::Result<crate::BuildPruneReport> {
        let image_blobs: std::collections::HashSet<String> = self
            .meta
            .images::<crate::records::ImageRecord>()?
            .into_iter()
            .flat_map(|(_, img)| img.layers.into_iter().map(|l| l.blob))
            .collect();
        let all = self
            .meta
            .kv_list::<CacheRecord>(CACHE_NS)?
            .into_iter()
            .map(|(k, r)| {
                let shared = r
                    .layer
                    .as_ref()
                    .is_some_and(|l| image_blobs.contains(&l.blob));
                crate::build_prune::Candidate::of(k, &r, shared)
            })
            .collect();
        let mut report = crate::BuildPruneReport::default();
        for c in crate::build_prune::choose(all, o)? {
            self.meta.kv_delete(CACHE_NS, &c.key)?;
            // A shared layer stays with its image: nothing is freed.
            if !c.shared {
                report.reclaimed += c.size;
            }
            report.deleted.push(c.id);
        }
        self.collect_garbage()?;
        Ok(report)
    }

    /// A chain ID for a layer stack (for tests and diagnostics).
    pub fn chain_of(layers: &[LayerInfo]) -> Option<String> {
        let ids: Vec<Digest> = layers
            .iter()
            .filter_map(|l| l.diff_id.parse().ok())
            .collect();
        (!ids.is_empty()).then(|| chain_id(&ids).to_string())
    }
}
