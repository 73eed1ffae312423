//! `/containers/...`.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use base64::Engine as _;
use pier_api::models::ContainerWaitResponse;
use pier_engine::{AttachOptions, CreateOptions, ListOptions, LogOptions, WaitCondition};

use crate::body::{blocking_reader, blocking_stream, filters, qbool, qbool_or, Json, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::hijack::hijack;
use crate::params::qint;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/{id}", delete(remove))
        // `rm --link /parent/alias`: the link name has a slash in it.
        .route("/containers/{parent}/{alias}", delete(remove_link))
        .route("/commit", post(commit))
}

/// Resource fields of Docker's API that the generated models no longer carry
/// (the kernel dropped kernel-memory limits), so serde would drop them silently:
/// set to anything but zero, they are refused.
const DROPPED_RESOURCES: &[&str] = &["KernelMemory", "KernelMemoryTCP"];

fn refuse_dropped_resources(resources: Option<&serde_json::Value>) -> Result<(), ApiError> {
    for key in DROPPED_RESOURCES {
        let v = resources.and_then(|r| r.get(key));
        if v.is_some_and(|v| !v.is_null() && v.as_i64() != Some(0)) {
            return Err(ApiError::bad_request(format!(
                "not supported by Pier: {key} (kernel memory limits are gone from cgroup v2 and from Docker)"
            )));
        }
    }
    Ok(())
}

/// Options of API 1.44-1.46 that Pier does not implement: refused when set,
/// so a client at the version Pier advertises is never silently ignored.
fn refuse_newer_options(raw: &serde_json::Value) -> Result<(), ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::bad_request(format!(
            "not supported by Pier: {what}"
        )))
    };
    let mounts = raw
        .pointer("/HostConfig/Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten();
    for m in mounts {
        // Read-only binds are always recursively read-only (ReadOnlyForceRecursive).
        if m.pointer("/BindOptions/ReadOnlyNonRecursive") == Some(&serde_json::Value::Bool(true)) {
            return refuse(
                "BindOptions.ReadOnlyNonRecursive (read-only binds are recursively read-only)",
            );
        }
    }
    let endpoints = raw
        .pointer("/NetworkingConfig/EndpointsConfig")
        .and_then(|e| e.as_object())
        .into_iter()
        .flat_map(|e| e.values());
    for ep in endpoints {
        if ep
            .pointer("/DriverOpts/com.docker.network.endpoint.sysctls")
            .is_some()
        {
            return refuse(
                "DriverOpts com.docker.network.endpoint.sysctls (per-interface sysctls)",
            );
        }
    }
    Ok(())
}

/// A body read as JSON first, checked for dropped fields, then typed.
fn typed<T: serde::de::DeserializeOwned + Default>(v: serde_json::Value) -> Result<T, ApiError> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

async fn create(
    State(e): State<AppState>,
    Query(q): Query<Q>,
    Json(raw): Json<serde_json::Value>,
) -> ApiResult<Response> {
    refuse_dropped_resources(raw.get("HostConfig"))?;
    refuse_newer_options(&raw)?;
    let req: pier_api::ContainerCreateRequest = typed(raw)?;
    let r = e.create_container(CreateOptions {
        name: q.get("name").cloned(),
        body: req.body,
        mac_address: req.mac_address,
    })?;
    // A start usually follows at once (`docker run`): begin its slow parts.
    e.prestart(&r.id);
    Ok((StatusCode::CREATED, axum::Json(r)).into_response())
}

async fn list(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    let mut limit = qint(&q, "limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    if qbool(&q, "latest") {
        limit = Some(1);
    }
    let opts = ListOptions {
        all: qbool(&q, "all"),
        limit,
        size: qbool(&q, "size"),
        filters: filters(&q)?,
    };
    // `ps -s` walks every writable layer: not on an async worker.
    let list = if opts.size {
        tokio::task::spawn_blocking(move || e.list_containers(&opts)).await??
    } else {
        e.list_containers(&opts)?
    };
    Ok(axum::Json(list).into_response())
}

async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    // `inspect --size` walks the writable layer: not on an async worker.
    let d = if qbool(&q, "size") {
        tokio::task::spawn_blocking(move || e.inspect_container(&id, true)).await??
    } else {
        e.inspect_container(&id, false)?
    };
    Ok(axum::Json(crate::shape::container_inspect(&d)).into_response())
}

async fn start(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.start_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let t = qint(&q, "t")?;
    e.stop_container(
        &id,
        t,
        q.get("signal")
            .map(String::as_str)
            .filter(|s| !s.is_empty()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let signal = q
        .get("signal")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    e.restart_container(&id, qint(&q, "t")?, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    e.kill_container(
        &id,
        q.get("signal")
            .map(String::as_str)
            .filter(|s| !s.is_empty()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.pause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.unpause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn wait(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let cond = WaitCondition::parse(q.get("condition").map(String::as_str))?;
    let fut = e.wait_container(&id, cond)?;
    // Headers go out at once (Docker's CLI starts the container only after
    // the wait is registered); the body follows at exit.
    let body = futures::stream::once(async move {
        let resp = match fut.await {
            Ok(code) => ContainerWaitResponse {
                status_code: code,
                error: None,
            },
            Err(err) => ContainerWaitResponse {
                status_code: -1,
                error: Some(pier_api::models::ContainerWaitExitError {
                    message: Some(err.to_string()),
                }),
            },
        };
        Ok::<_, std::io::Error>(pier_engine::json_line(&resp))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let h = crate::params::qdimension(&q, "h")?;
    let w = crate::params::qdimension(&q, "w")?;
    e.resize_container(&id, h, w).await?;
    Ok(StatusCode::OK)
}

async fn rename(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    e.rename_container(&id, name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn attach(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
    req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stdin: qbool(&q, "stdin"),
        stdout: qbool(&q, "stdout"),
        stderr: qbool(&q, "stderr"),
    };
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => pier_api::detach::parse_detach_keys(k).map_err(|e| {
            ApiError::bad_request(format!("Invalid detach keys ({k}) provided: {e}"))
        })?,
        None => vec![16, 17],
    };
    // `logs=1` on a container that has exited: Docker replays its log and
    // ends the stream (a created one is attached to until it starts).
    let status = e.find_container(&id)?.state.status;
    if qbool(&q, "logs")
        && matches!(
            status,
            pier_engine::ContainerStatus::Exited | pier_engine::ContainerStatus::Dead
        )
    {
        let (tty, mut logs) = e.container_logs(
            &id,
            LogOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..Default::default()
            },
        )?;
        let (mut tx, rx) = tokio::net::UnixStream::pair()
            .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
        tokio::spawn(async move {
            use futures::StreamExt;
            use tokio::io::AsyncWriteExt;
            while let Some(Ok(chunk)) = logs.next().await {
                if tx.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = tx.shutdown().await;
        });
        return Ok(hijack(req, tty, None, async move { Ok(rx) }));
    }
    let (tty, fut) = e.attach_container(&id, opts)?;
    Ok(hijack(req, tty, opts.stdin.then_some(keys), fut))
}

async fn logs(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let stdout = qbool(&q, "stdout");
    let stderr = qbool(&q, "stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = crate::params::qtail(&q)?;
    // Zero (the epoch) is the engine's "no bound", as for Docker.
    let now = crate::params::now_nanos();
    let since = crate::params::qtime(&q, "since", now)?.map_or(0.0, |t| t.as_secs_f64());
    let until = crate::params::qtime(&q, "until", now)?.map_or(0.0, |t| t.as_secs_f64());
    let opts = LogOptions {
        stdout,
        stderr,
        follow: qbool(&q, "follow"),
        timestamps: qbool(&q, "timestamps"),
        since,
        until,
        tail,
    };
    let (tty, stream) = e.container_logs(&id, opts)?;
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(crate::body::stream_response(ct, stream))
}

async fn top(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let args = q.get("ps_args").cloned();
    let r = tokio::task::spawn_blocking(move || e.top(&id, args.as_deref())).await??;
    Ok(axum::Json(r).into_response())
}

async fn changes(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let r = tokio::task::spawn_blocking(move || e.container_changes(&id)).await??;
    Ok(axum::Json(r).into_response())
}

async fn export(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    e.find_container(&id)?;
    Ok(blocking_stream("application/x-tar", move |w| e.export_container(&id, w)).await)
}

async fn stats(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let one_shot = qbool(&q, "one-shot");
    let stream = qbool_or(&q, "stream", true) && !one_shot;
    let sample = |e: AppState, id: String| async move {
        tokio::task::spawn_blocking(move || e.stats(&id)).await?
    };
    if !stream {
        let first = sample(e.clone(), id.clone()).await?;
        // As dockerd: a non-streamed answer waits for a second sample so
        // that precpu_stats is real, unless the client asked for one-shot.
        let v = if !one_shot && e.container_running(&id)? {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let cur = sample(e.clone(), id.clone()).await?;
            crate::shape::stats(&cur, Some(&first))
        } else {
            crate::shape::stats(&first, None)
        };
        return Ok(axum::Json(v).into_response());
    }
    e.find_container(&id)?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut prev: Option<pier_engine::StatsSample> = None;
        loop {
            let item = match sample(e.clone(), id.clone()).await {
                Ok(cur) => {
                    let line = pier_engine::json_line(&crate::shape::stats(&cur, prev.as_ref()));
                    prev = Some(cur);
                    Ok(line)
                }
                Err(err) => Err(std::io::Error::other(err.to_string())),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Ok(crate::body::stream_response(
        "application/json",
        pier_engine::channel_stream(rx),
    ))
}

async fn update(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Json(raw): Json<serde_json::Value>,
) -> ApiResult<Response> {
    refuse_dropped_resources(Some(&raw))?;
    let body: pier_api::models::ContainerUpdateBody = typed(raw)?;
    let warnings = e.update_container(&id, body)?;
    Ok(axum::Json(serde_json::json!({"Warnings": warnings})).into_response())
}

async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    if qbool(&q, "link") {
        e.remove_link(&id)?;
        return Ok(StatusCode::NO_CONTENT);
    }
    e.remove_container(&id, qbool(&q, "force"), qbool(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_link(
    State(e): State<AppState>,
    Path((parent, alias)): Path<(String, String)>,
    Query(q): Query<Q>,
) -> ApiResult<StatusCode> {
    let name = format!("{parent}/{alias}");
    if qbool(&q, "link") {
        e.remove_link(&name)?;
    } else {
        // Without `link`, the link name is just another name of the child.
        let child = e.resolve_link(&name)?;
        e.remove_container(&child, qbool(&q, "force"), qbool(&q, "v"))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    Ok(axum::Json(e.prune_containers(&filters(&q)?).await?).into_response())
}

fn stat_header(v: &serde_json::Value) -> HeaderValue {
    let b = base64::engine::general_purpose::STANDARD.encode(v.to_string());
    HeaderValue::from_str(&b).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn archive_path(q: &Q) -> ApiResult<String> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

async fn archive_head(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let path = archive_path(&q)?;
    let stat = tokio::task::spawn_blocking(move || e.archive_get(&id, &path, None)).await??;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(r)
}

async fn archive_get(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ApiResult<Response> {
    let path = archive_path(&q)?;
    let (e2, id2, p2) = (e.clone(), id.clone(), path.clone());
    let stat = tokio::task::spawn_blocking(move || e2.archive_get(&id2, &p2, None)).await??;
    let mut r = blocking_stream("application/x-tar", move |w| {
        e.archive_get(&id, &path, Some(w)).map(|_| ())
    })
    .await;
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(r)
}

async fn archive_put(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = archive_path(&q)?;
    let reader = blocking_reader(body);
    let preserve = qbool(&q, "copyUIDGID");
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        e.archive_put(&id, &path, preserve, &mut reader)
    })
    .await??;
    Ok(StatusCode::OK)
}

async fn commit(
    State(e): State<AppState>,
    Query(q): Query<Q>,
    raw: axum::extract::RawQuery,
    Json(cfg): Json<Option<pier_api::models::ContainerConfig>>,
) -> ApiResult<Response> {
    let container = q
        .get("container")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("container is required"))?;
    let reference = match (
        q.get("repo").filter(|r| !r.is_empty()),
        q.get("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.clone()),
        _ => None,
    };
    // `changes` may repeat (docker-py) or hold several lines (docker CLI).
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.0.as_deref().unwrap_or("")).unwrap_or_default();
    let changes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "changes")
        .flat_map(|(_, v)| v.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let author = q.get("author").cloned();
    let comment = q.get("comment").cloned();
    let id = tokio::task::spawn_blocking(move || {
        e.commit_container(
            &container,
            reference.as_deref(),
            author.as_deref(),
            comment.as_deref(),
            &changes,
            cfg,
        )
    })
    .await??;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"Id": id})),
    )
        .into_response())
}
