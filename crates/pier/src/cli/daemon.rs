//! `pier daemon`: the engine in the foreground.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Root directory of persistent Pier state
    #[arg(long = "data-root", env = "PIER_ROOT", default_value = "/var/lib/pier")]
    pub data_root: PathBuf,
    /// Root directory for execution state files
    #[arg(long = "exec-root", default_value = "/run/pier")]
    pub exec_root: PathBuf,
    /// Daemon socket to listen on
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Parent cgroup for all containers
    #[arg(long = "cgroup-parent", default_value = "pier")]
    pub cgroup_parent: String,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Enable insecure registry communication (host, host:port or CIDR; repeatable)
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
    /// Name of the default bridge network's interface (default pier0)
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// The default bridge's address and subnet, e.g. 10.20.0.1/24
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Pool new networks' subnets come from: base=CIDR,size=N (repeatable)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
    /// Group for the unix socket
    #[arg(short = 'G', long = "group", default_value = "docker")]
    pub group: String,
    /// Daemon configuration file (only `insecure-registries` is read from it)
    #[arg(long = "config-file", default_value = "/etc/pier/daemon.json")]
    pub config_file: PathBuf,
}

/// `insecure-registries` from daemon.json, like dockerd's; a missing file is
/// an empty config.
fn config_insecure_registries(path: &std::path::Path) -> Result<Vec<String>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let Some(list) = v.get("insecure-registries") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .with_context(|| format!("{}: insecure-registries is not a list", path.display()))?;
    list.iter()
        .map(|e| {
            e.as_str().map(str::to_string).with_context(|| {
                format!("{}: insecure-registries holds a non-string", path.display())
            })
        })
        .collect()
}

pub async fn run(a: DaemonArgs, global_host: Option<String>, global_debug: bool) -> Result<i32> {
    if std::env::var_os(pier_client::DETACH_ENV).is_some() {
        // Spawned by a CLI: leave its session so closing the terminal does not stop us.
        let _ = rustix::process::setsid();
    }
    let host = a
        .host
        .or(global_host)
        .unwrap_or_else(|| pier_client::DEFAULT_HOST.to_string());
    let socket = pier_client::socket_path(&host)?;
    let exe = std::env::current_exe().context("cannot find the pier binary")?;
    let shim_binary = exe
        .parent()
        .map(|d| d.join("pier-shim"))
        .unwrap_or_else(|| PathBuf::from("pier-shim"));
    let mut insecure_registries = config_insecure_registries(&a.config_file)?;
    insecure_registries.extend(a.insecure_registry);
    let network = pier_server::NetworkOptions::parse(
        a.bridge.as_deref(),
        a.bip.as_deref(),
        &a.default_address_pool,
    )?;
    let opts = pier_server::DaemonOptions {
        data_root: a.data_root,
        exec_root: a.exec_root,
        socket,
        cgroup_parent: a.cgroup_parent,
        shim_binary,
        debug: a.debug || global_debug,
        insecure_registries,
        network,
        group: a.group,
    };
    pier_server::run(opts).await?;
    Ok(0)
}
