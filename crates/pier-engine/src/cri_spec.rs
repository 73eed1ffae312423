//! The CRI side of a container record ([`CriSpec`]), kept apart from
//! `cri.rs` so the records can name it without importing the engine's CRI
//! entry points.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a pod container gets one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsMode {
    /// Its own.
    #[default]
    New,
    /// The host's.
    Host,
    /// The pod's, through the holder's `/proc/<pid>/ns/<kind>`.
    Join(PathBuf),
}

/// How one of the kubelet's bind mounts is made (options Docker's bind
/// syntax cannot say: non-recursive read-only, propagation per mount).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CriMount {
    pub destination: String,
    pub readonly: bool,
    /// Read-only below the source too (`rro`).
    pub recursive_readonly: bool,
    /// `rprivate`, `rslave` or `rshared`.
    pub propagation: String,
}

/// The CRI side of a container record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CriSpec {
    pub sandbox_id: String,
    pub net: NsMode,
    pub ipc: NsMode,
    pub pid: NsMode,
    /// Replace the default masked and read-only paths when set.
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    /// The kubelet's log path (CRI format), or none.
    #[serde(default)]
    pub log_path: Option<PathBuf>,
    #[serde(default)]
    pub mounts: Vec<CriMount>,
    /// What the CRI server keeps of the container (its metadata, labels,
    /// annotations); the engine does not read it.
    #[serde(default)]
    pub server: serde_json::Value,
}
