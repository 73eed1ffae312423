//! What the engine stores in the metadata database.

use std::collections::BTreeMap;

use pier_api::image::ImageConfig;
use pier_api::models::{ContainerConfig, EndpointSettings, HostConfig};
use serde::{Deserialize, Serialize};

/// One layer of an image: the blob in the content store and its diff ID.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredLayer {
    pub blob: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
}

/// An image known to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// What Pier reads of the config blob; the blob itself stays in the
    /// content store byte for byte (its digest is the ID).
    pub config: ImageConfig,
    pub layers: Vec<StoredLayer>,
    /// Chain ID of the top layer's snapshot (None for an image with no layers).
    pub chain_id: Option<String>,
    /// Unpacked size in bytes, as `docker images` shows it.
    pub size: i64,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// The image this one was built or committed from, if known locally.
    #[serde(default)]
    pub parent: String,
}

/// A container's run state as Docker reports it in `State`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: crate::ContainerStatus,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub paused: bool,
    /// Set when the user stopped it, so restart policies leave it alone.
    #[serde(default)]
    pub stopped_by_user: bool,
}

impl Default for StateRecord {
    fn default() -> Self {
        StateRecord {
            status: crate::ContainerStatus::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: crate::util::ZERO_TIME.into(),
            finished_at: crate::util::ZERO_TIME.into(),
            oom_killed: false,
            paused: false,
            stopped_by_user: false,
        }
    }
}

impl StateRecord {
    pub fn running(&self) -> bool {
        self.status.is_running()
    }
}

/// A container known to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateRecord,
    #[serde(default)]
    pub restart_count: i64,
    /// Snapshot the root is built on (the image's top chain ID).
    #[serde(default)]
    pub chain_id: Option<String>,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// Cgroup path given to the runtime (`/<parent>/<id>`).
    pub cgroups_path: String,
    /// Volumes, binds and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<MountRec>,
    /// Networks asked for and, while running, attached.
    #[serde(default)]
    pub network: ContainerNetwork,
    /// Set for a CRI pod's container (`cri.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cri: Option<crate::cri_spec::CriSpec>,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
}

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountRec {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// Volume name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path (binds) or the volume's data dir.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// tmpfs options (`size=64m,mode=1777`).
    #[serde(default)]
    pub options: String,
    /// Copy the image's content at the destination into an empty new volume.
    #[serde(default)]
    pub copy_up: bool,
    /// Bind propagation as given (`rshared`, `rslave`, ...); empty = rprivate.
    #[serde(default)]
    pub propagation: String,
    /// `VolumeOptions.Subpath`: the part of the volume mounted (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// What a container asked of networks and, while it runs, what it got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerNetwork {
    /// Per network name: the endpoint settings asked for (aliases, IP, MAC,
    /// links), from `NetworkingConfig` at create and `network connect`.
    #[serde(default)]
    pub requested: BTreeMap<String, EndpointSettings>,
    /// The namespace the container runs in (empty: host's or a fresh one).
    #[serde(default)]
    pub sandbox_key: String,
    /// Per network name, while running.
    #[serde(default)]
    pub attached: BTreeMap<String, Attached>,
    #[serde(default)]
    pub ports: Vec<PortState>,
    /// The embedded DNS server its resolv.conf points at.
    #[serde(default)]
    pub dns_server: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Attached {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    pub host_veth: String,
    pub ifname: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortState {
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}
