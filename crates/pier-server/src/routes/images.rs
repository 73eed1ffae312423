//! `/images/...`. Image names contain slashes, so one wildcard route
//! dispatches on the last path segment.

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;

use crate::body::{blocking_reader, blocking_stream, filters, qbool, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/load", post(load))
        .route("/images/prune", post(prune))
        .route("/images/get", get(save_many))
        .route("/images/{*rest}", any(by_name))
}

/// All values of `key` in a raw query (Docker repeats `changes`).
fn query_all(raw: &Option<String>, key: &str) -> Vec<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    pairs
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect()
}

async fn list(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    if qbool(&q, "manifests") {
        return Err(ApiError::bad_request(
            "not supported by Pier: manifests=true (an image is one platform's manifest)",
        ));
    }
    let f = filters(&q)?;
    let mut imgs = e.list_images(qbool(&q, "all"), &f)?;
    if let Some(name) = q.get("filter").filter(|s| !s.is_empty()) {
        let name = name.clone();
        imgs.retain(|i| i.repo_tags.iter().any(|t| t.starts_with(&name)));
    }
    Ok(axum::Json(imgs).into_response())
}

fn progress_line(v: serde_json::Value) -> Bytes {
    pier_engine::json_line(&v)
}

async fn create(
    State(e): State<AppState>,
    Query(q): Query<Q>,
    raw: RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return Err(ApiError::bad_request(
                "importing from a URL is not supported; pass the tarball as the request body",
            ));
        }
        let reference = match (
            q.get("repo").filter(|r| !r.is_empty()),
            q.get("tag").filter(|t| !t.is_empty()),
        ) {
            (Some(r), Some(t)) => Some(format!("{r}:{t}")),
            (Some(r), None) => Some(r.clone()),
            _ => None,
        };
        let changes = query_all(&raw.0, "changes");
        let message = q.get("message").cloned();
        let reader = blocking_reader(body);
        let rec = tokio::task::spawn_blocking(move || {
            e.import_image(reader, reference.as_deref(), &changes, message.as_deref())
        })
        .await??;
        let line = progress_line(serde_json::json!({"status": rec.id}));
        return Ok((StatusCode::OK, [("content-type", "application/json")], line).into_response());
    }
    let image = q.get("fromImage").cloned().unwrap_or_default();
    if image.is_empty() {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    }
    let tag = q.get("tag").cloned().unwrap_or_default();
    let platform = q.get("platform").cloned().filter(|p| !p.is_empty());
    super::distribution::pull(e, image, tag, platform, &headers).await
}

async fn load(State(e): State<AppState>, Query(q): Query<Q>, body: Body) -> ApiResult<Response> {
    let quiet = qbool(&q, "quiet");
    let reader = blocking_reader(body);
    let loaded = tokio::task::spawn_blocking(move || e.load_images(reader)).await?;
    let mut out = Vec::new();
    match loaded {
        Ok(lines) => {
            for l in lines {
                let _ = quiet;
                out.extend_from_slice(&progress_line(
                    serde_json::json!({"stream": format!("{l}\n")}),
                ));
            }
        }
        // As Docker: the status is sent before the archive is read, so a bad
        // archive is an error message in the JSON stream (docker-py raises
        // ImageLoadError from it).
        Err(err) => {
            let msg = err.to_string();
            out.extend_from_slice(&progress_line(
                serde_json::json!({"errorDetail": {"message": msg}, "error": msg}),
            ));
        }
    }
    Ok((StatusCode::OK, [("content-type", "application/json")], out).into_response())
}

async fn prune(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    let f = filters(&q)?;
    let all = f
        .get("dangling")
        .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
    let r = tokio::task::spawn_blocking(move || e.prune_images(all, &f)).await??;
    Ok(axum::Json(r).into_response())
}

async fn save_many(State(e): State<AppState>, raw: RawQuery) -> ApiResult<Response> {
    let names = query_all(&raw.0, "names");
    // `format=oci` (a Pier extension): an OCI layout with layers as stored.
    let oci = query_all(&raw.0, "format").iter().any(|f| f == "oci");
    save(e, names, oci).await
}

async fn save(e: AppState, names: Vec<String>, oci: bool) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    for n in &names {
        e.find_image(n)?;
    }
    Ok(blocking_stream("application/x-tar", move |w| e.save_images(&names, oci, w)).await)
}

async fn by_name(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    method: Method,
    Query(q): Query<Q>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let (name, action) = match rest.rsplit_once('/') {
        Some((n, a)) if matches!(a, "json" | "history" | "tag" | "get" | "push") => {
            (n.to_string(), a)
        }
        _ => (rest.clone(), ""),
    };
    match (method, action) {
        (Method::GET, "json") => {
            Ok(axum::Json(crate::shape::image_inspect(&e.inspect_image(&name)?)).into_response())
        }
        (Method::GET, "history") => Ok(axum::Json(e.image_history(&name)?).into_response()),
        (Method::GET, "get") => save(e, vec![name], false).await,
        (Method::POST, "tag") => {
            let repo = q
                .get("repo")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ApiError::bad_request("repo is required"))?;
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.clone(),
            };
            e.tag(&name, &target)?;
            Ok(StatusCode::CREATED.into_response())
        }
        (Method::POST, "push") => {
            if q.get("platform").is_some_and(|p| !p.is_empty()) {
                return Err(ApiError::bad_request(
                    "not supported by Pier: platform on push (an image is one platform's manifest, pushed as it is)",
                ));
            }
            let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
            super::distribution::push(e, name, tag, &headers).await
        }
        (Method::DELETE, "") => {
            let force = qbool(&q, "force");
            let prune = !qbool(&q, "noprune");
            let r =
                tokio::task::spawn_blocking(move || e.remove_image(&name, force, prune)).await??;
            Ok(axum::Json(r).into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("page not found: /images/{rest}"),
        )),
    }
}
