use std::path::{Path, PathBuf};

use pier_content::ContentError;

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Registry failures by kind, so the engine can answer 404 / 401 / 400 / 500.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Manifest, blob or repository unknown to the registry.
    #[error("{0}")]
    NotFound(String),
    /// The registry refused our credentials (or we had none).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (HTTP 403, `DENIED`).
    #[error("{0}")]
    Denied(String),
    /// The caller's input is wrong: reference, platform, auth header.
    #[error("{0}")]
    Invalid(String),
    /// The registry answered something we cannot use.
    #[error("{0}")]
    Protocol(String),
    #[error("{context}: {}", error_chain(source))]
    Http {
        context: String,
        source: reqwest::Error,
    },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Docker config file or credential helper trouble.
    #[error("{0}")]
    Credentials(String),
}

impl RegistryError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound(_))
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, RegistryError::Unauthorized(_))
    }

    pub fn is_invalid_input(&self) -> bool {
        matches!(self, RegistryError::Invalid(_))
    }

    /// A failure on our side (content store, files, the caller's input),
    /// which another mirror would not cure.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            RegistryError::Content(_) | RegistryError::Io { .. } | RegistryError::Credentials(_)
        )
    }

    /// The registry could not be reached at all (refused, no route, timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Http { source, .. } if source.is_connect() || source.is_timeout())
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> RegistryError + use<> {
    let path = path.to_path_buf();
    move |source| RegistryError::Io { what, path, source }
}

/// An error with its causes: reqwest's own text hides them ("error sending
/// request"), and the cause is what a user needs (refused, bad certificate).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

pub(crate) fn http_err(context: impl Into<String>) -> impl FnOnce(reqwest::Error) -> RegistryError {
    let context = context.into();
    move |source| RegistryError::Http { context, source }
}

/// The distribution spec's error body: `{"errors":[{"code":..,"message":..}]}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Formats a registry error body the way Docker prints it:
/// `manifest unknown: manifest unknown`. Falls back to the HTTP status.
pub(crate) fn describe_error_body(status: u16, body: &[u8]) -> (Vec<String>, String) {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body)
        && !b.errors.is_empty()
    {
        let codes = b.errors.iter().map(|e| e.code.clone()).collect();
        let text = b
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_lowercase().replace('_', " ");
                if e.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", e.message)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        return (codes, text);
    }
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unexpected status");
    let snippet = String::from_utf8_lossy(&body[..body.len().min(200)])
        .trim()
        .to_string();
    let text = if snippet.is_empty() || snippet.starts_with('<') {
        format!("unexpected status {status} {reason}")
    } else {
        format!("unexpected status {status} {reason}: {snippet}")
    };
    (Vec::new(), text)
}

/// Turns a non-success registry answer into an error of the right kind.
pub(crate) fn status_error(what: &str, status: u16, body: &[u8]) -> RegistryError {
    let (codes, text) = describe_error_body(status, body);
    let has = |c: &str| codes.iter().any(|x| x == c);
    match status {
        401 => RegistryError::Unauthorized(format!("{what}: {text}")),
        403 => RegistryError::Denied(format!("{what}: {text}")),
        404 => RegistryError::NotFound(format!("{what}: {text}")),
        _ if has("DENIED") => RegistryError::Denied(format!("{what}: {text}")),
        _ if has("UNAUTHORIZED") => RegistryError::Unauthorized(format!("{what}: {text}")),
        _ if has("MANIFEST_UNKNOWN") || has("BLOB_UNKNOWN") || has("NAME_UNKNOWN") => {
            RegistryError::NotFound(format!("{what}: {text}"))
        }
        _ => RegistryError::Protocol(format!("{what}: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_like_dockers() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let e = status_error("manifest for a:x", 404, body);
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "manifest for a:x: manifest unknown: manifest unknown"
        );
        let e = status_error("x", 500, b"<html>oops</html>");
        assert_eq!(
            e.to_string(),
            "x: unexpected status 500 Internal Server Error"
        );
        let e = status_error(
            "x",
            400,
            br#"{"errors":[{"code":"DENIED","message":"no"}]}"#,
        );
        assert!(matches!(e, RegistryError::Denied(_)));
    }
}
