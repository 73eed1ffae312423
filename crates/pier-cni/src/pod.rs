//! A pod's networking as containerd's CRI does it through go-cni: `lo` on
//! the loopback network, then `eth0` on the default network; torn down in
//! reverse with the configs the cache recorded at ADD, so a changed or
//! removed conf dir still detaches what was attached.

use std::path::{Path, PathBuf};

use crate::cache::{self, CachedInfo};
use crate::error::{io_err, CniError, Result};
use crate::{Cni, CniResult, NetworkConfigList, RuntimeConf, RuntimeConfig};

/// The interface of the default network inside the pod.
pub const POD_IFNAME: &str = "eth0";
const LOOPBACK_IFNAME: &str = "lo";

/// What a pod got: the default network's name and result.
#[derive(Debug, Clone, PartialEq)]
pub struct PodNetwork {
    pub network: String,
    pub result: CniResult,
}

/// One attachment recorded in the cache.
#[derive(Debug, Clone)]
pub struct CachedAttachment {
    pub network: NetworkConfigList,
    pub ifname: String,
}

impl Cni {
    /// Attaches a pod's namespace: loopback (`lo`), then the default network
    /// (`eth0`) with `runtime_config`. A failure detaches what was attached.
    pub async fn setup_pod(
        &self,
        pod_id: &str,
        netns: &Path,
        args: &[(String, String)],
        runtime_config: &RuntimeConfig,
    ) -> Result<PodNetwork> {
        let net = self.default_network().await?;
        let lo = NetworkConfigList::loopback();
        let mut rt = RuntimeConf::new(pod_id, netns, LOOPBACK_IFNAME);
        rt.args = args.to_vec();
        self.add(&lo, &rt).await?;
        rt.ifname = POD_IFNAME.into();
        rt.runtime_config = runtime_config.clone();
        match self.add(&net, &rt).await {
            Ok(result) => Ok(PodNetwork {
                network: net.name,
                result,
            }),
            Err(e) => {
                rt.ifname = LOOPBACK_IFNAME.into();
                rt.runtime_config = RuntimeConfig::default();
                if let Err(d) = self.del(&lo, &rt).await {
                    tracing::warn!("detaching {pod_id} from loopback after a failed setup: {d}");
                }
                Err(e)
            }
        }
    }

    /// Detaches a pod: every attachment the cache recorded for it (with the
    /// config it was made with), `lo` last; with nothing recorded, the
    /// current default network and loopback, since DEL of what is gone
    /// succeeds. Safe to repeat.
    pub async fn teardown_pod(
        &self,
        pod_id: &str,
        netns: &Path,
        args: &[(String, String)],
        runtime_config: &RuntimeConfig,
    ) -> Result<()> {
        let mut attached = self.cached_attachments(pod_id).await?;
        if attached.is_empty() {
            match self.default_network().await {
                Ok(net) => attached.push(CachedAttachment {
                    network: net,
                    ifname: POD_IFNAME.into(),
                }),
                Err(CniError::NoConfig { .. }) => {}
                Err(e) => return Err(e),
            }
            attached.push(CachedAttachment {
                network: NetworkConfigList::loopback(),
                ifname: LOOPBACK_IFNAME.into(),
            });
        }
        attached.sort_by_key(|a| a.ifname == LOOPBACK_IFNAME);
        let mut rt = RuntimeConf::new(pod_id, netns, "");
        rt.args = args.to_vec();
        for a in &attached {
            rt.ifname = a.ifname.clone();
            rt.runtime_config = if a.ifname == LOOPBACK_IFNAME {
                RuntimeConfig::default()
            } else {
                runtime_config.clone()
            };
            self.del(&a.network, &rt).await?;
        }
        Ok(())
    }

    /// The attachments of `container_id` in the cache, with the network
    /// config each was made with.
    pub async fn cached_attachments(&self, container_id: &str) -> Result<Vec<CachedAttachment>> {
        let dir = self.options().cache_dir.join("results");
        let id = container_id.to_string();
        let found = tokio::task::spawn_blocking(move || entries_for(&dir, &id))
            .await
            .map_err(|e| CniError::Invalid(format!("cache reader: {e}")))??;
        let mut out = Vec::new();
        for (path, info) in found {
            let network =
                NetworkConfigList::from_conflist(&info.config).map_err(|msg| CniError::Config {
                    path: path.clone(),
                    msg: format!("cached network config: {msg}"),
                })?;
            out.push(CachedAttachment {
                network,
                ifname: info.ifname,
            });
        }
        Ok(out)
    }
}

// A few files per pod on the node; runs on a blocking thread.
#[allow(clippy::disallowed_methods)]
fn entries_for(dir: &Path, container_id: &str) -> Result<Vec<(PathBuf, CachedInfo)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read CNI cache dir", dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let path = e.map_err(io_err("read CNI cache dir", dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // <network>-<container>-<ifname>: the fields inside decide.
        if !name.contains(&format!("-{container_id}-")) || name.ends_with(".tmp") {
            continue;
        }
        if let Some(info) = cache::read_sync(&path)?
            && info.container_id == container_id
        {
            out.push((path, info));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
