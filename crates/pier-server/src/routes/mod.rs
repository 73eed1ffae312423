//! One file per API noun; this one assembles them.

mod build;
mod containers;
mod distribution;
pub(super) mod exec;
mod images;
pub(super) mod networks;
mod swarm;
mod system;
mod volumes;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;

use crate::services::{EngineApi, ExecApi, NetworkApi};
use crate::AppState;

pub fn router(engine: AppState) -> Router {
    let api = Arc::new(EngineApi(engine.clone()));
    let networks: Arc<dyn NetworkApi> = api.clone();
    let execs: Arc<dyn ExecApi> = api;
    Router::new()
        .merge(system::routes())
        .merge(build::routes())
        .merge(containers::routes())
        .merge(exec::routes().with_state(execs))
        .merge(images::routes())
        .merge(distribution::routes())
        .merge(networks::routes().with_state(networks))
        .merge(volumes::routes())
        .merge(swarm::routes())
        .fallback(not_found)
        .with_state(engine)
}

/// Docker's answer for a path no route serves.
pub(super) async fn not_found(req: axum::extract::Request) -> crate::ApiError {
    crate::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!("page not found: {} {}", req.method(), req.uri().path()),
    )
}
