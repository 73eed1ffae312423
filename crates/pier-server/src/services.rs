//! What the network and exec routes need of the engine, as traits: the
//! routes hold `Arc<dyn NetworkApi>` / `Arc<dyn ExecApi>`, the daemon hands
//! them the engine, and the route tests hand them fakes (no root, no
//! kernel). Defined here, beside their only caller, so the engine does not
//! learn the shape of the HTTP API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pier_api::models::{
    EndpointSettings, ExecConfig, ExecInspectResponse, NetworkCreateResponse, NetworkPruneResponse,
};
use pier_api::NetworkCreateRequest;
use pier_engine::{Engine, ExecStart, NetworkDetails, Result};
use tokio::net::UnixStream;

pub(crate) type Filters = HashMap<String, Vec<String>>;

/// `/networks/...`.
pub(crate) trait NetworkApi: Send + Sync {
    fn list(&self, filters: &Filters) -> Result<Vec<NetworkDetails>>;
    fn inspect(&self, key: &str) -> Result<NetworkDetails>;
    fn create(&self, req: NetworkCreateRequest) -> BoxFuture<'_, Result<NetworkCreateResponse>>;
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
    fn prune<'a>(&'a self, filters: &'a Filters) -> BoxFuture<'a, Result<NetworkPruneResponse>>;
    fn connect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        cfg: Option<EndpointSettings>,
    ) -> BoxFuture<'a, Result<()>>;
    fn disconnect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        force: bool,
    ) -> BoxFuture<'a, Result<()>>;
}

/// `/containers/{id}/exec` and `/exec/...`.
pub(crate) trait ExecApi: Send + Sync {
    fn create(&self, container: &str, cfg: ExecConfig) -> Result<String>;
    /// Whether the exec has a TTY (its stream is raw, not multiplexed).
    fn tty(&self, id: &str) -> Result<bool>;
    fn detach_keys(&self, id: &str) -> Result<Option<String>>;
    /// Starts the process; without `detach`, the stream to hand the client.
    fn start<'a>(
        &'a self,
        id: &'a str,
        opts: ExecStart,
    ) -> BoxFuture<'a, Result<Option<UnixStream>>>;
    /// Resolves once the exit code is recorded, or after `limit`.
    fn finished(&self, id: &str, limit: Duration) -> BoxFuture<'static, ()>;
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>>;
    fn inspect(&self, id: &str) -> Result<ExecInspectResponse>;
}

/// The engine behind both traits (an `Arc` because exec start keeps it
/// alive in the task that waits for the exit).
pub(crate) struct EngineApi(pub Arc<Engine>);

impl NetworkApi for EngineApi {
    fn list(&self, filters: &Filters) -> Result<Vec<NetworkDetails>> {
        self.0.networks().list(filters)
    }
    fn inspect(&self, key: &str) -> Result<NetworkDetails> {
        self.0.networks().inspect(key)
    }
    fn create(&self, req: NetworkCreateRequest) -> BoxFuture<'_, Result<NetworkCreateResponse>> {
        Box::pin(self.0.networks().create(req))
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.networks().remove(key))
    }
    fn prune<'a>(&'a self, filters: &'a Filters) -> BoxFuture<'a, Result<NetworkPruneResponse>> {
        Box::pin(self.0.networks().prune(filters))
    }
    fn connect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        cfg: Option<EndpointSettings>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.connect_network(network, container, cfg))
    }
    fn disconnect<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        force: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.disconnect_network(network, container, force))
    }
}

impl ExecApi for EngineApi {
    fn create(&self, container: &str, cfg: ExecConfig) -> Result<String> {
        self.0.create_exec(container, cfg)
    }
    fn tty(&self, id: &str) -> Result<bool> {
        self.0.execs().tty(id)
    }
    fn detach_keys(&self, id: &str) -> Result<Option<String>> {
        self.0.execs().detach_keys(id)
    }
    fn start<'a>(
        &'a self,
        id: &'a str,
        opts: ExecStart,
    ) -> BoxFuture<'a, Result<Option<UnixStream>>> {
        Box::pin(self.0.start_exec(id, opts))
    }
    fn finished(&self, id: &str, limit: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self.0.execs().finished(id, limit))
    }
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.resize_exec(id, rows, cols))
    }
    fn inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        self.0.execs().inspect(id)
    }
}
