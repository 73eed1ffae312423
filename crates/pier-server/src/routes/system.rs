//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use std::time::Duration;

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;

use crate::body::filters;
use crate::error::ApiResult;
use crate::params::{now_nanos, qtime, Timestamp};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(df))
        .route("/events", get(events))
}

async fn ping() -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        "API-Version",
        HeaderValue::from_static(pier_api::API_VERSION),
    );
    h.insert("OSType", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (StatusCode::OK, h, "OK").into_response()
}

async fn version(State(e): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::shape::version(&e.version()))
}

async fn info(State(e): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(crate::shape::info(&e.info()?)))
}

/// `GET /system/df`; API 1.42's `type` (repeatable) asks for some kinds only,
/// the others answer `null` as dockerd's do.
async fn df(
    State(e): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    const KINDS: [(&str, &str); 4] = [
        ("container", "Containers"),
        ("image", "Images"),
        ("volume", "Volumes"),
        ("build-cache", "BuildCache"),
    ];
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let asked: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v)
        .collect();
    if let Some(bad) = asked.iter().find(|t| !KINDS.iter().any(|(k, _)| k == t)) {
        return Err(crate::error::ApiError::bad_request(format!(
            "unknown object type: {bad}"
        )));
    }
    let e2 = e.clone();
    let usage = tokio::task::spawn_blocking(move || e2.disk_usage()).await??;
    let mut v = crate::shape::disk_usage(&usage);
    if !asked.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        for (kind, key) in KINDS {
            if !asked.iter().any(|t| t == kind) {
                o.insert(key.into(), serde_json::Value::Null);
            }
        }
        if !asked.iter().any(|t| t == "image") {
            o.insert("LayersSize".into(), 0.into());
        }
    }
    Ok(Json(v))
}

/// Docker's event JSON also carries the old top-level fields some clients read.
fn event_json(ev: &pier_api::models::EventMessage) -> Bytes {
    let mut v = serde_json::to_value(ev).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let actor = ev.actor.clone().unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        o.insert(
            "status".into(),
            ev.action.clone().unwrap_or_default().into(),
        );
        o.insert("id".into(), id.into());
        if let Some(img) = actor.attributes.as_ref().and_then(|a| a.get("image")) {
            o.insert("from".into(), img.clone().into());
        }
    }
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

async fn events(
    State(e): State<AppState>,
    Query(q): Query<crate::body::Query>,
) -> ApiResult<Response> {
    let f = filters(&q)?;
    let filter = pier_engine::EventFilter::new(f)?;
    let now = now_nanos();
    let since = qtime(&q, "since", now)?.map(Timestamp::as_nanos);
    let until = qtime(&q, "until", now)?.map(Timestamp::as_nanos);
    let (past, mut rx) = e.subscribe_events();
    let (tx, out) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(64);
    // How long the stream stays open; `None`: until the client leaves. A
    // deadline too far to represent is no deadline (as Go saturates).
    let deadline = until.map(|u| {
        let left = u64::try_from((u - now).max(0)).unwrap_or(u64::MAX);
        tokio::time::Instant::now().checked_add(Duration::from_nanos(left))
    });
    tokio::spawn(async move {
        let in_range = |t: i128| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u);
        let ts = |ev: &pier_api::models::EventMessage| ev.time_nano.unwrap_or(0) as i128;
        if since.is_some() {
            for ev in past
                .iter()
                .filter(|ev| in_range(ts(ev)) && filter.matches(ev))
            {
                if tx.send(Ok(event_json(ev))).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let next = async { rx.recv().await };
            let ev = match deadline {
                Some(Some(d)) => match tokio::time::timeout_at(d, next).await {
                    Ok(ev) => ev,
                    Err(_) => return,
                },
                Some(None) | None => next.await,
            };
            match ev {
                Ok(ev) if filter.matches(&ev) => {
                    if tx.send(Ok(event_json(&ev))).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    Ok(crate::body::stream_response(
        "application/json",
        pier_engine::channel_stream(out),
    ))
}
