//! Mirrors from `hosts.toml` against a real `docker-registry` behind a small
//! proxy that serves it under a path prefix and wants a header: the URL's
//! path, `override_path` and `header` reach the wire as containerd sends them.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use pier_reference::Reference;
use pier_registry::{Client, PullOptions, PushImage, PushOptions, RegistryOptions};

/// Forwards `/mirror/v2/...` and `/flat/...` to the registry's `/v2/...`
/// when the request carries `x-mirror-key: k`; records every path it sees.
struct PrefixProxy {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PrefixProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PrefixProxy {
    async fn start(upstream: &str) -> PrefixProxy {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;
        use hyper::{Request, Response};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (upstream, seen2) = (upstream.to_string(), seen.clone());
        let http = reqwest::Client::new();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, seen, http) = (upstream.clone(), seen2.clone(), http.clone());
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (upstream, seen, http) =
                                (upstream.clone(), seen.clone(), http.clone());
                            async move {
                                let pq = req
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default();
                                seen.lock().unwrap().push(pq.clone());
                                let keyed =
                                    req.headers().get("x-mirror-key").is_some_and(|v| v == "k");
                                let mapped = pq
                                    .strip_prefix("/mirror/v2")
                                    .or_else(|| pq.strip_prefix("/flat"))
                                    .map(|rest| format!("/v2{rest}"));
                                let Some(path) = mapped.filter(|_| keyed) else {
                                    return Ok::<_, std::convert::Infallible>(
                                        Response::builder()
                                            .status(404)
                                            .body(Full::new(Bytes::from_static(
                                                b"no such path, or no key",
                                            )))
                                            .unwrap(),
                                    );
                                };
                                let method = req.method().clone();
                                let mut headers = req.headers().clone();
                                headers.remove("host");
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let r = http
                                    .request(method, format!("http://{upstream}{path}"))
                                    .headers(headers)
                                    .body(body)
                                    .send()
                                    .await
                                    .unwrap();
                                let mut b = Response::builder().status(r.status());
                                for (k, v) in r.headers() {
                                    b = b.header(k, v);
                                }
                                Ok(b.body(Full::new(r.bytes().await.unwrap())).unwrap())
                            }
                        });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        PrefixProxy { addr, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn client_with(hosts: &std::path::Path) -> Client {
    Client::new(RegistryOptions {
        certs_dirs: vec![hosts.to_path_buf()],
        ..Default::default()
    })
    .unwrap()
}

fn write_hosts(dir: &std::path::Path, host: &str, text: &str) {
    std::fs::create_dir_all(dir.join(host)).unwrap();
    std::fs::write(dir.join(host).join("hosts.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_paths_override_path_and_headers_reach_the_wire() {
    let reg = Registry::start(None);
    let proxy = PrefixProxy::start(&reg.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path(), "store");
    let img = make_image(&store, vec![tar_of(&[("a.txt", b"mirrored\n")])], false);
    let image = PushImage {
        config: img.config.clone(),
        layers: img.layers.clone(),
        source_manifest: None,
        mount_from: Vec::new(),
    };
    let direct = Client::new(RegistryOptions::default()).unwrap();
    let at_registry = Reference::parse(&format!("{}/lib/app:v1", reg.addr)).unwrap();
    pier_registry::push(
        &direct,
        &store,
        &at_registry,
        &image,
        &PushOptions::default(),
        &|_| {},
    )
    .await
    .unwrap();

    let hosts = dir.path().join("certs.d");
    // A closed port as the server: only the mirror can answer.
    let closed = free_port();
    write_hosts(
        &hosts,
        "mirrored.example",
        &format!(
            "server = \"http://127.0.0.1:{closed}\"\n\
             [host.\"http://{p}/mirror\"]\n  capabilities = [\"pull\", \"resolve\"]\n  header = {{ x-mirror-key = \"k\" }}\n",
            p = proxy.addr
        ),
    );
    let c = client_with(&hosts);
    let dst = store_in(dir.path(), "dst1");
    let r = Reference::parse("mirrored.example/lib/app:v1").unwrap();
    let pulled = pier_registry::pull(&c, &dst, &r, &PullOptions::default(), &|_| {})
        .await
        .unwrap_or_else(|e| panic!("pull: {e}; proxy saw {:?}", proxy.seen()));
    assert_eq!(pulled.config, img.config);
    let seen = proxy.seen();
    assert!(seen.contains(&"/mirror/v2/".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"/mirror/v2/lib/app/manifests/v1".to_string()),
        "{seen:?}"
    );

    // override_path: the URL's path is the API root itself.
    write_hosts(
        &hosts,
        "flat.example",
        &format!(
            "server = \"http://127.0.0.1:{closed}\"\n\
             [host.\"http://{p}/flat\"]\n  override_path = true\n  header = {{ x-mirror-key = [\"k\"] }}\n",
            p = proxy.addr
        ),
    );
    let dst = store_in(dir.path(), "dst2");
    let r = Reference::parse("flat.example/lib/app:v1").unwrap();
    pier_registry::pull(&c, &dst, &r, &PullOptions::default(), &|_| {})
        .await
        .unwrap_or_else(|e| panic!("pull: {e}; proxy saw {:?}", proxy.seen()));
    assert!(proxy
        .seen()
        .contains(&"/flat/lib/app/manifests/v1".to_string()));

    // Without the header the mirror refuses, and the pull falls back to the
    // (closed) server, whose error is the one shown.
    write_hosts(
        &hosts,
        "nokey.example",
        &format!(
            "server = \"http://127.0.0.1:{closed}\"\n[host.\"http://{p}/mirror\"]\n",
            p = proxy.addr
        ),
    );
    let r = Reference::parse("nokey.example/lib/app:v1").unwrap();
    let e = pier_registry::pull(&c, &dst, &r, &PullOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{closed}")), "{e}");

    // A push with no host allowed to push is refused before any request.
    write_hosts(
        &hosts,
        "readonly.example",
        &format!(
            "server = \"http://{}\"\ncapabilities = [\"pull\", \"resolve\"]\n",
            reg.addr
        ),
    );
    let before = proxy.seen().len();
    let r = Reference::parse("readonly.example/lib/app:v2").unwrap();
    let e = pier_registry::push(&c, &store, &r, &image, &PushOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("no host of readonly.example may push (")
            && e.ends_with("gives none the \"push\" capability)"),
        "{e}"
    );
    assert_eq!(proxy.seen().len(), before);
    // The same server with push: the push lands at the registry.
    write_hosts(
        &hosts,
        "readonly.example",
        &format!("server = \"http://{}\"\n", reg.addr),
    );
    pier_registry::push(&c, &store, &r, &image, &PushOptions::default(), &|_| {})
        .await
        .unwrap();
    let check = Reference::parse(&format!("{}/lib/app:v2", reg.addr)).unwrap();
    pier_registry::inspect(&direct, &check, None).await.unwrap();
}
