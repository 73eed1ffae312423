//! A CNI client with libcni's semantics, for pod networking as containerd
//! and CRI-O do it.
//!
//! - [`load_conf_dir`]: `*.conflist`, `*.conf`, `*.json` of a conf dir
//!   (`/etc/cni/net.d`), lowest file name first.
//! - [`Cni::add`] runs each plugin of a network in order with the `CNI_*`
//!   environment, each one's result going to the next as `prevResult`, and
//!   keeps the last result on disk; [`Cni::del`] runs them in reverse with
//!   that cached result; [`Cni::check`] in order.
//! - [`Cni::setup_pod`] / [`Cni::teardown_pod`]: `lo` then `eth0` on the
//!   default network, as containerd's CRI; teardown uses the cached configs.
//! - Capability arguments ([`RuntimeConfig`]: `portMappings`, `dns`,
//!   `ipRanges`, `bandwidth`, ...) go to the plugins that declare them.

mod cache;
mod config;
mod error;
mod exec;
mod pod;
mod types;
mod version;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

pub use config::{conf_files, load_conf_dir, NetworkConfigList, PluginConf, CONF_EXTENSIONS};
pub use error::{CniError, Result};
pub use exec::Command;
pub use pod::{CachedAttachment, PodNetwork, POD_IFNAME};
pub use types::{
    Bandwidth, CniResult, Dns, DnsConfig, Interface, IpConfig, IpRange, PortMapping, Route,
    RuntimeConf, RuntimeConfig,
};

use cache::CachedInfo;
use exec::{Limits, Who};
use version::Version;

pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// The upstream location first, then Debian's `containernetworking-plugins`.
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
/// Where libcni (and so containerd and CRI-O) keep their cached results.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";

#[derive(Debug, Clone)]
pub struct CniOptions {
    pub conf_dir: PathBuf,
    /// Searched in order for plugin binaries; also the plugins' `CNI_PATH`.
    pub bin_dirs: Vec<PathBuf>,
    /// Results are kept under `<cache_dir>/results/`.
    pub cache_dir: PathBuf,
    /// How long one plugin may run before its process group is killed.
    pub plugin_timeout: Duration,
    /// The most stdout read from a plugin; more is an error.
    pub output_limit: usize,
}

impl Default for CniOptions {
    fn default() -> Self {
        CniOptions {
            conf_dir: DEFAULT_CONF_DIR.into(),
            bin_dirs: DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect(),
            cache_dir: DEFAULT_CACHE_DIR.into(),
            plugin_timeout: Duration::from_secs(60),
            output_limit: 1 << 20,
        }
    }
}

/// Runs networks' plugins. Cheap to clone; holds no state beyond its options
/// (the results live in the cache dir).
#[derive(Debug, Clone, Default)]
pub struct Cni {
    opts: CniOptions,
}

impl Cni {
    pub fn new(opts: CniOptions) -> Cni {
        Cni { opts }
    }

    pub fn options(&self) -> &CniOptions {
        &self.opts
    }

    /// The networks of the conf dir, lowest file name first (the first is
    /// the default network).
    pub async fn load_networks(&self) -> Result<Vec<NetworkConfigList>> {
        let dir = self.opts.conf_dir.clone();
        tokio::task::spawn_blocking(move || load_conf_dir(&dir))
            .await
            .map_err(|e| CniError::Invalid(format!("config loader: {e}")))?
    }

    /// The default network: the conf dir's first.
    pub async fn default_network(&self) -> Result<NetworkConfigList> {
        self.load_networks()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CniError::NoConfig {
                dir: self.opts.conf_dir.clone(),
            })
    }

    /// Checks that every plugin of `net` is installed and speaks its
    /// `cniVersion` (the VERSION command), as libcni's ValidateNetworkList;
    /// a runtime reports its network ready only then.
    pub async fn validate(&self, net: &NetworkConfigList) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Versions {
            #[serde(rename = "supportedVersions", default)]
            supported: Vec<String>,
        }
        for plugin in &net.plugins {
            let who = Who {
                network: &net.name,
                plugin: &plugin.plugin_type,
                command: Command::Version,
            };
            let path = self.find(net, plugin)?;
            let stdin = serde_json::to_vec(&serde_json::json!({"cniVersion": net.cni_version}))
                .unwrap_or_default();
            let env = [("CNI_COMMAND", "VERSION".to_string())];
            let out = exec::run(&who, &path, &env, stdin, &self.limits()).await?;
            let v: Versions = serde_json::from_slice(&out).map_err(|e| CniError::BadOutput {
                network: net.name.clone(),
                plugin: plugin.plugin_type.clone(),
                command: Command::Version.as_str(),
                msg: format!("invalid version answer: {e}"),
            })?;
            let want = net.version();
            if !v.supported.iter().any(|s| Version::parse(s) == Some(want)) {
                return Err(CniError::Network {
                    network: net.name.clone(),
                    msg: format!(
                        "plugin {} does not support config version {:?} (it supports {})",
                        plugin.plugin_type,
                        net.cni_version,
                        v.supported.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// The network named `name` in the conf dir.
    pub async fn network(&self, name: &str) -> Result<NetworkConfigList> {
        self.load_networks()
            .await?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| CniError::NoNetwork(name.to_string()))
    }

    /// Attaches `rt`'s namespace to `net`. On failure what was set up is
    /// deleted again (best effort) before the error is returned.
    pub async fn add(&self, net: &NetworkConfigList, rt: &RuntimeConf) -> Result<CniResult> {
        validate(net, rt)?;
        let caps = rt.runtime_config.to_map();
        let mut prev: Option<Value> = None;
        for plugin in &net.plugins {
            let out = match self
                .run_plugin(net, plugin, Command::Add, rt, prev.as_ref(), &caps)
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    if let Err(d) = self.run_del(net, rt, prev.as_ref(), &caps, true).await {
                        tracing::warn!("cleaning up a failed CNI ADD: {d}");
                    }
                    return Err(e);
                }
            };
            let v: Value = serde_json::from_slice(&out).map_err(|e| CniError::BadOutput {
                network: net.name.clone(),
                plugin: plugin.plugin_type.clone(),
                command: Command::Add.as_str(),
                msg: format!("invalid result: {e}"),
            })?;
            prev = Some(v);
        }
        let raw = prev.unwrap_or(Value::Null);
        let bytes = serde_json::to_vec(&raw).unwrap_or_default();
        let last = net.plugins.last().map_or("", |p| p.plugin_type.as_str());
        let result =
            CniResult::parse(&bytes, &net.cni_version).map_err(|msg| CniError::BadOutput {
                network: net.name.clone(),
                plugin: last.to_string(),
                command: Command::Add.as_str(),
                msg,
            })?;
        let mut info = CachedInfo::new(&rt.container_id, &rt.ifname, &net.name, &net.bytes);
        info.netns = rt.netns.to_string_lossy().into_owned();
        info.cni_args = rt
            .args
            .iter()
            .map(|(k, v)| [k.clone(), v.clone()])
            .collect();
        info.capability_args = caps;
        info.result = Some(raw);
        cache::write(&self.cache_path(net, rt), &info).await?;
        Ok(result)
    }

    /// Detaches `rt` from `net`: every plugin's DEL, last plugin first, with
    /// the cached ADD result. Succeeds when it is already gone.
    pub async fn del(&self, net: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        validate(net, rt)?;
        let path = self.cache_path(net, rt);
        let prev = if net.version() >= Version::V0_4_0 {
            match cache::read(&path).await {
                Ok(c) => c.and_then(|c| c.result),
                // A broken entry must not make the pod undeletable.
                Err(e) => {
                    tracing::warn!("{e}; deleting without prevResult");
                    None
                }
            }
        } else {
            None
        };
        self.run_del(net, rt, prev.as_ref(), &rt.runtime_config.to_map(), false)
            .await?;
        cache::remove(&path).await
    }

    /// Asks every plugin whether the attachment is still as ADD left it.
    pub async fn check(&self, net: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        validate(net, rt)?;
        if net.version() < Version::V0_4_0 {
            return Err(CniError::Network {
                network: net.name.clone(),
                msg: format!(
                    "configuration version {:?} does not support the CHECK command",
                    net.cni_version
                ),
            });
        }
        if net.disable_check {
            return Ok(());
        }
        let prev = cache::read(&self.cache_path(net, rt))
            .await?
            .and_then(|c| c.result)
            .ok_or_else(|| CniError::Network {
                network: net.name.clone(),
                msg: format!(
                    "no cached result for container {} interface {}",
                    rt.container_id, rt.ifname
                ),
            })?;
        let caps = rt.runtime_config.to_map();
        for plugin in &net.plugins {
            self.run_plugin(net, plugin, Command::Check, rt, Some(&prev), &caps)
                .await?;
        }
        Ok(())
    }

    /// The result ADD left for this attachment, if any.
    pub async fn cached_result(
        &self,
        net: &NetworkConfigList,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CniResult>> {
        let path = cache::path(&self.opts.cache_dir, &net.name, container_id, ifname);
        let Some(raw) = cache::read(&path).await?.and_then(|c| c.result) else {
            return Ok(None);
        };
        let bytes = serde_json::to_vec(&raw).unwrap_or_default();
        CniResult::parse(&bytes, &net.cni_version)
            .map(Some)
            .map_err(|msg| CniError::Config { path, msg })
    }

    /// DEL, last plugin first. As libcni, the first failure stops it; when
    /// `best_effort` (undoing a failed ADD) every plugin still gets its DEL
    /// and the first failure is returned after.
    async fn run_del(
        &self,
        net: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: Option<&Value>,
        caps: &Map<String, Value>,
        best_effort: bool,
    ) -> Result<()> {
        let mut first = None;
        for plugin in net.plugins.iter().rev() {
            if let Err(e) = self
                .run_plugin(net, plugin, Command::Del, rt, prev, caps)
                .await
            {
                if !best_effort {
                    return Err(e);
                }
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn cache_path(&self, net: &NetworkConfigList, rt: &RuntimeConf) -> PathBuf {
        cache::path(
            &self.opts.cache_dir,
            &net.name,
            &rt.container_id,
            &rt.ifname,
        )
    }

    async fn run_plugin(
        &self,
        net: &NetworkConfigList,
        plugin: &PluginConf,
        command: Command,
        rt: &RuntimeConf,
        prev: Option<&Value>,
        caps: &Map<String, Value>,
    ) -> Result<Vec<u8>> {
        let who = Who {
            network: &net.name,
            plugin: &plugin.plugin_type,
            command,
        };
        let path = self.find(net, plugin)?;
        let stdin = plugin_config(net, plugin, prev, caps);
        let env = [
            ("CNI_COMMAND", command.as_str().to_string()),
            ("CNI_CONTAINERID", rt.container_id.clone()),
            ("CNI_NETNS", rt.netns.to_string_lossy().into_owned()),
            ("CNI_IFNAME", rt.ifname.clone()),
            (
                "CNI_ARGS",
                rt.args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            (
                "CNI_PATH",
                self.opts
                    .bin_dirs
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
        ];
        exec::run(&who, &path, &env, stdin, &self.limits()).await
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.opts.plugin_timeout,
            stdout: self.opts.output_limit,
        }
    }

    fn find(&self, net: &NetworkConfigList, plugin: &PluginConf) -> Result<PathBuf> {
        exec::find_plugin(&self.opts.bin_dirs, &plugin.plugin_type).ok_or_else(|| {
            CniError::PluginNotFound {
                network: net.name.clone(),
                plugin: plugin.plugin_type.clone(),
                dirs: self
                    .opts
                    .bin_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
    }
}

/// The JSON a plugin reads: its own object with the network's name and
/// version, the previous result, and the runtime config of the
/// capabilities it declares.
fn plugin_config(
    net: &NetworkConfigList,
    plugin: &PluginConf,
    prev: Option<&Value>,
    caps: &Map<String, Value>,
) -> Vec<u8> {
    let mut obj = plugin.raw.clone();
    obj.insert("name".into(), Value::String(net.name.clone()));
    obj.insert("cniVersion".into(), Value::String(net.cni_version.clone()));
    if let Some(p) = prev {
        obj.insert("prevResult".into(), p.clone());
    }
    let mut runtime = Map::new();
    if let Some(Value::Object(declared)) = plugin.raw.get("capabilities") {
        for (name, on) in declared {
            if on == &Value::Bool(true)
                && let Some(arg) = caps.get(name)
            {
                runtime.insert(name.clone(), arg.clone());
            }
        }
    }
    if !runtime.is_empty() {
        obj.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}

/// libcni's checks: these names become file names and interface names.
fn validate(net: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
    let bad = |msg: String| CniError::Network {
        network: net.name.clone(),
        msg,
    };
    config::check_name(&net.name).map_err(bad)?;
    if !config::valid_id(&rt.container_id) {
        return Err(bad(format!(
            "container ID {:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'",
            rt.container_id
        )));
    }
    let ifname = &rt.ifname;
    if ifname.is_empty()
        || ifname.len() > 15
        || ifname == "."
        || ifname == ".."
        || ifname
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(bad(format!("interface name {ifname:?} is not valid")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
