//! RuntimeService: version and status, and the dispatch to sandboxes
//! (`sandbox.rs`), containers (`container.rs`) and exec (`exec.rs`).

use tonic::{Request, Response, Status};

use crate::convert::status_of;
use crate::proto::{self, runtime_service_server::RuntimeService};
use crate::Cri;

fn stream_status(e: pier_cri_stream::RequestError) -> Status {
    match e {
        pier_cri_stream::RequestError::InvalidArgument(m) => Status::invalid_argument(m),
        pier_cri_stream::RequestError::TooManyInFlight => Status::resource_exhausted(e.to_string()),
    }
}

fn rro_supported() -> bool {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (5, 12)
}

/// The CRI version this server speaks.
const API_VERSION: &str = "v1";

#[tonic::async_trait]
impl RuntimeService for Cri {
    async fn version(
        &self,
        _req: Request<proto::VersionRequest>,
    ) -> Result<Response<proto::VersionResponse>, Status> {
        Ok(Response::new(proto::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "pier".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: API_VERSION.into(),
        }))
    }

    async fn status(
        &self,
        req: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let cond = |t: &str| proto::RuntimeCondition {
            r#type: t.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        let handler = proto::RuntimeHandler {
            name: String::new(),
            features: Some(proto::RuntimeHandlerFeatures {
                // mount_setattr(AT_RECURSIVE), Linux 5.12 on.
                recursive_read_only_mounts: rro_supported(),
                user_namespaces: false,
            }),
        };
        let mut info = std::collections::HashMap::new();
        if req.into_inner().verbose {
            info.insert(
                "config".to_string(),
                serde_json::json!({ "cgroupDriver": "cgroupfs", "sandboxImage": "" }).to_string(),
            );
        }
        Ok(Response::new(proto::StatusResponse {
            status: Some(proto::RuntimeStatus {
                conditions: vec![cond("RuntimeReady"), cond("NetworkReady")],
            }),
            info,
            runtime_handlers: vec![
                proto::RuntimeHandler {
                    name: "runc".into(),
                    ..handler.clone()
                },
                handler,
            ],
            features: Some(proto::RuntimeFeatures {
                supplemental_groups_policy: false,
                ..Default::default()
            }),
        }))
    }

    async fn runtime_config(
        &self,
        _req: Request<proto::RuntimeConfigRequest>,
    ) -> Result<Response<proto::RuntimeConfigResponse>, Status> {
        Ok(Response::new(proto::RuntimeConfigResponse {
            linux: Some(proto::LinuxRuntimeConfiguration {
                cgroup_driver: proto::CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }

    async fn update_runtime_config(
        &self,
        _req: Request<proto::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<proto::UpdateRuntimeConfigResponse>, Status> {
        // The pod CIDR is for a CNI plugin to read; Pier has none that uses it.
        Ok(Response::new(proto::UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<proto::RunPodSandboxRequest>,
    ) -> Result<Response<proto::RunPodSandboxResponse>, Status> {
        Cri::run_pod_sandbox(self, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<proto::StopPodSandboxRequest>,
    ) -> Result<Response<proto::StopPodSandboxResponse>, Status> {
        Cri::stop_pod_sandbox(self, &req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(proto::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<proto::RemovePodSandboxRequest>,
    ) -> Result<Response<proto::RemovePodSandboxResponse>, Status> {
        Cri::remove_pod_sandbox(self, &req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(proto::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<proto::PodSandboxStatusRequest>,
    ) -> Result<Response<proto::PodSandboxStatusResponse>, Status> {
        Cri::pod_sandbox_status(self, req.into_inner()).map(Response::new)
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<proto::ListPodSandboxRequest>,
    ) -> Result<Response<proto::ListPodSandboxResponse>, Status> {
        Cri::list_pod_sandbox(self, req.into_inner()).map(Response::new)
    }

    async fn create_container(
        &self,
        req: Request<proto::CreateContainerRequest>,
    ) -> Result<Response<proto::CreateContainerResponse>, Status> {
        let container_id = Cri::create_container(self, req.into_inner()).await?;
        Ok(Response::new(proto::CreateContainerResponse {
            container_id,
        }))
    }

    async fn start_container(
        &self,
        req: Request<proto::StartContainerRequest>,
    ) -> Result<Response<proto::StartContainerResponse>, Status> {
        self.start_one(&req.into_inner().container_id).await?;
        Ok(Response::new(proto::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<proto::StopContainerRequest>,
    ) -> Result<Response<proto::StopContainerResponse>, Status> {
        let r = req.into_inner();
        self.stop_one(&r.container_id, r.timeout).await?;
        Ok(Response::new(proto::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<proto::RemoveContainerRequest>,
    ) -> Result<Response<proto::RemoveContainerResponse>, Status> {
        self.remove_one(&req.into_inner().container_id).await?;
        Ok(Response::new(proto::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<proto::ListContainersRequest>,
    ) -> Result<Response<proto::ListContainersResponse>, Status> {
        let containers = Cri::list_containers(self, req.into_inner().filter)?;
        Ok(Response::new(proto::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        req: Request<proto::ContainerStatusRequest>,
    ) -> Result<Response<proto::ContainerStatusResponse>, Status> {
        Cri::container_status(self, req.into_inner()).map(Response::new)
    }

    async fn exec_sync(
        &self,
        req: Request<proto::ExecSyncRequest>,
    ) -> Result<Response<proto::ExecSyncResponse>, Status> {
        Cri::exec_sync(self, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn exec(
        &self,
        req: Request<proto::ExecRequest>,
    ) -> Result<Response<proto::ExecResponse>, Status> {
        let r = req.into_inner();
        let rec = self.must_container(&r.container_id)?;
        if !rec.state.running() {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        if !(r.stdout || r.stderr || r.stdin) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout, or stderr must be set",
            ));
        }
        let url = self
            .stream
            .exec_url(pier_cri_stream::ExecRequest {
                container_id: rec.id,
                cmd: r.cmd,
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            })
            .map_err(stream_status)?;
        Ok(Response::new(proto::ExecResponse { url }))
    }

    async fn attach(
        &self,
        req: Request<proto::AttachRequest>,
    ) -> Result<Response<proto::AttachResponse>, Status> {
        let r = req.into_inner();
        let rec = self.must_container(&r.container_id)?;
        let url = self
            .stream
            .attach_url(pier_cri_stream::AttachRequest {
                container_id: rec.id,
                tty: r.tty,
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
            })
            .map_err(stream_status)?;
        Ok(Response::new(proto::AttachResponse { url }))
    }

    async fn port_forward(
        &self,
        req: Request<proto::PortForwardRequest>,
    ) -> Result<Response<proto::PortForwardResponse>, Status> {
        let r = req.into_inner();
        let s = self.sandbox(&r.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", r.pod_sandbox_id))
        })?;
        let url = self
            .stream
            .port_forward_url(pier_cri_stream::PortForwardRequest {
                pod_sandbox_id: s.id,
                port: r.port,
            })
            .map_err(stream_status)?;
        Ok(Response::new(proto::PortForwardResponse { url }))
    }

    async fn reopen_container_log(
        &self,
        req: Request<proto::ReopenContainerLogRequest>,
    ) -> Result<Response<proto::ReopenContainerLogResponse>, Status> {
        let rec = self.must_container(&req.into_inner().container_id)?;
        if !rec.state.running() {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        self.engine
            .reopen_cri_log(&rec.id)
            .await
            .map_err(status_of)?;
        Ok(Response::new(proto::ReopenContainerLogResponse {}))
    }

    async fn container_stats(
        &self,
        req: Request<proto::ContainerStatsRequest>,
    ) -> Result<Response<proto::ContainerStatsResponse>, Status> {
        let rec = self.must_container(&req.into_inner().container_id)?;
        Ok(Response::new(proto::ContainerStatsResponse {
            stats: Some(self.stats_of(&rec)?),
        }))
    }

    async fn list_container_stats(
        &self,
        req: Request<proto::ListContainerStatsRequest>,
    ) -> Result<Response<proto::ListContainerStatsResponse>, Status> {
        let stats = self.list_stats(req.into_inner().filter)?;
        Ok(Response::new(proto::ListContainerStatsResponse { stats }))
    }

    async fn update_container_resources(
        &self,
        req: Request<proto::UpdateContainerResourcesRequest>,
    ) -> Result<Response<proto::UpdateContainerResourcesResponse>, Status> {
        let r = req.into_inner();
        let rec = self.must_container(&r.container_id)?;
        let l = r.linux.unwrap_or_default();
        let pos = |v: i64| (v > 0).then_some(v);
        let body = pier_api::models::ContainerUpdateBody {
            cpu_period: pos(l.cpu_period),
            cpu_quota: pos(l.cpu_quota),
            cpu_shares: pos(l.cpu_shares),
            memory: pos(l.memory_limit_in_bytes),
            memory_swap: pos(l.memory_swap_limit_in_bytes),
            cpuset_cpus: Some(l.cpuset_cpus).filter(|c| !c.is_empty()),
            cpuset_mems: Some(l.cpuset_mems).filter(|c| !c.is_empty()),
            ..Default::default()
        };
        self.engine
            .update_container(&rec.id, body)
            .map_err(status_of)?;
        Ok(Response::new(proto::UpdateContainerResourcesResponse {}))
    }
}
