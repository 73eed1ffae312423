//! Push and pull against a real `docker-registry` on loopback: without auth,
//! with htpasswd Basic auth, and behind a Bearer token server.

mod common;

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use common::*;
use pier_content::media_types as mt;
use pier_reference::{Digest, Reference};
use pier_registry::{
    AuthConfig, Client, Progress, PullOptions, PushImage, PushOptions, RegistryError,
    RegistryOptions,
};

fn client() -> Client {
    Client::new(RegistryOptions::default()).unwrap()
}

fn push_image(img: &TestImage) -> PushImage {
    PushImage {
        config: img.config.clone(),
        layers: img.layers.clone(),
        source_manifest: None,
        mount_from: Vec::new(),
    }
}

/// Collects progress events for assertions.
#[derive(Default)]
struct Events(Mutex<Vec<Progress>>);

impl Events {
    fn sink(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        move |p| self.0.lock().unwrap().push(p)
    }
    fn take(&self) -> Vec<Progress> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn decompressed(store: &pier_content::ContentStore, d: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    pier_content::decompress(store.open_blob(d).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_round_trip_without_auth() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let img = make_image(
        &src,
        vec![
            tar_of(&[("hello.txt", b"hello from pier\n")]),
            tar_of(&[("big.bin", &big)]),
        ],
        false,
    );
    let c = client();
    let target = Reference::parse(&format!("{}/test/app:v1", reg.addr)).unwrap();
    let ev = Events::default();
    let pushed = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &PushOptions::default(),
        &ev.sink(),
    )
    .await
    .unwrap_or_else(|e| panic!("push: {e}\n{}", reg.log()));
    assert_eq!(pushed.media_type, mt::OCI_MANIFEST);
    let events = ev.take();
    assert!(
        events.iter().any(|e| matches!(e, Progress::Pushed { .. })),
        "{events:?}"
    );
    assert!(events.contains(&Progress::PushDigest {
        tag: "v1".into(),
        digest: pushed.digest.clone(),
        size: pushed.size
    }));

    // Pull it back into an empty store: same digest, layers gzip'd, same tars.
    let dst = store_in(dir.path(), "dst");
    let pulled = pier_registry::pull(&c, &dst, &target, &PullOptions::default(), &ev.sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.manifest_digest, pushed.digest);
    assert_eq!(pulled.config, img.config);
    assert!(pulled.downloaded);
    assert_eq!(pulled.layers.len(), 2);
    for (l, tar) in pulled.layers.iter().zip(&img.tars) {
        assert_eq!(l.media_type, mt::OCI_LAYER_GZIP);
        assert_eq!(l.diff_id, Digest::sha256(tar));
        assert_eq!(&decompressed(&dst, &l.blob), tar);
    }
    assert!(ingest_is_empty(&dst));
    let events = ev.take();
    assert_eq!(
        events[0],
        Progress::PullingFrom {
            repo: "test/app".into(),
            tag: "v1".into()
        }
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Progress::Downloading { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Progress::DownloadComplete { .. })));

    // A second pull downloads nothing.
    let again = pier_registry::pull(&c, &dst, &target, &PullOptions::default(), &ev.sink())
        .await
        .unwrap();
    assert!(!again.downloaded);
    assert!(ev
        .take()
        .iter()
        .all(|e| !matches!(e, Progress::Downloading { .. })));

    // Pushing the pulled image reuses its manifest byte for byte, and every
    // layer already exists.
    let repush = PushImage {
        config: pulled.config.clone(),
        layers: pulled.layers.clone(),
        source_manifest: Some((pulled.manifest_media_type.clone(), pulled.manifest.clone())),
        mount_from: Vec::new(),
    };
    let r2 = pier_registry::push(
        &c,
        &dst,
        &target.with_tag("v2").unwrap(),
        &repush,
        &PushOptions::default(),
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(r2.digest, pushed.digest);
    let events = ev.take();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::LayerExists { .. }))
            .count(),
        2,
        "{events:?}"
    );

    // Into another repository of the same registry: mounted, not uploaded.
    let other = Reference::parse(&format!("{}/test/other:latest", reg.addr)).unwrap();
    let mut mounted = repush.clone();
    mounted.mount_from = vec!["test/app".into()];
    let r3 = pier_registry::push(
        &c,
        &dst,
        &other,
        &mounted,
        &PushOptions::default(),
        &ev.sink(),
    )
    .await
    .unwrap();
    assert_eq!(r3.digest, pushed.digest);
    let events = ev.take();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::Mounted { .. }))
            .count(),
        2,
        "{events:?}"
    );

    let tags = pier_registry::list_tags(&c, &target, None).await.unwrap();
    assert_eq!(tags, vec!["v1".to_string(), "v2".to_string()]);

    // Pull by digest.
    let by_digest = target.with_digest(pushed.digest.clone());
    let p = pier_registry::pull(
        &c,
        &dst,
        &by_digest,
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    assert_eq!(p.digest, pushed.digest);

    // A single-platform image asked for another platform.
    let opts = PullOptions {
        platform: Some(pier_registry::Platform::parse("linux/s390x").unwrap()),
        ..Default::default()
    };
    let e = pier_registry::pull(&c, &dst, &target, &opts, &pier_registry::no_progress)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("does not match the specified platform"),
        "{e}"
    );

    // Unknown tag and unknown repository are "not found".
    let e = pier_registry::pull(
        &c,
        &dst,
        &target.with_tag("nope").unwrap(),
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("manifest unknown"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_gzip_layers_and_index() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(747796405) >> 11) as u8)
        .collect();
    let img = make_image(&src, vec![tar_of(&[("data", &data)])], true);
    let c = client();
    let target = Reference::parse(&format!("{}/chunky:latest", reg.addr)).unwrap();
    let opts = PushOptions {
        chunk_size: 16 << 10,
        ..Default::default()
    };
    let pushed = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &opts,
        &pier_registry::no_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("push: {e}\n{}", reg.log()));
    // Compressed layers keep their blob; the manifest names the OCI type.
    let m: serde_json::Value = serde_json::from_slice(&pushed.manifest).unwrap();
    assert_eq!(m["layers"][0]["digest"], img.layers[0].blob.to_string());
    assert_eq!(m["layers"][0]["mediaType"], mt::OCI_LAYER_GZIP);

    // An index with our platform and another: pull follows ours.
    let other_img = make_image(&src, vec![tar_of(&[("mips", b"m")])], true);
    let other = pier_registry::push(
        &c,
        &src,
        &target.with_tag("mips").unwrap(),
        &push_image(&other_img),
        &opts,
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    let host = pier_registry::Platform::host();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": [
            {"mediaType": mt::OCI_MANIFEST, "digest": other.digest.to_string(), "size": other.size,
             "platform": {"os": "linux", "architecture": "mips64le"}},
            {"mediaType": mt::OCI_MANIFEST, "digest": pushed.digest.to_string(), "size": pushed.size,
             "platform": {"os": host.os, "architecture": host.architecture, "variant": host.variant}},
        ]
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let resp = reqwest::Client::new()
        .put(format!("http://{}/v2/chunky/manifests/multi", reg.addr))
        .header("content-type", mt::OCI_INDEX)
        .body(index_bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let dst = store_in(dir.path(), "dst");
    let multi = target.with_tag("multi").unwrap();
    let pulled = pier_registry::pull(
        &c,
        &dst,
        &multi,
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    assert_eq!(pulled.digest, Digest::sha256(&index_bytes));
    assert_eq!(pulled.manifest_digest, pushed.digest);
    assert_eq!(decompressed(&dst, &pulled.layers[0].blob), img.tars[0]);

    // Asking for a platform the index lacks fails cleanly.
    let opts = PullOptions {
        platform: Some(pier_registry::Platform::parse("linux/s390x").unwrap()),
        ..Default::default()
    };
    let e = pier_registry::pull(&c, &dst, &multi, &opts, &pier_registry::no_progress)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no matching manifest for linux/s390x"),
        "{e}"
    );

    let info = pier_registry::inspect(&c, &multi, None).await.unwrap();
    assert_eq!(info.descriptor.digest, Digest::sha256(&index_bytes));
    assert_eq!(info.descriptor.media_type, mt::OCI_INDEX);
    assert_eq!(info.platforms.len(), 2);
    let info = pier_registry::inspect(&c, &target, None).await.unwrap();
    assert_eq!(info.platforms.len(), 1);
    assert_eq!(info.platforms[0].architecture, host.architecture);
    assert_eq!(info.platforms[0].os, host.os);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_htpasswd() {
    let reg = Registry::start(Some(("pier", "s3cret")));
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    let img = make_image(&src, vec![tar_of(&[("a", b"a")])], false);
    let c = client();
    let target = Reference::parse(&format!("{}/private/app:1", reg.addr)).unwrap();

    let e = pier_registry::login(&c, &reg.addr, &AuthConfig::basic("pier", "wrong"))
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    pier_registry::login(&c, &reg.addr, &AuthConfig::basic("pier", "s3cret"))
        .await
        .unwrap();

    // Anonymous: refused.
    let e = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &PushOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized(_)), "{e}");

    let auth = Some(AuthConfig::basic("pier", "s3cret"));
    let opts = PushOptions {
        auth: auth.clone(),
        ..Default::default()
    };
    let pushed = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &opts,
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    let dst = store_in(dir.path(), "dst");
    let popts = PullOptions {
        auth,
        ..Default::default()
    };
    let pulled = pier_registry::pull(&c, &dst, &target, &popts, &pier_registry::no_progress)
        .await
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    let e = pier_registry::pull(
        &c,
        &dst,
        &target,
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap_err();
    assert!(e.is_unauthorized() || e.is_not_found(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow() {
    let reg = Registry::start(None);
    let proxy = TokenProxy::start(&reg.addr, "tok", "pw", false).await;
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    let img = make_image(
        &src,
        vec![tar_of(&[("x", b"x")]), tar_of(&[("y", b"y")])],
        false,
    );
    let c = client();
    let target = Reference::parse(&format!("{}/tok/app:t", proxy.addr)).unwrap();

    let e = pier_registry::login(&c, &proxy.addr, &AuthConfig::basic("tok", "bad"))
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    pier_registry::login(&c, &proxy.addr, &AuthConfig::basic("tok", "pw"))
        .await
        .unwrap();
    // The token the good login got is not handed to a wrong password later.
    let e = pier_registry::login(&c, &proxy.addr, &AuthConfig::basic("tok", "bad"))
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");

    let auth = Some(AuthConfig::basic("tok", "pw"));
    let before = proxy.token_requests.load(Ordering::SeqCst);
    let pushed = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &PushOptions {
            auth: auth.clone(),
            ..Default::default()
        },
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    // One token for the push scope, reused by every request of the push.
    assert_eq!(proxy.token_requests.load(Ordering::SeqCst) - before, 1);

    let dst = store_in(dir.path(), "dst");
    let popts = PullOptions {
        auth: auth.clone(),
        ..Default::default()
    };
    let pulled = pier_registry::pull(&c, &dst, &target, &popts, &pier_registry::no_progress)
        .await
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    let n = proxy.token_requests.load(Ordering::SeqCst);
    // Cached per scope: pulling again asks for no new token.
    pier_registry::pull(&c, &dst, &target, &popts, &pier_registry::no_progress)
        .await
        .unwrap();
    assert_eq!(proxy.token_requests.load(Ordering::SeqCst), n);

    let e = pier_registry::pull(
        &c,
        &dst,
        &target,
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");

    // A registry token from X-Registry-Auth is sent as is.
    let tok = AuthConfig {
        registrytoken: "tok-direct".into(),
        ..Default::default()
    };
    let popts = PullOptions {
        auth: Some(tok),
        ..Default::default()
    };
    pier_registry::pull(&c, &dst, &target, &popts, &pier_registry::no_progress)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_pull_leaves_nothing_and_resumes() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    let small = tar_of(&[("small", b"small layer")]);
    // Incompressible, so the gzip'd layer stays ~4 MB.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..4_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let img = make_image(&src, vec![small, tar_of(&[("big", &data)])], true);
    let c = client();
    let target = Reference::parse(&format!("{}/slow/app:1", reg.addr)).unwrap();
    let pushed = pier_registry::push(
        &c,
        &src,
        &target,
        &push_image(&img),
        &PushOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap();

    // Through a slow relay (~3 MB/s), give up half way through the big layer.
    let relay = SlowRelay::start(&reg.addr, 32 << 10).await;
    let slow = Reference::parse(&format!("{}/slow/app:1", relay.addr)).unwrap();
    let dst = store_in(dir.path(), "dst");
    let ev = Events::default();
    let sink = ev.sink();
    let r = tokio::time::timeout(
        std::time::Duration::from_millis(700),
        pier_registry::pull(&c, &dst, &slow, &PullOptions::default(), &sink),
    )
    .await;
    assert!(r.is_err(), "the pull should still be running");
    let events = ev.take();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::Downloading { .. })),
        "{events:?}"
    );
    // Nothing half written is visible, and the dropped writer left no temp file.
    let big = &img.layers[1].blob;
    assert!(!dst.exists(big));
    assert!(ingest_is_empty(&dst));
    for d in dst.list().unwrap() {
        assert!(
            d.verify(&std::fs::read(dst.path(&d)).unwrap()),
            "corrupt blob {d}"
        );
    }
    drop(relay);

    // The next pull fetches only what is missing.
    let pulled = pier_registry::pull(&c, &dst, &target, &PullOptions::default(), &ev.sink())
        .await
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert!(dst.exists(big));
    let events = ev.take();
    let big_id = pier_registry::short_id(big);
    assert!(
        events.contains(&Progress::DownloadComplete { id: big_id }),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_member_layers_round_trip_and_a_tampered_config_is_refused() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let src = store_in(dir.path(), "src");
    // 3 MiB of compressible text: pushed as several gzip members.
    let text: Vec<u8> = (0..3u32 << 20)
        .map(|i| b"layer text "[(i % 11) as usize] ^ ((i >> 16) as u8 & 1))
        .collect();
    let img = make_image(&src, vec![tar_of(&[("text", &text)])], false);
    let c = client();
    let target = Reference::parse(&format!("{}/members/app:1", reg.addr)).unwrap();
    let opts = PushOptions::default();
    let no = &pier_registry::no_progress;
    pier_registry::push(&c, &src, &target, &push_image(&img), &opts, no)
        .await
        .unwrap_or_else(|e| panic!("push: {e}\n{}", reg.log()));
    let dst = store_in(dir.path(), "dst");
    let pulled = pier_registry::pull(&c, &dst, &target, &PullOptions::default(), no)
        .await
        .unwrap();
    assert!(pulled.layers[0].size < text.len() as u64 / 4);
    let blob = std::fs::read(dst.path(&pulled.layers[0].blob)).unwrap();
    let members = blob.windows(4).filter(|w| w == &[0x1f, 0x8b, 8, 0]).count();
    assert!(members >= 3, "{members} gzip members");
    assert_eq!(decompressed(&dst, &pulled.layers[0].blob), img.tars[0]);

    // The registry now serves other bytes (same length) for the config.
    let hex = img.config.hex();
    let stored = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&stored, &bytes).unwrap();
    let fresh = store_in(dir.path(), "fresh");
    let err = pier_registry::pull(&c, &fresh, &target, &PullOptions::default(), no)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Protocol(_)) && err.to_string().contains("config"),
        "{err}"
    );
    assert!(fresh.list().unwrap().is_empty());
    assert!(ingest_is_empty(&fresh));
}
