//! Pod containers: CRI container configs to engine create bodies, and the
//! engine's records back to CRI statuses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pier_api::models::{ContainerCreateBody, DeviceMapping, HostConfig};
use pier_engine::{
    ContainerRecord, ContainerStatus as EngineStatus, CreateOptions, CriMount, CriSpec, NsMode,
};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::convert::{btree, hash, ns_of, selects, status_of};
use crate::proto::{self, ContainerState, MountPropagation, NamespaceMode, SecurityProfile};
use crate::sandbox::SandboxRec;
use crate::Cri;

/// What the CRI server keeps in `CriSpec::server`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CtrMeta {
    pub name: String,
    pub attempt: u32,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The image as the kubelet named it.
    pub image: String,
    pub mounts: Vec<(String, String, bool, i32)>,
}

pub(crate) fn meta_of(rec: &ContainerRecord) -> (String, CtrMeta) {
    let c = rec.cri.clone().unwrap_or_default();
    (
        c.sandbox_id,
        serde_json::from_value(c.server).unwrap_or_default(),
    )
}

fn state_of(rec: &ContainerRecord) -> ContainerState {
    match rec.state.status {
        EngineStatus::Created => ContainerState::ContainerCreated,
        EngineStatus::Running | EngineStatus::Paused | EngineStatus::Restarting => {
            ContainerState::ContainerRunning
        }
        EngineStatus::Exited | EngineStatus::Dead => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

/// The daemon's own `oom_score_adj`: without CAP_SYS_RESOURCE nothing below it
/// can be set (containerd's `restrict_oom_score_adj`).
fn clamp_oom(v: i64) -> i64 {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(-1000);
    v.clamp(own, 1000)
}

fn seccomp_opt(p: Option<&SecurityProfile>, privileged: bool) -> Result<Option<String>, Status> {
    use proto::security_profile::ProfileType;
    if privileged {
        return Ok(Some("seccomp=unconfined".into()));
    }
    let Some(p) = p else {
        // No profile asked for: unconfined, as containerd and the kubelet mean it.
        return Ok(Some("seccomp=unconfined".into()));
    };
    match ProfileType::try_from(p.profile_type).unwrap_or(ProfileType::Unconfined) {
        ProfileType::RuntimeDefault => Ok(None),
        ProfileType::Unconfined => Ok(Some("seccomp=unconfined".into())),
        ProfileType::Localhost => {
            let path = p.localhost_ref.trim_start_matches("localhost/");
            let json = std::fs::read_to_string(path)
                .map_err(|e| Status::invalid_argument(format!("seccomp profile {path}: {e}")))?;
            Ok(Some(format!("seccomp={json}")))
        }
    }
}

fn user_of(sec: &proto::LinuxContainerSecurityContext) -> Result<Option<String>, Status> {
    let group = sec.run_as_group.as_ref().map(|g| g.value);
    let user = if !sec.run_as_username.is_empty() {
        sec.run_as_username.clone()
    } else if let Some(u) = &sec.run_as_user {
        u.value.to_string()
    } else if group.is_some() {
        return Err(Status::invalid_argument(
            "run_as_group is set without run_as_user or run_as_username",
        ));
    } else {
        return Ok(None);
    };
    Ok(Some(match group {
        Some(g) => format!("{user}:{g}"),
        None => user,
    }))
}

fn bind_of(m: &proto::Mount) -> Result<(String, CriMount), Status> {
    if m.image.is_some() {
        // The kubelet's spec: an image volume is read-only.
        if !m.readonly {
            return Err(Status::invalid_argument("image volumes must be read-only"));
        }
        // Unimplemented is how critest (and the kubelet) learn it is missing.
        return Err(Status::unimplemented(
            "image volumes are not supported by Pier",
        ));
    }
    if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        return Err(Status::invalid_argument(
            "id-mapped mounts are not supported by Pier",
        ));
    }
    let mut src = PathBuf::from(&m.host_path);
    if let Ok(real) = std::fs::canonicalize(&src) {
        src = real;
    }
    let prop = match MountPropagation::try_from(m.propagation).unwrap_or_default() {
        MountPropagation::PropagationPrivate => "rprivate",
        MountPropagation::PropagationHostToContainer => "rslave",
        MountPropagation::PropagationBidirectional => "rshared",
    };
    if m.recursive_read_only {
        if !m.readonly {
            return Err(Status::invalid_argument(
                "recursive read-only mount needs readonly to be set",
            ));
        }
        if prop != "rprivate" {
            return Err(Status::invalid_argument(
                "recursive read-only mount needs private propagation",
            ));
        }
    }
    let rw = if m.readonly { "ro" } else { "rw" };
    let cm = CriMount {
        destination: m.container_path.clone(),
        readonly: m.readonly,
        recursive_readonly: m.recursive_read_only,
        propagation: prop.into(),
    };
    Ok((format!("{}:{}:{rw}", src.display(), m.container_path), cm))
}

impl Cri {
    pub(crate) fn containers(&self) -> Result<Vec<ContainerRecord>, Status> {
        self.engine.cri_containers().map_err(status_of)
    }

    pub(crate) fn containers_of(&self, sandbox: &str) -> Result<Vec<ContainerRecord>, Status> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|r| meta_of(r).0 == sandbox)
            .collect())
    }

    /// A pod container by full id or unique prefix.
    pub(crate) fn container(&self, key: &str) -> Result<Option<ContainerRecord>, Status> {
        if key.is_empty() {
            return Err(Status::invalid_argument("container id must be set"));
        }
        let all = self.containers()?;
        if let Some(c) = all.iter().find(|c| c.id == key) {
            return Ok(Some(c.clone()));
        }
        let mut m = all.into_iter().filter(|c| c.id.starts_with(key));
        match (m.next(), m.next()) {
            (Some(c), None) => Ok(Some(c)),
            (Some(_), Some(_)) => Err(Status::invalid_argument(format!(
                "container id {key:?} is ambiguous"
            ))),
            _ => Ok(None),
        }
    }

    pub(crate) fn must_container(&self, key: &str) -> Result<ContainerRecord, Status> {
        self.container(key)?
            .ok_or_else(|| Status::not_found(format!("container {key:?} not found")))
    }

    pub(crate) async fn create_container(
        &self,
        req: proto::CreateContainerRequest,
    ) -> Result<String, Status> {
        let s = self.sandbox(&req.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", req.pod_sandbox_id))
        })?;
        let cfg = req
            .config
            .ok_or_else(|| Status::invalid_argument("container config must be set"))?;
        let md = cfg.metadata.clone().unwrap_or_default();
        if md.name.is_empty() {
            return Err(Status::invalid_argument(
                "container metadata name must be set",
            ));
        }
        let image = cfg.image.clone().unwrap_or_default().image;
        if image.is_empty() {
            return Err(Status::invalid_argument("container image must be set"));
        }
        let linux = cfg.linux.clone().unwrap_or_default();
        let sec = linux.security_context.clone().unwrap_or_default();
        let res = linux.resources.clone().unwrap_or_default();
        let nso = sec.namespace_options.clone().unwrap_or_default();
        let (body, spec) = self.body_for(&s, &cfg, &sec, &res, &nso, &image)?;
        let name = format!(
            "k8s_{}_{}_{}_{}_{}",
            md.name, s.name, s.namespace, s.uid, md.attempt
        );
        let meta = CtrMeta {
            name: md.name.clone(),
            attempt: md.attempt,
            labels: btree(&cfg.labels),
            annotations: btree(&cfg.annotations),
            image,
            mounts: cfg
                .mounts
                .iter()
                .map(|m| {
                    (
                        m.container_path.clone(),
                        m.host_path.clone(),
                        m.readonly,
                        m.propagation,
                    )
                })
                .collect(),
        };
        let spec = CriSpec {
            server: serde_json::to_value(&meta).unwrap_or_default(),
            ..spec
        };
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            engine.create_cri_container(
                CreateOptions {
                    name: Some(name),
                    body,
                    mac_address: None,
                },
                spec,
            )
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(status_of)
    }

    fn body_for(
        &self,
        s: &SandboxRec,
        cfg: &proto::ContainerConfig,
        sec: &proto::LinuxContainerSecurityContext,
        res: &proto::LinuxContainerResources,
        nso: &proto::NamespaceOption,
        image: &str,
    ) -> Result<(ContainerCreateBody, CriSpec), Status> {
        let mut security_opt = Vec::new();
        if sec.no_new_privs {
            security_opt.push("no-new-privileges".to_string());
        }
        if let Some(o) = seccomp_opt(sec.seccomp.as_ref(), sec.privileged)? {
            security_opt.push(o);
        }
        let (binds, mounts): (Vec<String>, Vec<CriMount>) = cfg
            .mounts
            .iter()
            .map(bind_of)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let devices = cfg
            .devices
            .iter()
            .map(|d| DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(d.container_path.clone()),
                cgroup_permissions: Some(if d.permissions.is_empty() {
                    "rwm".into()
                } else {
                    d.permissions.clone()
                }),
            })
            .collect();
        let caps = sec.capabilities.clone().unwrap_or_default();
        let pos = |v: i64| (v > 0).then_some(v);
        let host = HostConfig {
            network_mode: Some("none".into()),
            binds: Some(binds),
            devices: Some(devices),
            privileged: Some(sec.privileged),
            readonly_rootfs: Some(sec.readonly_rootfs),
            cap_add: Some(caps.add_capabilities.clone()),
            cap_drop: Some(caps.drop_capabilities.clone()),
            security_opt: Some(security_opt),
            group_add: Some(
                sec.supplemental_groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect(),
            ),
            oom_score_adj: (res.oom_score_adj != 0).then(|| clamp_oom(res.oom_score_adj)),
            cgroup_parent: Some(s.cgroup_parent.clone()).filter(|p| !p.is_empty()),
            cpu_period: pos(res.cpu_period),
            cpu_quota: pos(res.cpu_quota),
            cpu_shares: pos(res.cpu_shares),
            memory: pos(res.memory_limit_in_bytes),
            memory_swap: pos(res.memory_swap_limit_in_bytes),
            cpuset_cpus: Some(res.cpuset_cpus.clone()).filter(|c| !c.is_empty()),
            cpuset_mems: Some(res.cpuset_mems.clone()).filter(|c| !c.is_empty()),
            sysctls: Some(
                s.sysctls
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            annotations: Some(cfg.annotations.clone()),
            dns: Some(s.dns_servers.clone()),
            dns_search: Some(s.dns_searches.clone()),
            dns_options: Some(s.dns_options.clone()),
            uts_mode: s.host_net.then(|| "host".to_string()),
            ..Default::default()
        };
        let env = cfg
            .envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
            .collect();
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: (!s.host_net).then(|| s.hostname.clone()),
            user: user_of(sec)?,
            env: Some(env),
            entrypoint: (!cfg.command.is_empty()).then(|| cfg.command.clone()),
            cmd: (!cfg.command.is_empty() || !cfg.args.is_empty()).then(|| cfg.args.clone()),
            working_dir: Some(cfg.working_dir.clone()).filter(|w| !w.is_empty()),
            tty: Some(cfg.tty),
            open_stdin: Some(cfg.stdin),
            stdin_once: Some(cfg.stdin_once),
            labels: Some(cfg.labels.clone()),
            host_config: Some(host),
            ..Default::default()
        };
        let pid = match NamespaceMode::try_from(nso.pid).unwrap_or(NamespaceMode::Container) {
            NamespaceMode::Node => NsMode::Host,
            NamespaceMode::Pod => NsMode::Join(s.ns_path("pid")),
            NamespaceMode::Target => {
                let t = self.must_container(&nso.target_id)?;
                if t.state.pid <= 0 {
                    return Err(Status::failed_precondition(format!(
                        "target container {} is not running",
                        t.id
                    )));
                }
                NsMode::Join(format!("/proc/{}/ns/pid", t.state.pid).into())
            }
            NamespaceMode::Container => NsMode::New,
        };
        let log_path = (!s.log_directory.is_empty() && !cfg.log_path.is_empty())
            .then(|| PathBuf::from(&s.log_directory).join(&cfg.log_path));
        let spec = CriSpec {
            sandbox_id: s.id.clone(),
            net: if s.host_net {
                NsMode::Host
            } else {
                NsMode::Join(s.ns_path("net"))
            },
            ipc: if s.host_ipc {
                NsMode::Host
            } else {
                NsMode::Join(s.ns_path("ipc"))
            },
            pid,
            masked_paths: (!sec.privileged).then(|| sec.masked_paths.clone()),
            readonly_paths: (!sec.privileged).then(|| sec.readonly_paths.clone()),
            log_path,
            mounts,
            server: serde_json::Value::Null,
        };
        Ok((body, spec))
    }

    pub(crate) async fn start_one(&self, id: &str) -> Result<(), Status> {
        let rec = self.must_container(id)?;
        let (sb, _) = meta_of(&rec);
        if let Some(s) = self.sandbox(&sb)?
            && !s.host_net
            && s.pid <= 0
        {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {sb} is stopped"
            )));
        }
        self.engine
            .start_container(&rec.id)
            .await
            .map_err(status_of)
    }

    /// Stops a container; an unknown or stopped one is fine (Idempotence).
    pub(crate) async fn stop_one(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let Some(rec) = self.container(id)? else {
            return Ok(());
        };
        if !rec.state.running() {
            return Ok(());
        }
        match self
            .engine
            .stop_container(&rec.id, Some(timeout), None)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == pier_engine::ErrorKind::NotModified => Ok(()),
            Err(e) => Err(status_of(e)),
        }
    }

    pub(crate) async fn remove_one(&self, id: &str) -> Result<(), Status> {
        let Some(rec) = self.container(id)? else {
            return Ok(());
        };
        match self.engine.remove_container(&rec.id, true, true).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == pier_engine::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(status_of(e)),
        }
    }

    fn image_ref(&self, rec: &ContainerRecord) -> String {
        rec.image_id.clone()
    }

    pub(crate) fn list_containers(
        &self,
        f: Option<proto::ContainerFilter>,
    ) -> Result<Vec<proto::Container>, Status> {
        let f = f.unwrap_or_default();
        let mut out = Vec::new();
        for rec in self.containers()? {
            let (sb, m) = meta_of(&rec);
            let state = state_of(&rec);
            if (!f.id.is_empty() && !rec.id.starts_with(&f.id))
                || (!f.pod_sandbox_id.is_empty() && !sb.starts_with(&f.pod_sandbox_id))
                || f.state.as_ref().is_some_and(|s| s.state != state as i32)
                || !selects(&f.label_selector, &m.labels)
            {
                continue;
            }
            out.push(proto::Container {
                id: rec.id.clone(),
                pod_sandbox_id: sb,
                metadata: Some(proto::ContainerMetadata {
                    name: m.name.clone(),
                    attempt: m.attempt,
                }),
                image: Some(proto::ImageSpec {
                    image: m.image.clone(),
                    ..Default::default()
                }),
                image_ref: self.image_ref(&rec),
                state: state as i32,
                created_at: ns_of(&rec.created),
                labels: hash(&m.labels),
                annotations: hash(&m.annotations),
                image_id: rec.image_id.clone(),
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(out)
    }

    pub(crate) fn container_status(
        &self,
        req: proto::ContainerStatusRequest,
    ) -> Result<proto::ContainerStatusResponse, Status> {
        let rec = self.must_container(&req.container_id)?;
        let (_, m) = meta_of(&rec);
        let state = state_of(&rec);
        let st = &rec.state;
        let reason = match state {
            ContainerState::ContainerExited if st.oom_killed => "OOMKilled",
            ContainerState::ContainerExited if st.exit_code == 0 => "Completed",
            ContainerState::ContainerExited => "Error",
            _ => "",
        };
        let status = proto::ContainerStatus {
            id: rec.id.clone(),
            metadata: Some(proto::ContainerMetadata {
                name: m.name.clone(),
                attempt: m.attempt,
            }),
            state: state as i32,
            created_at: ns_of(&rec.created),
            started_at: ns_of(&st.started_at),
            finished_at: if state == ContainerState::ContainerExited {
                ns_of(&st.finished_at)
            } else {
                0
            },
            exit_code: st.exit_code as i32,
            image: Some(proto::ImageSpec {
                image: m.image.clone(),
                ..Default::default()
            }),
            image_ref: self.image_ref(&rec),
            reason: reason.into(),
            message: st.error.clone(),
            labels: hash(&m.labels),
            annotations: hash(&m.annotations),
            mounts: m
                .mounts
                .iter()
                .map(|(c, h, ro, p)| proto::Mount {
                    container_path: c.clone(),
                    host_path: h.clone(),
                    readonly: *ro,
                    propagation: *p,
                    ..Default::default()
                })
                .collect(),
            log_path: rec
                .cri
                .as_ref()
                .and_then(|c| c.log_path.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            image_id: rec.image_id.clone(),
            ..Default::default()
        };
        let mut info = std::collections::HashMap::new();
        if req.verbose {
            let v = serde_json::json!({
                "pid": st.pid,
                "sandboxID": meta_of(&rec).0,
                "config": { "image": m.image, "args": rec.args, "path": rec.path },
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(proto::ContainerStatusResponse {
            status: Some(status),
            info,
        })
    }
}
