#![recursion_limit = "256"]
//! The daemon: serves the Docker Engine API on unix sockets and TCP (TLS).
//!
//! Routing lives in `routes/<noun>.rs`; this file wires the listener, the
//! `/v1.xx` prefix handling and shutdown.

mod activation;
mod body;
mod daemon_log;
mod endpoints;
mod error;
mod hijack;
mod listener;
mod panic;
mod params;
mod routes;
mod services;
mod shape;

#[cfg(test)]
mod fuzz_tests;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
pub use pier_engine::{AddressPool, ContainerDefaults, NetworkOptions};
use pier_engine::{Engine, EngineConfig};
use tower::ServiceExt;

pub use daemon_log::LogFormat;
pub use endpoints::{ListenAddr, TlsOptions};
pub use error::ApiError;

pub use pier_engine::logconf::{self, LogDefaults};

/// How the daemon is configured; the flags follow dockerd's.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `--data-root` (default `/var/lib/pier`).
    pub data_root: PathBuf,
    /// `--exec-root` (default `/run/pier`).
    pub exec_root: PathBuf,
    /// Where to serve the API (`-H`, several at once): unix sockets and TCP.
    pub hosts: Vec<ListenAddr>,
    /// TLS on the TCP addresses (`--tls`, `--tlsverify`).
    pub tls: Option<TlsOptions>,
    /// Parent cgroup of every container (`--cgroup-parent`, default `pier`).
    pub cgroup_parent: String,
    /// The `pier-shim` binary to start per container.
    pub shim_binary: PathBuf,
    /// `--debug`: verbose logging on stderr.
    pub debug: bool,
    /// `--log-level` as a tracing filter (`debug` wins over it).
    pub log_level: Option<String>,
    /// `--log-format` (daemon.json `log-format`): text or JSON lines.
    pub log_format: LogFormat,
    /// `--insecure-registry` and daemon.json `insecure-registries`.
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror` and daemon.json `registry-mirrors` (Docker Hub's).
    pub registry_mirrors: Vec<String>,
    /// `--hosts-dir`: registry `certs.d` directories (certificates and
    /// `hosts.toml`); empty for `/etc/pier/certs.d`, `/etc/docker/certs.d`.
    pub registry_hosts_dirs: Vec<PathBuf>,
    /// `--bridge`, `--bip`, `--default-address-pool` (daemon.json `bridge`,
    /// `bip`, `default-address-pools`).
    pub network: NetworkOptions,
    /// `-G/--group`: the group of the socket (default `docker`; empty: root's).
    pub group: String,
    /// `--log-driver`/`--log-opt` and daemon.json `log-driver`/`log-opts`.
    pub log_defaults: pier_engine::logconf::LogDefaults,
    /// `--cdi-spec-dir`: where CDI device specs are read.
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// daemon.json `dns`, `dns-opts`, `dns-search`, `default-ulimits`.
    pub container_defaults: pier_engine::ContainerDefaults,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Engine(#[from] pier_engine::EngineError),
}

pub(crate) type AppState = Arc<Engine>;

/// A service the daemon runs beside the Docker API on the same engine (the
/// CRI server, which the `pier` binary brings). Given the engine, the API
/// socket's group and the shutdown signal, it binds its listener (an error
/// stops the start-up) and returns what to run until shutdown.
pub type Sidecar = Box<
    dyn FnOnce(
            Arc<Engine>,
            u32,
            tokio::sync::watch::Receiver<bool>,
        ) -> std::io::Result<futures::future::BoxFuture<'static, ()>>
        + Send,
>;

/// Strips a `/v1.xx` prefix, refusing versions outside what Pier serves.
fn strip_version(mut req: Request) -> Result<Request, Box<Response>> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v")
        && let Some(i) = rest.find('/')
    {
        let ver = &rest[..i];
        if !ver.is_empty() && ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
            if pier_api::compare_versions(ver, pier_api::MIN_API_VERSION).is_lt() {
                return Err(Box::new(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                            pier_api::MIN_API_VERSION
                        ),
                    )
                    .into_response()));
            }
            if pier_api::compare_versions(ver, pier_api::API_VERSION).is_gt() {
                return Err(Box::new(
                    ApiError::bad_request(format!(
                        "client version {ver} is too new. Maximum supported API version is {}",
                        pier_api::API_VERSION
                    ))
                    .into_response(),
                ));
            }
            let new_path = rest[i..].to_string();
            let pq = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    Ok(req)
}

/// Runs the daemon in the foreground until SIGINT/SIGTERM. Containers keep
/// running when it stops (their shims own them).
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    run_with(opts, Vec::new()).await
}

/// [`run`], with services beside the Docker API.
pub async fn run_with(opts: DaemonOptions, sidecars: Vec<Sidecar>) -> Result<(), DaemonError> {
    let filter = if opts.debug {
        "debug"
    } else {
        opts.log_level.as_deref().unwrap_or("info")
    };
    daemon_log::init(filter, opts.log_format);
    pier_engine::configure_registries(
        opts.insecure_registries.clone(),
        opts.registry_mirrors.clone(),
        opts.registry_hosts_dirs.clone(),
    );
    // Before anything opens files: idle clients must not starve containers.
    let nofile = listener::raise_nofile_limit();
    let max_conns = listener::connection_limit(nofile);
    tracing::debug!("open file limit {nofile}: up to {max_conns} API connections");
    // Before anything else: a group that does not exist is a start-up error.
    let socket_gid = pier_engine::perms::socket_gid(&opts.group)?;
    let activated = activation::take_for(&opts.hosts)?;
    let engine = Engine::open(EngineConfig {
        data_root: opts.data_root.clone(),
        exec_root: opts.exec_root.clone(),
        cgroup_parent: opts.cgroup_parent.clone(),
        shim_binary: opts.shim_binary.clone(),
        network: opts.network.clone(),
        log_defaults: opts.log_defaults.clone(),
        cdi_spec_dirs: opts.cdi_spec_dirs.clone(),
        container_defaults: opts.container_defaults.clone(),
    })
    .await?;
    let listeners = endpoints::bind_all(
        &opts.hosts,
        activated,
        opts.tls.as_ref(),
        socket_gid,
        &opts.exec_root,
    )?;
    let router = routes::router(engine.clone()).layer(panic::layer());
    let app = tower::service_fn(move |req: Request| {
        let router = router.clone();
        async move {
            match strip_version(req) {
                Ok(req) => router.oneshot(req).await,
                Err(resp) => Ok(*resp),
            }
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut side_tasks = Vec::new();
    for s in sidecars {
        let fut = s(engine.clone(), socket_gid, stop_rx.clone()).map_err(|e| DaemonError::Io {
            context: "starting a service beside the API".into(),
            source: e,
        })?;
        side_tasks.push(tokio::spawn(fut));
    }
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("SIGTERM handler: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down; containers keep running");
        let _ = stop_tx.send(true);
    });
    // Streams such as `logs -f` and `/events` never end by themselves: give
    // open requests a moment, then stop anyway (containers are unaffected).
    listener::serve(
        listeners,
        app,
        max_conns,
        listener::HEADER_TIMEOUT,
        stop_rx,
        std::time::Duration::from_secs(2),
    )
    .await;
    for t in side_tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    // Created containers keep nothing of a start that no longer comes.
    engine.undo_prestarts().await;
    endpoints::remove_sockets(&opts.hosts);
    Ok(())
}
