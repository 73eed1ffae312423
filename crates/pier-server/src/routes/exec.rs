//! `/containers/{id}/exec` and `/exec/...`.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pier_api::models::{ExecConfig, ExecStartConfig};

use crate::body::{qint, Json, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Json(cfg): Json<ExecConfig>,
) -> ApiResult<Response> {
    let exec_id = e.create_exec(&id, cfg)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"Id": exec_id})),
    )
        .into_response())
}

async fn start(
    State(e): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|err| ApiError::bad_request(format!("reading request body: {err}")))?;
    let cfg: ExecStartConfig = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::bad_request(format!("invalid JSON: {err}")))?
    };
    let detach = cfg.detach.unwrap_or(false);
    let tty = e.exec_tty(&id)?;
    let stream = e.start_exec(&id, pier_engine::ExecStart { detach }).await?;
    match stream {
        None => Ok(StatusCode::OK.into_response()),
        Some(s) => {
            let req = Request::from_parts(parts, axum::body::Body::empty());
            let done = e.exec_finished(&id, std::time::Duration::from_secs(5));
            Ok(crate::hijack::hijack_then(
                req,
                tty,
                None,
                async move { Ok(s) },
                done,
            ))
        }
    }
}

async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let h = qint(&q, "h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = qint(&q, "w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    e.resize_exec(&id, h, w).await?;
    Ok(StatusCode::CREATED)
}

async fn inspect(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(e.inspect_exec(&id)?).into_response())
}
