//! The seam between an exec and its container: what the exec service asks
//! of the container (`ExecHost`) and of its shim (`ExecRunner`).

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::net::UnixStream;

use crate::records::ContainerRecord;
use crate::shim::{AttachOptions, Shim};
use crate::Result;

/// How `POST /exec/{id}/start` runs the exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStart {
    pub detach: bool,
}

/// What an exec needs of the container it runs in.
pub(crate) trait ExecHost: Send + Sync + 'static {
    /// The container's record, by ID or name.
    fn container(&self, key: &str) -> Result<ContainerRecord>;
    /// What runs processes in it (its shim); an error when it is not running.
    fn runner(&self, id: &str) -> Result<Arc<dyn ExecRunner>>;
    /// Where its root filesystem is mounted.
    fn rootfs(&self, id: &str) -> PathBuf;
    /// A container event (`exec_create`, `exec_start`, `exec_die`).
    fn event(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]);
}

/// The shim's exec calls, by exec ID.
pub(crate) trait ExecRunner: Send + Sync + 'static {
    fn prepare<'a>(
        &'a self,
        id: &'a str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> BoxFuture<'a, Result<()>>;
    fn attach<'a>(&'a self, id: &'a str, o: AttachOptions) -> BoxFuture<'a, Result<UnixStream>>;
    /// Starts the prepared process: its pid.
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>>;
    /// Its exit code, once it exits.
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>>;
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>>;
}

impl ExecRunner for Shim {
    fn prepare<'a>(
        &'a self,
        id: &'a str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.exec(id, process, tty, stdin))
    }
    fn attach<'a>(&'a self, id: &'a str, o: AttachOptions) -> BoxFuture<'a, Result<UnixStream>> {
        Box::pin(Shim::attach(self, Some(id), o))
    }
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>> {
        Box::pin(self.exec_start(id))
    }
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move { Shim::wait(self, Some(id)).await.map(|i| i.exit_code) })
    }
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>> {
        Box::pin(Shim::resize(self, Some(id), rows, cols))
    }
}
