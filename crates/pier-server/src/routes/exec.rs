//! `/containers/{id}/exec` and `/exec/...`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pier_api::models::{ExecConfig, ExecStartConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::body::{Json, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::services::ExecApi;

type Api = Arc<dyn ExecApi>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

async fn create(
    State(e): State<Api>,
    Path(id): Path<String>,
    Json(mut v): Json<serde_json::Value>,
) -> ApiResult<Response> {
    // docker-py sends `detachKeys`; Go's decoder matches field names without
    // regard to case, so Docker takes it.
    if let Some(o) = v.as_object_mut()
        && let Some(k) = o.remove("detachKeys")
    {
        o.entry("DetachKeys").or_insert(k);
    }
    let cfg: ExecConfig = serde_json::from_value(v)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON: {err}")))?;
    let exec_id = e.create(&id, cfg)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"Id": exec_id})),
    )
        .into_response())
}

async fn start(State(e): State<Api>, Path(id): Path<String>, req: Request) -> ApiResult<Response> {
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
    let tty = e.tty(&id)?;
    // Docker frames the stream by the start request's `Tty`, not the exec's:
    // docker-py starts TTY execs with `Tty: false` and reads frames.
    let framed = !tty || !cfg.tty.unwrap_or(false);
    // Detach keys end the session and leave the process running, as for attach.
    let keys = match e.detach_keys(&id)?.filter(|k| !k.is_empty()) {
        Some(k) => pier_api::detach::parse_detach_keys(&k).map_err(|err| {
            ApiError::bad_request(format!("Invalid detach keys ({k}) provided: {err}"))
        })?,
        None => vec![16, 17],
    };
    let stream = e.start(&id, pier_engine::ExecStart { detach }).await?;
    match stream {
        None => Ok(StatusCode::OK.into_response()),
        Some(s) => {
            let s = if tty && framed {
                frame_raw(s).map_err(|err| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
                })?
            } else {
                s
            };
            let req = Request::from_parts(parts, axum::body::Body::empty());
            let done = e.finished(&id, std::time::Duration::from_secs(5));
            Ok(crate::hijack::hijack_then(
                req,
                !framed,
                Some(keys),
                async move { Ok(s) },
                done,
            ))
        }
    }
}

/// The raw output of a TTY exec as stdout frames; input passes through.
fn frame_raw(raw: UnixStream) -> std::io::Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    let (mut raw_r, mut raw_w) = raw.into_split();
    let (mut our_r, mut our_w) = ours.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut our_r, &mut raw_w).await;
        let _ = raw_w.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match raw_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if our_w
                        .write_all(&pier_engine::frame(1, &buf[..n]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = our_w.shutdown().await;
    });
    Ok(theirs)
}

async fn resize(
    State(e): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let h = crate::params::qdimension(&q, "h")?;
    let w = crate::params::qdimension(&q, "w")?;
    e.resize(&id, h, w).await?;
    Ok(StatusCode::CREATED)
}

async fn inspect(State(e): State<Api>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(e.inspect(&id)?).into_response())
}
