//! Engine errors to HTTP, in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pier_engine::{EngineError, ErrorKind};

/// An error answer: Docker's `{"message": "..."}` body with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The status Docker's daemon answers for each kind (moby's `errdefs`
/// mapping in `httpstatus`).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        // As Docker: 400, and its CLI picks 126 or 127 from the message.
        ErrorKind::CannotStart { .. } => StatusCode::BAD_REQUEST,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = status_of(e.kind());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The debug form names the cause's type, which the text does not.
            tracing::error!(error = ?e, "{e}");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            return self.status.into_response();
        }
        let body = serde_json::to_vec(&pier_api::ErrorBody {
            message: self.message,
        })
        .unwrap_or_default();
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn answer(e: EngineError) -> (StatusCode, Option<String>, Vec<u8>) {
        let r = ApiError::from(e).into_response();
        let status = r.status();
        let ctype = r
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, ctype, body)
    }

    #[tokio::test]
    async fn each_kind_answers_dockers_status_with_its_message() {
        let cases = [
            (EngineError::no_such_container("web"), 404),
            (EngineError::conflict("in use"), 409),
            (EngineError::invalid_argument("bad"), 400),
            (EngineError::unauthorized("who"), 401),
            (EngineError::forbidden("no"), 403),
            (EngineError::cannot_start("exec: not found", 127), 400),
            (EngineError::not_implemented("later"), 501),
            (EngineError::unavailable("away"), 503),
            (EngineError::internal("broke"), 500),
        ];
        for (e, code) in cases {
            let want = serde_json::json!({ "message": e.to_string() });
            let (status, ctype, body) = answer(e).await;
            assert_eq!(status.as_u16(), code);
            assert_eq!(ctype.as_deref(), Some("application/json"));
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn not_modified_has_no_body() {
        let (status, _, body) = answer(EngineError::not_modified("already started")).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn the_body_reads_message_then_cause() {
        let e = EngineError::not_found(
            "pull access denied for nope, repository does not exist or may require 'docker login'",
        )
        .with_source(std::io::Error::other(
            "denied: requested access to the resource is denied",
        ));
        let (status, _, body) = answer(e).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"message":"pull access denied for nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"}"#
        );
    }
}
