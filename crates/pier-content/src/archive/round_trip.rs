//! Round trips between the store and archives, plus hand-made legacy and hostile archives.

use std::io::Write;
use std::process::Command;

use pier_reference::Digest;
use serde_json::json;

use super::*;
use crate::compression::gzip_writer;

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = gzip_writer(Vec::new());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn config_for(diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// A store holding a two-layer image: one gzip layer, one zstd layer.
fn sample_image(store: &ContentStore) -> ImageToSave {
    let l1 = tar_of(&[("bin/hello", b"hello\n")]);
    let l2 = tar_of(&[("etc/motd", b"welcome\n"), ("bin/.wh.hello", b"")]);
    let (d1, d2) = (Digest::sha256(&l1), Digest::sha256(&l2));
    let b1 = store.put(&gzip(&l1)).unwrap();
    let b2 = store.put(&zstd::encode_all(&l2[..], 3).unwrap()).unwrap();
    let config = store.put(&config_for(&[&d1, &d2])).unwrap();
    let layer = |blob: Digest, c: Compression, diff_id| LayerRef {
        size: store.size(&blob).unwrap(),
        blob,
        media_type: c.oci_media_type().into(),
        diff_id,
    };
    ImageToSave {
        config,
        layers: vec![
            layer(b1, Compression::Gzip, d1),
            layer(b2, Compression::Zstd, d2),
        ],
        repo_tags: vec!["busybox:latest".into(), "localhost:5000/x/y:t".into()],
    }
}

fn new_store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(dir.path().join("store")).unwrap();
    (dir, s)
}

#[test]
fn docker_archive_round_trip() {
    let (_a, src) = new_store();
    let img = sample_image(&src);
    let mut tarball = Vec::new();
    write_docker_archive(&src, std::slice::from_ref(&img), &mut tarball).unwrap();

    let (_b, dst) = new_store();
    let loaded = read_docker_archive(&tarball[..], &dst).unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!(l.config, img.config);
    assert!(
        l.manifest.is_some(),
        "Docker 25 layout carries an OCI manifest"
    );
    assert_eq!(l.repo_tags, vec!["busybox:latest", "localhost:5000/x/y:t"]);
    assert_eq!(l.layers.len(), 2);
    for (got, want) in l.layers.iter().zip(&img.layers) {
        assert_eq!(got.diff_id, want.diff_id);
        // Saved uncompressed, so the blob is the diff ID.
        assert_eq!(got.blob, want.diff_id);
        assert_eq!(got.media_type, media_types::OCI_LAYER);
        assert!(dst.exists(&got.blob));
    }
    assert_eq!(dst.read(&l.config).unwrap(), src.read(&img.config).unwrap());

    // A gzip-compressed archive (`docker save | gzip`) loads the same.
    let (_c, dst2) = new_store();
    let again = read_docker_archive(&gzip(&tarball)[..], &dst2).unwrap();
    assert_eq!(again, loaded);
}

#[test]
fn archive_has_docker_and_oci_files() {
    let (_a, src) = new_store();
    let img = sample_image(&src);
    let mut tarball = Vec::new();
    write_docker_archive(&src, &[img.clone(), img.clone()], &mut tarball).unwrap();
    let mut names = Vec::new();
    let mut manifest = None;
    let mut ar = tar::Archive::new(&tarball[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "manifest.json" {
            let v: serde_json::Value = serde_json::from_reader(&mut e).unwrap();
            manifest = Some(v);
        }
        names.push(name);
    }
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|n| n == want), "missing {want}: {names:?}");
    }
    // Shared blobs are written once.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "{names:?}");
    let m = manifest.unwrap();
    assert_eq!(m[0]["Config"], format!("blobs/sha256/{}", img.config.hex()));
    assert_eq!(
        m[0]["Layers"][1],
        format!("blobs/sha256/{}", img.layers[1].diff_id.hex())
    );
    assert_eq!(m[0]["RepoTags"][0], "busybox:latest");
}

#[test]
fn oci_layout_round_trip_keeps_compression() {
    let (_a, src) = new_store();
    let img = sample_image(&src);
    let mut tarball = Vec::new();
    write_oci_layout(&src, std::slice::from_ref(&img), &mut tarball).unwrap();
    let (_b, dst) = new_store();
    let loaded = read_docker_archive(&tarball[..], &dst).unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!(l.layers, img.layers);
    assert_eq!(l.repo_tags, vec!["busybox:latest", "localhost:5000/x/y:t"]);
}

#[test]
fn untagged_image_round_trip() {
    let (_a, src) = new_store();
    let mut img = sample_image(&src);
    img.repo_tags.clear();
    let mut tarball = Vec::new();
    write_docker_archive(&src, std::slice::from_ref(&img), &mut tarball).unwrap();
    let (_b, dst) = new_store();
    let loaded = read_docker_archive(&tarball[..], &dst).unwrap();
    assert!(loaded[0].repo_tags.is_empty());
}

/// The pre-Docker-25 layout: `<id>/layer.tar`, `<hex>.json`, a symlinked duplicate layer.
fn legacy_archive(config_name: Option<&str>, tamper_layer: bool) -> (Vec<u8>, Digest) {
    let l1 = tar_of(&[("a", b"1")]);
    let d1 = Digest::sha256(&l1);
    let config = config_for(&[&d1, &d1]);
    let cd = Digest::sha256(&config);
    let cname = config_name.map_or(format!("{}.json", cd.hex()), str::to_string);
    let manifest = serde_json::to_vec(&json!([{
        "Config": cname,
        "RepoTags": null,
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"],
    }]))
    .unwrap();
    let repos = br#"{"busybox":{"latest":"bbb"}}"#;
    let layer_bytes = if tamper_layer {
        tar_of(&[("a", b"2")])
    } else {
        l1
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("aaa/VERSION", b"1.0");
    add("aaa/json", b"{}");
    add("aaa/layer.tar", &layer_bytes);
    add(&cname, &config);
    add("manifest.json", &manifest);
    add("repositories", repos);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    (b.into_inner().unwrap(), cd)
}

#[test]
fn legacy_archive_with_symlinked_layer_and_repositories() {
    let (tarball, cd) = legacy_archive(None, false);
    let (_b, dst) = new_store();
    let loaded = read_docker_archive(&tarball[..], &dst).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config, cd);
    assert_eq!(loaded[0].manifest, None);
    assert_eq!(loaded[0].repo_tags, vec!["busybox:latest"]);
    assert_eq!(loaded[0].layers[0], loaded[0].layers[1]);
}

#[test]
fn wrong_config_name_is_refused() {
    let name = format!("{}.json", "0".repeat(64));
    let (tarball, _) = legacy_archive(Some(&name), false);
    let (_b, dst) = new_store();
    let err = read_docker_archive(&tarball[..], &dst).unwrap_err();
    assert!(err.to_string().contains("has digest"), "{err}");
}

#[test]
fn wrong_diff_id_is_refused() {
    let (tarball, _) = legacy_archive(None, true);
    let (_b, dst) = new_store();
    let err = read_docker_archive(&tarball[..], &dst).unwrap_err();
    assert!(
        err.to_string().contains("invalid diffID for layer 0"),
        "{err}"
    );
}

#[test]
fn hostile_paths_are_refused() {
    // The tar crate refuses to *write* `..`, so build the header name by hand.
    for evil in ["../evil", "a/../../evil", "/etc/evil"] {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..evil.len()].copy_from_slice(evil.as_bytes());
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        let tarball = b.into_inner().unwrap();
        let (_b, dst) = new_store();
        let err = read_docker_archive(&tarball[..], &dst).unwrap_err();
        assert!(err.to_string().contains("invalid archive"), "{evil}: {err}");
    }
    // A symlink out of the archive.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "x/layer.tar", "../../etc/passwd")
        .unwrap();
    let (_b, dst) = new_store();
    let err = read_docker_archive(&b.into_inner().unwrap()[..], &dst).unwrap_err();
    assert!(err.to_string().contains("outside the archive"), "{err}");
}

#[test]
fn missing_manifest_is_an_error() {
    let (_b, dst) = new_store();
    let err = read_docker_archive(&tar_of(&[("x", b"y")])[..], &dst).unwrap_err();
    assert!(err.to_string().contains("no manifest.json"), "{err}");
}

fn src_ref(kind: &str, path: &std::path::Path) -> String {
    // An OCI layout with several index entries needs the ref name picked.
    let suffix = if kind == "oci-archive" { ":latest" } else { "" };
    format!("{kind}:{}{suffix}", path.display())
}

/// skopeo reads both archive kinds when it is installed (it is on the dev VM).
#[test]
fn skopeo_accepts_archives() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skopeo not installed; skipping");
        return;
    }
    let (dir, src) = new_store();
    let img = sample_image(&src);
    for (kind, file) in [
        ("docker-archive", "img.tar"),
        ("oci-archive", "img-oci.tar"),
    ] {
        let path = dir.path().join(file);
        let f = std::fs::File::create(&path).unwrap();
        if kind == "docker-archive" {
            write_docker_archive(&src, std::slice::from_ref(&img), f).unwrap();
        } else {
            write_oci_layout(&src, std::slice::from_ref(&img), f).unwrap();
        }
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(src_ref(kind, &path))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(src_ref(kind, &path))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"][1], img.layers[1].diff_id.as_str());
        // A full copy checks every blob's digest.
        let layout = dir.path().join(format!("copy-{file}"));
        let out = Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(src_ref(kind, &path))
            .arg(format!("oci:{}:x", layout.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A multi-platform save: index.json names an image index, of which only this host's
/// manifest is in the archive.
#[test]
fn nested_index_with_missing_platforms() {
    let (_a, src) = new_store();
    let img = sample_image(&src);
    let mut tarball = Vec::new();
    write_oci_layout(&src, std::slice::from_ref(&img), &mut tarball).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ar = tar::Archive::new(&tarball[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if e.header().entry_type().is_file() {
            files.push((name, data));
        }
    }
    let index: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "index.json").unwrap().1).unwrap();
    let mut present = index["manifests"][0].clone();
    present.as_object_mut().unwrap().remove("annotations");
    present["platform"] = json!({"os": "linux", "architecture": super::load::tests_host_arch()});
    let missing = json!({
        "mediaType": media_types::OCI_MANIFEST,
        "digest": Digest::sha256(b"not in the archive"),
        "size": 18,
        "platform": {"os": "linux", "architecture": "s390x"},
    });
    let inner = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [missing, present],
    }))
    .unwrap();
    let inner_d = Digest::sha256(&inner);
    let outer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_types::OCI_INDEX,
            "digest": inner_d,
            "size": inner.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"},
        }],
    }))
    .unwrap();
    files.retain(|(n, _)| n != "index.json");
    files.push((format!("blobs/sha256/{}", inner_d.hex()), inner));
    files.push(("index.json".into(), outer));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    let (_b, dst) = new_store();
    let loaded = read_docker_archive(&tar_of(&refs)[..], &dst).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].config, img.config);
    assert_eq!(loaded[0].repo_tags, vec!["multi:1"]);
}
