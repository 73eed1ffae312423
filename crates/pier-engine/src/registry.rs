//! Pull, push, login and `GET /distribution`: pier-registry wired to the
//! image store, with progress turned into Docker's JSON message stream.
//!
//! Credentials come from the `X-Registry-Auth` header when the client sends
//! one, else from the daemon user's Docker config (`~/.docker/config.json`).
//! Insecure registries ([`configure`]; loopback ones always) may be reached
//! without certificate checks or over plain HTTP, as in Docker.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use pier_content::LayerRef;
use pier_reference::{chain_id, Digest, Reference};
use pier_registry::{
    AuthConfig, Client, DockerConfig, LayerUnpacker, Platform, Progress, PullOptions, PushImage,
    PushOptions, RegistryError, RegistryOptions, StagedLayer,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::image::LAYER_SIZES;
use crate::records::{ImageRecord, StoredLayer};
use crate::{Engine, EngineError, ErrorKind, Result};

/// kv namespace: image ID -> the manifest it was pulled or pushed as.
const MANIFESTS: &str = "registry-manifest";

/// Receives Docker JSON messages (`{"status":..,"id":..}`) as they happen.
pub type MessageSink<'a> = &'a (dyn Fn(Value) + Send + Sync);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SourceManifest {
    media_type: String,
    /// The manifest JSON, byte for byte.
    manifest: String,
    /// Repositories (`domain/path`) known to hold the blobs.
    #[serde(default)]
    repos: Vec<String>,
}

static OPTIONS: OnceLock<RegistryOptions> = OnceLock::new();

/// Sets how the daemon reaches registries (`--insecure-registry`, daemon.json
/// `insecure-registries`; `--registry-mirror`, `registry-mirrors` for Docker
/// Hub), before the first pull or push. Entries in `PIER_INSECURE_REGISTRIES`
/// (comma separated) are added to `insecure`; certificates and `hosts.toml`
/// come from `hosts_dirs`, or [`pier_registry::DEFAULT_CERTS_DIRS`] when empty.
pub fn configure(insecure: Vec<String>, mirrors: Vec<String>, hosts_dirs: Vec<std::path::PathBuf>) {
    let mut insecure = insecure;
    insecure.extend(
        std::env::var("PIER_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    let opts = RegistryOptions {
        insecure,
        certs_dirs: if hosts_dirs.is_empty() {
            pier_registry::DEFAULT_CERTS_DIRS
                .iter()
                .map(std::path::PathBuf::from)
                .collect()
        } else {
            hosts_dirs
        },
        mirrors,
        resolve: Vec::new(),
        user_agent: Some(format!("pier/{}", env!("CARGO_PKG_VERSION"))),
    };
    if OPTIONS.set(opts).is_err() {
        tracing::warn!("registry options set twice; keeping the first");
    }
}

/// Docker Hub's mirrors, as dockerd's `/info` lists them (with a final `/`).
pub(crate) fn mirrors() -> Vec<String> {
    OPTIONS
        .get()
        .map(|o| {
            o.mirrors
                .iter()
                .map(|m| format!("{}/", m.trim_end_matches('/')))
                .collect()
        })
        .unwrap_or_default()
}

fn client() -> Result<Client> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    if OPTIONS.get().is_none() {
        configure(Vec::new(), Vec::new(), Vec::new());
    }
    let opts = OPTIONS.get().cloned().unwrap_or_default();
    let c = Client::new(opts).map_err(|e| EngineError::wrap(ErrorKind::Internal, e))?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

/// As Docker: a pull the registry refuses reads as a repository that may
/// not exist (404), the registry's words after it.
fn pull_err(r: &Reference, e: RegistryError) -> EngineError {
    match e {
        RegistryError::Unauthorized(_) | RegistryError::Denied(_) => {
            EngineError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login'",
            r.familiar_name()
        ))
            .with_source(e)
        }
        e => EngineError::from(e),
    }
}

/// Credentials for `domain`: the client's, else the Docker config's.
pub fn resolve_auth(domain: &str, header: Option<&str>) -> Result<Option<AuthConfig>> {
    if let Some(h) = header
        && let Some(a) = AuthConfig::from_header(h)?
    {
        return Ok(Some(a));
    }
    match DockerConfig::load(&pier_registry::default_config_dir())
        .and_then(|c| c.credentials(domain))
    {
        Ok(a) => Ok(a),
        Err(e) => {
            tracing::warn!("reading Docker credentials for {domain}: {e}");
            Ok(None)
        }
    }
}

/// Docker's progress bar: `[=====>     ]  1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current.min(total) as f64 / total as f64) * 100.0) as usize / 2;
    let bar = if pct >= 50 {
        format!("[{}]", "=".repeat(50))
    } else {
        format!("[{}>{}]", "=".repeat(pct), " ".repeat(49 - pct))
    };
    format!("{bar} {:>8}/{}", human_size(current), human_size(total))
}

/// Go's `units.HumanSize`: decimal units, four significant digits.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32) + 1
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// One Docker JSON message for a progress event.
pub fn progress_message(p: &Progress) -> Value {
    let simple = |status: &str, id: &str| json!({"status": status, "progressDetail": {}, "id": id});
    match p {
        Progress::PullingFrom { repo, tag } => {
            json!({"status": format!("Pulling from {repo}"), "id": tag})
        }
        Progress::AlreadyExists { id } => simple("Already exists", id),
        Progress::Pending { id } => simple("Pulling fs layer", id),
        Progress::Waiting { id } => simple("Waiting", id),
        Progress::Downloading { id, current, total } => json!({
            "status": "Downloading",
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(*current, *total),
            "id": id,
        }),
        Progress::Verifying { id } => simple("Verifying Checksum", id),
        Progress::DownloadComplete { id } => simple("Download complete", id),
        Progress::PushRepository { name } => {
            json!({"status": format!("The push refers to repository [{name}]")})
        }
        Progress::Preparing { id } => simple("Preparing", id),
        Progress::Pushing { id, current, total } => json!({
            "status": "Pushing",
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(*current, *total),
            "id": id,
        }),
        Progress::Pushed { id } => simple("Pushed", id),
        Progress::LayerExists { id } => simple("Layer already exists", id),
        Progress::Mounted { id, from } => simple(&format!("Mounted from {from}"), id),
        Progress::PushDigest { tag, digest, size } => {
            json!({"status": format!("{tag}: digest: {digest} size: {size}")})
        }
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

fn layer_ref(l: &StoredLayer) -> Result<LayerRef> {
    let d = |s: &str| -> Result<Digest> {
        s.parse()
            .map_err(|e| EngineError::internal(format!("bad digest {s}")).with_source(e))
    };
    Ok(LayerRef {
        blob: d(&l.blob)?,
        media_type: l.media_type.clone(),
        size: l.size,
        diff_id: d(&l.diff_id)?,
    })
}

/// Unpacks pulled layers into the snapshotter while they download, so that
/// registering the image finds them unpacked.
struct SnapshotUnpacker(Arc<Engine>);

impl std::fmt::Debug for SnapshotUnpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotUnpacker")
    }
}

impl LayerUnpacker for SnapshotUnpacker {
    fn wants(&self, diff_ids: &[Digest], index: usize) -> bool {
        !self.0.snaps.exists(&chain_id(&diff_ids[..=index]))
    }

    fn unpack(
        &self,
        diff_ids: &[Digest],
        index: usize,
        blob: &mut (dyn Read + Send),
    ) -> std::result::Result<Box<dyn StagedLayer>, String> {
        let parent = (index > 0).then(|| chain_id(&diff_ids[..index]));
        let diff_id = diff_ids[index].clone();
        let inflate = pier_content::compression::decompress(blob).map_err(|e| e.to_string())?;
        // Download, digest and inflate on one thread; tar digest and file
        // writes on this one: a pull is CPU-bound, and this uses two cores.
        let (staged, size) = pier_content::readahead::with_read_ahead(inflate, |r| {
            let mut r = Counted { inner: r, n: 0 };
            let staged = self.0.snaps.stage(parent.as_ref(), &mut r, &diff_id);
            (staged, r.n)
        });
        let staged = staged.map_err(|e| e.to_string())?;
        Ok(Box::new(PulledLayer {
            engine: self.0.clone(),
            staged,
            diff_id,
            size,
        }))
    }
}

struct PulledLayer {
    engine: Arc<Engine>,
    staged: pier_snapshot::Staged,
    diff_id: Digest,
    /// Uncompressed bytes, recorded as the layer's size like an unpack at
    /// registration does.
    size: u64,
}

impl StagedLayer for PulledLayer {
    fn commit(self: Box<Self>) -> std::result::Result<(), String> {
        self.staged.commit().map_err(|e| e.to_string())?;
        self.engine
            .meta
            .kv_put(LAYER_SIZES, self.diff_id.as_str(), &self.size)
            .map_err(|e| e.to_string())
    }
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Builds the reference `POST /images/create?fromImage=&tag=` names; None
/// for the tag means every tag (`docker pull --all-tags`).
pub fn pull_reference(image: &str, tag: &str) -> Result<(Reference, bool)> {
    let bad = |e: pier_reference::ReferenceError| EngineError::wrap(ErrorKind::InvalidArgument, e);
    let r = Reference::parse_normalized(image).map_err(bad)?;
    if !tag.is_empty() {
        if let Ok(d) = tag.parse::<Digest>() {
            return Ok((r.with_digest(d), false));
        }
        return Ok((r.with_tag(tag).map_err(bad)?, false));
    }
    let all = r.tag().is_none() && r.digest().is_none();
    Ok((r, all))
}

impl Engine {
    /// `docker pull`: every tag when `all_tags`, else the one `r` names.
    pub async fn pull_image(
        self: &Arc<Self>,
        r: &Reference,
        all_tags: bool,
        platform: Option<&str>,
        auth_header: Option<&str>,
        emit: MessageSink<'_>,
    ) -> Result<()> {
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(Platform::parse)
            .transpose()?;
        let auth = resolve_auth(r.domain(), auth_header)?;
        if !all_tags {
            self.pull_one(r, platform, auth, emit).await?;
            return Ok(());
        }
        let tags = pier_registry::list_tags(&client()?, r, auth.clone())
            .await
            .map_err(|e| pull_err(r, e))?;
        if tags.is_empty() {
            return Err(EngineError::not_found(format!(
                "{}: no tags found in the repository",
                r.familiar_name()
            )));
        }
        for t in tags {
            let tr = r
                .with_tag(&t)
                .map_err(|e| EngineError::wrap(ErrorKind::Internal, e))?;
            self.pull_one(&tr, platform.clone(), auth.clone(), emit)
                .await?;
        }
        Ok(())
    }

    /// Pulls one reference and registers the image; returns its record.
    pub async fn pull_one(
        self: &Arc<Self>,
        r: &Reference,
        platform: Option<Platform>,
        auth: Option<AuthConfig>,
        emit: MessageSink<'_>,
    ) -> Result<ImageRecord> {
        let c = client()?;
        let opts = PullOptions {
            platform,
            auth,
            unpacker: Some(Arc::new(SnapshotUnpacker(self.clone()))),
            ..Default::default()
        };
        let fetched = Mutex::new(BTreeSet::new());
        let sink = |p: Progress| {
            if let Progress::Pending { id } = &p {
                fetched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone());
            }
            emit(progress_message(&p));
        };
        let pulled = pier_registry::pull(&c, &self.content, r, &opts, &sink)
            .await
            .map_err(|e| pull_err(r, e))?;
        let tag_full = r.digest().is_none().then(|| r.full());
        let before = match &tag_full {
            Some(t) => self.meta.tag(t)?,
            None => None,
        };
        let e = self.clone();
        let tags: Vec<String> = tag_full.iter().cloned().collect();
        let layers: Vec<StoredLayer> = pulled.layers.iter().map(stored).collect();
        let config = pulled.config.clone();
        let repo_digest = format!("{}@{}", r.name(), pulled.digest);
        let source = SourceManifest {
            media_type: pulled.manifest_media_type.clone(),
            manifest: String::from_utf8_lossy(&pulled.manifest).into_owned(),
            repos: vec![r.name()],
        };
        let rec = tokio::task::spawn_blocking(move || -> Result<ImageRecord> {
            let mut rec = e.register_image(&config, layers, &tags, "")?;
            if !rec.repo_digests.contains(&repo_digest) {
                rec.repo_digests.push(repo_digest);
                e.meta.put_image(&rec.id, &rec)?;
            }
            e.remember_manifest(&rec.id, source)?;
            Ok(rec)
        })
        .await??;
        for id in fetched.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            emit(json!({"status": "Pull complete", "progressDetail": {}, "id": id}));
        }
        emit(json!({"status": format!("Digest: {}", pulled.digest)}));
        let up_to_date = before.as_deref() == Some(rec.id.as_str()) && !pulled.downloaded;
        let status = if up_to_date {
            format!("Status: Image is up to date for {}", r.familiar())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar())
        };
        emit(json!({ "status": status }));
        self.image_event("pull", &rec.id, &r.familiar());
        Ok(rec)
    }

    /// Repositories on `target`'s registry that hold some of `rec`'s blobs:
    /// where the image (or another sharing a layer) was pulled from or
    /// pushed to. Tried as cross-repository mounts, nearest first.
    fn mount_sources(
        &self,
        rec: &ImageRecord,
        source: Option<&SourceManifest>,
        target: &Reference,
    ) -> Result<Vec<String>> {
        let names_of = |img: &ImageRecord, src: Option<&SourceManifest>| -> Vec<String> {
            img.repo_digests
                .iter()
                .filter_map(|rd| rd.split_once('@').map(|(n, _)| n.to_string()))
                .chain(src.iter().flat_map(|s| s.repos.clone()))
                .collect()
        };
        let mut known = names_of(rec, source);
        let blobs: BTreeSet<&str> = rec.layers.iter().map(|l| l.blob.as_str()).collect();
        for (id, img) in self.meta.images::<ImageRecord>()? {
            if id != rec.id && img.layers.iter().any(|l| blobs.contains(l.blob.as_str())) {
                let src = self.meta.kv_get::<SourceManifest>(MANIFESTS, &id)?;
                known.extend(names_of(&img, src.as_ref()));
            }
        }
        let mut out: Vec<String> = Vec::new();
        for n in known {
            if let Ok(r) = Reference::parse_normalized(&n) {
                let path = r.path().to_string();
                if r.domain() == target.domain() && path != target.path() && !out.contains(&path) {
                    out.push(path);
                }
            }
        }
        // Each failed mount costs a round trip per blob: a few candidates only.
        out.truncate(3);
        Ok(out)
    }

    /// Records the manifest an image came as, merging known repositories.
    fn remember_manifest(&self, id: &str, mut m: SourceManifest) -> Result<()> {
        if let Some(old) = self.meta.kv_get::<SourceManifest>(MANIFESTS, id)? {
            for r in old.repos {
                if !m.repos.contains(&r) {
                    m.repos.push(r);
                }
            }
        }
        self.meta.kv_put(MANIFESTS, id, &m)?;
        Ok(())
    }

    /// `docker push`: `name` with `tag`, or every tag of the repository when
    /// neither names one (`--all-tags`).
    pub async fn push_image(
        self: &Arc<Self>,
        name: &str,
        tag: Option<&str>,
        auth_header: Option<&str>,
        emit: MessageSink<'_>,
    ) -> Result<()> {
        let bad =
            |e: pier_reference::ReferenceError| EngineError::wrap(ErrorKind::InvalidArgument, e);
        let base = Reference::parse_normalized(name).map_err(bad)?;
        let targets: Vec<Reference> = match tag.filter(|t| !t.is_empty()) {
            Some(t) => vec![base.with_tag(t).map_err(bad)?],
            None if base.tag().is_some() => vec![base.clone()],
            None => {
                let mut v: Vec<Reference> = self
                    .meta
                    .all_tags()?
                    .into_iter()
                    .filter_map(|(t, _)| Reference::parse(&t).ok())
                    .filter(|t| t.name() == base.name())
                    .collect();
                v.sort();
                v
            }
        };
        if targets.is_empty() || self.meta.tag(&targets[0].full())?.is_none() {
            return Err(EngineError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                base.familiar_name()
            )));
        }
        let auth = resolve_auth(base.domain(), auth_header)?;
        for t in &targets {
            self.push_one(t, auth.clone(), emit).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        target: &Reference,
        auth: Option<AuthConfig>,
        emit: MessageSink<'_>,
    ) -> Result<()> {
        let rec = self.find_image(&target.full())?;
        let source = self.meta.kv_get::<SourceManifest>(MANIFESTS, &rec.id)?;
        let mount_from = self.mount_sources(&rec, source.as_ref(), target)?;
        let img = PushImage {
            config: rec.id.parse().map_err(|e| {
                EngineError::internal(format!("image id {}", rec.id)).with_source(e)
            })?,
            layers: rec.layers.iter().map(layer_ref).collect::<Result<_>>()?,
            source_manifest: source
                .as_ref()
                .map(|s| (s.media_type.clone(), s.manifest.clone().into_bytes())),
            mount_from,
        };
        let opts = PushOptions {
            auth,
            ..Default::default()
        };
        let sink = |p: Progress| emit(progress_message(&p));
        let res =
            pier_registry::push(&client()?, &self.content, target, &img, &opts, &sink).await?;
        let tag = target.tag().unwrap_or("latest").to_string();
        emit(json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": res.digest.to_string(), "Size": res.size},
        }));
        let e = self.clone();
        let id = rec.id.clone();
        let repo_digest = format!("{}@{}", target.name(), res.digest);
        let source = SourceManifest {
            media_type: res.media_type.clone(),
            manifest: String::from_utf8_lossy(&res.manifest).into_owned(),
            repos: vec![target.name()],
        };
        tokio::task::spawn_blocking(move || -> Result<()> {
            if let Some(mut rec) = e.meta.image::<ImageRecord>(&id)?
                && !rec.repo_digests.contains(&repo_digest)
            {
                rec.repo_digests.push(repo_digest);
                e.meta.put_image(&id, &rec)?;
            }
            e.remember_manifest(&id, source)
        })
        .await??;
        self.image_event("push", &rec.id, &target.familiar());
        Ok(())
    }

    /// `POST /auth`: checks the credentials against the registry. The
    /// error is the registry's (unauthorized -> HTTP 401 at the edge).
    pub async fn registry_login(&self, auth: &AuthConfig) -> Result<()> {
        let domain = login_domain(&auth.serveraddress);
        let mut a = auth.clone();
        a.expand_auth();
        pier_registry::login(&client()?, &domain, &a).await?;
        Ok(())
    }

    /// `GET /distribution/{name}/json`.
    pub async fn distribution_inspect(
        &self,
        name: &str,
        auth_header: Option<&str>,
    ) -> Result<Value> {
        let r =
            Reference::parse(name).map_err(|e| EngineError::wrap(ErrorKind::InvalidArgument, e))?;
        let auth = resolve_auth(r.domain(), auth_header)?;
        let info = pier_registry::inspect(&client()?, &r, auth)
            .await
            .map_err(|e| pull_err(&r, e))?;
        Ok(json!({
            "Descriptor": {
                "mediaType": info.descriptor.media_type,
                "digest": info.descriptor.digest,
                "size": info.descriptor.size,
            },
            "Platforms": info.platforms,
        }))
    }

    /// The builder's pull: returns status lines as the classic builder prints them.
    pub(crate) async fn pull_for_build(
        self: &Arc<Self>,
        name: &str,
        platform: Option<&str>,
        emit: MessageSink<'_>,
    ) -> Result<ImageRecord> {
        let r =
            Reference::parse(name).map_err(|e| EngineError::wrap(ErrorKind::InvalidArgument, e))?;
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(Platform::parse)
            .transpose()?;
        let auth = resolve_auth(r.domain(), None)?;
        self.pull_one(&r, platform, auth, emit).await
    }
}

/// `serveraddress` of a login as a registry domain: Docker Hub's index URL
/// (or nothing) is `docker.io`; schemes and paths are dropped.
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// The builder's pull, from a blocking thread: runs the pull on `rt` and
/// hands its messages to `progress` as classic-builder lines.
pub(crate) fn pull_blocking(
    engine: &Arc<Engine>,
    rt: &tokio::runtime::Handle,
    name: &str,
    platform: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<ImageRecord> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (e, name, platform) = (
        engine.clone(),
        name.to_string(),
        platform.map(str::to_string),
    );
    let task = rt.spawn(async move {
        let emit = move |v: Value| {
            let _ = tx.send(v);
        };
        e.pull_for_build(&name, platform.as_deref(), &emit).await
    });
    // `progress` may block (it feeds the build's response body), so it is
    // called here, outside the runtime; the channel closes when the pull ends.
    while let Some(v) = rx.blocking_recv() {
        if let Some(l) = build_line(&v) {
            progress(&l);
        }
    }
    rt.block_on(task)?
}

/// A classic-builder line for a pull message, when it is worth printing.
pub(crate) fn build_line(v: &Value) -> Option<String> {
    let status = v.get("status")?.as_str()?;
    if status.starts_with("Downloading")
        || status.starts_with("Waiting")
        || status.starts_with("Verifying")
    {
        return None;
    }
    match v.get("id").and_then(Value::as_str) {
        Some(id) => Some(format!("{id}: {status}")),
        None => Some(status.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_go() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(2_300_000), "2.3MB");
        assert_eq!(human_size(12_345_678), "12.35MB");
    }

    #[test]
    fn bars() {
        let b = progress_bar(50, 100);
        assert!(b.starts_with(&format!("[{}>", "=".repeat(25))), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        assert!(progress_bar(100, 100).starts_with(&format!("[{}]", "=".repeat(50))));
    }

    #[test]
    fn references_and_domains() {
        let (r, all) = pull_reference("busybox", "latest").unwrap();
        assert_eq!(
            (r.full().as_str(), all),
            ("docker.io/library/busybox:latest", false)
        );
        let (r, all) = pull_reference("busybox", "").unwrap();
        assert!(all && r.tag().is_none());
        let (r, all) = pull_reference("localhost:5000/a:b", "").unwrap();
        assert_eq!((r.tag(), all), (Some("b"), false));
        let d = Digest::sha256(b"x");
        let (r, _) = pull_reference("a", d.as_str()).unwrap();
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_domain("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn messages() {
        let m = progress_message(&Progress::PullingFrom {
            repo: "library/busybox".into(),
            tag: "latest".into(),
        });
        assert_eq!(
            m,
            json!({"status": "Pulling from library/busybox", "id": "latest"})
        );
        let m = progress_message(&Progress::Downloading {
            id: "abc".into(),
            current: 1,
            total: 2,
        });
        assert_eq!(m["progressDetail"], json!({"current": 1, "total": 2}));
        assert_eq!(
            build_line(&json!({"status": "Pull complete", "id": "abc"})).unwrap(),
            "abc: Pull complete"
        );
    }
}
