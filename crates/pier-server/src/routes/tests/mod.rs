//! The network and exec routes driven through the real axum router, the
//! version prefix and the error mapping, with recording fakes in place of
//! the engine: no root, no kernel, no daemon.

mod exec;
mod networks;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

/// A router with the given routes and the real fallback.
fn app(routes: Router) -> Router {
    routes.fallback(super::not_found)
}

/// One request through the version prefix and the router: status, headers
/// and body.
async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = match crate::strip_version(req) {
        Ok(req) => app.clone().oneshot(req).await.expect("infallible"),
        Err(resp) => *resp,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, headers, bytes.to_vec())
}

/// Like [`call`], for a JSON answer (`null` for an empty body).
async fn json(app: &Router, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, bytes) = call(app, method, path, body).await;
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {bytes:?}"));
    (status, v)
}

/// The kind of the value at `ptr`, as `tests/tests/api_shapes.rs` names it.
fn kind(v: &Value, ptr: &str) -> &'static str {
    match v.pointer(ptr) {
        None => "absent",
        Some(Value::Null) => "null",
        Some(Value::String(s)) if s.is_empty() => "\"\"",
        Some(Value::String(_)) => "string",
        Some(Value::Number(_)) => "number",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Array(a)) if a.is_empty() => "[]",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(o)) if o.is_empty() => "{}",
        Some(Value::Object(_)) => "object",
    }
}

/// Checks `(pointer, kind)` pairs, reporting every mismatch at once.
fn check(what: &str, v: &Value, want: &[(&str, &str)]) {
    let bad: Vec<String> = want
        .iter()
        .filter(|(p, k)| kind(v, p) != *k)
        .map(|(p, k)| format!("{p}: want {k}, got {}", kind(v, p)))
        .collect();
    assert!(bad.is_empty(), "{what}:\n{}\n{v:#}", bad.join("\n"));
}

/// Docker's error body: `{"message": "..."}` and nothing else.
fn message(v: &Value) -> &str {
    assert_eq!(kind(v, "/message"), "string", "error body: {v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "error body: {v}");
    v["message"].as_str().unwrap_or_default()
}
