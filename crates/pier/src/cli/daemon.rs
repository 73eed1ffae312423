//! `pier daemon`: the engine in the foreground.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

use super::daemon_config::{tracing_level, ContainerDefaultFlags, DaemonConfig};
use super::daemon_hosts::{check_plain_tcp, parse_listen, tls_options, TlsFlags};

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Root directory of persistent Pier state (default /var/lib/pier)
    #[arg(long = "data-root", env = "PIER_ROOT")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state files (default /run/pier)
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// Daemon socket(s) to listen on: unix:///path or tcp://ADDR:PORT (repeatable)
    #[arg(short = 'H', long = "host")]
    pub host: Vec<String>,
    /// Use TLS on TCP addresses; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and require client certificates signed by --tlscacert
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// Serve plain HTTP on non-loopback TCP addresses: unauthenticated root access
    #[arg(long = "insecure-tcp")]
    pub insecure_tcp: bool,
    /// Parent cgroup for all containers
    #[arg(long = "cgroup-parent", default_value = "pier")]
    pub cgroup_parent: String,
    /// Directory of CDI device specs (repeatable; default /etc/cdi and /var/run/cdi)
    #[arg(long = "cdi-spec-dir")]
    pub cdi_spec_dir: Vec<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Set the logging format ("text"|"json")
    #[arg(long = "log-format")]
    pub log_format: Option<String>,
    /// Enable insecure registry communication (host, host:port or CIDR; repeatable)
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
    /// Preferred Docker registry mirror (repeatable; tried in order before Docker Hub)
    #[arg(long = "registry-mirror")]
    pub registry_mirror: Vec<String>,
    /// Registry config directory: certs.d/<host>/ with certificates and hosts.toml
    /// (repeatable; default /etc/pier/certs.d and /etc/docker/certs.d)
    #[arg(long = "hosts-dir")]
    pub hosts_dir: Vec<PathBuf>,
    /// Name of the default bridge network's interface (default pier0)
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// The default bridge's address and subnet, e.g. 10.20.0.1/24
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Pool new networks' subnets come from: base=CIDR,size=N (repeatable)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
    /// Group for the unix socket (default docker)
    #[arg(short = 'G', long = "group")]
    pub group: Option<String>,
    /// Default driver for container logs (json-file, local, none)
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Default log driver options (KEY=VALUE; repeatable)
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// DNS server for containers that set none (repeatable)
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// DNS option for containers that set none (repeatable)
    #[arg(long = "dns-opt")]
    pub dns_opt: Vec<String>,
    /// DNS search domain for containers that set none (repeatable)
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Ulimit for containers that do not set it: NAME=SOFT[:HARD] (repeatable)
    #[arg(long = "default-ulimit")]
    pub default_ulimit: Vec<String>,
    /// Containers keep running while the daemon is down (always on in Pier)
    #[arg(long = "live-restore")]
    pub live_restore: bool,
    /// The Kubernetes CRI socket: unix:///path (default unix://<exec-root>/cri.sock); "" or none turns CRI off
    #[arg(long = "cri-socket")]
    pub cri_socket: Option<String>,
    /// CNI network configs for CRI pods (default /etc/cni/net.d; "" gives pods loopback only)
    #[arg(long = "cni-conf-dir")]
    pub cni_conf_dir: Option<String>,
    /// Daemon configuration file
    #[arg(long = "config-file", default_value = "/etc/pier/daemon.json")]
    pub config_file: PathBuf,
}

/// `KEY=VALUE` pairs of `--log-opt`.
fn log_opts(list: &[String]) -> Result<HashMap<String, String>> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("invalid key/value pair format in logging opts: {s}"),
        })
        .collect()
}

pub async fn run(
    a: DaemonArgs,
    global_host: Option<String>,
    global_debug: bool,
    global_log_level: Option<String>,
) -> Result<i32> {
    if std::env::var_os(pier_client::DETACH_ENV).is_some() {
        // Spawned by a CLI: leave its session so closing the terminal does not stop us.
        let _ = rustix::process::setsid();
    }
    let file = DaemonConfig::load(&a.config_file)?;
    let mut host_flag = a.host.clone();
    if let Some(h) = global_host {
        host_flag.insert(0, h);
    }
    let debug_flag = a.debug || global_debug;
    let level_flag = a.log_level.or(global_log_level);
    let mut given: Vec<(&str, String)> = Vec::new();
    let mut give = |flag, v: Option<String>| {
        if let Some(v) = v {
            given.push((flag, v));
        }
    };
    give(
        "data-root",
        a.data_root.as_ref().map(|p| p.display().to_string()),
    );
    give(
        "exec-root",
        a.exec_root.as_ref().map(|p| p.display().to_string()),
    );
    give("host", (!host_flag.is_empty()).then(|| host_flag.join(",")));
    give("tls", a.tls.then(|| "true".to_string()));
    give("tlsverify", a.tlsverify.then(|| "true".to_string()));
    give(
        "tlscacert",
        a.tlscacert.as_ref().map(|p| p.display().to_string()),
    );
    give(
        "tlscert",
        a.tlscert.as_ref().map(|p| p.display().to_string()),
    );
    give("tlskey", a.tlskey.as_ref().map(|p| p.display().to_string()));
    give("cri-socket", a.cri_socket.clone());
    give("debug", debug_flag.then(|| "true".to_string()));
    give("log-level", level_flag.clone());
    give("log-format", a.log_format.clone());
    give(
        "insecure-registry",
        (!a.insecure_registry.is_empty()).then(|| a.insecure_registry.join(",")),
    );
    give(
        "registry-mirror",
        (!a.registry_mirror.is_empty()).then(|| a.registry_mirror.join(",")),
    );
    give("log-driver", a.log_driver.clone());
    give("bridge", a.bridge.clone());
    give("bip", a.bip.clone());
    give(
        "default-address-pool",
        (!a.default_address_pool.is_empty()).then(|| a.default_address_pool.join(" ")),
    );
    give("group", a.group.clone());
    give(
        "log-opt",
        (!a.log_opt.is_empty()).then(|| a.log_opt.join(",")),
    );
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.join(","));
    give("dns", list(&a.dns));
    give("dns-opt", list(&a.dns_opt));
    give("dns-search", list(&a.dns_search));
    give("default-ulimit", list(&a.default_ulimit));
    give("live-restore", a.live_restore.then(|| "true".to_string()));
    file.check_flags(&given).map_err(|e| {
        anyhow::anyhow!(
            "unable to configure the Docker daemon with file {}: {e}",
            a.config_file.display()
        )
    })?;

    let tls = tls_options(TlsFlags {
        tls: a.tls || file.tls.unwrap_or(false),
        verify: a.tlsverify || file.tlsverify.unwrap_or(false),
        ca: a.tlscacert.or(file.tlscacert.clone()),
        cert: a.tlscert.or(file.tlscert.clone()),
        key: a.tlskey.or(file.tlskey.clone()),
    });
    let mut hosts_given = host_flag;
    if hosts_given.is_empty() {
        hosts_given = file.hosts.clone().unwrap_or_default();
    }
    if hosts_given.is_empty() {
        hosts_given.push(pier_client::DEFAULT_HOST.to_string());
    }
    let hosts = hosts_given
        .iter()
        .map(|h| parse_listen(h, tls.is_some()))
        .collect::<Result<Vec<_>>>()?;
    check_plain_tcp(&hosts, tls.is_some(), a.insecure_tcp)?;
    let exe = std::env::current_exe().context("cannot find the pier binary")?;
    let shim_binary = exe
        .parent()
        .map(|d| d.join("pier-shim"))
        .unwrap_or_else(|| PathBuf::from("pier-shim"));
    let log_level = match level_flag.or(file.log_level.clone()) {
        Some(l) => Some(tracing_level(&l)?.to_string()),
        None => None,
    };
    let log_format: pier_server::LogFormat = a
        .log_format
        .as_deref()
        .or(file.log_format.as_deref())
        .unwrap_or("text")
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut log_defaults = pier_server::LogDefaults::default();
    if let Some(d) = a.log_driver.or(file.log_driver.clone()) {
        log_defaults.driver = d;
    }
    log_defaults.opts = if a.log_opt.is_empty() {
        file.log_opts.clone().unwrap_or_default()
    } else {
        log_opts(&a.log_opt)?
    };
    // Checked before anything is touched, as dockerd does at start.
    pier_server::logconf::validate(&log_defaults.driver, &log_defaults.opts)
        .map_err(|e| anyhow::anyhow!("failed to set log opts: {e}"))?;
    let insecure_registries = if a.insecure_registry.is_empty() {
        file.insecure_registries.clone().unwrap_or_default()
    } else {
        a.insecure_registry
    };
    let registry_mirrors = if a.registry_mirror.is_empty() {
        file.registry_mirrors.clone().unwrap_or_default()
    } else {
        a.registry_mirror
    };
    // Checked at start, as dockerd does: a bad mirror is no pull-time surprise.
    for m in &registry_mirrors {
        pier_registry::hosts::docker_mirror(m)?;
    }
    let pools = if a.default_address_pool.is_empty() {
        file.default_address_pools
            .iter()
            .flatten()
            .map(|p| p.as_flag())
            .collect()
    } else {
        a.default_address_pool
    };
    let network = pier_server::NetworkOptions::parse(
        a.bridge.as_deref().or(file.bridge.as_deref()),
        a.bip.as_deref().or(file.bip.as_deref()),
        &pools,
    )?;
    let group = a
        .group
        .or(file.group.clone())
        .unwrap_or_else(|| "docker".to_string());
    let container_defaults = file.container_defaults(ContainerDefaultFlags {
        dns: a.dns,
        dns_opts: a.dns_opt,
        dns_search: a.dns_search,
        ulimits: a.default_ulimit,
    })?;
    let opts = pier_server::DaemonOptions {
        data_root: a
            .data_root
            .or(file.data_root.clone())
            .unwrap_or_else(|| PathBuf::from("/var/lib/pier")),
        exec_root: a
            .exec_root
            .or(file.exec_root.clone())
            .unwrap_or_else(|| PathBuf::from("/run/pier")),
        hosts,
        tls,
        cgroup_parent: a.cgroup_parent,
        shim_binary,
        debug: debug_flag || file.debug.unwrap_or(false),
        log_level,
        log_format,
        insecure_registries,
        registry_mirrors,
        registry_hosts_dirs: a.hosts_dir,
        log_defaults,
        network,
        group,
        cdi_spec_dirs: if a.cdi_spec_dir.is_empty() {
            ["/etc/cdi", "/var/run/cdi"].map(PathBuf::from).to_vec()
        } else {
            a.cdi_spec_dir
        },
        container_defaults,
    };
    let cri_flag = a
        .cri_socket
        .or(file.cri_socket.clone())
        .unwrap_or_else(|| format!("unix://{}", opts.exec_root.join("cri.sock").display()));
    let mut sidecars: Vec<pier_server::Sidecar> = Vec::new();
    let cni_conf_dir = match a.cni_conf_dir.as_deref() {
        None => Some(PathBuf::from("/etc/cni/net.d")),
        Some("") => None,
        Some(d) => Some(PathBuf::from(d)),
    };
    if let Some(path) = pier_cri::socket_path(&cri_flag).map_err(anyhow::Error::msg)? {
        sidecars.push(Box::new(move |engine, gid, stop| {
            let listener = pier_cri::bind(&path, Some(gid))?;
            Ok(Box::pin(pier_cri::serve(
                engine,
                listener,
                path,
                cni_conf_dir,
                stop,
            )))
        }));
    }
    pier_server::run_with(opts, sidecars).await?;
    Ok(0)
}
