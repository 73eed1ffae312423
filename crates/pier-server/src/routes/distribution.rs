//! Registries: `POST /auth`, `GET /distribution/{name}/json`, and the
//! streamed bodies of pull (`POST /images/create?fromImage=`) and push
//! (`POST /images/{name}/push`), which `images.rs` hands over to here.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::body::{stream_response, Json};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth", post(auth))
        .route("/distribution/{*rest}", get(distribution))
}

/// The `X-Registry-Auth` header, if any.
pub(crate) fn registry_auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

async fn auth(
    State(e): State<AppState>,
    Json(cfg): Json<pier_engine::AuthConfig>,
) -> ApiResult<Response> {
    e.registry_login(&cfg).await?;
    Ok(axum::Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}

async fn distribution(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let name = rest.strip_suffix("/json").ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: /distribution/{rest}"),
        )
    })?;
    let auth = registry_auth(&headers);
    let v = e.distribution_inspect(name, auth.as_deref()).await?;
    Ok(axum::Json(v).into_response())
}

/// `POST /images/create?fromImage=&tag=&platform=`: Docker's JSON progress
/// stream; an error before the first message is a plain error answer.
pub(crate) async fn pull(
    e: AppState,
    image: String,
    tag: String,
    platform: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let (reference, all) = pier_engine::pull_reference(&image, &tag)?;
    // As Docker: a pull is not refused for a header it cannot read; it goes
    // on without those credentials (push still refuses one).
    let auth = registry_auth(headers).filter(|h| {
        let ok = pier_engine::AuthConfig::from_header(h).is_ok();
        if !ok {
            tracing::debug!(
                "pull of {image}: ignoring an X-Registry-Auth header that does not decode"
            );
        }
        ok
    });
    Ok(progress_response(move |emit| async move {
        e.pull_image(&reference, all, platform.as_deref(), auth.as_deref(), &emit)
            .await
    })
    .await)
}

/// `POST /images/{name}/push?tag=`.
pub(crate) async fn push(
    e: AppState,
    name: String,
    tag: Option<String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let auth = registry_auth(headers);
    Ok(progress_response(move |emit| async move {
        e.push_image(&name, tag.as_deref(), auth.as_deref(), &emit)
            .await
    })
    .await)
}

type Emit = Box<dyn Fn(Value) + Send + Sync>;

/// Runs `f` in a task, streaming the messages it emits as JSON lines. If it
/// fails before emitting anything the answer is the error's status; after
/// that, the error becomes the last line (`errorDetail`), as Docker does.
async fn progress_response<F, Fut>(f: F) -> Response
where
    F: FnOnce(Emit) -> Fut,
    Fut: std::future::Future<Output = pier_engine::Result<()>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let emit: Emit = Box::new(move |v| {
        let _ = tx.send(pier_engine::json_line(&v));
    });
    let mut task = tokio::spawn(f(emit));
    let mut done = None;
    let first = tokio::select! {
        biased;
        line = rx.recv() => line,
        // Finished: whatever it said is queued already.
        r = &mut task => {
            done = Some(r);
            rx.recv().await
        }
    };
    let outcome: futures::future::BoxFuture<'static, _> = match done {
        Some(r) => Box::pin(async move { r }),
        None => Box::pin(task),
    };
    let Some(first) = first else {
        return match outcome.await {
            Ok(Ok(())) => stream_response("application/json", Box::pin(futures::stream::empty())),
            Ok(Err(err)) => ApiError::from(err).into_response(),
            Err(err) => ApiError::from(err).into_response(),
        };
    };
    let rest = futures::stream::unfold((rx, Some(outcome)), |(mut rx, outcome)| async move {
        if let Some(line) = rx.recv().await {
            return Some((Ok(line), (rx, outcome)));
        }
        let msg = match outcome?.await {
            Ok(Ok(())) => return None,
            Ok(Err(err)) => err.to_string(),
            Err(err) => format!("task failed: {err}"),
        };
        let line = pier_engine::json_line(&json!({"errorDetail": {"message": msg}, "error": msg}));
        Some((Ok(line), (rx, None)))
    });
    let s = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }).chain(rest);
    stream_response("application/json", Box::pin(s))
}
