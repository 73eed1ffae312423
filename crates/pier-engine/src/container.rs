//! Container records: create, list, inspect, rename, remove, prune.

use std::collections::HashMap;

use pier_api::models::{
    ContainerConfig, ContainerCreateBody, ContainerCreateResponse, ContainerPruneResponse,
    ContainerSummary, ContainerSummaryHostConfig, ContainerSummaryNetworkSettings,
    ContainerSummaryStateEnum, HostConfig,
};

use crate::names::{random_name, validate_name};
use crate::records::ContainerNetwork;
use crate::records::{ContainerRecord, StateRecord};
use crate::util::{now_rfc3339, parse_rfc3339, random_id, unix_of};
use crate::views::{ContainerDetails, ContainerSize};
use crate::{ContainerStatus, Engine, EngineError, Result};

/// `POST /containers/create`.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub body: ContainerCreateBody,
    /// The top-level `MacAddress` of API versions before 1.44 (the generated
    /// model no longer has it); applied to the container's own network.
    pub mac_address: Option<String>,
}

/// `GET /containers/json`.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: HashMap<String, Vec<String>>,
}

fn split_body(body: &ContainerCreateBody) -> Result<(ContainerConfig, HostConfig)> {
    let mut v = serde_json::to_value(body)
        .map_err(|e| EngineError::invalid_argument(format!("container config: {e}")))?;
    let host = v
        .as_object_mut()
        .and_then(|o| {
            o.remove("NetworkingConfig");
            o.remove("HostConfig")
        })
        .unwrap_or(serde_json::Value::Null);
    let cfg: ContainerConfig = serde_json::from_value(v)
        .map_err(|e| EngineError::invalid_argument(format!("container config: {e}")))?;
    let host: HostConfig = if host.is_null() {
        HostConfig::default()
    } else {
        serde_json::from_value(host)
            .map_err(|e| EngineError::invalid_argument(format!("host config: {e}")))?
    };
    Ok((cfg, host))
}

fn env_key(e: &str) -> &str {
    e.split('=').next().unwrap_or(e)
}

/// Merges the user's config over the image's, as Docker does.
fn merge_config(user: &mut ContainerConfig, image: &ContainerConfig) {
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in user.env.take().unwrap_or_default() {
        match env.iter_mut().find(|x| env_key(x) == env_key(&e)) {
            Some(x) => *x = e,
            None => env.push(e),
        }
    }
    user.env = Some(env);
    let user_entrypoint = user.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if user.entrypoint.is_none() {
        user.entrypoint = image.entrypoint.clone();
    } else if user
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.len() == 1 && e[0].is_empty())
    {
        // `--entrypoint ""` resets the image's entrypoint.
        user.entrypoint = None;
    }
    if user.cmd.as_ref().is_none_or(|c| c.is_empty()) && !user_entrypoint {
        user.cmd = image.cmd.clone();
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = image.user.clone();
    }
    if user.stop_signal.is_none() {
        user.stop_signal = image.stop_signal.clone();
    }
    if user.healthcheck.is_none() {
        user.healthcheck = image.healthcheck.clone();
    }
    if user.shell.is_none() {
        user.shell = image.shell.clone();
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(user.labels.take().unwrap_or_default());
    user.labels = Some(labels);
    let mut ports = image.exposed_ports.clone().unwrap_or_default();
    for p in user.exposed_ports.take().unwrap_or_default() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    user.exposed_ports = (!ports.is_empty()).then_some(ports);
    let mut vols = image.volumes.clone().unwrap_or_default();
    for v in user.volumes.take().unwrap_or_default() {
        if !vols.contains(&v) {
            vols.push(v);
        }
    }
    user.volumes = (!vols.is_empty()).then_some(vols);
    if user.on_build.is_none() {
        user.on_build = image.on_build.clone();
    }
}

/// Docker's human status: `Up 3 seconds`, `Exited (0) 5 minutes ago`.
pub(crate) fn human_status(s: &StateRecord, created: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let ago = |t: &str| -> String {
        parse_rfc3339(t)
            .map(|t| human_duration((now - t).whole_seconds().max(0)))
            .unwrap_or_default()
    };
    match s.status {
        ContainerStatus::Running => format!("Up {}", ago(&s.started_at)),
        ContainerStatus::Paused => format!("Up {} (Paused)", ago(&s.started_at)),
        ContainerStatus::Restarting => {
            format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at))
        }
        ContainerStatus::Exited => {
            format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at))
        }
        ContainerStatus::Created => {
            let _ = created;
            "Created".into()
        }
        ContainerStatus::Dead => "Dead".into(),
        ContainerStatus::Removing => "Removal In Progress".into(),
    }
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

/// Docker's list `Command`: arguments with spaces are single-quoted.
fn command_string(rec: &ContainerRecord) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    parts.join(" ")
}

/// Container directories kept ready; see `pier_snapshot::spare`.
pub(crate) const SPARE_DIRS: usize = 4;
/// The log file of a spare directory, renamed to `<id>-json.log` when taken.
const SPARE_LOG: &str = "log";

/// A container directory as a start needs it: the files bind-mounted as
/// /etc/hostname, /etc/hosts and /etc/resolv.conf (rewritten at each start)
/// and the log file, all empty.
pub(crate) fn container_dir_skeleton(dir: &std::path::Path) -> std::io::Result<()> {
    for f in ["hostname", "hosts", "resolv.conf"] {
        std::fs::write(dir.join(f), b"")?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::perms::LOG_MODE)
        .open(dir.join(SPARE_LOG))?;
    Ok(())
}

impl Engine {
    /// `POST /containers/create`.
    pub fn create_container(&self, opts: CreateOptions) -> Result<ContainerCreateResponse> {
        self.create_container_with(opts, None)
    }

    pub(crate) fn create_container_with(
        &self,
        opts: CreateOptions,
        cri: Option<crate::cri_spec::CriSpec>,
    ) -> Result<ContainerCreateResponse> {
        // A start usually follows within milliseconds.
        crate::cgroup_warm::prewarm();
        let (mut cfg, mut host) = split_body(&opts.body)?;
        let log_conf = normalize_host_config(&mut host, &self.cfg.log_defaults)?;
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        crate::validate::host_config(&host, ncpu)?;
        crate::isolation::check(&host, &cfg, &self.cfg.cdi_spec_dirs)?;
        self.check_join_targets(&host)?;
        crate::isolation::defaults(&mut host);
        let image_name = cfg
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| EngineError::invalid_argument("Config.Image must be set"))?;
        let image = self.find_image(&image_name)?;
        let image_cfg = image.config.config.clone().unwrap_or_default();
        merge_config(&mut cfg, &image_cfg);
        let mut network =
            self.network_for_create(&cfg, &mut host, opts.body.networking_config.as_ref())?;
        self.links_for_create(&mut host, &mut network)?;
        if let Some(mac) = opts.mac_address.as_deref().filter(|m| !m.is_empty()) {
            apply_mac(mac, &host, &mut network)?;
        }
        let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
        argv.extend(cfg.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::invalid_argument("No command specified"));
        }
        let id = random_id();
        if host.uts_mode.as_deref() == Some("host") {
            cfg.hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string());
        }
        if cfg.hostname.as_deref().unwrap_or("").is_empty() {
            cfg.hostname = Some(id[..12].to_string());
        }
        if cfg.working_dir.as_deref().unwrap_or("").is_empty() {
            cfg.working_dir = Some("/".into());
        }
        cfg.image = Some(image_name.clone());
        let name = match &opts.name {
            Some(n) if !n.is_empty() => {
                let n = n.strip_prefix('/').unwrap_or(n).to_string();
                validate_name(&n)?;
                n
            }
            _ => loop {
                let n = random_name();
                if self.meta.container_id_by_name(&n)?.is_none() {
                    break n;
                }
            },
        };
        if let Some(existing) = self.meta.container_id_by_name(&name)? {
            return Err(name_conflict(&name, &existing));
        }
        let dir = self.cfg.container_dir(&id);
        let log_path = crate::logconf::log_file(&dir, &id, log_conf.driver);
        match &self.spare_dirs {
            Some(pool) if pool.take_into(&dir) => {
                let made = dir.join(SPARE_LOG);
                match &log_path {
                    Some(p) => {
                        if let Some(parent) = p.parent() {
                            std::fs::create_dir_all(parent)
                                .map_err(|e| EngineError::from_io(parent, e))?;
                        }
                        std::fs::rename(&made, p).map_err(|e| EngineError::from_io(&made, e))?
                    }
                    None => {
                        std::fs::remove_file(&made).map_err(|e| EngineError::from_io(&made, e))?
                    }
                }
            }
            _ => {
                let d = log_path.as_deref().and_then(|p| p.parent()).unwrap_or(&dir);
                std::fs::create_dir_all(d).map_err(|e| EngineError::from_io(d, e))?
            }
        }
        let cgroups_path = crate::isolation::cgroups_path(&host, &self.cfg.cgroup_parent, &id);
        let rec = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            image: image_name,
            image_id: image.id.clone(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config: cfg,
            host_config: host,
            state: StateRecord::default(),
            restart_count: 0,
            chain_id: image.chain_id.clone(),
            log_path: log_path
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            cgroups_path,
            mounts: Vec::new(),
            network,
            cri: None,
        };
        let mut rec = rec;
        if let Some(c) = cri {
            if let Some(p) = &c.log_path {
                rec.log_path = p.display().to_string();
            }
            rec.cri = Some(c);
        }
        rec.mounts = match self.resolve_mounts(&rec) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.discard_dir(&self.cfg.data_root, &dir);
                return Err(e);
            }
        };
        if let Err(e) = self.meta.insert_container(&id, &name, &image.id, &rec) {
            let _ = self.discard_dir(&self.cfg.data_root, &dir);
            return Err(match e {
                pier_metadata::MetaError::Conflict(_) => name_conflict(&name, ""),
                e => e.into(),
            });
        }
        self.container_event("create", &rec, &[]);
        Ok(ContainerCreateResponse {
            id,
            warnings: Vec::new(),
        })
    }

    pub(crate) fn save_container(&self, rec: &ContainerRecord) -> Result<()> {
        self.meta
            .update_container(&rec.id, &rec.name, rec)
            .map_err(|e| match e {
                pier_metadata::MetaError::Conflict(n) => name_conflict(&n, ""),
                e => e.into(),
            })
    }

    /// Records a change of run state (an exit, a stop asked for, a start that
    /// happened). A full disk must not make the record lie ("Up" for a dead
    /// process, or a stop forgotten), so there the record is kept in memory,
    /// served to readers and written when space returns (pier-metadata).
    /// Returns whether it was written now.
    pub(crate) fn save_state(&self, rec: &ContainerRecord) -> Result<bool> {
        self.meta
            .update_container_or_defer(&rec.id, &rec.name, rec)
            .map_err(Into::into)
    }

    /// `GET /containers/json`. Blocking with `size` (see `container_size_rw`).
    pub fn list_containers(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let mut recs: Vec<ContainerRecord> = self.meta.containers()?;
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        let mut link_names = Engine::link_names(&recs);
        let explicit_status = opts.filters.contains_key("status");
        let filter = crate::container_filter::ContainerFilter::new(self, &opts.filters)?;
        for rec in recs {
            if rec.cri.is_some() {
                continue;
            }
            if !opts.all && opts.limit.is_none() && !explicit_status && !rec.state.running() {
                continue;
            }
            if !filter.matches_record(&rec) {
                continue;
            }
            let state = match rec.state.status {
                ContainerStatus::Running => ContainerSummaryStateEnum::RUNNING,
                ContainerStatus::Paused => ContainerSummaryStateEnum::PAUSED,
                ContainerStatus::Restarting => ContainerSummaryStateEnum::RESTARTING,
                ContainerStatus::Exited => ContainerSummaryStateEnum::EXITED,
                ContainerStatus::Dead => ContainerSummaryStateEnum::DEAD,
                ContainerStatus::Removing => ContainerSummaryStateEnum::REMOVING,
                ContainerStatus::Created => ContainerSummaryStateEnum::CREATED,
            };
            let size_rw = if opts.size {
                Some(self.container_size_rw(&rec))
            } else {
                None
            };
            let (ports, networks) = self.network_summary(&rec);
            if !filter.matches_attachments(self, &rec, &ports, &networks) {
                continue;
            }
            let mut names = vec![format!("/{}", rec.name)];
            names.extend(link_names.remove(&rec.id).unwrap_or_default());
            out.push(ContainerSummary {
                id: Some(rec.id.clone()),
                names: Some(names),
                image: Some(rec.image.clone()),
                image_id: Some(rec.image_id.clone()),
                command: Some(command_string(&rec)),
                created: Some(unix_of(&rec.created)),
                ports: Some(ports),
                size_rw,
                size_root_fs: size_rw.map(|s| s + self.image_size(&rec.image_id)),
                labels: rec.config.labels.clone(),
                state: Some(state),
                status: Some(human_status(&rec.state, &rec.created) + &self.health_suffix(&rec)),
                host_config: Some(ContainerSummaryHostConfig {
                    network_mode: Some(crate::network::mode_of(&rec)),
                    annotations: rec
                        .host_config
                        .annotations
                        .clone()
                        .filter(|a| !a.is_empty()),
                }),
                network_settings: Some(ContainerSummaryNetworkSettings {
                    networks: Some(networks),
                }),
                mounts: Some(crate::volumes::mount_points(&rec)),
                ..Default::default()
            });
            if let Some(l) = opts.limit
                && l > 0
                && out.len() >= l
            {
                break;
            }
        }
        Ok(out)
    }

    fn image_size(&self, id: &str) -> i64 {
        self.meta
            .image::<crate::ImageRecord>(id)
            .ok()
            .flatten()
            .map(|i| i.size)
            .unwrap_or(0)
    }

    /// Bytes in the writable layer. Blocking: it walks the whole layer, so
    /// callers in async code run it with spawn_blocking.
    pub(crate) fn container_size_rw(&self, rec: &ContainerRecord) -> i64 {
        self.snaps
            .upper(&rec.id)
            .and_then(|u| pier_snapshot::usage(&u))
            .unwrap_or(0) as i64
    }

    /// `GET /containers/{id}/json`. Blocking with `size` (see `container_size_rw`).
    pub fn inspect_container(&self, key: &str, size: bool) -> Result<ContainerDetails> {
        let rec = self.find_container(key)?;
        // Docker shows the path of json-file logs only.
        let json_file = crate::logconf::resolved_of(rec.host_config.log_config.as_ref()).driver
            == crate::logconf::Driver::JsonFile;
        let size = size.then(|| {
            let rw = self.container_size_rw(&rec);
            ContainerSize {
                rw,
                root_fs: rw + self.image_size(&rec.image_id),
            }
        });
        let mac_address = rec
            .network
            .requested
            .get(&crate::network::mode_of(&rec))
            .and_then(|ep| ep.mac_address.clone())
            .filter(|m| !m.is_empty());
        Ok(ContainerDetails {
            exec_ids: self.execs.ids_of(&rec.id),
            health: self.health_report(&rec),
            links: self.inspect_links(&rec),
            mounts: crate::volumes::mount_points(&rec),
            network: self.network_settings(&rec),
            log_path: json_file.then(|| rec.log_path.clone()),
            mac_address,
            size,
            id: rec.id,
            created: rec.created,
            name: rec.name,
            path: rec.path,
            args: rec.args,
            state: rec.state,
            image_id: rec.image_id,
            resolv_conf_path: rec.resolv_conf_path,
            hostname_path: rec.hostname_path,
            hosts_path: rec.hosts_path,
            restart_count: rec.restart_count,
            host_config: rec.host_config,
            config: rec.config,
        })
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename_container(&self, key: &str, new_name: &str) -> Result<()> {
        let mut rec = self.find_container(key)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        validate_name(new_name)?;
        if rec.name == new_name {
            return Err(EngineError::invalid_argument(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = self.meta.container_id_by_name(new_name)? {
            return Err(name_conflict(new_name, &other));
        }
        let old = std::mem::replace(&mut rec.name, new_name.to_string());
        self.save_container(&rec)?;
        self.container_event("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/prune`: stopped containers the filters allow.
    pub async fn prune_containers(
        self: &std::sync::Arc<Self>,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<ContainerPruneResponse> {
        let f = crate::prune_filter::PruneFilter::parse(filters, &[])?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for rec in self.meta.containers::<ContainerRecord>()? {
            let labels = rec.config.labels.clone().unwrap_or_default();
            if rec.cri.is_some() || rec.state.running() || !f.allows(&rec.created, &labels) {
                continue;
            }
            let (this, r) = (self.clone(), rec.clone());
            reclaimed += tokio::task::spawn_blocking(move || this.container_size_rw(&r)).await?;
            if self.remove_container(&rec.id, false, false).await.is_ok() {
                deleted.push(rec.id.clone());
            }
        }
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed),
        })
    }
}

/// Docker's defaults and checks for a new container's host config.
fn normalize_host_config(
    h: &mut HostConfig,
    log_defaults: &crate::logconf::LogDefaults,
) -> Result<crate::logconf::Resolved> {
    let log = h.log_config.get_or_insert_with(Default::default);
    crate::logconf::merge_and_validate(log, log_defaults).map_err(EngineError::invalid_argument)
}

/// A top-level `MacAddress` goes to the endpoint on the container's own
/// network, unless that endpoint asks for one itself (as Docker migrates it).
fn apply_mac(mac: &str, host: &HostConfig, network: &mut ContainerNetwork) -> Result<()> {
    if pier_network::link::parse_mac(mac).is_none() {
        return Err(EngineError::invalid_argument(format!(
            "invalid MAC address: {mac}"
        )));
    }
    let mode = host.network_mode.as_deref().unwrap_or("bridge");
    if mode.starts_with("container:") {
        return Err(EngineError::invalid_argument(
            "conflicting options: mac-address and the network mode",
        ));
    }
    if mode == "host" || mode == "none" {
        return Ok(());
    }
    let ep = network.requested.entry(mode.to_string()).or_default();
    if ep.mac_address.as_deref().unwrap_or("").is_empty() {
        ep.mac_address = Some(mac.to_string());
    }
    Ok(())
}

fn name_conflict(name: &str, id: &str) -> EngineError {
    EngineError::conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_config_overrides_image() {
        let image = ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            working_dir: Some("/app".into()),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: Some(vec!["A=2".into(), "B=3".into()]),
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        merge_config(&mut user, &image);
        assert_eq!(user.env.unwrap(), vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(user.cmd.unwrap(), vec!["echo", "hi"]);
        assert_eq!(user.working_dir.as_deref(), Some("/app"));

        // A user entrypoint drops the image's CMD.
        let image = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            entrypoint: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge_config(&mut user, &image);
        assert_eq!(user.cmd, None);
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
