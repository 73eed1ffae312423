//! Hijacked connections for attach and exec: answer `101 UPGRADED`, then
//! pipe raw bytes between the client and the shim's stdio stream.

use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Answers the request by hijacking its connection once `stream` resolves.
/// Without an `Upgrade: tcp` header, streams the output as a plain body.
pub fn hijack<F>(req: Request, tty: bool, detach_keys: Option<Vec<u8>>, stream: F) -> Response
where
    F: Future<Output = pier_engine::Result<UnixStream>> + Send + 'static,
{
    hijack_then(req, tty, detach_keys, stream, async {})
}

/// Like [`hijack`], but the client sees the end of the stream only after
/// `before_close` resolves (an exec's exit code is recorded by then).
pub fn hijack_then<F, C>(
    mut req: Request,
    tty: bool,
    detach_keys: Option<Vec<u8>>,
    stream: F,
    before_close: C,
) -> Response
where
    F: Future<Output = pier_engine::Result<UnixStream>> + Send + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    if !wants_upgrade(&req) {
        let body = async_stream_body(stream);
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type(tty))],
            body,
        )
            .into_response();
    }
    // docker-py reads the 101 headers through a buffered reader and then
    // reads frames from the raw socket: bytes that arrive together with the
    // headers are lost (a known docker-py flaw). Give it a moment to consume
    // the headers before the first frame; other clients get no delay.
    let settle = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("docker-sdk-python"))
        .then_some(std::time::Duration::from_millis(50));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let permit = req
        .extensions()
        .get::<crate::listener::ConnPermit>()
        .cloned();
    tokio::spawn(async move {
        let _permit = permit;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("upgrade failed: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        let shim = match stream.await {
            Ok(s) => s,
            Err(e) => {
                let _ = client.write_all(format!("{e}\n").as_bytes()).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        if let Some(d) = settle {
            tokio::time::sleep(d).await;
        }
        pipe(client, shim, detach_keys, before_close).await;
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(tty)),
    );
    resp
}

/// Client input goes to the shim until the client half-closes; shim output
/// goes to the client until the shim closes, which ends the session.
async fn pipe<C, D>(client: C, shim: UnixStream, detach_keys: Option<Vec<u8>>, before_close: D)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    D: Future<Output = ()>,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let (detached_tx, mut detached_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut escape = detach_keys.map(pier_api::detach::DetachFilter::new);
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (out, detached) = match escape.as_mut() {
                        Some(e) => e.feed(&buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !out.is_empty() && sw.write_all(&out).await.is_err() {
                        break;
                    }
                    if detached {
                        // Detach keys: the session ends, the process goes on.
                        let _ = detached_tx.send(());
                        return;
                    }
                }
            }
        }
        // Client closed its side: close the process's stdin.
        let _ = sw.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    // The input side ending (stdin EOF) drops the sender: only a real
    // detach ends the output side early.
    let mut watching_detach = true;
    let mut detached = false;
    loop {
        let n = tokio::select! {
            r = sr.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            d = &mut detached_rx, if watching_detach => {
                if d.is_ok() {
                    detached = true;
                    break;
                }
                watching_detach = false;
                continue;
            }
        };
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let _ = cw.flush().await;
    }
    // A detached session does not wait for the process to end.
    if !detached {
        before_close.await;
    }
    let _ = cw.shutdown().await;
    input.abort();
}

fn async_stream_body<F>(stream: F) -> Body
where
    F: Future<Output = pier_engine::Result<UnixStream>> + Send + 'static,
{
    let s = futures::stream::once(stream).flat_map(|r| match r {
        Ok(sock) => {
            let (r, w) = sock.into_split();
            // Keep the write half open while streaming: dropping it would
            // close the process's stdin.
            tokio_util::io::ReaderStream::new(r)
                .map(move |x| {
                    let _ = &w;
                    x
                })
                .boxed()
        }
        Err(e) => futures::stream::once(async move {
            Err::<bytes::Bytes, std::io::Error>(std::io::Error::other(e.to_string()))
        })
        .boxed(),
    });
    Body::from_stream(s)
}

use futures::StreamExt;
