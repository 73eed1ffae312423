//! The Kubernetes Container Runtime Interface (CRI v1: `runtime.v1`
//! RuntimeService and ImageService) over the engine, served by the daemon on
//! a unix socket beside the Docker API (`--cri-socket`).
//!
//! The protobufs are kubernetes/cri-api's `pkg/apis/runtime/v1/api.proto`,
//! vendored in `proto/` and compiled at build time by `protox` (a pure-Rust
//! protobuf compiler, so no `protoc` is needed) with `tonic-prost-build`.
//! RPCs not implemented answer `Unimplemented` (tonic's default stubs).
//!
//! A pod sandbox is a record plus a holder process (`pier-shim pause`) that
//! owns the pod's network, IPC and UTS (and, when asked, pid) namespaces, so
//! no pause image is needed. Its containers are engine containers that join
//! those namespaces (`pier_engine::CriSpec`), hidden from the Docker API.

mod container;
mod convert;
mod exec;
mod image;
mod runtime;
mod sandbox;
mod stats;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pier_engine::Engine;

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("runtime.v1");
}

use proto::image_service_server::ImageServiceServer;
use proto::runtime_service_server::RuntimeServiceServer;

/// The CRI server's state: the engine, a lock serialising sandbox changes,
/// and the streaming server's URL maker.
pub struct Cri {
    engine: Arc<Engine>,
    sandboxes: tokio::sync::Mutex<()>,
    /// Concurrent removals of one image would race in the engine.
    image_removals: tokio::sync::Mutex<()>,
    stream: pier_cri_stream::StreamHandle,
    /// Pod networks (`None`: pods get loopback only).
    cni: Option<pier_cni::Cni>,
}

impl Cri {
    pub fn new(
        engine: Arc<Engine>,
        stream: pier_cri_stream::StreamHandle,
        cni: Option<pier_cni::Cni>,
    ) -> Arc<Cri> {
        Arc::new(Cri {
            engine,
            sandboxes: tokio::sync::Mutex::new(()),
            image_removals: tokio::sync::Mutex::new(()),
            stream,
            cni,
        })
    }
}

/// `--cri-socket unix://PATH`: the path, or `None` for `""` and `none`
/// (the CRI server disabled).
pub fn socket_path(flag: &str) -> Result<Option<PathBuf>, String> {
    match flag {
        "" | "none" => Ok(None),
        f => match f.strip_prefix("unix://") {
            Some(p) if p.starts_with('/') => Ok(Some(PathBuf::from(p))),
            _ if f.starts_with('/') => Ok(Some(PathBuf::from(f))),
            _ => Err(format!(
                "invalid --cri-socket {f:?}: want unix:///absolute/path, \"\" or none"
            )),
        },
    }
}

/// Binds the socket (mode 0660, group `gid`, as the Docker socket).
pub fn bind(path: &Path, gid: Option<u32>) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let ctx = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(ctx)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e)),
    }
    let l = tokio::net::UnixListener::bind(path).map_err(ctx)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(ctx)?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g)).map_err(ctx)?;
    }
    Ok(l)
}

/// Serves CRI on `listener` until `stop` turns true, then removes `path`.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::UnixListener,
    path: PathBuf,
    cni_conf_dir: Option<PathBuf>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // containerd's default: loopback, a free port; the URLs name it.
    let streams = match pier_cri_stream::StreamServer::bind(([127, 0, 0, 1], 0).into()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("CRI streaming server: {e}");
            return;
        }
    };
    let cni = cni_conf_dir.map(|conf_dir| {
        pier_cni::Cni::new(pier_cni::CniOptions {
            conf_dir,
            ..Default::default()
        })
    });
    let cri = Cri::new(engine.clone(), streams.handle(), cni);
    let mut stop2 = stop.clone();
    let backend = stream::StreamBackend { engine };
    tokio::spawn(async move {
        let done = async move {
            let _ = stop2.wait_for(|s| *s).await;
        };
        if let Err(e) = streams.serve_until(backend, done).await {
            tracing::error!("CRI streaming server: {e}");
        }
    });
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let res = tonic::transport::Server::builder()
        .add_service(
            RuntimeServiceServer::from_arc(cri.clone()).max_decoding_message_size(16 << 20),
        )
        .add_service(ImageServiceServer::from_arc(cri).max_decoding_message_size(16 << 20))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = res {
        tracing::error!("CRI server on {}: {e}", path.display());
    }
    let _ = std::fs::remove_file(&path);
}
