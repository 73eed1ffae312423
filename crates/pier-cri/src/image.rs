//! ImageService over the engine's one image store (images of `pier pull` and
//! `pier build` are the pods' images too).

use std::sync::Arc;

use pier_engine::EngineError;
use tonic::{Request, Response, Status};

use crate::convert::{now_ns, status_of};
use crate::proto::{self, image_service_server::ImageService};
use crate::Cri;

/// The client's `grpc-timeout` (`<digits><unit>`), if it sent one.
fn grpc_deadline(md: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => std::time::Duration::from_secs(n * 3600),
        "M" => std::time::Duration::from_secs(n * 60),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    })
}

/// Docker's familiar names (`busybox:latest`) as the full names CRI clients
/// compare (`docker.io/library/busybox:latest`).
fn full_name(familiar: &str) -> String {
    pier_reference::Reference::parse_normalized(familiar)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| familiar.to_string())
}

fn user_of(cfg: Option<&pier_api::models::ContainerConfig>) -> (Option<proto::Int64Value>, String) {
    let user = cfg.and_then(|c| c.user.clone()).unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default().to_string();
    match user.parse::<i64>() {
        Ok(n) => (Some(proto::Int64Value { value: n }), String::new()),
        Err(_) if user.is_empty() => (Some(proto::Int64Value { value: 0 }), String::new()),
        Err(_) => (None, user),
    }
}

impl Cri {
    fn image_of(&self, key: &str) -> Result<Option<proto::Image>, Status> {
        let d = match self.engine.inspect_image(key) {
            Ok(d) => d,
            Err(e) if e.kind() == pier_engine::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(status_of(e)),
        };
        let (uid, username) = user_of(d.config.as_ref());
        Ok(Some(proto::Image {
            id: d.id.clone(),
            repo_tags: d.repo_tags.iter().map(|t| full_name(t)).collect(),
            repo_digests: d.repo_digests.iter().map(|t| full_name(t)).collect(),
            size: d.size.max(0) as u64,
            uid,
            username,
            spec: Some(proto::ImageSpec {
                image: d.id.clone(),
                ..Default::default()
            }),
            pinned: false,
        }))
    }
}

#[tonic::async_trait]
impl ImageService for Cri {
    async fn list_images(
        &self,
        req: Request<proto::ListImagesRequest>,
    ) -> Result<Response<proto::ListImagesResponse>, Status> {
        let want = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .filter(|i| !i.is_empty());
        let mut images = Vec::new();
        if let Some(w) = want {
            images.extend(self.image_of(&w)?);
        } else {
            let all = self
                .engine
                .list_images(false, &Default::default())
                .map_err(status_of)?;
            for s in all {
                images.extend(self.image_of(&s.id)?);
            }
        }
        Ok(Response::new(proto::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        req: Request<proto::ImageStatusRequest>,
    ) -> Result<Response<proto::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let name = req.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("image must be set"));
        }
        let image = self.image_of(&name)?;
        let mut info = std::collections::HashMap::new();
        if req.verbose
            && let Some(i) = &image
        {
            info.insert(
                "info".to_string(),
                serde_json::json!({ "id": i.id }).to_string(),
            );
        }
        Ok(Response::new(proto::ImageStatusResponse { image, info }))
    }

    async fn pull_image(
        &self,
        req: Request<proto::PullImageRequest>,
    ) -> Result<Response<proto::PullImageResponse>, Status> {
        let deadline = grpc_deadline(req.metadata());
        let req = req.into_inner();
        let name = req.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("image must be set"));
        }
        let pull = self.pull(&name, req.auth);
        match deadline {
            // Ahead of tonic's own timer, which answers Cancelled: a client
            // past its deadline expects DeadlineExceeded, as containerd says.
            Some(d) => tokio::time::timeout(d.mul_f32(0.9), pull)
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!("pulling {name}: deadline exceeded"))
                })?,
            None => pull.await,
        }
    }
    async fn remove_image(
        &self,
        req: Request<proto::RemoveImageRequest>,
    ) -> Result<Response<proto::RemoveImageResponse>, Status> {
        let name = req.into_inner().image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("image must be set"));
        }
        let _guard = self.image_removals.lock().await;
        let engine = Arc::clone(&self.engine);
        let res = tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
            let rec = engine.find_image(&name)?;
            // CRI removes the image with every name it has.
            engine.remove_image(&rec.id, true, true).map(|_| ())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        match res {
            Ok(()) => Ok(Response::new(proto::RemoveImageResponse {})),
            Err(e) if e.kind() == pier_engine::ErrorKind::NotFound => {
                Ok(Response::new(proto::RemoveImageResponse {}))
            }
            Err(e) => Err(status_of(e)),
        }
    }

    async fn image_fs_info(
        &self,
        _req: Request<proto::ImageFsInfoRequest>,
    ) -> Result<Response<proto::ImageFsInfoResponse>, Status> {
        let root = self.engine.info().map_err(status_of)?.data_root;
        let dir = std::path::PathBuf::from(root).join("snapshots");
        let d = dir.clone();
        let (bytes, inodes) = tokio::task::spawn_blocking(move || usage(&d))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let fs = proto::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(proto::FilesystemIdentifier {
                mountpoint: dir.display().to_string(),
            }),
            used_bytes: Some(proto::UInt64Value { value: bytes }),
            inodes_used: Some(proto::UInt64Value { value: inodes }),
        };
        Ok(Response::new(proto::ImageFsInfoResponse {
            image_filesystems: vec![fs.clone()],
            container_filesystems: vec![fs],
        }))
    }
}

impl Cri {
    async fn pull(
        &self,
        name: &str,
        auth: Option<proto::AuthConfig>,
    ) -> Result<Response<proto::PullImageResponse>, Status> {
        let (r, _) = pier_engine::pull_reference(name, "").map_err(status_of)?;
        let sink = |_: serde_json::Value| {};
        let engine = Arc::clone(&self.engine);
        match auth {
            Some(a) => {
                let auth: pier_engine::AuthConfig = serde_json::from_value(serde_json::json!({
                    "username": a.username, "password": a.password, "auth": a.auth,
                    "serveraddress": a.server_address, "identitytoken": a.identity_token,
                    "registrytoken": a.registry_token,
                }))
                .map_err(|e| Status::invalid_argument(format!("auth: {e}")))?;
                engine.pull_one(&r, None, Some(auth), &sink).await
            }
            None => engine
                .pull_image(&r, false, None, None, &sink)
                .await
                .and_then(|()| engine.find_image(&r.to_string())),
        }
        .map_err(status_of)
        .map(|rec| Response::new(proto::PullImageResponse { image_ref: rec.id }))
    }
}

/// Bytes and inodes under `dir` (hard links counted once per name). Blocking:
/// called through `spawn_blocking`.
#[allow(clippy::disallowed_methods)]
fn usage(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            inodes += 1;
            bytes += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}
