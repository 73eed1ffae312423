//! Layers unpacked while they download (`PullOptions::unpacker`): staged
//! out of sight, committed bottom first once every blob checks out, and
//! nothing at all when a blob is bad.

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use pier_reference::{Digest, Reference};
use pier_registry::{Client, LayerUnpacker, PullOptions, PushImage, PushOptions, StagedLayer};

/// Writes each layer's decompressed tar to `dir/.tmp-<index>`; commit renames
/// it to `dir/<index>` and checks that the layer below is committed.
#[derive(Debug)]
struct TarUnpacker {
    dir: PathBuf,
    unpacked: Arc<Mutex<Vec<usize>>>,
    commits: Arc<Mutex<Vec<usize>>>,
}

struct StagedTar {
    tmp: Option<PathBuf>,
    index: usize,
    dir: PathBuf,
    commits: Arc<Mutex<Vec<usize>>>,
}

impl LayerUnpacker for TarUnpacker {
    fn wants(&self, _: &[Digest], _: usize) -> bool {
        true
    }

    fn unpack(
        &self,
        diff_ids: &[Digest],
        index: usize,
        blob: &mut (dyn Read + Send),
    ) -> Result<Box<dyn StagedLayer>, String> {
        let mut tar = Vec::new();
        pier_content::decompress(blob)
            .map_err(|e| e.to_string())?
            .read_to_end(&mut tar)
            .map_err(|e| e.to_string())?;
        if Digest::sha256(&tar) != diff_ids[index] {
            return Err("diff ID mismatch".into());
        }
        let tmp = self.dir.join(format!(".tmp-{index}"));
        std::fs::write(&tmp, &tar).map_err(|e| e.to_string())?;
        self.unpacked.lock().unwrap().push(index);
        Ok(Box::new(StagedTar {
            tmp: Some(tmp),
            index,
            dir: self.dir.clone(),
            commits: self.commits.clone(),
        }))
    }
}

impl StagedLayer for StagedTar {
    fn commit(mut self: Box<Self>) -> Result<(), String> {
        if self.index > 0 && !self.dir.join((self.index - 1).to_string()).exists() {
            return Err(format!("layer {} is not committed", self.index - 1));
        }
        let tmp = self.tmp.take().unwrap();
        std::fs::rename(&tmp, self.dir.join(self.index.to_string())).map_err(|e| e.to_string())?;
        self.commits.lock().unwrap().push(self.index);
        Ok(())
    }
}

impl Drop for StagedTar {
    fn drop(&mut self) {
        if let Some(t) = self.tmp.take() {
            let _ = std::fs::remove_file(t);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Pushes a three-layer gzip image to `reg` as `repo:1`.
async fn pushed(reg: &Registry, dir: &Path, repo: &str) -> (Reference, TestImage) {
    let src = store_in(dir, "src");
    let tars = (0..3)
        .map(|i| {
            tar_of(&[(
                &format!("f{i}"),
                format!("layer {i}").repeat(5000).as_bytes(),
            )])
        })
        .collect();
    let img = make_image(&src, tars, true);
    let target = Reference::parse(&format!("{}/{repo}:1", reg.addr)).unwrap();
    let c = Client::new(Default::default()).unwrap();
    let image = PushImage {
        config: img.config.clone(),
        layers: img.layers.clone(),
        source_manifest: None,
        mount_from: Vec::new(),
    };
    pier_registry::push(
        &c,
        &src,
        &target,
        &image,
        &PushOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .unwrap();
    (target, img)
}

type Log = Arc<Mutex<Vec<usize>>>;

/// Pull options with a [`TarUnpacker`] into `out`; the layers it unpacked
/// and those it committed.
fn opts(out: &Path) -> (PullOptions, Log, Log) {
    let (unpacked, commits) = (Log::default(), Log::default());
    let u = TarUnpacker {
        dir: out.to_path_buf(),
        unpacked: unpacked.clone(),
        commits: commits.clone(),
    };
    let o = PullOptions {
        unpacker: Some(Arc::new(u)),
        ..Default::default()
    };
    (o, unpacked, commits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_unpack_while_downloading_and_commit_bottom_first() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let (target, img) = pushed(&reg, dir.path(), "unpack/ok").await;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (o, _, commits) = opts(&out);
    let dst = store_in(dir.path(), "dst");
    let c = Client::new(Default::default()).unwrap();
    pier_registry::pull(&c, &dst, &target, &o, &pier_registry::no_progress)
        .await
        .unwrap();
    assert_eq!(*commits.lock().unwrap(), vec![0, 1, 2]);
    assert_eq!(names(&out), vec!["0", "1", "2"]);
    for (i, t) in img.tars.iter().enumerate() {
        assert_eq!(&std::fs::read(out.join(i.to_string())).unwrap(), t);
        assert!(dst.exists(&img.layers[i].blob));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_blob_leaves_no_blob_and_no_unpacked_layer() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let (target, img) = pushed(&reg, dir.path(), "unpack/bad").await;
    // The registry serves its stored bytes as they are: change one, keeping
    // the size, in the gzip header's OS byte, which leaves the layer's
    // content intact: it unpacks fine, and only the blob digest is wrong.
    let bad = &img.layers[1].blob;
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&bad.hex()[..2])
        .join(bad.hex())
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[9] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (o, unpacked, commits) = opts(&out);
    let dst = store_in(dir.path(), "dst");
    let c = Client::new(Default::default()).unwrap();
    let err = pier_registry::pull(&c, &dst, &target, &o, &pier_registry::no_progress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(!dst.exists(bad));
    assert!(unpacked.lock().unwrap().contains(&1));
    assert!(commits.lock().unwrap().is_empty());
    // Unpacks of the other layers may still be finishing when the pull fails:
    // each removes its staged file when it ends.
    for _ in 0..100 {
        if names(&out).is_empty() && ingest_is_empty(&dst) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(names(&out), Vec::<String>::new());
    assert!(ingest_is_empty(&dst));
}
