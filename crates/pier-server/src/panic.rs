//! A handler that panics answers 500 with Docker's error body and leaves a
//! log line; the daemon and every other request go on.

use std::any::Any;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

#[derive(Clone, Copy)]
pub struct PanicToError;

impl ResponseForPanic for PanicToError {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> Response {
        let what = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| err.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        tracing::error!("request handler panicked: {what}");
        crate::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: the request handler panicked: {what}"),
        )
        .into_response()
    }
}

pub fn layer() -> CatchPanicLayer<PanicToError> {
    CatchPanicLayer::custom(PanicToError)
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_a_message() {
        async fn boom() -> &'static str {
            let v: Vec<u8> = Vec::new();
            let i = v.len() + 3;
            if v.get(i).is_none() {
                panic!("index {i} out of range");
            }
            "unreachable"
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" }))
            .layer(layer());
        let req = |p: &str| {
            axum::http::Request::get(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(req("/boom")).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("index 3 out of range"),
            "{v}"
        );
        // The same service still answers.
        let r = app.oneshot(req("/ok")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
