#![recursion_limit = "256"]
//! The engine: everything the daemon does, behind async methods that the
//! server's routes call. It owns the metadata database, the content store, the
//! snapshotter and the live state of running containers (their shims).

mod build;
mod build_prune;
mod cdi;
mod cgroup_warm;
mod changes;
mod container;
mod container_filter;
mod cpfs;
mod cri;
mod cri_spec;
mod defaults;
mod devices;
mod error;
mod events;
mod exec;
mod fsops;
mod health;
mod image;
mod image_chain;
mod image_filter;
mod isolation;
mod lifecycle;
mod links;
pub mod logconf;
mod logread;
mod logs;
mod mountinfo;
mod names;
mod network;
pub mod perms;
mod prestart;
mod prune_filter;
mod reap;
mod records;
mod registry;
mod resources;
mod restart_policy;
mod restore;
mod shim;
mod spec;
mod state;
mod stats;
mod sweep;
mod system;
mod trash;
mod update;
mod util;
mod validate;
mod views;
mod volume_mount;
mod volume_subpath;
mod volumes;
mod wait;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pier_content::ContentStore;
use pier_metadata::Metadata;
use pier_snapshot::Snapshotter;

pub use build::EngineBackend;
pub use build_prune::{BuildPruneOptions, BuildPruneReport};
pub use container::{CreateOptions, ListOptions};
pub use cri::PauseOptions;
pub use cri_spec::{CriMount, CriSpec, NsMode};
pub use defaults::ContainerDefaults;
pub use error::{EngineError, ErrorKind, Result};
pub use events::EventFilter;
pub use exec::{ExecService, ExecStart};
pub use logs::frame;
pub use logs::LogOptions;
pub use network::service::NetworkService;
pub use pier_network::{AddressPool, NetworkOptions};
pub use pier_registry::{AuthConfig, RegistryError};
pub use records::{ContainerRecord, ImageRecord, StateRecord};
pub use registry::{configure as configure_registries, pull_reference, MessageSink};
pub use shim::AttachOptions;
pub use state::{ContainerStatus, UnknownStatus};
pub use util::{channel_stream, json_line, now_rfc3339, ByteStream, ChannelWriter};
pub use views::{
    BlkioSample, BridgeEndpoint, CgroupSample, ContainerDetails, ContainerSize, CpuSample,
    DiskUsage, HealthProbe, HealthReport, ImageDetails, MemorySample, NetworkContainer,
    NetworkDetails, NetworkSettings, StatsSample, SystemReport, VersionReport,
};
pub use volumes::VolumeService;
pub use wait::WaitCondition;

/// Where the engine keeps things and how it runs containers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub cgroup_parent: String,
    pub shim_binary: PathBuf,
    /// `--bridge`, `--bip`, `--default-address-pool`.
    pub network: NetworkOptions,
    /// The daemon's default log driver and options.
    pub log_defaults: logconf::LogDefaults,
    /// Where CDI specs are read (`--cdi-spec-dir`; default `/etc/cdi`,
    /// `/var/run/cdi`).
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// daemon.json `dns`, `dns-opts`, `dns-search`, `default-ulimits`.
    pub container_defaults: ContainerDefaults,
}

impl EngineConfig {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.data_root.join("containers").join(id)
    }
    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }
    fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
    /// The init layer shared by containers of the image with this chain ID.
    fn init_layer_dir(&self, chain_id: Option<&str>) -> PathBuf {
        let name = chain_id.map_or_else(|| "scratch".to_string(), |c| c.replace(':', "-"));
        self.data_root.join("init").join(name)
    }
}

/// The engine. Share it as `Arc<Engine>`.
pub struct Engine {
    cfg: EngineConfig,
    meta: Arc<Metadata>,
    content: ContentStore,
    snaps: Snapshotter,
    live: Mutex<HashMap<String, Arc<lifecycle::Live>>>,
    execs: exec::ExecService,
    health: Mutex<HashMap<String, health::Health>>,
    op_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pending: Mutex<HashMap<String, Vec<lifecycle::PendingAttach>>>,
    exits: tokio::sync::broadcast::Sender<wait::ExitEvent>,
    recent_exits: Mutex<std::collections::VecDeque<(std::time::Instant, String, wait::ExitEvent)>>,
    events: Arc<events::Events>,
    volumes: volumes::VolumeService,
    networks: NetworkService,
    started: std::time::Instant,
    /// Container directories made ahead (see `pier_snapshot::spare`).
    spare_dirs: Option<pier_snapshot::spare::SparePool>,
    /// Shims and roots begun at create for the coming start (prestart.rs).
    prestarts: Mutex<HashMap<String, prestart::Prestart>>,
    /// Held per container while its root is checked and mounted.
    mount_lock: util::KeyedLock,
    /// Delays before the next restart of each container (restart_policy.rs).
    backoff: restart_policy::Backoff,
}

impl Engine {
    /// Opens the stores under the data root and reconnects to the shims of
    /// containers that were running when the previous daemon stopped.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        logconf::validate(&cfg.log_defaults.driver, &cfg.log_defaults.opts)
            .map_err(|e| EngineError::invalid_argument(format!("failed to set log opts: {e}")))?;
        cfg.container_defaults.validate()?;
        for dir in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.exec_root.join("containers"),
            cfg.runtime_root(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::from_io(&dir, e))?;
        }
        perms::secure_roots(&cfg)?;
        let meta = Metadata::open(&cfg.data_root.join("meta.db"))?;
        let content = ContentStore::open(cfg.data_root.join("content"))
            .map_err(|e| EngineError::internal("content store").with_source(e))?;
        let snaps = Snapshotter::open(cfg.data_root.join("snapshots"))
            .map_err(|e| EngineError::internal("snapshotter").with_source(e))?;
        // Writes interrupted by a crash (kill -9 mid-pull or mid-unpack) never
        // became visible; drop their leftovers.
        if let Err(e) = content.cleanup_ingest() {
            tracing::warn!("cleaning the content store's ingest dir: {e}");
        }
        if let Err(e) = snaps.cleanup() {
            tracing::warn!("cleaning unfinished snapshots: {e}");
        }
        let cfg_spare_dir = cfg.data_root.join("spare-containers");
        let meta = Arc::new(meta);
        let events = Arc::new(events::Events::new());
        let volumes = volumes::VolumeService::new(
            meta.clone(),
            events.clone(),
            cfg.data_root.join("volumes"),
        );
        let networks = NetworkService::new(
            &cfg.network,
            cfg.container_defaults.dns.clone(),
            meta.clone(),
            events.clone(),
        );
        let engine = Arc::new(Engine {
            cfg,
            meta,
            content,
            snaps,
            live: Mutex::new(HashMap::new()),
            execs: exec::ExecService::default(),
            health: Mutex::new(HashMap::new()),
            op_locks: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            exits: tokio::sync::broadcast::channel(1024).0,
            recent_exits: Mutex::new(Default::default()),
            events,
            volumes,
            networks,
            started: std::time::Instant::now(),
            spare_dirs: pier_snapshot::spare::SparePool::new(
                cfg_spare_dir,
                container::SPARE_DIRS,
                container::container_dir_skeleton,
            )
            .map_err(|e| tracing::warn!("spare container directories: {e}"))
            .ok(),
            prestarts: Mutex::new(HashMap::new()),
            mount_lock: util::KeyedLock::default(),
            backoff: Default::default(),
        });
        // Again, for the directories the stores made on a fresh install.
        perms::secure_roots(&engine.cfg)?;
        engine.restore_networks().await;
        engine.clone().restore().await;
        engine.catch_up_after_full_disk();
        Ok(engine)
    }

    /// After a full disk, writes the records kept in memory meanwhile and
    /// takes the space reserve again, as soon as there is room.
    fn catch_up_after_full_disk(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                tick.tick().await;
                let Some(e) = weak.upgrade() else { return };
                if e.meta.deferred_count() > 0 || !e.meta.reserve_held() {
                    let _ = tokio::task::spawn_blocking(move || e.meta.maintain()).await;
                }
            }
        });
    }

    /// Named and anonymous volumes.
    pub fn volumes(&self) -> &volumes::VolumeService {
        &self.volumes
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn data_root(&self) -> &Path {
        &self.cfg.data_root
    }

    /// A per-container lock that serialises start/stop/remove of one container.
    fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.op_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// Where a container's root is mounted.
    pub(crate) fn merged_path(&self, id: &str) -> PathBuf {
        self.snaps.root().join("containers").join(id).join("merged")
    }

    fn drop_op_lock(&self, id: &str) {
        self.op_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
