//! One file per API noun; this one assembles them.

mod build;
mod containers;
mod distribution;
mod exec;
mod images;
mod networks;
mod swarm;
mod system;
mod volumes;

use axum::Router;

use crate::AppState;

pub fn router(engine: AppState) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(build::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(distribution::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .merge(swarm::routes())
        .fallback(|req: axum::extract::Request| async move {
            crate::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("page not found: {} {}", req.method(), req.uri().path()),
            )
        })
        .with_state(engine)
}
