//! The seam between the builder and the engine: everything that touches the
//! image store, snapshots, the runtime or the cache index goes through
//! [`BuildBackend`]. The trait is synchronous; the engine calls [`crate::build`]
//! on a blocking thread.

use std::path::PathBuf;

pub use pier_api::image::{History, ImageConfig, RootFs};
use serde::{Deserialize, Serialize};

/// What went wrong inside the backend, with a kind so the builder (and the
/// server after it) can tell a missing image from an internal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub kind: BackendErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    NotFound,
    InvalidArgument,
    Internal,
}

impl BackendError {
    pub fn not_found(message: impl Into<String>) -> Self {
        BackendError {
            kind: BackendErrorKind::NotFound,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        BackendError {
            kind: BackendErrorKind::InvalidArgument,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        BackendError {
            kind: BackendErrorKind::Internal,
            message: message.into(),
        }
    }
}

pub type BackendResult<T> = Result<T, BackendError>;

/// One layer of an image: the same four facts the engine stores per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Digest of the (compressed) blob in the content store.
    pub blob: String,
    pub media_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
}

/// An image in the store, as the builder needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub config: ImageConfig,
    /// Bottom first; the same length as `config.rootfs.diff_ids`.
    pub layers: Vec<LayerInfo>,
}

/// A writable root prepared on top of a layer stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRoot {
    /// The backend's handle (snapshot key, container id...).
    pub key: String,
    /// The mounted root directory; the builder reads and writes files here
    /// directly (COPY, ADD, WORKDIR) and [`BuildBackend::commit`] turns what
    /// changed into a layer.
    pub root: PathBuf,
}

/// Which stream of a RUN process a chunk of output came from: Docker's
/// builder shows stderr in red.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// `RUN --network=` (or the build's `--network`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The engine's default bridge, as Docker's builder uses.
    #[default]
    Default,
    None,
    Host,
    /// A user-defined network by name or ID (`docker build --network NAME`).
    Named(String),
}

/// A mount for one RUN step; sources are host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// Bind a host file or directory (context, another stage's root, a cache
    /// directory, a secret file).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A fresh tmpfs; `size` in bytes, 0 = kernel default.
    Tmpfs { target: String, size: i64 },
}

/// One process to run in a [`WorkRoot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProcess {
    /// argv; `args[0]` is looked up in the root's PATH from `env`.
    pub args: Vec<String>,
    /// `KEY=value`, the image ENV plus the stage's ARGs.
    pub env: Vec<String>,
    /// Working directory inside the root; the backend creates it when missing.
    pub cwd: String,
    /// `USER` as written (`name`, `uid`, `name:group`, ...); empty = root.
    /// The backend resolves names in the root's /etc/passwd and /etc/group.
    pub user: String,
    pub network: Network,
    /// `--add-host` of the build: `name:ip` lines for /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// `--security=insecure`.
    pub privileged: bool,
    pub mounts: Vec<RunMount>,
    /// Bytes of the step's /dev/shm; 0 = the runtime's default.
    pub shm_size: i64,
}

/// Why the builder stores an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRole<'a> {
    /// A step's image (the classic builder's ` ---> ID`); `parent` is the
    /// image of the step before (empty on scratch), kept when the image
    /// already has one.
    Step { parent: &'a str },
    /// The build's result (also the last step's image): announced to
    /// event listeners.
    Result,
}

/// What the cache remembers for one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The layer the step produced; None for steps that changed no file.
    pub layer: Option<LayerInfo>,
    /// When the step first ran (RFC 3339); reused so that a fully cached
    /// build gives the same image ID.
    pub created: String,
}

/// What the builder needs from the engine.
///
/// Layers are identified by [`LayerInfo`]; a snapshot for a layer stack is
/// the usual OCI chain ID of its diff IDs, which the backend computes.
pub trait BuildBackend: Send + Sync {
    /// Looks an image up by name or ID in the local store.
    fn find_image(&self, name: &str) -> BackendResult<Option<BaseImage>>;

    /// Pulls `name` (for `platform`, e.g. `linux/amd64`, when given),
    /// reporting progress lines.
    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
        progress: &mut dyn FnMut(&str),
    ) -> BackendResult<BaseImage>;

    /// A mounted, writable root holding `layers` (bottom first; empty =
    /// scratch). Layers may come from a cache record of an earlier build:
    /// the backend unpacks their blobs if their snapshots are gone.
    fn prepare(&self, layers: &[LayerInfo]) -> BackendResult<WorkRoot>;

    /// Runs one process in `root`, streaming its stdout and stderr to
    /// `output`; returns the exit code.
    fn run(
        &self,
        root: &WorkRoot,
        process: &RunProcess,
        output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> BackendResult<i32>;

    /// Turns what changed in `root` since [`BuildBackend::prepare`] into a
    /// layer blob in the content store and a snapshot. None when nothing
    /// changed. Mount points the backend created for [`RunMount`]s (and
    /// left empty) are not changes. The backend may unmount `root` and reuse
    /// its files for the snapshot: only [`BuildBackend::release`] may follow.
    fn commit(&self, root: &WorkRoot) -> BackendResult<Option<LayerInfo>>;

    /// Unmounts and deletes a work root (after commit or on failure).
    fn release(&self, root: WorkRoot) -> BackendResult<()>;

    /// Stores `config_json` as an image config blob, registers the image with
    /// `layers` (all of them, bottom first) and points each of `tags` at it.
    /// Returns the image ID (`sha256:<hex>` of `config_json`).
    fn create_image(
        &self,
        config_json: &[u8],
        layers: &[LayerInfo],
        tags: &[String],
        role: ImageRole<'_>,
    ) -> BackendResult<String>;

    /// The record stored under `key`, if any (and if its layer still exists).
    fn cache_get(&self, key: &str) -> BackendResult<Option<CacheRecord>>;

    /// Remembers a step's result; its layer must be kept from garbage
    /// collection while the record exists.
    fn cache_put(&self, key: &str, record: &CacheRecord) -> BackendResult<()>;

    /// A persistent host directory for `RUN --mount=type=cache,id=...`,
    /// created empty on first use.
    fn cache_mount_dir(&self, id: &str) -> BackendResult<PathBuf>;
}
