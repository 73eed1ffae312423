//! `docker exec`: extra processes in a running container, run by its shim.
//! `ExecService` owns the execs and their lifecycle; what it needs of the
//! container (its record, its shim, its root) comes in through `ExecHost`,
//! which the engine implements and a test fakes.

mod host;
mod service;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::UnixStream;

use crate::records::ContainerRecord;
use crate::{Engine, Result};

pub use host::ExecStart;
pub(crate) use host::{ExecHost, ExecRunner};
pub use service::ExecService;

impl ExecHost for Engine {
    fn container(&self, key: &str) -> Result<ContainerRecord> {
        self.find_container(key)
    }
    fn runner(&self, id: &str) -> Result<Arc<dyn ExecRunner>> {
        Ok(Arc::new(self.shim_of(id)?))
    }
    fn rootfs(&self, id: &str) -> PathBuf {
        self.merged_path(id)
    }
    fn event(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        self.container_event(action, rec, extra);
    }
}

impl Engine {
    /// Execs: created, started, inspected.
    pub fn execs(&self) -> &ExecService {
        &self.execs
    }

    /// `POST /containers/{id}/exec`.
    pub fn create_exec(&self, key: &str, config: pier_api::models::ExecConfig) -> Result<String> {
        self.execs.create(self, key, config)
    }

    /// `POST /exec/{id}/start`: starts the process; without `detach`, returns
    /// the stream to pipe to the client (attached before the process runs).
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        opts: ExecStart,
    ) -> Result<Option<UnixStream>> {
        crate::cgroup_warm::prewarm();
        self.execs.start(self.clone(), id, opts).await
    }

    /// `POST /exec/{id}/resize`.
    pub async fn resize_exec(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        self.execs.resize(self, id, rows, cols).await
    }
}
