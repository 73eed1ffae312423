//! What the CRI server (`pier-cri`) needs of the engine beyond the Docker
//! API's entry points. A pod's container is an engine container whose record
//! carries a [`CriSpec`]: it joins the namespaces held by its pod's holder
//! process (`pier-shim pause`) instead of getting Docker networking, writes its
//! log in the kubelet's format at the kubelet's path, and is hidden from the
//! Docker API's lists, as containerd keeps CRI objects in their own namespace.

use std::process::Stdio;

use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::cri_spec::{CriSpec, NsMode};
use crate::records::ContainerRecord;
use crate::{CreateOptions, Engine, EngineError, Result};

/// Namespaces a pod's holder process makes.
#[derive(Debug, Clone, Default)]
pub struct PauseOptions {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub pid: bool,
    pub hostname: Option<String>,
}

/// Namespace of kv records the CRI server keeps its sandboxes in.
const CRI_KV: &str = "cri";

impl Engine {
    /// Creates a pod container (see the module docs); the rest of its life
    /// goes through the usual entry points (`start_container`, ...).
    pub fn create_cri_container(&self, opts: CreateOptions, cri: CriSpec) -> Result<String> {
        if let Some(dir) = cri.log_path.as_deref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::from_io(dir, e))?;
        }
        self.create_container_with(opts, Some(cri)).map(|r| r.id)
    }

    /// Every pod container's record.
    pub fn cri_containers(&self) -> Result<Vec<ContainerRecord>> {
        let recs: Vec<ContainerRecord> = self.meta.containers()?;
        Ok(recs.into_iter().filter(|r| r.cri.is_some()).collect())
    }

    /// Starts a pod's namespace holder and returns its pid.
    pub async fn start_pause(&self, o: &PauseOptions) -> Result<i32> {
        let mut cmd = tokio::process::Command::new(&self.cfg.shim_binary);
        cmd.arg("pause");
        for (on, flag) in [
            (o.net, "--net"),
            (o.ipc, "--ipc"),
            (o.uts, "--uts"),
            (o.pid, "--pid"),
        ] {
            if on {
                cmd.arg(flag);
            }
        }
        if let Some(h) = &o.hostname {
            cmd.args(["--hostname", h]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| EngineError::from_io(&self.cfg.shim_binary, e))?;
        let out = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = tokio::io::BufReader::new(out).read_line(&mut line).await;
        let _ = child.wait().await;
        read.map_err(|e| EngineError::from_io(&self.cfg.shim_binary, e))?;
        match line.trim_end().split_once(' ') {
            Some(("ok", pid)) => pid
                .parse()
                .map_err(|_| EngineError::internal(format!("pod holder said {line:?}"))),
            Some(("error", msg)) => Err(EngineError::internal(format!("pod holder: {msg}"))),
            _ => Err(EngineError::internal(format!("pod holder said {line:?}"))),
        }
    }

    /// CRI's ReopenContainerLog: the shim opens the log path again.
    pub async fn reopen_cri_log(&self, id: &str) -> Result<()> {
        self.shim_of(id)?.reopen_log().await
    }

    /// Stores a CRI server record (sandboxes) in the metadata database.
    pub fn cri_put<T: Serialize>(&self, key: &str, v: &T) -> Result<()> {
        Ok(self.meta.kv_put(CRI_KV, key, v)?)
    }

    pub fn cri_list<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<(String, T)>> {
        Ok(self.meta.kv_list(CRI_KV)?)
    }

    pub fn cri_delete(&self, key: &str) -> Result<bool> {
        Ok(self.meta.kv_delete(CRI_KV, key)?)
    }
}

fn ns_of(m: &NsMode) -> pier_runtime::spec::Namespace {
    match m {
        NsMode::New => pier_runtime::spec::Namespace::New,
        NsMode::Host => pier_runtime::spec::Namespace::Host,
        NsMode::Join(p) => pier_runtime::spec::Namespace::Join(p.clone()),
    }
}

/// Points a pod container's spec options at its pod's namespaces.
pub(crate) fn apply_options(c: &CriSpec, o: &mut pier_runtime::spec::SpecOptions) {
    o.network = match &c.net {
        NsMode::New => pier_runtime::spec::NetworkNs::New,
        NsMode::Host => pier_runtime::spec::NetworkNs::Host,
        NsMode::Join(p) => pier_runtime::spec::NetworkNs::Path(p.clone()),
    };
    o.ipc = ns_of(&c.ipc);
    if c.ipc == NsMode::Host {
        o.shm = pier_runtime::spec::Shm::Bind("/dev/shm".into());
    }
    o.pid = ns_of(&c.pid);
}

/// The masked and read-only paths the kubelet asked for, and its mounts'
/// read-only and propagation options.
pub(crate) fn apply_spec(c: &CriSpec, spec: &mut oci_spec::runtime::Spec) {
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            let Some(cm) = c.mounts.iter().find(|cm| {
                m.typ().as_deref() == Some("bind")
                    && m.destination().as_os_str() == cm.destination.as_str()
            }) else {
                continue;
            };
            let mut o = vec![
                "rbind".to_string(),
                if cm.readonly { "ro" } else { "rw" }.to_string(),
            ];
            if cm.recursive_readonly {
                o.push("rro".into());
            }
            o.push(cm.propagation.clone());
            m.set_options(Some(o));
        }
    }
    // A mount that propagates back to the host needs a shared root, as
    // containerd sets rootfsPropagation (the runtime's default is slave,
    // which already lets host mounts in).
    let root_prop = c
        .mounts
        .iter()
        .any(|m| m.propagation == "rshared")
        .then_some("shared");
    if let Some(linux) = spec.linux_mut() {
        if let Some(p) = root_prop {
            linux.set_rootfs_propagation(Some(p.to_string()));
        }
        if let Some(m) = &c.masked_paths {
            linux.set_masked_paths(Some(m.clone()));
        }
        if let Some(r) = &c.readonly_paths {
            linux.set_readonly_paths(Some(r.clone()));
        }
    }
}
