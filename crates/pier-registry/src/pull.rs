//! Pulling: resolve the reference to a manifest (through an index to one
//! platform), then fetch the config and the missing layers, a few at a time,
//! straight into the content store. A blob becomes visible only once its
//! digest and size check out, so an interrupted pull leaves nothing corrupt
//! and the next pull skips what already arrived.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use pier_api::image::ImageConfig;
use pier_content::{ContentStore, LayerRef};
use pier_reference::{Digest, Reference};
use reqwest::Method;

use crate::auth::AuthConfig;
use crate::client::{Client, Session};
use crate::error::{http_err, RegistryError, Result};
use crate::manifest::{
    is_supported_layer, parse_manifest, select_platform, Descriptor, ImageManifest, Manifest,
    Platform, MANIFEST_ACCEPT,
};
use crate::progress::{short_id, Progress, ProgressFn, Ticker};
use crate::unpack::{commit_all, LayerUnpacker, StagedLayer, Unpacking};

/// Manifests and indexes larger than this are refused (the spec suggests 4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;
const CONFIG_LIMIT: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// None = the host's platform.
    pub platform: Option<Platform>,
    pub auth: Option<AuthConfig>,
    /// Layers downloaded at once.
    pub concurrency: usize,
    /// Unpacks layers as they download (else the caller unpacks the blobs).
    pub unpacker: Option<Arc<dyn LayerUnpacker>>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            auth: None,
            concurrency: 4,
            unpacker: None,
        }
    }
}

/// A pulled image: every blob is in the content store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// What the tag (or digest) points to: an index or a manifest. This is the
    /// digest `docker pull` prints and the one in `RepoDigests`.
    pub digest: Digest,
    /// The platform's image manifest, byte for byte.
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config: Digest,
    pub config_media_type: String,
    /// Bottom first, with the diff IDs from the config.
    pub layers: Vec<LayerRef>,
    /// True when at least one blob was downloaded.
    pub downloaded: bool,
}

/// A manifest as fetched from a registry.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub manifest: Manifest,
}

/// `tag` or `@digest` part of a reference, as the registry API wants it.
fn reference_part(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => pier_reference::DEFAULT_TAG.to_string(),
    }
}

/// Fetches the manifest `r` names (by tag or digest), verifying its digest.
pub async fn fetch_manifest(s: &Session, r: &Reference) -> Result<FetchedManifest> {
    fetch_manifest_at(s, r, &reference_part(r), r.digest()).await
}

async fn fetch_manifest_at(
    s: &Session,
    r: &Reference,
    part: &str,
    want: Option<&Digest>,
) -> Result<FetchedManifest> {
    let (repo, shown) = (r.path(), r.familiar());
    let shown = shown.as_str();
    let url = s.url(&format!("/v2/{repo}/manifests/{part}"))?;
    let accept = MANIFEST_ACCEPT.join(", ");
    let resp = s.request(Method::GET, url, &[("accept", &accept)]).await?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let e = s
            .error_of(&format!("manifest for {shown} not found"), resp)
            .await;
        return Err(match e {
            RegistryError::NotFound(_) if status == 404 => e,
            RegistryError::Unauthorized(_) | RegistryError::Denied(_) => RegistryError::NotFound(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                r.familiar_name(),
                strip_what(&e.to_string())
            )),
            e => e,
        });
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MANIFEST_LIMIT)
    {
        return Err(RegistryError::Protocol(format!(
            "manifest for {shown} is too large"
        )));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(http_err(format!("reading manifest for {shown}")))?
        .to_vec();
    if bytes.len() > MANIFEST_LIMIT {
        return Err(RegistryError::Protocol(format!(
            "manifest for {shown} is too large"
        )));
    }
    let digest = Digest::sha256(&bytes);
    let expected = want.or(header_digest
        .as_ref()
        .filter(|d| d.algorithm() == digest.algorithm()));
    if let Some(w) = expected
        && w != &digest
    {
        return Err(RegistryError::Protocol(format!(
            "manifest for {shown}: digest mismatch: expected {w}, got {digest}"
        )));
    }
    let (media_type, manifest) = parse_manifest(&content_type, &bytes)?;
    Ok(FetchedManifest {
        digest,
        media_type,
        bytes,
        manifest,
    })
}

/// Drops the leading `what: ` of a formatted status error.
fn strip_what(s: &str) -> String {
    match s.split_once(": ") {
        Some((_, rest)) => rest.to_string(),
        None => s.to_string(),
    }
}

/// Resolves `r` to the image manifest for `platform`, following an index.
pub async fn resolve_platform(
    s: &Session,
    r: &Reference,
    platform: &Platform,
) -> Result<(FetchedManifest, FetchedManifest)> {
    let top = fetch_manifest(s, r).await?;
    match &top.manifest {
        Manifest::Image(_) => Ok((top.clone(), top)),
        Manifest::Index(idx) => {
            let d = select_platform(idx, platform).ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "no matching manifest for {platform} in the manifest list entries"
                ))
            })?;
            let m = fetch_manifest_at(s, r, d.digest.as_str(), Some(&d.digest)).await?;
            if !matches!(m.manifest, Manifest::Image(_)) {
                return Err(RegistryError::Protocol(format!(
                    "{}: index entry {} is not an image manifest",
                    r.familiar(),
                    d.digest
                )));
            }
            Ok((top, m))
        }
    }
}

/// Runs `op` on a session with each endpoint a pull of `r` may use (mirrors
/// first, see [`crate::hosts`]) until one succeeds. A failure of the
/// registry's side moves on to the next; the last endpoint's error is the
/// one returned, so a pull with every mirror down reads as the registry's.
pub(crate) async fn on_pull_endpoints<T, F, Fut>(
    client: &Client,
    r: &Reference,
    auth: Option<AuthConfig>,
    mut op: F,
) -> Result<T>
where
    F: FnMut(Session) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let eps = client.pull_endpoints(r.domain(), r.digest().is_some())?;
    let n = eps.len();
    let mut last = None;
    for (i, ep) in eps.iter().enumerate() {
        let result = match client
            .session_at(ep, r.domain(), r.path(), &["pull"], &[], auth.clone())
            .await
        {
            Ok(s) => op(s).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if i + 1 < n && !e.is_local() => {
                tracing::info!(
                    "pulling {} from {} failed, trying the next host: {e}",
                    r.familiar(),
                    ep.url()
                );
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last
        .unwrap_or_else(|| RegistryError::Protocol(format!("no host to pull {}", r.familiar()))))
}

/// Pulls `r` into `store`. Registering the image is the caller's business.
pub async fn pull(
    client: &Client,
    store: &ContentStore,
    r: &Reference,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<PulledImage> {
    on_pull_endpoints(client, r, opts.auth.clone(), |s| async move {
        pull_from(&s, store, r, opts, progress).await
    })
    .await
}

async fn pull_from(
    s: &Session,
    store: &ContentStore,
    r: &Reference,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<PulledImage> {
    let s = s.clone();
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let (top, m) = resolve_platform(&s, r, &platform).await?;
    let Manifest::Image(im) = &m.manifest else {
        return Err(RegistryError::Protocol("expected an image manifest".into()));
    };
    for l in &im.layers {
        if !is_supported_layer(&l.media_type) {
            return Err(RegistryError::Invalid(format!(
                "layer {} has unsupported media type {}",
                l.digest, l.media_type
            )));
        }
    }
    progress(Progress::PullingFrom {
        repo: r.path().to_string(),
        tag: reference_part(r),
    });
    let mut downloaded = false;
    // A config downloaded now is stored (and fsynced) while the layers
    // download: the layers need only its diff IDs, read from memory.
    let mut storing_config = None;
    let config_bytes = if store.exists(&im.config.digest) {
        store.read(&im.config.digest)?
    } else {
        if im.config.size > CONFIG_LIMIT {
            return Err(RegistryError::Protocol(format!(
                "image config {} is too large ({} bytes)",
                im.config.digest, im.config.size
            )));
        }
        let bytes = fetch_config(&s, r.path(), &im.config).await?;
        let (st, b) = (store.clone(), bytes.clone());
        storing_config = Some(tokio::task::spawn_blocking(move || st.put(&b)));
        downloaded = true;
        bytes
    };
    let diff_ids = diff_ids_of(&config_bytes, &im.config.digest)?;
    if let (Some(want), Manifest::Image(_)) = (&opts.platform, &top.manifest) {
        // A single-platform image asked for by platform: it must be that one.
        if let Ok(actual) = serde_json::from_slice::<Platform>(&config_bytes)
            && !actual.matches(want)
        {
            return Err(RegistryError::NotFound(format!(
                    "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {actual}",
                    r.familiar()
                )));
        }
    }
    if diff_ids.len() != im.layers.len() {
        return Err(RegistryError::Protocol(format!(
            "image config {} lists {} layers but the manifest has {}",
            im.config.digest,
            diff_ids.len(),
            im.layers.len()
        )));
    }
    let stage = opts
        .unpacker
        .clone()
        .map(|u| (u, Arc::new(diff_ids.clone())));
    let layers = fetch_layers(&s, store, r.path(), im, opts.concurrency, stage, progress).await;
    if let Some(t) = storing_config {
        t.await
            .map_err(|e| RegistryError::Protocol(format!("storing the config failed: {e}")))??;
    }
    downloaded |= layers?;
    let layers = im
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| LayerRef {
            blob: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id,
        })
        .collect();
    Ok(PulledImage {
        digest: top.digest,
        manifest: m.bytes,
        manifest_digest: m.digest,
        manifest_media_type: m.media_type,
        config: im.config.digest.clone(),
        config_media_type: im.config.media_type.clone(),
        layers,
        downloaded,
    })
}

fn diff_ids_of(config: &[u8], d: &Digest) -> Result<Vec<Digest>> {
    let c = ImageConfig::from_slice(config)
        .map_err(|e| RegistryError::Protocol(format!("image config {d}: {e}")))?;
    c.rootfs
        .diff_ids
        .iter()
        .map(|id| {
            id.parse().map_err(|e| {
                RegistryError::Protocol(format!("image config {d}: diff ID {id:?}: {e}"))
            })
        })
        .collect()
}

/// The unpacker and the image's diff IDs, bottom first.
type StageWith = (Arc<dyn LayerUnpacker>, Arc<Vec<Digest>>);

/// Which layer (by index) to unpack while it downloads.
struct Stage<'a> {
    with: &'a StageWith,
    index: usize,
}

/// Downloads the layers not yet in the store; true if any was downloaded.
/// With an unpacker, each downloaded layer that has no snapshot yet is
/// unpacked as it streams in, and the staged layers are committed bottom
/// first once every blob is verified and stored.
async fn fetch_layers(
    s: &Session,
    store: &ContentStore,
    repo: &str,
    im: &ImageManifest,
    concurrency: usize,
    stage: Option<StageWith>,
    progress: ProgressFn<'_>,
) -> Result<bool> {
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    // A staged layer can only be committed on a visible parent: stop
    // staging above a layer that needs unpacking but is not downloaded
    // (its blob is already stored); registering unpacks those.
    let mut stageable = stage.is_some();
    for (i, l) in im.layers.iter().enumerate() {
        let wants = match &stage {
            Some((u, ids)) => stageable && u.wants(ids, i),
            None => false,
        };
        if !seen.insert(l.digest.clone()) {
            stageable &= !wants;
            continue;
        }
        if store.exists(&l.digest) {
            stageable &= !wants;
            progress(Progress::AlreadyExists {
                id: short_id(&l.digest),
            });
        } else {
            progress(Progress::Pending {
                id: short_id(&l.digest),
            });
            todo.push((l, wants.then_some(i)));
        }
    }
    let n = concurrency.max(1);
    for (l, _) in todo.iter().skip(n) {
        progress(Progress::Waiting {
            id: short_id(&l.digest),
        });
    }
    let any = !todo.is_empty();
    // Boxed and collected first: a lazily mapped iterator of borrowing
    // futures trips rustc's higher-ranked Send check in spawned callers.
    type Staged = Option<(usize, Box<dyn StagedLayer>)>;
    let stage = stage.as_ref();
    let jobs: Vec<BoxFuture<'_, Result<Staged>>> = todo
        .into_iter()
        .map(|(l, index)| -> BoxFuture<'_, Result<Staged>> {
            Box::pin(async move {
                let id = short_id(&l.digest);
                let st = stage.zip(index).map(|(with, index)| Stage { with, index });
                let staged = fetch_blob(s, store, repo, l, Some(&id), st, progress).await?;
                progress(Progress::DownloadComplete { id });
                Ok(index.zip(staged))
            })
        })
        .collect();
    let mut staged: Vec<(usize, Box<dyn StagedLayer>)> = futures::stream::iter(jobs)
        .buffer_unordered(n)
        .try_collect::<Vec<Staged>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    if !staged.is_empty() {
        staged.sort_by_key(|(i, _)| *i);
        tokio::task::spawn_blocking(move || commit_all(staged))
            .await
            .map_err(|e| RegistryError::Protocol(format!("commit task failed: {e}")))?;
    }
    Ok(any)
}

/// Downloads the image config `d` (at most [`CONFIG_LIMIT`] bytes) into
/// memory and checks its size and digest, retrying on network errors.
async fn fetch_config(s: &Session, repo: &str, d: &Descriptor) -> Result<Vec<u8>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_config_once(s, repo, d).await {
            Err(e @ RegistryError::Http { .. }) if attempt < 3 => {
                tracing::warn!("download of {} failed, retrying: {e}", d.digest);
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            r => return r,
        }
    }
}

async fn fetch_config_once(s: &Session, repo: &str, d: &Descriptor) -> Result<Vec<u8>> {
    let url = s.url(&format!("/v2/{repo}/blobs/{}", d.digest))?;
    let resp = s.request(Method::GET, url, &[]).await?;
    if !resp.status().is_success() {
        return Err(s.error_of(&format!("blob {}", d.digest), resp).await);
    }
    let mut bytes = Vec::with_capacity(d.size.min(CONFIG_LIMIT) as usize);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(http_err(format!("downloading {}", d.digest)))?;
        if (bytes.len() + chunk.len()) as u64 > d.size {
            return Err(RegistryError::Protocol(format!(
                "blob {}: the registry sent more than the {} bytes expected",
                d.digest, d.size
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != d.size || !d.digest.verify(&bytes) {
        return Err(RegistryError::Protocol(format!(
            "image config {}: the registry sent {} bytes that do not match it",
            d.digest,
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Streams one blob into the store, retrying a few times on network errors.
async fn fetch_blob(
    s: &Session,
    store: &ContentStore,
    repo: &str,
    d: &Descriptor,
    id: Option<&str>,
    stage: Option<Stage<'_>>,
    progress: ProgressFn<'_>,
) -> Result<Option<Box<dyn StagedLayer>>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_blob_once(s, store, repo, d, id, stage.as_ref(), progress).await {
            Err(e @ RegistryError::Http { .. }) if attempt < 3 => {
                tracing::warn!("download of {} failed, retrying: {e}", d.digest);
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            r => return r,
        }
    }
}

async fn fetch_blob_once(
    s: &Session,
    store: &ContentStore,
    repo: &str,
    d: &Descriptor,
    id: Option<&str>,
    stage: Option<&Stage<'_>>,
    progress: ProgressFn<'_>,
) -> Result<Option<Box<dyn StagedLayer>>> {
    if store.exists(&d.digest) {
        return Ok(None);
    }
    let url = s.url(&format!("/v2/{repo}/blobs/{}", d.digest))?;
    let resp = s.request(Method::GET, url, &[]).await?;
    if !resp.status().is_success() {
        return Err(s.error_of(&format!("blob {}", d.digest), resp).await);
    }
    let mut w = store.writer()?;
    let mut unpacking =
        stage.map(|st| Unpacking::start(st.with.0.clone(), st.with.1.clone(), st.index));
    let mut body = resp.bytes_stream();
    let mut ticker = Ticker::new();
    let mut current = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(http_err(format!("downloading {}", d.digest)))?;
        current += chunk.len() as u64;
        if current > d.size {
            return Err(RegistryError::Protocol(format!(
                "blob {}: the registry sent more than the {} bytes expected",
                d.digest, d.size
            )));
        }
        w.write_all(&chunk).map_err(|e| RegistryError::Io {
            what: "write blob",
            path: store.root().join("ingest"),
            source: e,
        })?;
        if let Some(u) = &mut unpacking {
            u.feed(chunk).await;
        }
        if let Some(id) = id
            && (ticker.due() || current == d.size)
        {
            progress(Progress::Downloading {
                id: id.to_string(),
                current,
                total: d.size,
            });
        }
    }
    if let Some(id) = id {
        progress(Progress::Verifying { id: id.to_string() });
    }
    let (digest, size) = (d.digest.clone(), d.size);
    // Commit hashes nothing more but fsyncs: keep it off the async workers.
    let committed = tokio::task::spawn_blocking(move || w.commit(Some(&digest), Some(size)));
    // The unpack finishes meanwhile; it is kept only if the blob checks out
    // (dropping it removes its directory).
    let staged = match unpacking {
        Some(u) => match u.finish().await {
            Ok(st) => Some(st),
            Err(e) => {
                tracing::warn!("unpacking {} while pulling: {e}", d.digest);
                None
            }
        },
        None => None,
    };
    committed
        .await
        .map_err(|e| RegistryError::Protocol(format!("commit task failed: {e}")))??;
    Ok(staged)
}

/// What `GET /distribution/{name}/json` answers: the descriptor the reference
/// points to and the platforms it offers.
#[derive(Debug, Clone)]
pub struct DistributionInfo {
    pub descriptor: Descriptor,
    pub platforms: Vec<Platform>,
}

pub async fn inspect(
    client: &Client,
    r: &Reference,
    auth: Option<AuthConfig>,
) -> Result<DistributionInfo> {
    on_pull_endpoints(client, r, auth, |s| async move { inspect_at(&s, r).await }).await
}

async fn inspect_at(s: &Session, r: &Reference) -> Result<DistributionInfo> {
    let top = fetch_manifest(s, r).await?;
    let descriptor = Descriptor::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
    let platforms = match &top.manifest {
        Manifest::Index(idx) => idx
            .manifests
            .iter()
            .filter_map(|d| d.platform.clone())
            .collect(),
        Manifest::Image(im) => {
            // The platform of a single manifest is in its config.
            let url = s.url(&format!("/v2/{}/blobs/{}", r.path(), im.config.digest))?;
            let resp = s.request(Method::GET, url, &[]).await?;
            if !resp.status().is_success() {
                return Err(s
                    .error_of(&format!("blob {}", im.config.digest), resp)
                    .await);
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(http_err(format!("reading config {}", im.config.digest)))?;
            match serde_json::from_slice::<Platform>(&bytes) {
                Ok(p) => vec![p],
                Err(_) => Vec::new(),
            }
        }
    };
    Ok(DistributionInfo {
        descriptor,
        platforms,
    })
}

/// Every tag of `r`'s repository (`docker pull --all-tags`), following
/// `Link: <...>; rel="next"` pages.
pub async fn list_tags(
    client: &Client,
    r: &Reference,
    auth: Option<AuthConfig>,
) -> Result<Vec<String>> {
    on_pull_endpoints(
        client,
        r,
        auth,
        |s| async move { list_tags_at(&s, r).await },
    )
    .await
}

async fn list_tags_at(s: &Session, r: &Reference) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let mut url = s.url(&format!("/v2/{}/tags/list", r.path()))?;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let resp = s.request(Method::GET, url.clone(), &[]).await?;
        if !resp.status().is_success() {
            return Err(s
                .error_of(&format!("listing tags of {}", r.familiar_name()), resp)
                .await);
        }
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, rest)| (u.to_string(), rest.contains("rel=\"next\"")))
            .filter(|(_, is_next)| *is_next)
            .map(|(u, _)| u);
        let body = resp
            .bytes()
            .await
            .map_err(http_err(format!("listing tags of {}", r.familiar_name())))?;
        let t: Tags = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::Protocol(format!("tag list of {}: {e}", r.familiar_name()))
        })?;
        out.extend(t.tags.unwrap_or_default());
        match next {
            Some(n) => url = s.url(&n)?,
            None => break,
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
