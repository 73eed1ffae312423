//! Plain HTTP/1.1 requests to the daemon, one connection each.

use crate::{Client, ClientError, Result};
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use http::{Method, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncRead;

/// A request body: empty, in memory, or streamed from a reader.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn body_empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn body_bytes(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub fn body_json<T: Serialize>(v: &T) -> Result<Body> {
    Ok(body_bytes(serde_json::to_vec(v)?))
}

/// Streams `reader` as the body (chunked), e.g. a tar from stdin.
pub fn body_reader<R: AsyncRead + Send + Sync + 'static>(reader: R) -> Body {
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(stream))
}

/// `?a=1&b=x%20y` from pairs; empty values are kept (Docker reads `?fromSrc=-`).
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = String::from("?");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(v, QUERY_SET));
    }
    out
}

const QUERY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Reads a whole response body into memory.
pub async fn read_body(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp.into_body().collect().await?.to_bytes())
}

pub async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let b = read_body(resp).await?;
    Ok(serde_json::from_slice(&b)?)
}

/// The message of an error response: `{"message": "…"}`, or the body as text.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    String::from_utf8_lossy(body).trim().to_string()
}

impl Client {
    /// Sends one request and returns once the response headers are in, so a
    /// caller can tell "the daemon has registered this" (e.g. `/wait`) before
    /// reading the body. An error status becomes [`ClientError::Daemon`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response<Incoming>> {
        self.request_with(method, path, body, &[]).await
    }

    /// Like [`Client::request`] with extra headers (e.g. `X-Registry-Auth`).
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        let stream = self.dial().await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(Client::versioned(path))
            .header("Host", "pier");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(body)?;
        let resp = sender.send_request(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status().as_u16();
            let body = read_body(resp).await.unwrap_or_default();
            return Err(ClientError::Daemon {
                status,
                message: error_message(&body),
            });
        }
        Ok(resp)
    }

    pub async fn get(&self, path: &str) -> Result<Response<Incoming>> {
        self.request(Method::GET, path, body_empty()).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        read_json(self.get(path).await?).await
    }

    /// POST with an optional JSON body, returning the raw response.
    pub async fn post<B: Serialize>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response<Incoming>> {
        let (body, headers) = match body {
            Some(b) => (
                body_json(b)?,
                vec![("Content-Type", "application/json".to_string())],
            ),
            None => (body_empty(), Vec::new()),
        };
        self.request_with(Method::POST, path, body, &headers).await
    }

    /// POST and decode a JSON answer.
    pub async fn post_json<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        read_json(self.post(path, body).await?).await
    }

    /// POST, ignoring the answer's body (204s and the like).
    pub async fn post_unit(&self, path: &str) -> Result<()> {
        let resp = self.post::<()>(path, None).await?;
        let _ = read_body(resp).await?;
        Ok(())
    }

    pub async fn delete(&self, path: &str) -> Result<Response<Incoming>> {
        self.request(Method::DELETE, path, body_empty()).await
    }
}

/// A stream of JSON messages, one per line, as `/images/create`, `/events`,
/// `/stats` and friends send them.
pub struct JsonLines {
    body: BodyStream<Incoming>,
    buf: BytesMut,
    done: bool,
}

impl JsonLines {
    pub fn new(resp: Response<Incoming>) -> JsonLines {
        JsonLines {
            body: BodyStream::new(resp.into_body()),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next message, or `None` at the end of the stream.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&c| c == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(|c| c.is_ascii_whitespace()) {
                    continue;
                }
                return Some(serde_json::from_slice(line).map_err(ClientError::from));
            }
            if self.done {
                if self.buf.iter().all(|c| c.is_ascii_whitespace()) {
                    return None;
                }
                let rest = self.buf.split();
                return Some(serde_json::from_slice(&rest).map_err(ClientError::from));
            }
            match self.body.try_next().await {
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Ok(None) => self.done = true,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// Reads a response body as raw chunks (for `save`, `export`, `cp`).
pub fn body_chunks(resp: Response<Incoming>) -> impl futures::Stream<Item = Result<Bytes>> + Unpin {
    Box::pin(
        BodyStream::new(resp.into_body())
            .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
            .map_err(ClientError::from),
    )
}

/// The body as an [`AsyncRead`].
pub fn body_async_read(resp: Response<Incoming>) -> impl AsyncRead + Unpin {
    let s = BodyStream::new(resp.into_body())
        .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
        .map_err(std::io::Error::other);
    tokio_util::io::StreamReader::new(Box::pin(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_values() {
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("fromSrc", "-".into()), ("tag", "a b/c".into())]),
            "?fromSrc=-&tag=a%20b%2Fc"
        );
    }

    #[test]
    fn error_message_prefers_json() {
        assert_eq!(
            error_message(br#"{"message":"No such container: x"}"#),
            "No such container: x"
        );
        assert_eq!(error_message(b"plain\n"), "plain");
    }
}
