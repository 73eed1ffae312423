//! Request and response body helpers: lenient JSON, query parsing that
//! accepts Docker's boolean spellings, blocking readers and streamed bodies.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::ApiError;

/// A JSON body that tolerates a missing Content-Type and an empty body
/// (Docker's clients send both), answering 400 on malformed JSON.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Json(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
    }
}

/// Query parameters as a map; repeated keys keep the last value.
pub type Query = HashMap<String, String>;

pub fn qbool(q: &Query, key: &str) -> bool {
    matches!(
        q.get(key).map(|s| s.to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// Like `qbool` but with a default when absent.
pub fn qbool_or(q: &Query, key: &str, default: bool) -> bool {
    if q.contains_key(key) {
        qbool(q, key)
    } else {
        default
    }
}

/// Docker's `filters` query: JSON `{"key":["v"]}` or the old `{"key":{"v":true}}`.
pub fn filters(q: &Query) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let mut out = HashMap::new();
    if let Some(o) = v.as_object() {
        for (k, vals) in o {
            let list = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool().unwrap_or(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            out.insert(k.clone(), list);
        }
    } else {
        return Err(ApiError::bad_request("invalid filter: expected an object"));
    }
    Ok(out)
}

/// The request body as a blocking reader, for use on a blocking thread.
pub fn blocking_reader(body: Body) -> Box<dyn std::io::Read + Send> {
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    Box::new(SyncIoBridge::new(StreamReader::new(stream)))
}

/// A 200 response streaming `stream` with `content_type`.
pub fn stream_response(content_type: &'static str, stream: pier_engine::ByteStream) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Runs `f` on a blocking thread writing into a streamed response body.
/// An error before the first byte becomes a proper error response.
pub async fn blocking_stream<F>(content_type: &'static str, f: F) -> Response
where
    F: FnOnce(&mut pier_engine::ChannelWriter) -> pier_engine::Result<()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::task::spawn_blocking(move || {
        let mut w = pier_engine::ChannelWriter::new(tx);
        let r = f(&mut w);
        if let Err(e) = &r {
            // Past the first chunk the status is sent: fail the body instead.
            w.fail(std::io::Error::other(e.to_string()));
        }
        r
    });
    // Wait for the first chunk (or the end) to choose the status.
    let first = rx.recv().await;
    match first {
        None => match task.await {
            Ok(Ok(())) => stream_response(content_type, Box::pin(futures::stream::empty())),
            Ok(Err(e)) => ApiError::from(e).into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        // The writer fails only as the closure returns: wait for it, or the
        // error would race the response head and the client get no answer.
        Some(Err(_)) => match task.await {
            Ok(Err(e)) => ApiError::from(e).into_response(),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "stream failed").into_response(),
        },
        Some(first) => {
            let rest = tokio_stream_from(rx);
            let s = futures::stream::once(async move { first }).chain(rest);
            stream_response(content_type, Box::pin(s))
        }
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

use futures::StreamExt;
