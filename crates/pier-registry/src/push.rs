//! Pushing: every layer blob, then the config, then the manifest. Blobs the
//! registry has are skipped (HEAD); blobs another repository of the same
//! registry has are mounted; the rest are uploaded whole (POST then PUT) or,
//! when big, in PATCH chunks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use pier_content::{media_types as mt, Compression, ContentStore, LayerRef};
use pier_reference::{Digest, Reference};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::auth::AuthConfig;
use crate::client::{Client, Session};
use crate::error::{io_err, RegistryError, Result};
use crate::manifest::{parse_manifest, Descriptor, ImageManifest, Manifest};
use crate::progress::{short_id, Progress, ProgressFn};

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub auth: Option<AuthConfig>,
    /// Layers uploaded at once.
    pub concurrency: usize,
    /// Blobs larger than this go up in PATCH chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            auth: None,
            concurrency: 4,
            chunk_size: 32 << 20,
        }
    }
}

/// An image to push, as the engine stores it.
#[derive(Debug, Clone)]
pub struct PushImage {
    pub config: Digest,
    pub layers: Vec<LayerRef>,
    /// The manifest the image was pulled as (media type, bytes): pushed again
    /// unchanged when its blobs are all here, so the digest stays the same.
    pub source_manifest: Option<(String, Vec<u8>)>,
    /// Repositories (paths) on the target registry known to hold the blobs:
    /// candidates for cross-repository mounts.
    pub mount_from: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub manifest: Vec<u8>,
}

/// One blob to push and how to show it.
struct Blob {
    desc: Descriptor,
    /// Short diff ID for progress; None for the config (Docker shows none).
    id: Option<String>,
}

/// Pushes `img` as `target` (a tag; `latest` when it has none).
pub async fn push(
    client: &Client,
    store: &ContentStore,
    target: &Reference,
    img: &PushImage,
    opts: &PushOptions,
    progress: ProgressFn<'_>,
) -> Result<PushResult> {
    let tag = target
        .tag()
        .unwrap_or(pier_reference::DEFAULT_TAG)
        .to_string();
    let repo = target.path();
    progress(Progress::PushRepository {
        name: target.name(),
    });
    let s = client
        .session(
            target.domain(),
            repo,
            &["pull", "push"],
            &img.mount_from,
            opts.auth.clone(),
        )
        .await?;
    let planned = plan(store, img)?;
    for (i, _) in planned.layers.iter().enumerate() {
        if let Some(id) = diff_short(img, i) {
            progress(Progress::Preparing { id });
        }
    }
    let n = opts.concurrency.max(1);
    for i in (0..planned.layers.len()).skip(n) {
        if let Some(id) = diff_short(img, i) {
            progress(Progress::Waiting { id });
        }
    }
    let mounts: Vec<String> = img
        .mount_from
        .iter()
        .filter(|r| *r != repo)
        .cloned()
        .collect();
    // Each layer goes up as soon as it is ready: an uncompressed one is
    // gzipped first, at most one per core at a time, so that the first
    // layers upload while the next ones compress. Uploads run `n` at once.
    let gzips =
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |c| c.get()));
    let uploads = tokio::sync::Semaphore::new(n);
    let (gzips, uploads, mounts, sess) = (&gzips, &uploads, &mounts, &s);
    // Boxed and collected first (see pull::fetch_layers).
    let jobs: Vec<BoxFuture<'_, Result<Descriptor>>> = planned
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| -> BoxFuture<'_, Result<Descriptor>> {
            Box::pin(async move {
                let desc = match layer {
                    Planned::Ready(d) => (**d).clone(),
                    Planned::Gzip(blob) => {
                        let _p = gzips.acquire().await.map_err(closed)?;
                        let (digest, size) = gzip_blob(store, blob).await?;
                        Descriptor::new(mt::OCI_LAYER_GZIP, digest, size)
                    }
                };
                let _p = uploads.acquire().await.map_err(closed)?;
                let b = Blob {
                    desc,
                    id: diff_short(img, i),
                };
                push_blob(sess, store, repo, &b, mounts, opts, progress).await?;
                Ok(b.desc)
            })
        })
        .collect();
    let config = Blob {
        desc: planned.config,
        id: None,
    };
    // The config goes up beside the layers; only the manifest must be last.
    let (layers, ()) = futures::try_join!(
        futures::future::try_join_all(jobs),
        push_blob(sess, store, repo, &config, mounts, opts, progress)
    )?;
    let (media_type, manifest_bytes) = match planned.manifest {
        Some(m) => m,
        None => {
            let manifest = ImageManifest {
                schema_version: 2,
                media_type: Some(mt::OCI_MANIFEST.into()),
                config: config.desc.clone(),
                layers,
                annotations: None,
            };
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|e| RegistryError::Protocol(format!("encoding manifest: {e}")))?;
            (mt::OCI_MANIFEST.to_string(), bytes)
        }
    };

    let url = s.url(&format!("/v2/{repo}/manifests/{tag}"))?;
    let body = bytes::Bytes::from(manifest_bytes.clone());
    let mt_header = media_type.clone();
    let resp = s
        .send(
            |h| {
                h.put(url.clone())
                    .header("content-type", mt_header.as_str())
                    .body(body.clone())
            },
            &format!("PUT {url}"),
        )
        .await?;
    if !resp.status().is_success() {
        return Err(s
            .error_of(&format!("pushing manifest for {}", target.familiar()), resp)
            .await);
    }
    let digest = Digest::sha256(&manifest_bytes);
    if let Some(h) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok())
        && h != digest
    {
        return Err(RegistryError::Protocol(format!(
            "registry stored manifest {h} but we sent {digest}"
        )));
    }
    let size = manifest_bytes.len() as u64;
    progress(Progress::PushDigest {
        tag,
        digest: digest.clone(),
        size,
    });
    Ok(PushResult {
        digest,
        size,
        media_type,
        manifest: manifest_bytes,
    })
}

/// What goes up: the pulled manifest unchanged when possible (`manifest`
/// set, every layer ready), else a new OCI manifest made once the layers are
/// (uncompressed layers gzip-compressed on the way).
struct Plan {
    manifest: Option<(String, Vec<u8>)>,
    layers: Vec<Planned>,
    config: Descriptor,
}

enum Planned {
    Ready(Box<Descriptor>),
    /// An uncompressed layer blob to gzip first.
    Gzip(Digest),
}

fn diff_short(img: &PushImage, i: usize) -> Option<String> {
    img.layers.get(i).map(|l| short_id(&l.diff_id))
}

fn closed(e: tokio::sync::AcquireError) -> RegistryError {
    RegistryError::Protocol(format!("push: {e}"))
}

fn plan(store: &ContentStore, img: &PushImage) -> Result<Plan> {
    if let Some((mtype, bytes)) = &img.source_manifest
        && let Ok((mtype2, Manifest::Image(m))) = parse_manifest(mtype, bytes)
    {
        let usable = m.config.digest == img.config
            && m.layers.len() == img.layers.len()
            && store.exists(&m.config.digest)
            && m.layers.iter().all(|l| store.exists(&l.digest));
        if usable {
            return Ok(Plan {
                manifest: Some((mtype2, bytes.clone())),
                layers: m
                    .layers
                    .iter()
                    .map(|d| Planned::Ready(Box::new(d.clone())))
                    .collect(),
                config: m.config.clone(),
            });
        }
    }
    let config_size = store.size(&img.config)?;
    let layers = img
        .layers
        .iter()
        .map(|l| match Compression::from_media_type(&l.media_type) {
            Some(Compression::None) | None => Ok(Planned::Gzip(l.blob.clone())),
            Some(c) => Ok(Planned::Ready(Box::new(Descriptor::new(
                c.oci_media_type(),
                l.blob.clone(),
                store.size(&l.blob)?,
            )))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan {
        manifest: None,
        layers,
        config: Descriptor::new(mt::OCI_CONFIG, img.config.clone(), config_size),
    })
}

/// Gzips an uncompressed layer blob into the store (deterministically: the
/// same layer always compresses to the same digest).
async fn gzip_blob(store: &ContentStore, blob: &Digest) -> Result<(Digest, u64)> {
    let store = store.clone();
    let blob = blob.clone();
    tokio::task::spawn_blocking(move || -> Result<(Digest, u64)> {
        let mut src = store.open_blob(&blob)?;
        let mut w = store.writer()?;
        let path = store.path(&blob);
        {
            let mut gz = pier_content::compression::gzip_writer(&mut w);
            std::io::copy(&mut src, &mut gz).map_err(io_err("compress", &path))?;
            gz.finish().map_err(io_err("compress", &path))?;
        }
        Ok(w.commit(None, None)?)
    })
    .await
    .map_err(|e| RegistryError::Protocol(format!("compress task failed: {e}")))?
}

async fn push_blob(
    s: &Session,
    store: &ContentStore,
    repo: &str,
    b: &Blob,
    mounts: &[String],
    opts: &PushOptions,
    progress: ProgressFn<'_>,
) -> Result<()> {
    let d = &b.desc.digest;
    let show = |p: Progress| {
        if b.id.is_some() {
            progress(p)
        }
    };
    let id = b.id.clone().unwrap_or_default();
    let url = s.url(&format!("/v2/{repo}/blobs/{d}"))?;
    let resp = s.request(Method::HEAD, url, &[]).await?;
    if resp.status().is_success() {
        show(Progress::LayerExists { id });
        return Ok(());
    }
    let mut location = None;
    for from in mounts {
        let mut url = s.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", d.as_str())
            .append_pair("from", from);
        let resp = s.request(Method::POST, url, &[]).await?;
        match resp.status() {
            StatusCode::CREATED => {
                show(Progress::Mounted {
                    id,
                    from: from.clone(),
                });
                return Ok(());
            }
            StatusCode::ACCEPTED => {
                // The registry could not mount and opened an upload instead.
                location = Some(location_of(s, &resp)?);
                break;
            }
            _ => {
                let e = s.error_of("mount", resp).await;
                tracing::debug!("mounting {d} from {from} failed: {e}");
            }
        }
    }
    let location = match location {
        Some(l) => l,
        None => {
            let url = s.url(&format!("/v2/{repo}/blobs/uploads/"))?;
            let resp = s.request(Method::POST, url, &[]).await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(s.error_of(&format!("starting upload of {d}"), resp).await);
            }
            location_of(s, &resp)?
        }
    };
    let total = b.desc.size;
    let sent = Arc::new(AtomicU64::new(0));
    let upload = async {
        if total > opts.chunk_size {
            upload_chunked(s, store, d, total, location, opts.chunk_size, &sent).await
        } else {
            upload_whole(s, store, d, total, location, &sent).await
        }
    };
    tokio::pin!(upload);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            r = &mut upload => {
                r?;
                break;
            }
            _ = tick.tick() => {
                let current = sent.load(Ordering::Relaxed);
                if current > 0 {
                    show(Progress::Pushing { id: id.clone(), current, total });
                }
            }
        }
    }
    show(Progress::Pushing {
        id: id.clone(),
        current: total,
        total,
    });
    show(Progress::Pushed { id });
    Ok(())
}

fn location_of(s: &Session, resp: &reqwest::Response) -> Result<Url> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol("upload answer without Location".into()))?;
    s.url(loc)
}

fn with_digest(mut u: Url, d: &Digest) -> Url {
    u.query_pairs_mut().append_pair("digest", d.as_str());
    u
}

/// Monolithic upload: one PUT with the whole blob, streamed from the store.
async fn upload_whole(
    s: &Session,
    store: &ContentStore,
    d: &Digest,
    total: u64,
    location: Url,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let url = with_digest(location, d);
    let path = store.path(d);
    let resp = s
        .send(
            |h| {
                sent.store(0, Ordering::Relaxed);
                let counter = sent.clone();
                let p = path.clone();
                let stream = futures::stream::once(async move { tokio::fs::File::open(p).await })
                    .map_ok(|f| tokio_util::io::ReaderStream::with_capacity(f, 256 << 10))
                    .try_flatten()
                    .inspect_ok(move |c: &bytes::Bytes| {
                        counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                    });
                h.put(url.clone())
                    .header("content-type", "application/octet-stream")
                    .header("content-length", total)
                    .body(reqwest::Body::wrap_stream(stream))
            },
            &format!("uploading {d}"),
        )
        .await?;
    if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
        return Err(s.error_of(&format!("uploading {d}"), resp).await);
    }
    Ok(())
}

/// Chunked upload: PATCH each chunk (following the new Location each time),
/// then PUT with the digest and no body.
async fn upload_chunked(
    s: &Session,
    store: &ContentStore,
    d: &Digest,
    total: u64,
    mut location: Url,
    chunk: u64,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let path = store.path(d);
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(io_err("open", &path))?;
    let mut offset = 0u64;
    while offset < total {
        let len = chunk.min(total - offset);
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf)
            .await
            .map_err(io_err("read", &path))?;
        let body = bytes::Bytes::from(buf);
        let range = format!("{}-{}", offset, offset + len - 1);
        let url = location.clone();
        let resp = s
            .send(
                |h| {
                    h.patch(url.clone())
                        .header("content-type", "application/octet-stream")
                        .header("content-range", range.as_str())
                        .header("content-length", len)
                        .body(body.clone())
                },
                &format!("uploading {d}"),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(s.error_of(&format!("uploading {d} ({range})"), resp).await);
        }
        location = location_of(s, &resp)?;
        offset += len;
        sent.store(offset, Ordering::Relaxed);
    }
    let url = with_digest(location, d);
    let resp = s
        .send(
            |h| h.put(url.clone()).header("content-length", 0),
            &format!("finishing upload of {d}"),
        )
        .await?;
    if !resp.status().is_success() {
        return Err(s.error_of(&format!("finishing upload of {d}"), resp).await);
    }
    Ok(())
}

/// Verifies credentials against the registry (`docker login`): a `/v2/`
/// ping that must succeed with them.
pub async fn login(client: &Client, domain: &str, auth: &AuthConfig) -> Result<()> {
    // No repository scope: the token endpoint then only checks the credentials.
    client
        .session(domain, "", &[], &[], Some(auth.clone()))
        .await
        .map(|_| ())
}
