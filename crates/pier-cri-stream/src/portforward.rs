//! Kubernetes' `portforward.k8s.io` protocol over SPDY, as the kubelet
//! serves it: for each connection the client forwards it opens an error
//! stream and a data stream with the same `requestid` and the remote
//! `port`; the data stream is the connection, the error stream carries a
//! message if forwarding fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::debug;

use crate::backend::Backend;
use crate::pipe::{Ender, Out, OutStream, PortStream};
use crate::spdy::{self, NewStream};

pub(crate) const PROTOCOL: &str = "portforward.k8s.io";
pub(crate) const WS_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// How long half of a pair may wait for the other (the kubelet's stream
/// creation timeout).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// Pairs waiting at once on one connection.
const MAX_PENDING: usize = 512;

#[derive(Default)]
struct Pair {
    error: Option<NewStream>,
    data: Option<NewStream>,
    since: Option<Instant>,
}

/// The `requestid` header, or for clients older than it, the kubelet's
/// guess from the stream ids (the data stream follows its error stream).
fn request_id(s: &NewStream, kind: &str) -> String {
    match s.headers.get("requestid") {
        Some(id) => id.to_string(),
        None if kind == "data" => s.id.saturating_sub(2).to_string(),
        None => s.id.to_string(),
    }
}

/// Parses the `port` header as the kubelet does, with its messages.
pub(crate) fn parse_port(header: Option<&str>) -> Result<u16, String> {
    let s = header.ok_or_else(|| "\"port\" header is required".to_string())?;
    let port: u16 = s
        .parse()
        .map_err(|e| format!("unable to parse \"{s}\" as a port: {e}"))?;
    if port == 0 {
        return Err(format!("port \"{s}\" must be > 0"));
    }
    Ok(port)
}

pub(crate) async fn serve_spdy<B, IO>(backend: Arc<B>, sandbox: String, io: IO, idle: Duration)
where
    B: Backend,
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut session = spdy::start(io, idle);
    let out = session.out.clone();
    let mut pending: HashMap<String, Pair> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let s = tokio::select! {
            s = session.incoming.recv() => match s {
                Some(s) => s,
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let stale: Vec<String> = pending
                    .iter()
                    .filter(|(_, p)| p.since.is_some_and(|t| now - t > PAIR_TIMEOUT))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    if let Some(p) = pending.remove(&k) {
                        debug!("port forward request {k}: timed out waiting for its streams");
                        end_pair(&out, p.error.map(|s| s.id), p.data.map(|s| Ender::new(s.id)),
                            Some(format!("timed out waiting for streams of request {k}"))).await;
                    }
                }
                continue;
            }
        };
        let kind = s.headers.get("streamtype").unwrap_or("").to_string();
        let id = request_id(&s, &kind);
        if !pending.contains_key(&id) && pending.len() >= MAX_PENDING {
            end_pair(&out, None, Some(Ender::new(s.id)), None).await;
            continue;
        }
        let pair = pending.entry(id.clone()).or_default();
        pair.since.get_or_insert_with(Instant::now);
        let slot = match kind.as_str() {
            "error" => &mut pair.error,
            "data" => &mut pair.data,
            other => {
                debug!("port forward: unexpected stream type {other:?}");
                end_pair(&out, None, Some(Ender::new(s.id)), None).await;
                continue;
            }
        };
        if slot.is_some() {
            // The kubelet keeps the first and says so on the error stream.
            let msg =
                format!("error processing stream for request {id}: {kind} stream already assigned");
            let error = pair.error.as_ref().map(|e| e.id);
            if let Some(e) = error {
                let _ = out
                    .send(Out::Data {
                        id: e,
                        data: Bytes::from(msg),
                    })
                    .await;
            }
            end_pair(&out, None, Some(Ender::new(s.id)), None).await;
            continue;
        }
        *slot = Some(s);
        if pair.error.is_some() && pair.data.is_some() {
            let p = pending.remove(&id).unwrap_or_default();
            let (Some(error), Some(data)) = (p.error, p.data) else {
                continue;
            };
            tokio::spawn(forward(
                backend.clone(),
                sandbox.clone(),
                error.id,
                data,
                out.clone(),
            ));
        }
    }
    let _ = out.send(Out::Close).await;
}

async fn forward<B: Backend>(
    backend: Arc<B>,
    sandbox: String,
    error: u32,
    data: NewStream,
    out: mpsc::Sender<Out>,
) {
    let output = OutStream::new(data.id, out.clone());
    let data_end = output.ender();
    let msg = match parse_port(data.headers.get("port")) {
        Err(m) => Some(m),
        Ok(port) => {
            let stream = PortStream {
                input: data.input,
                output,
            };
            match backend.port_forward(sandbox.clone(), port, stream).await {
                Ok(()) => None,
                // containerd's words (its pod "uid" is empty).
                Err(e) => Some(format!(
                    "error forwarding port {port} to pod {sandbox}, uid : {e}"
                )),
            }
        }
    };
    end_pair(&out, Some(error), Some(data_end), msg).await;
}

async fn end_pair(
    out: &mpsc::Sender<Out>,
    error: Option<u32>,
    data: Option<Ender>,
    msg: Option<String>,
) {
    if let (Some(id), Some(m)) = (error, msg) {
        let _ = out
            .send(Out::Data {
                id,
                data: Bytes::from(m),
            })
            .await;
    }
    for e in [data, error.map(Ender::new)].into_iter().flatten() {
        e.end(out).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_parsed_with_the_kubelets_messages() {
        assert_eq!(parse_port(Some("8080")), Ok(8080));
        assert!(parse_port(None).unwrap_err().contains("required"));
        assert!(parse_port(Some("0")).unwrap_err().contains("must be > 0"));
        assert!(parse_port(Some("70000"))
            .unwrap_err()
            .contains("unable to parse"));
        assert!(parse_port(Some("-1"))
            .unwrap_err()
            .contains("unable to parse"));
    }
}
