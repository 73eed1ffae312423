//! Pod sandboxes: a record (in the engine's metadata, namespace `cri`) and
//! the holder process of the pod's namespaces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::convert::{btree, hash, now_ns, random_id, selects, status_of};
use crate::proto::{self, NamespaceMode, PodSandboxState};
use crate::Cri;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SandboxRec {
    pub id: String,
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
    pub created_ns: i64,
    pub ready: bool,
    /// The holder's pid (0 once stopped).
    pub pid: i32,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub hostname: String,
    pub log_directory: String,
    pub host_net: bool,
    pub host_ipc: bool,
    /// `NamespaceMode` of the pod's pid namespace.
    pub pid_mode: i32,
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
    pub cgroup_parent: String,
    pub sysctls: BTreeMap<String, String>,
    pub runtime_handler: String,
    /// The pod's addresses from CNI (empty without it).
    #[serde(default)]
    pub ips: Vec<String>,
    /// Port mappings handed to CNI (kept for the DEL).
    #[serde(default)]
    pub port_mappings: Vec<(u16, u16, String, String)>,
    /// Whether CNI attached the pod (and so must detach it).
    #[serde(default)]
    pub cni: bool,
}

impl SandboxRec {
    pub fn ns_path(&self, kind: &str) -> std::path::PathBuf {
        format!("/proc/{}/ns/{kind}", self.pid).into()
    }

    fn state(&self) -> PodSandboxState {
        if self.ready && holder_alive(self.pid) {
            PodSandboxState::SandboxReady
        } else {
            PodSandboxState::SandboxNotready
        }
    }

    fn metadata(&self) -> proto::PodSandboxMetadata {
        proto::PodSandboxMetadata {
            name: self.name.clone(),
            uid: self.uid.clone(),
            namespace: self.namespace.clone(),
            attempt: self.attempt,
        }
    }
}

/// Whether `pid` is still our holder (a pid can be reused once it is gone).
fn holder_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = cmd.split(|b| *b == 0);
    let bin = args.next().unwrap_or_default();
    bin.ends_with(b"pier-shim")
        && args.next() == Some(b"pause")
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
            .unwrap_or(false)
}

/// `CNI_ARGS` as the kubelet's runtimes send them.
fn cni_args(s: &SandboxRec) -> Vec<(String, String)> {
    [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", s.namespace.as_str()),
        ("K8S_POD_NAME", s.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", s.id.as_str()),
        ("K8S_POD_UID", s.uid.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn cni_runtime_config(s: &SandboxRec) -> pier_cni::RuntimeConfig {
    pier_cni::RuntimeConfig {
        port_mappings: s
            .port_mappings
            .iter()
            .map(|(h, c, p, ip)| pier_cni::PortMapping {
                host_port: *h,
                container_port: *c,
                protocol: p.clone(),
                host_ip: ip.clone(),
            })
            .collect(),
        dns: Some(pier_cni::DnsConfig {
            servers: s.dns_servers.clone(),
            searches: s.dns_searches.clone(),
            options: s.dns_options.clone(),
        }),
        ..Default::default()
    }
}

fn kill_holder(pid: i32) {
    if holder_alive(pid)
        && let Some(p) = rustix::process::Pid::from_raw(pid)
    {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

impl Cri {
    pub(crate) fn sandboxes(&self) -> Result<Vec<SandboxRec>, Status> {
        Ok(self
            .engine
            .cri_list::<SandboxRec>()
            .map_err(status_of)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// A sandbox by full id or unique prefix.
    pub(crate) fn sandbox(&self, key: &str) -> Result<Option<SandboxRec>, Status> {
        if key.is_empty() {
            return Err(Status::invalid_argument("pod sandbox id must be set"));
        }
        let all = self.sandboxes()?;
        if let Some(s) = all.iter().find(|s| s.id == key) {
            return Ok(Some(s.clone()));
        }
        let mut m = all.into_iter().filter(|s| s.id.starts_with(key));
        match (m.next(), m.next()) {
            (Some(s), None) => Ok(Some(s)),
            (Some(_), Some(_)) => Err(Status::invalid_argument(format!(
                "pod sandbox id {key:?} is ambiguous"
            ))),
            _ => Ok(None),
        }
    }

    pub(crate) async fn run_pod_sandbox(
        &self,
        req: proto::RunPodSandboxRequest,
    ) -> Result<proto::RunPodSandboxResponse, Status> {
        let cfg = req
            .config
            .ok_or_else(|| Status::invalid_argument("sandbox config must be set"))?;
        let md = cfg.metadata.clone().unwrap_or_default();
        if md.name.is_empty() {
            return Err(Status::invalid_argument(
                "sandbox metadata name must be set",
            ));
        }
        if !req.runtime_handler.is_empty() && req.runtime_handler != "runc" {
            return Err(Status::invalid_argument(format!(
                "unknown runtime handler {:?}",
                req.runtime_handler
            )));
        }
        let linux = cfg.linux.clone().unwrap_or_default();
        let sec = linux.security_context.clone().unwrap_or_default();
        let nso = sec.namespace_options.clone().unwrap_or_default();
        if nso
            .userns_options
            .as_ref()
            .is_some_and(|u| u.mode != NamespaceMode::Node as i32)
        {
            return Err(Status::invalid_argument(
                "user namespaces are not supported by Pier",
            ));
        }
        let host_net = nso.network == NamespaceMode::Node as i32;
        let host_ipc = nso.ipc == NamespaceMode::Node as i32;
        // No hostname asked for: the node's, as containerd does.
        let hostname = if host_net || cfg.hostname.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default()
        } else {
            cfg.hostname.clone()
        };
        let _guard = self.sandboxes.lock().await;
        let dup = self.sandboxes()?.into_iter().any(|s| {
            s.name == md.name
                && s.namespace == md.namespace
                && s.uid == md.uid
                && s.attempt == md.attempt
        });
        if dup {
            return Err(Status::already_exists(format!(
                "pod sandbox {}_{}_{}_{} is already reserved",
                md.name, md.namespace, md.uid, md.attempt
            )));
        }
        let pid = self
            .engine
            .start_pause(&pier_engine::PauseOptions {
                net: !host_net,
                ipc: !host_ipc,
                uts: !host_net,
                pid: nso.pid == NamespaceMode::Pod as i32,
                hostname: (!host_net).then(|| hostname.clone()),
            })
            .await
            .map_err(status_of)?;
        let dns = cfg.dns_config.clone().unwrap_or_default();
        let port_mappings = cfg
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| {
                let proto = match proto::Protocol::try_from(p.protocol).unwrap_or_default() {
                    proto::Protocol::Tcp => "tcp",
                    proto::Protocol::Udp => "udp",
                    proto::Protocol::Sctp => "sctp",
                };
                (
                    p.host_port as u16,
                    p.container_port as u16,
                    proto.to_string(),
                    p.host_ip.clone(),
                )
            })
            .collect();
        let mut rec = SandboxRec {
            id: random_id(),
            name: md.name.clone(),
            uid: md.uid.clone(),
            namespace: md.namespace.clone(),
            attempt: md.attempt,
            created_ns: now_ns(),
            ready: true,
            pid,
            labels: btree(&cfg.labels),
            annotations: btree(&cfg.annotations),
            hostname,
            log_directory: cfg.log_directory.clone(),
            host_net,
            host_ipc,
            pid_mode: nso.pid,
            dns_servers: dns.servers,
            dns_searches: dns.searches,
            dns_options: dns.options,
            cgroup_parent: linux.cgroup_parent.clone(),
            sysctls: btree(&linux.sysctls),
            runtime_handler: req.runtime_handler.clone(),
            ips: Vec::new(),
            port_mappings,
            cni: false,
        };
        if !host_net && let Some(cni) = &self.cni {
            let netns = rec.ns_path("net");
            match cni
                .setup_pod(&rec.id, &netns, &cni_args(&rec), &cni_runtime_config(&rec))
                .await
            {
                Ok(net) => {
                    rec.cni = true;
                    rec.ips = net
                        .result
                        .ips
                        .iter()
                        .map(|i| i.address.split('/').next().unwrap_or_default().to_string())
                        .collect();
                }
                // No network configured: the pod has loopback only.
                Err(pier_cni::CniError::NoConfig { .. }) => {}
                Err(e) => {
                    kill_holder(pid);
                    return Err(Status::internal(format!(
                        "setting up the network of pod sandbox {}: {e}",
                        rec.id
                    )));
                }
            }
        }
        if let Err(e) = self.engine.cri_put(&rec.id, &rec) {
            kill_holder(pid);
            return Err(status_of(e));
        }
        Ok(proto::RunPodSandboxResponse {
            pod_sandbox_id: rec.id,
        })
    }

    pub(crate) async fn stop_pod_sandbox(&self, id: &str) -> Result<(), Status> {
        // An unknown sandbox is already stopped (the Idempotence specs).
        let Some(mut s) = self.sandbox(id)? else {
            return Ok(());
        };
        for c in self.containers_of(&s.id)? {
            self.stop_one(&c.id, 0).await?;
        }
        let _guard = self.sandboxes.lock().await;
        self.detach_network(&mut s).await?;
        kill_holder(s.pid);
        s.ready = false;
        self.engine.cri_put(&s.id, &s).map_err(status_of)
    }

    pub(crate) async fn remove_pod_sandbox(&self, id: &str) -> Result<(), Status> {
        let Some(mut s) = self.sandbox(id)? else {
            return Ok(());
        };
        for c in self.containers_of(&s.id)? {
            self.remove_one(&c.id).await?;
        }
        let _guard = self.sandboxes.lock().await;
        self.detach_network(&mut s).await?;
        kill_holder(s.pid);
        self.engine.cri_delete(&s.id).map_err(status_of)?;
        Ok(())
    }

    /// CNI DEL while the holder (and so the namespace) is still there.
    async fn detach_network(&self, s: &mut SandboxRec) -> Result<(), Status> {
        if !s.cni {
            return Ok(());
        }
        if let Some(cni) = &self.cni {
            cni.teardown_pod(
                &s.id,
                &s.ns_path("net"),
                &cni_args(s),
                &cni_runtime_config(s),
            )
            .await
            .map_err(|e| {
                Status::internal(format!(
                    "detaching pod sandbox {} from its network: {e}",
                    s.id
                ))
            })?;
        }
        s.cni = false;
        self.engine.cri_put(&s.id, &*s).map_err(status_of)
    }

    pub(crate) fn pod_sandbox_status(
        &self,
        req: proto::PodSandboxStatusRequest,
    ) -> Result<proto::PodSandboxStatusResponse, Status> {
        let s = self.sandbox(&req.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", req.pod_sandbox_id))
        })?;
        let mode = |host: bool| {
            (if host {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            }) as i32
        };
        let status = proto::PodSandboxStatus {
            id: s.id.clone(),
            metadata: Some(s.metadata()),
            state: s.state() as i32,
            created_at: s.created_ns,
            network: Some(proto::PodSandboxNetworkStatus {
                ip: s.ips.first().cloned().unwrap_or_default(),
                additional_ips: s
                    .ips
                    .iter()
                    .skip(1)
                    .map(|ip| proto::PodIp { ip: ip.clone() })
                    .collect(),
            }),
            linux: Some(proto::LinuxPodSandboxStatus {
                namespaces: Some(proto::Namespace {
                    options: Some(proto::NamespaceOption {
                        network: mode(s.host_net),
                        pid: s.pid_mode,
                        ipc: mode(s.host_ipc),
                        target_id: String::new(),
                        userns_options: None,
                    }),
                }),
            }),
            labels: hash(&s.labels),
            annotations: hash(&s.annotations),
            runtime_handler: s.runtime_handler.clone(),
        };
        let mut info = std::collections::HashMap::new();
        if req.verbose {
            let v = serde_json::json!({ "pid": s.pid, "sandbox": &s });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(proto::PodSandboxStatusResponse {
            status: Some(status),
            info,
            containers_statuses: Vec::new(),
            timestamp: now_ns(),
        })
    }

    pub(crate) fn list_pod_sandbox(
        &self,
        req: proto::ListPodSandboxRequest,
    ) -> Result<proto::ListPodSandboxResponse, Status> {
        let f = req.filter.unwrap_or_default();
        let mut items = Vec::new();
        for s in self.sandboxes()? {
            let state = s.state();
            if !f.id.is_empty() && !s.id.starts_with(&f.id) {
                continue;
            }
            if let Some(st) = &f.state
                && st.state != state as i32
            {
                continue;
            }
            if !selects(&f.label_selector, &s.labels) {
                continue;
            }
            items.push(proto::PodSandbox {
                id: s.id.clone(),
                metadata: Some(s.metadata()),
                state: state as i32,
                created_at: s.created_ns,
                labels: hash(&s.labels),
                annotations: hash(&s.annotations),
                runtime_handler: s.runtime_handler.clone(),
            });
        }
        items.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(proto::ListPodSandboxResponse { items })
    }
}
