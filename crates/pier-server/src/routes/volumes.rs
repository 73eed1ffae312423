//! `/volumes/...`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::body::{filters, qbool, Json, Query as Q};
use crate::error::ApiResult;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<HashMap<String, String>>,
}

async fn list(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    let vols = e.volumes().list(&filters(&q)?)?;
    Ok(axum::Json(serde_json::json!({"Volumes": vols, "Warnings": []})).into_response())
}

async fn create(State(e): State<AppState>, Json(b): Json<CreateBody>) -> ApiResult<Response> {
    // Only the built-in `local` driver exists; Docker answers 404 for an
    // unknown volume plugin.
    if let Some(d) = b
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(crate::ApiError::new(
            StatusCode::NOT_FOUND,
            format!("error looking up volume plugin {d}: plugin \"{d}\" not found"),
        ));
    }
    let v = e.volumes().create(
        b.name.as_deref(),
        b.labels.unwrap_or_default(),
        b.driver_opts.unwrap_or_default(),
    )?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

async fn inspect(State(e): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(e.volumes().inspect(&name)?).into_response())
}

async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let force = qbool(&q, "force");
    tokio::task::spawn_blocking(move || e.volumes().remove(&name, force)).await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    let f = filters(&q)?;
    let all = f
        .get("all")
        .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
    // Removal renames into the trash, but one that cannot (a full disk)
    // deletes in place: off the async workers either way.
    let pruned = tokio::task::spawn_blocking(move || e.volumes().prune(all, &f)).await??;
    Ok(axum::Json(pruned).into_response())
}
