//! A backend over plain directories: every layer is stored as a full copy
//! of the root after its step; RUN executes the host's `/bin/sh` with the
//! root as working directory (tests only use relative paths).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pier_reference::{Digest, Sha256Writer};

use crate::backend::*;
use crate::fsutil::{copy_tree, hash_tree, CopyAttrs};

#[derive(Default)]
pub struct Calls {
    pub prepares: usize,
    pub commits: usize,
    pub runs: Vec<RunProcess>,
    pub pulls: Vec<String>,
    pub released: usize,
}

/// Created images: id -> (config JSON, tags).
pub type Created = HashMap<String, (Vec<u8>, Vec<String>)>;

pub struct Fake {
    pub dir: tempfile::TempDir,
    pub images: Mutex<HashMap<String, BaseImage>>,
    /// diff_id -> full root after that layer.
    pub layers: Mutex<HashMap<String, PathBuf>>,
    pub cache: Mutex<HashMap<String, CacheRecord>>,
    pub created: Mutex<Created>,
    /// Step images (the classic builder's ` ---> ID`): ID -> parent ID.
    pub steps: Mutex<HashMap<String, String>>,
    pub calls: Mutex<Calls>,
    n: Mutex<usize>,
}

fn tree_digest(p: &Path) -> String {
    let mut h = Sha256Writer::new();
    hash_tree(&mut h, p, "", true, &|_| false).unwrap();
    h.digest().to_string()
}

impl Fake {
    pub fn new() -> Fake {
        Fake {
            dir: tempfile::tempdir().unwrap(),
            images: Mutex::default(),
            layers: Mutex::default(),
            cache: Mutex::default(),
            created: Mutex::default(),
            steps: Mutex::default(),
            calls: Mutex::default(),
            n: Mutex::new(0),
        }
    }

    fn fresh(&self, what: &str) -> PathBuf {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        let p = self.dir.path().join(format!("{what}-{n}"));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Adds an image whose single layer holds `files` (path, content) and
    /// whose config is `config`.
    pub fn add_image(&self, name: &str, files: &[(&str, &str)], config: ImageConfig) -> BaseImage {
        let root = self.fresh("img");
        for (p, c) in files {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        }
        let layer = self.store_layer(&root, None);
        let mut config = config;
        config.rootfs.diff_ids = vec![layer.diff_id.clone()];
        if config.history.is_empty() {
            config.history.push(History {
                created_by: Some("base layer".into()),
                ..Default::default()
            });
        }
        let id = Digest::sha256(&config.to_json()).to_string();
        let img = BaseImage {
            id,
            config,
            layers: vec![layer],
        };
        self.images
            .lock()
            .unwrap()
            .insert(name.to_string(), img.clone());
        img
    }

    fn store_layer(&self, root: &Path, parent: Option<&str>) -> LayerInfo {
        let d = tree_digest(root);
        let diff = Digest::sha256(format!("{parent:?} {d}").as_bytes()).to_string();
        let copy = self.fresh("layer");
        copy_tree(root, &copy, "", CopyAttrs::default(), &|_| false).unwrap();
        self.layers.lock().unwrap().insert(diff.clone(), copy);
        LayerInfo {
            blob: diff.replace("sha256:", "sha256:b"),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 1,
            diff_id: diff,
        }
    }

    pub fn config_of(&self, id: &str) -> serde_json::Value {
        let created = self.created.lock().unwrap();
        serde_json::from_slice(&created[id].0).unwrap()
    }

    /// The root of an image as a directory (its last layer).
    pub fn root_of(&self, id: &str) -> PathBuf {
        let cfg = self.config_of(id);
        let last = cfg["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        self.layers.lock().unwrap()[&last].clone()
    }
}

/// The diff ID of the parent is kept in the work root's key.
impl BuildBackend for Fake {
    fn find_image(&self, name: &str) -> BackendResult<Option<BaseImage>> {
        Ok(self.images.lock().unwrap().get(name).cloned())
    }

    fn pull(
        &self,
        name: &str,
        _platform: Option<&str>,
        progress: &mut dyn FnMut(&str),
    ) -> BackendResult<BaseImage> {
        self.calls.lock().unwrap().pulls.push(name.to_string());
        progress(&format!("pulling {name}"));
        self.find_image(name)?
            .ok_or_else(|| BackendError::not_found(format!("no such image {name}")))
    }

    fn prepare(&self, layers: &[LayerInfo]) -> BackendResult<WorkRoot> {
        self.calls.lock().unwrap().prepares += 1;
        let root = self.fresh("root");
        let parent = layers.last().map(|l| l.diff_id.clone()).unwrap_or_default();
        if let Some(l) = layers.last() {
            let src = self.layers.lock().unwrap()[&l.diff_id].clone();
            copy_tree(&src, &root, "", CopyAttrs::default(), &|_| false).unwrap();
        }
        Ok(WorkRoot {
            key: format!("{parent}|{}", root.display()),
            root,
        })
    }

    fn run(
        &self,
        root: &WorkRoot,
        p: &RunProcess,
        output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> BackendResult<i32> {
        self.calls.lock().unwrap().runs.push(p.clone());
        let cwd = root.root.join(p.cwd.trim_start_matches('/'));
        std::fs::create_dir_all(&cwd).unwrap();
        let out = std::process::Command::new(&p.args[0])
            .args(&p.args[1..])
            .current_dir(&cwd)
            .env_clear()
            .envs(p.env.iter().filter_map(|e| e.split_once('=')))
            .env("PATH", "/usr/bin:/bin")
            .output()
            .map_err(|e| BackendError::internal(e.to_string()))?;
        output(OutputStream::Stdout, &out.stdout);
        output(OutputStream::Stderr, &out.stderr);
        Ok(out.status.code().unwrap_or(-1))
    }

    fn commit(&self, root: &WorkRoot) -> BackendResult<Option<LayerInfo>> {
        self.calls.lock().unwrap().commits += 1;
        let parent = root.key.split('|').next().unwrap_or("").to_string();
        let before = if parent.is_empty() {
            None
        } else {
            Some(self.layers.lock().unwrap()[&parent].clone())
        };
        let now = tree_digest(&root.root);
        let unchanged = match &before {
            Some(b) => tree_digest(b) == now,
            None => std::fs::read_dir(&root.root).unwrap().next().is_none(),
        };
        if unchanged {
            return Ok(None);
        }
        Ok(Some(self.store_layer(
            &root.root,
            Some(&parent).filter(|p| !p.is_empty()).map(|s| s.as_str()),
        )))
    }

    fn release(&self, root: WorkRoot) -> BackendResult<()> {
        self.calls.lock().unwrap().released += 1;
        std::fs::remove_dir_all(&root.root).map_err(|e| BackendError::internal(e.to_string()))
    }

    fn create_image(
        &self,
        config_json: &[u8],
        layers: &[LayerInfo],
        tags: &[String],
        role: ImageRole<'_>,
    ) -> BackendResult<String> {
        for l in layers {
            assert!(self.layers.lock().unwrap().contains_key(&l.diff_id));
        }
        let id = Digest::sha256(config_json).to_string();
        if let ImageRole::Step { parent } = role {
            assert!(tags.is_empty());
            let mut steps = self.steps.lock().unwrap();
            steps
                .entry(id.clone())
                .or_insert_with(|| parent.to_string());
            return Ok(id);
        }
        // Built images can be named later (FROM, --cache-from), as in a store.
        let image = BaseImage {
            id: id.clone(),
            config: serde_json::from_slice(config_json).unwrap(),
            layers: layers.to_vec(),
        };
        let mut images = self.images.lock().unwrap();
        for t in tags {
            images.insert(t.clone(), image.clone());
            if let Some(short) = t.strip_suffix(":latest") {
                images.insert(short.to_string(), image.clone());
            }
        }
        drop(images);
        self.created
            .lock()
            .unwrap()
            .insert(id.clone(), (config_json.to_vec(), tags.to_vec()));
        Ok(id)
    }

    fn cache_get(&self, key: &str) -> BackendResult<Option<CacheRecord>> {
        Ok(self.cache.lock().unwrap().get(key).cloned())
    }

    fn cache_put(&self, key: &str, rec: &CacheRecord) -> BackendResult<()> {
        self.cache
            .lock()
            .unwrap()
            .insert(key.to_string(), rec.clone());
        Ok(())
    }

    fn cache_mount_dir(&self, id: &str) -> BackendResult<PathBuf> {
        let d = self
            .dir
            .path()
            .join("cachemounts")
            .join(Digest::sha256(id.as_bytes()).hex());
        std::fs::create_dir_all(&d).unwrap();
        Ok(d)
    }
}
