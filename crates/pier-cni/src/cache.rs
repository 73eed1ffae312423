//! ADD results kept on disk per (network, container, interface), in libcni's
//! layout and format (`<cache dir>/results/<net>-<container>-<ifname>`), so a
//! DEL after a daemon restart still hands the plugins their prevResult.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{io_err, CniError, Result};

const KIND: &str = "cniCacheV1";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CachedInfo {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    /// The network's config list, base64 as Go encodes `[]byte`.
    #[serde(with = "b64")]
    pub config: Vec<u8>,
    #[serde(rename = "ifName")]
    pub ifname: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<[String; 2]>,
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl CachedInfo {
    pub fn new(container_id: &str, ifname: &str, network_name: &str, config: &[u8]) -> CachedInfo {
        CachedInfo {
            kind: KIND.into(),
            container_id: container_id.into(),
            config: config.to_vec(),
            ifname: ifname.into(),
            network_name: network_name.into(),
            netns: String::new(),
            cni_args: Vec::new(),
            capability_args: Map::new(),
            result: None,
        }
    }
}

mod b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) fn path(cache_dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    cache_dir
        .join("results")
        .join(format!("{network}-{container_id}-{ifname}"))
}

/// Writes the entry whole (temp file, then rename): a crash leaves the old
/// entry or the new one, never half of one.
pub(crate) async fn write(path: &Path, info: &CachedInfo) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let bytes = serde_json::to_vec(info).map_err(|e| CniError::Invalid(e.to_string()))?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("create CNI cache dir", dir))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("write CNI cache", &tmp))?;
        std::io::Write::write_all(&mut f, &bytes).map_err(io_err("write CNI cache", &tmp))?;
        f.sync_all().map_err(io_err("write CNI cache", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("write CNI cache", &path))
    })
    .await
    .map_err(|e| CniError::Invalid(format!("cache writer: {e}")))?
}

/// The entry, if there is one.
pub(crate) async fn read(path: &Path) -> Result<Option<CachedInfo>> {
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read CNI cache", path)(e)),
    };
    parse(path, &bytes).map(Some)
}

/// As [`read`], for a blocking thread.
pub(crate) fn read_sync(path: &Path) -> Result<Option<CachedInfo>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read CNI cache", path)(e)),
    };
    parse(path, &bytes).map(Some)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<CachedInfo> {
    let info: CachedInfo = serde_json::from_slice(bytes).map_err(|e| CniError::Config {
        path: path.to_path_buf(),
        msg: format!("invalid cached result: {e}"),
    })?;
    if info.kind != KIND {
        return Err(CniError::Config {
            path: path.to_path_buf(),
            msg: format!("unknown cache kind {:?}", info.kind),
        });
    }
    Ok(info)
}

pub(crate) async fn remove(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove CNI cache", path)(e)),
    }
}
