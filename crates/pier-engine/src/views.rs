//! What the engine answers with: typed descriptions of containers, images,
//! networks and the daemon. The server turns them into Docker's JSON (key
//! order, `null`s and the legacy fields older clients read); the engine does
//! not shape JSON itself.

use std::collections::{BTreeMap, HashMap};

use pier_api::models::{
    ContainerBlkioStatEntry, ContainerConfig, ContainerNetworkStats, ContainerPidsStats,
    ContainerSummary, EndpointSettings, HostConfig, ImageSummary, IpamConfig, MountPoint,
    PortBinding,
};

use crate::records::StateRecord;

/// `GET /containers/{id}/json`: a container and what only the running
/// engine knows about it.
#[derive(Debug, Clone)]
pub struct ContainerDetails {
    pub id: String,
    pub created: String,
    /// Without the leading `/`.
    pub name: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: StateRecord,
    /// `State.Health`, when the container has a check and has run.
    pub health: Option<HealthReport>,
    pub image_id: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    /// The json-file log; `None` for other drivers (Docker shows no path).
    pub log_path: Option<String>,
    pub restart_count: i64,
    pub exec_ids: Vec<String>,
    /// As stored; its `Links` are replaced by [`ContainerDetails::links`].
    pub host_config: HostConfig,
    /// Legacy links as Docker shows them: `/child:/parent/alias`.
    pub links: Vec<String>,
    pub config: ContainerConfig,
    /// The MAC address asked for on the container's own network, which API
    /// versions before 1.44 read as `Config.MacAddress`.
    pub mac_address: Option<String>,
    pub mounts: Vec<MountPoint>,
    pub network: NetworkSettings,
    /// Asked for with `size=1`.
    pub size: Option<ContainerSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSize {
    /// Bytes in the container's writable layer.
    pub rw: i64,
    /// `rw` plus the image.
    pub root_fs: i64,
}

/// A container's health check state (`State.Health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: &'static str,
    pub failing_streak: i64,
    /// The last probes, oldest first.
    pub log: Vec<HealthProbe>,
}

/// One run of a health check's test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// A container's `NetworkSettings`.
#[derive(Debug, Clone, Default)]
pub struct NetworkSettings {
    /// Empty when the container has no namespace of its own.
    pub sandbox_id: String,
    pub sandbox_key: String,
    /// Exposed and published ports while it runs, in the order Docker lists
    /// them: exposed ones (`None`: not published) first.
    pub ports: Vec<(String, Option<Vec<PortBinding>>)>,
    /// The endpoint on the default bridge, which the deprecated top-level
    /// fields describe (all empty when not on it).
    pub bridge: BridgeEndpoint,
    /// Per network name, sorted by name.
    pub networks: Vec<(String, EndpointSettings)>,
}

/// The container's address on the default bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeEndpoint {
    pub endpoint_id: String,
    pub gateway: String,
    pub ip_address: String,
    pub ip_prefix_len: i64,
    pub mac_address: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub id: String,
    /// Familiar names (`busybox:latest`).
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Empty when not known locally.
    pub parent: String,
    pub comment: String,
    pub created: String,
    /// The container an image was committed from; empty otherwise.
    pub container: String,
    /// The committed container's config; `None` for other images.
    pub container_config: Option<ContainerConfig>,
    pub docker_version: String,
    pub author: String,
    pub config: Option<ContainerConfig>,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub size: i64,
    /// The layers' diff IDs, bottom first.
    pub layers: Vec<String>,
}

/// `GET /networks/{id}` and each entry of `GET /networks`.
#[derive(Debug, Clone)]
pub struct NetworkDetails {
    pub id: String,
    pub name: String,
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub enable_ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub ipam_options: Option<HashMap<String, String>>,
    pub ipam_config: Vec<IpamConfig>,
    /// Containers on it, by ID.
    pub containers: Vec<(String, NetworkContainer)>,
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// A container's endpoint as a network's inspect lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkContainer {
    pub name: String,
    pub endpoint_id: String,
    pub mac_address: String,
    /// `<ip>/<prefix>`; empty for containers on the host's stack.
    pub ipv4_address: String,
}

/// `GET /version`: what only the host can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReport {
    pub arch: String,
    pub kernel_version: String,
}

/// `GET /info`: counts and host facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemReport {
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub swap_limit: bool,
    pub system_time: String,
    pub logging_driver: String,
    /// `1` or `2`.
    pub cgroup_version: &'static str,
    pub kernel_version: String,
    pub architecture: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub data_root: String,
    pub hostname: String,
    /// The runtime (our shim) and where it is.
    pub runtime_path: String,
    /// `--registry-mirror`s as dockerd shows them (`http://host:port/`).
    pub registry_mirrors: Vec<String>,
}

/// `GET /system/df`.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub layers_size: i64,
    pub images: Vec<ImageSummary>,
    pub containers: Vec<ContainerSummary>,
    /// With `UsageData` filled in.
    pub volumes: Vec<pier_api::models::Volume>,
    pub build_cache: Vec<BuildCacheEntry>,
}

/// One build-cache record of `GET /system/df`.
#[derive(Debug, Clone)]
pub struct BuildCacheEntry {
    pub id: String,
    /// An image holds the same layer.
    pub shared: bool,
    pub size: i64,
    pub created: String,
}

/// One sample of `GET /containers/{id}/stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSample {
    /// When it was read; Docker's zero time for a stopped container.
    pub read: String,
    /// Without the leading `/`.
    pub name: String,
    pub id: String,
    /// `None` for a container that is not running: dockerd answers with
    /// zeroed counters then.
    pub cgroup: Option<CgroupSample>,
    /// Per interface of the container's own namespace, loopback left out.
    pub networks: Vec<(String, ContainerNetworkStats)>,
}

/// The cgroup counters of a running container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    pub cpu: CpuSample,
    pub memory: MemorySample,
    pub pids: ContainerPidsStats,
    pub blkio: BlkioSample,
}

/// CPU time in nanoseconds, and the host's (`system_cpu_usage`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub total_usage: u64,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
    /// cgroup v1 only.
    pub percpu_usage: Option<Vec<u64>>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    pub system_cpu_usage: u64,
    pub online_cpus: u64,
}

/// Memory counters; `None` for what the cgroup version does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: Option<u64>,
    pub max_usage: Option<u64>,
    pub failcnt: Option<u64>,
    pub limit: Option<u64>,
    pub stats: Option<BTreeMap<String, u64>>,
}

/// The two block I/O lists Pier reads (bytes and operations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlkioSample {
    pub io_service_bytes_recursive: Option<Vec<ContainerBlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<ContainerBlkioStatEntry>>,
}
