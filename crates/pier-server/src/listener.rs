//! Accepting API connections so that no client can lock the others out: a
//! client gets a bounded time to send its request head, and the number of
//! open connections stays well below the daemon's file descriptor limit
//! (what is left serves containers, shims, logs and layers).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::endpoints::{Accepted, Listener};

/// How long a client may take to send a request head, on a new connection
/// and between requests on a kept-alive one. Docker has no such bound; an
/// idle client then holds its descriptor forever. Streams (`logs -f`,
/// `/events`, `wait`, attach) are past their head, so this never cuts them.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's place in the limit. A hijacked session (attach, exec)
/// keeps the connection's descriptor after hyper lets go of it, so it takes
/// this from the request and holds it until the session ends.
#[derive(Clone)]
pub struct ConnPermit {
    _held: Arc<OwnedSemaphorePermit>,
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (going beyond
/// needs CAP_SYS_RESOURCE) and returns the soft limit now in effect.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let Some(cur) = lim.current else {
        return u64::MAX;
    };
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!("cannot raise the open file limit from {cur}: {e}");
            return cur;
        }
    }
    lim.current.unwrap_or(u64::MAX)
}

/// The most API connections served at once for a descriptor limit of
/// `nofile`: half of it, the rest for everything else the daemon opens.
pub fn connection_limit(nofile: u64) -> usize {
    usize::try_from((nofile / 2).clamp(64, 1 << 20)).unwrap_or(1 << 20)
}

/// The next connection on any of `listeners` (accepts are cancel-safe).
async fn accept_any(listeners: &[Listener]) -> std::io::Result<Accepted> {
    let (r, _, _) =
        futures::future::select_all(listeners.iter().map(|l| Box::pin(l.accept()))).await;
    r
}

/// Serves `app` on `listeners` until `stop` turns true, then lets open
/// connections finish their current request for up to `grace`. The limit
/// on open connections is shared by all of them.
pub(crate) async fn serve<S>(
    listeners: Vec<Listener>,
    app: S,
    max_conns: usize,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) where
    S: tower::Service<axum::extract::Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_conns));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut warned_full = false;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Leave new clients in the socket's backlog until one leaves.
                if !warned_full {
                    tracing::warn!("{max_conns} API connections open: new ones wait");
                    warned_full = true;
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
        };
        let stream = tokio::select! {
            r = accept_any(&listeners) => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::error!("accepting an API connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        if permits.available_permits() > max_conns / 10 {
            warned_full = false;
        }
        let permit = ConnPermit {
            _held: Arc::new(permit),
        };
        let svc = app.clone();
        let held = permit.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(held.clone());
            svc.clone().oneshot(req)
        });
        let http = http.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // The TLS handshake counts against the same bound as a request head.
            let stream = match stream.establish(header_timeout).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("API connection: {e}");
                    return;
                }
            };
            let conn = http
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!("API connection: {e}");
            }
        });
    }
    drop(listeners);
    // Every permit back means every connection has ended.
    let all = u32::try_from(max_conns).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("closed the remaining client streams");
    }
}

/// Resolves once the daemon stops (the guard `wait_for` returns is not Send).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::{get, post};
    use axum::Router;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    use super::*;

    async fn get_ok(path: &std::path::Path) -> String {
        let mut s = UnixStream::connect(path).await.unwrap();
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// One connection allowed, 300 ms for a head: an idle client is cut
    /// after the timeout and the next client is served then; a hijacked
    /// session keeps its place until it ends.
    #[tokio::test]
    async fn idle_clients_time_out_and_sessions_count_against_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let listener = Listener::Unix(tokio::net::UnixListener::bind(&sock).unwrap());
        let (session_tx, session_rx) = tokio::sync::watch::channel(None::<()>);
        let app = Router::new().route("/ok", get(|| async { "fine" })).route(
            "/hijack",
            post(move |req: axum::extract::Request| {
                let mut rx = session_rx.clone();
                async move {
                    let (ours, theirs) = UnixStream::pair().unwrap();
                    tokio::spawn(async move {
                        // The session lasts until the test says so.
                        let _ = rx.wait_for(|v| v.is_some()).await;
                        drop(theirs);
                    });
                    crate::hijack::hijack(req, true, None, async move { Ok(ours) })
                }
            }),
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(
            vec![listener],
            app,
            1,
            Duration::from_millis(300),
            stop_rx,
            Duration::from_millis(100),
        ));

        let mut idle = UnixStream::connect(&sock).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let answer = get_ok(&sock).await;
        assert!(answer.ends_with("fine"), "{answer}");
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "served after {waited:?}: the idle client should hold the only place"
        );
        let mut b = [0u8; 16];
        assert_eq!(
            idle.read(&mut b).await.unwrap(),
            0,
            "idle client not closed"
        );

        let mut session = UnixStream::connect(&sock).await.unwrap();
        session
            .write_all(
                b"POST /hijack HTTP/1.1\r\nHost: t\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
            )
            .await
            .unwrap();
        let n = session.read(&mut b).await.unwrap();
        assert!(b[..n].starts_with(b"HTTP/1.1 101"));
        // Held far past the header timeout: the session still has the place.
        let blocked = tokio::time::timeout(Duration::from_millis(800), get_ok(&sock)).await;
        assert!(blocked.is_err(), "served while the session holds the place");
        session_tx.send(Some(())).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), get_ok(&sock))
            .await
            .expect("served once the session ended");
        assert!(answer.ends_with("fine"));

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
