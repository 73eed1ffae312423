//! `/networks/...`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pier_api::models::EndpointSettings;
use pier_api::NetworkCreateRequest;
use serde_json::Value;

use crate::body::{filters, Json, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::services::NetworkApi;
use crate::shape;

type Api = Arc<dyn NetworkApi>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

async fn list(State(e): State<Api>, Query(q): Query<Q>) -> ApiResult<Response> {
    let list: Vec<Value> = e.list(&filters(&q)?)?.iter().map(shape::network).collect();
    Ok(axum::Json(list).into_response())
}

async fn inspect(State(e): State<Api>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(shape::network(&e.inspect(&id)?)).into_response())
}

async fn create(State(e): State<Api>, Json(mut body): Json<Value>) -> ApiResult<Response> {
    let Some(o) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "network create: body must be a JSON object",
        ));
    };
    // A missing name is an empty one, refused by the engine as Docker does.
    o.entry("Name").or_insert_with(|| "".into());
    let req: NetworkCreateRequest = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("network create: {err}")))?;
    let r = e.create(req).await?;
    Ok((StatusCode::CREATED, axum::Json(r)).into_response())
}

async fn remove(State(e): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn container_of(body: &Value) -> ApiResult<String> {
    body.get("Container")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("Container must be set"))
}

async fn connect(
    State(e): State<Api>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<StatusCode> {
    let container = container_of(&body)?;
    let cfg: Option<EndpointSettings> = match body.get("EndpointConfig") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|err| ApiError::bad_request(format!("invalid EndpointConfig: {err}")))?,
        ),
    };
    e.connect(&id, &container, cfg).await?;
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(e): State<Api>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<StatusCode> {
    let container = container_of(&body)?;
    let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
    e.disconnect(&id, &container, force).await?;
    Ok(StatusCode::OK)
}

async fn prune(State(e): State<Api>, Query(q): Query<Q>) -> ApiResult<Response> {
    Ok(axum::Json(e.prune(&filters(&q)?).await?).into_response())
}
