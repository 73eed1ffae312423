//! The HTTP side: `/exec/{token}`, `/attach/{token}`,
//! `/portforward/{token}` (GET or POST), upgraded to SPDY/3.1 or to a
//! websocket, with the kubelet's handshake rules and messages.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::backend::Backend;
use crate::cache::{Cache, Cached};
use crate::remotecommand::{self, Job};
use crate::{portforward, ws};

const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
const ACCEPTED_HEADER: &str = "x-accepted-stream-protocol-versions";

pub(crate) struct Shared<B> {
    pub cache: Arc<Cache>,
    pub backend: Arc<B>,
    pub idle: Duration,
}

pub(crate) fn router<B: Backend>(shared: Arc<Shared<B>>) -> Router {
    Router::new()
        .route("/exec/{token}", any(exec::<B>))
        .route("/attach/{token}", any(attach::<B>))
        .route("/portforward/{token}", any(port_forward::<B>))
        .with_state(shared)
}

fn not_found(token: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("token {token:?} not found\n"),
    )
        .into_response()
}

fn header_values(h: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_websocket(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The client's first protocol that the server speaks (client order, as
/// `httpstream.Handshake`).
fn negotiate(client: &[String], server: &[&'static str]) -> Option<&'static str> {
    client
        .iter()
        .find_map(|c| server.iter().find(|s| **s == c.as_str()).copied())
}

/// Answers an SPDY/3.1 upgrade and runs `serve` on the connection.
fn spdy_upgrade<F, Fut>(mut req: Request, server: &[&'static str], serve: F) -> Response
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let h = req.headers();
    let connection = h
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let upgrade = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !connection.contains("upgrade") || !upgrade.contains("spdy/3.1") {
        return (
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request\n",
        )
            .into_response();
    }
    let client = header_values(h, PROTOCOL_HEADER);
    if client.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "unable to upgrade: header X-Stream-Protocol-Version does not exist in request\n",
        )
            .into_response();
    }
    let Some(protocol) = negotiate(&client, server) else {
        let mut resp = (
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {client:?}, server accepts {server:?}\n"
            ),
        )
            .into_response();
        for s in server {
            resp.headers_mut()
                .append(ACCEPTED_HEADER, HeaderValue::from_static(s));
        }
        return resp;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => serve(TokioIo::new(up), protocol).await,
            Err(e) => debug!("SPDY upgrade failed: {e}"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    resp
}

/// Answers a websocket upgrade with one of `server`'s subprotocols.
async fn ws_upgrade<F, Fut>(req: Request, server: &[&'static str], serve: F) -> Response
where
    F: FnOnce(axum::extract::ws::WebSocket, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = header_values(req.headers(), header::SEC_WEBSOCKET_PROTOCOL);
    let protocol = if client.is_empty() && server.contains(&"") {
        Some("")
    } else {
        negotiate(&client, server)
    };
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            format!("requested protocol(s) are not supported: {client:?}; supports {server:?}\n"),
        )
            .into_response();
    };
    let (mut parts, _) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = if protocol.is_empty() {
        upgrade
    } else {
        upgrade.protocols([protocol])
    };
    upgrade
        .max_message_size(ws::MAX_MESSAGE)
        .max_frame_size(ws::MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, protocol))
}

async fn remote_command<B: Backend>(shared: Arc<Shared<B>>, job: Job, req: Request) -> Response {
    let backend = shared.backend.clone();
    let idle = shared.idle;
    if is_websocket(req.headers()) {
        ws_upgrade(
            req,
            remotecommand::WS_PROTOCOLS,
            move |socket, protocol| async move {
                ws::serve_channels(&*backend, job, socket, protocol, idle).await
            },
        )
        .await
    } else {
        spdy_upgrade(
            req,
            remotecommand::SPDY_PROTOCOLS,
            move |io, protocol| async move {
                remotecommand::serve_spdy(&*backend, job, io, protocol, idle).await
            },
        )
    }
}

async fn exec<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    match shared.cache.consume(&token) {
        Some(Cached::Exec(r)) => remote_command(shared, Job::Exec(r), req).await,
        _ => not_found(&token),
    }
}

async fn attach<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    match shared.cache.consume(&token) {
        Some(Cached::Attach(r)) => remote_command(shared, Job::Attach(r), req).await,
        _ => not_found(&token),
    }
}

async fn port_forward<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let Some(Cached::PortForward(r)) = shared.cache.consume(&token) else {
        return not_found(&token);
    };
    let backend = shared.backend.clone();
    let idle = shared.idle;
    let sandbox = r.pod_sandbox_id;
    if is_websocket(req.headers()) {
        // Only client-go's SPDY tunnel; the older websocket port-forward
        // protocol (ports in the query) is refused by the negotiation.
        ws_upgrade(
            req,
            &[portforward::WS_TUNNEL_PROTOCOL],
            move |socket, _| async move {
                portforward::serve_spdy(backend, sandbox, ws::tunnel(socket), idle).await
            },
        )
        .await
    } else {
        spdy_upgrade(req, &[portforward::PROTOCOL], move |io, _| async move {
            portforward::serve_spdy(backend, sandbox, io, idle).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_clients_first_known_protocol() {
        let client: Vec<String> = [
            "v5.channel.k8s.io",
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            negotiate(&client, remotecommand::SPDY_PROTOCOLS),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&client, remotecommand::WS_PROTOCOLS),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            negotiate(&["x".to_string()], remotecommand::WS_PROTOCOLS),
            None
        );
    }
}
