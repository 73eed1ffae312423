//! Test fixtures: Debian's `docker-registry` on a free loopback port, a tiny
//! Bearer token server in front of it, and images made in-process.

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pier_content::{media_types as mt, ContentStore, LayerRef};
use pier_reference::Digest;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `docker-registry`, killed and cleaned up on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `htpasswd` = (user, password) it requires
    /// Basic auth.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(htpasswd, None)
    }

    /// Starts a registry serving HTTPS with `tls` = (certificate, key) files.
    pub fn start_tls(cert: &Path, key: &Path) -> Registry {
        Registry::start_with(None, Some((cert, key)))
    }

    fn start_with(htpasswd: Option<(&str, &str)>, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            data.display()
        );
        // Under `http:`, so before any top-level section.
        if let Some((cert, key)) = tls {
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, pw)) = htpasswd {
            let hash = bcrypt::hash(pw, 5).unwrap();
            let hp = dir.path().join("htpasswd");
            std::fs::write(&hp, format!("{user}:{hash}\n")).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: pier-test\n    path: {}\n",
                hp.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry { child, addr, dir };
        r.wait_ready();
        r
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not come up on {}", self.addr);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An image made in-process: its blobs are in `store`.
pub struct TestImage {
    pub config: Digest,
    pub layers: Vec<LayerRef>,
    /// The uncompressed tars, bottom first.
    pub tars: Vec<Vec<u8>>,
}

pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut gz = pier_content::compression::gzip_writer(&mut out);
        gz.write_all(data).unwrap();
        gz.finish().unwrap();
    }
    out
}

/// Builds an image of `tars` (each stored uncompressed or gzip'd) for the
/// host platform.
pub fn make_image(store: &ContentStore, tars: Vec<Vec<u8>>, gzip_layers: bool) -> TestImage {
    let mut layers = Vec::new();
    for t in &tars {
        let diff_id = Digest::sha256(t);
        let (blob_bytes, media_type) = if gzip_layers {
            (gzip(t), mt::DOCKER_LAYER_GZIP)
        } else {
            (t.clone(), mt::OCI_LAYER)
        };
        let blob = store.put(&blob_bytes).unwrap();
        layers.push(LayerRef {
            blob,
            media_type: media_type.into(),
            size: blob_bytes.len() as u64,
            diff_id,
        });
    }
    let p = pier_registry::Platform::host();
    let config = serde_json::json!({
        "architecture": p.architecture,
        "os": p.os,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": [],
    });
    let config = store.put(&serde_json::to_vec(&config).unwrap()).unwrap();
    TestImage {
        config,
        layers,
        tars,
    }
}

pub fn store_in(dir: &Path, name: &str) -> ContentStore {
    ContentStore::open(dir.join(name)).unwrap()
}

pub fn ingest_is_empty(store: &ContentStore) -> bool {
    std::fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .next()
        .is_none()
}

pub fn blob_path(store: &ContentStore, d: &Digest) -> PathBuf {
    store.path(d)
}

/// A Bearer token server in front of a registry: `/token` hands out tokens
/// (to `user:password` over Basic, or to anyone when `anonymous`), every other
/// request needs a token and is forwarded to the registry.
pub struct TokenProxy {
    pub addr: String,
    pub token_requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenProxy {
    pub async fn start(upstream: &str, user: &str, password: &str, anonymous: bool) -> TokenProxy {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;
        use hyper::{Request, Response};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let expected = format!(
            "Basic {}",
            base64_encode(format!("{user}:{password}").as_bytes())
        );
        let http = reqwest::Client::new();
        let me = addr.clone();
        let c2 = count.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (upstream, expected, http, me, count) = (
                    upstream.clone(),
                    expected.clone(),
                    http.clone(),
                    me.clone(),
                    c2.clone(),
                );
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| {
                            let (upstream, expected, http, me, count) = (
                                upstream.clone(),
                                expected.clone(),
                                http.clone(),
                                me.clone(),
                                count.clone(),
                            );
                            async move {
                                let auth = req
                                    .headers()
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string();
                                let path = req.uri().path().to_string();
                                if path == "/token" {
                                    count.fetch_add(1, Ordering::SeqCst);
                                    let ok = auth == expected || (anonymous && auth.is_empty());
                                    let resp = if ok {
                                        Response::builder()
                                            .status(200)
                                            .header("content-type", "application/json")
                                            .body(Full::new(Bytes::from(format!(
                                                r#"{{"token":"tok-{}","expires_in":300}}"#,
                                                count.load(Ordering::SeqCst)
                                            ))))
                                    } else {
                                        Response::builder().status(401).body(Full::new(
                                            Bytes::from_static(
                                                b"{\"details\":\"bad credentials\"}",
                                            ),
                                        ))
                                    };
                                    return Ok::<_, std::convert::Infallible>(resp.unwrap());
                                }
                                if !auth.starts_with("Bearer tok-") {
                                    let scope = repo_of(&path)
                                        .map(|r| format!(",scope=\"repository:{r}:pull\""))
                                        .unwrap_or_default();
                                    let resp = Response::builder()
                                    .status(401)
                                    .header(
                                        "www-authenticate",
                                        format!("Bearer realm=\"http://{me}/token\",service=\"pier-test\"{scope}"),
                                    )
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(
                                        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                                    )))
                                    .unwrap();
                                    return Ok(resp);
                                }
                                let method = req.method().clone();
                                let pq = req
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or(path);
                                let mut headers = req.headers().clone();
                                headers.remove("host");
                                headers.remove("authorization");
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let r = http
                                    .request(method, format!("http://{upstream}{pq}"))
                                    .headers(headers)
                                    .body(body)
                                    .send()
                                    .await
                                    .unwrap();
                                let mut b = Response::builder().status(r.status());
                                for (k, v) in r.headers() {
                                    let v = v.to_str().unwrap_or("").replace(&upstream, &me);
                                    b = b.header(k, v);
                                }
                                let body = r.bytes().await.unwrap();
                                Ok(b.body(Full::new(body)).unwrap())
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        TokenProxy {
            addr,
            token_requests: count,
            task,
        }
    }
}

fn repo_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = rest.find(marker) {
            return Some(rest[..i].to_string());
        }
    }
    None
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A TCP relay that forwards at most about `bytes_per_tick` bytes every 10 ms
/// in each direction: slow enough to interrupt a download half way.
pub struct SlowRelay {
    pub addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlowRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlowRelay {
    pub async fn start(upstream: &str, bytes_per_tick: usize) -> SlowRelay {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                conns.spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                conns.spawn(async move {
                    let mut buf = vec![0u8; bytes_per_tick];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            }
        });
        SlowRelay { addr, task }
    }
}
