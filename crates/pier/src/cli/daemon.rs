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
    let opts = pier_server::DaemonOptions {
        data_root: a.data_root,
        exec_root: a.exec_root,
        socket,
        cgroup_parent: a.cgroup_parent,
        shim_binary,
        debug: a.debug || global_debug,
    };
    pier_server::run(opts).await?;
    Ok(0)
}
