//! The websocket transports: remotecommand's channel protocols (one byte of
//! channel before each binary message: 0 stdin, 1 stdout, 2 stderr,
//! 3 error, 4 resize; v5 adds `[255, channel]` to close a channel; the
//! base64 ones send text, `'0' + channel` then the payload in base64) and
//! SPDY tunnelled in binary messages, which client-go's port forwarding
//! speaks as `SPDY/3.1+portforward.k8s.io`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use crate::backend::{Backend, Streams};
use crate::idle::{self, Activity};
use crate::pipe::{self, Budget, Feed, Out, OutStream};
use crate::remotecommand::{self, Job, V5};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE_SIGNAL: u8 = 255;

/// Largest websocket message or frame we accept from a client.
pub(crate) const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a finished session waits for the client to close.
const LINGER: Duration = Duration::from_secs(5);

/// client-go takes only a normal closure (1000) as the end of the streams;
/// any other close, or none, fails the session.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    }))
}

/// Exec or attach over an upgraded websocket.
pub(crate) async fn serve_channels<B: Backend>(
    backend: &B,
    job: Job,
    socket: WebSocket,
    protocol: &'static str,
    idle: Duration,
) {
    let wanted = job.wanted();
    let base64 = protocol.contains("base64");
    let activity = Arc::new(Activity::new());
    let writer_activity = activity.clone();
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);

    let writer = tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            let msg = match o {
                Out::Data { id, data } if base64 => {
                    let text = format!("{}{}", char::from(b'0' + id as u8), BASE64.encode(&data));
                    Message::Text(text.into())
                }
                Out::Data { id, data } => {
                    let mut m = BytesMut::with_capacity(data.len() + 1);
                    m.put_u8(id as u8);
                    m.put_slice(&data);
                    Message::Binary(m.freeze())
                }
                Out::Fin { .. } | Out::Control(_) => continue,
                Out::Close => {
                    let _ = sink.send(normal_close()).await;
                    break;
                }
            };
            if sink.feed(msg).await.is_err() {
                break;
            }
            writer_activity.touch();
            if out_rx.is_empty() && sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let budget = Budget::new();
    let mut inputs: HashMap<u8, Feed> = HashMap::new();
    let mut stdin = None;
    let mut resize = None;
    if wanted.stdin {
        let (tx, rx) = pipe::input(&budget);
        inputs.insert(STDIN, tx);
        stdin = Some(rx);
    }
    if wanted.tty {
        let (tx, rx) = pipe::input(&budget);
        inputs.insert(RESIZE, tx);
        resize = Some(remotecommand::spawn_resize_decoder(rx));
    }
    let close_signal = protocol == V5;
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let closer = out_tx.clone();
    let reader = tokio::spawn(async move {
        let mut linger = false;
        let mut idle_check = tokio::time::interval(idle::check_every(idle));
        loop {
            let msg = tokio::select! {
                m = source.next() => m,
                _ = done_rx.changed(), if !linger => { linger = true; continue; }
                _ = tokio::time::sleep(LINGER), if linger => break,
                _ = idle_check.tick() => {
                    if activity.expired(idle) {
                        debug!("websocket session idle for over {idle:?}: closing");
                        let _ = closer.send(Out::Close).await;
                        break;
                    }
                    continue;
                }
            };
            activity.touch();
            let data = match msg {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Text(t))) if base64 => {
                    Bytes::copy_from_slice(t.as_str().as_bytes())
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Ping, pong: the library answers pings itself.
                Some(Ok(_)) => continue,
            };
            let Some((&channel, rest)) = data.split_first() else {
                continue;
            };
            if base64 {
                // '0' + channel, then the payload in base64; a bad one is
                // dropped, as the kubelet does.
                let Ok(decoded) = BASE64.decode(rest) else {
                    debug!("websocket message with bad base64");
                    continue;
                };
                if let Some(tx) = inputs.get(&channel.wrapping_sub(b'0'))
                    && !decoded.is_empty()
                    && tx.send(Bytes::from(decoded)).await.is_err()
                {
                    inputs.remove(&channel.wrapping_sub(b'0'));
                }
                continue;
            }
            if close_signal && channel == CLOSE_SIGNAL {
                if rest.len() != 1 {
                    debug!("websocket close signal of {} bytes", rest.len());
                    break;
                }
                inputs.remove(&rest[0]);
                continue;
            }
            if let Some(tx) = inputs.get(&channel)
                && !rest.is_empty()
                && tx.send(data.slice(1..)).await.is_err()
            {
                inputs.remove(&channel);
            }
        }
    });

    // The kubelet's first message: an empty one on the lowest writable
    // channel, so the client knows the session is up.
    let first = if wanted.stdout {
        STDOUT
    } else if wanted.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = out_tx
        .send(Out::Data {
            id: first.into(),
            data: Bytes::new(),
        })
        .await;

    let streams = Streams {
        stdin,
        stdout: wanted
            .stdout
            .then(|| OutStream::new(STDOUT.into(), out_tx.clone())),
        stderr: (wanted.stderr && !wanted.tty)
            .then(|| OutStream::new(STDERR.into(), out_tx.clone())),
        resize,
    };
    let msg = job.run(backend, streams, protocol).await;
    remotecommand::finish(&out_tx, ERROR.into(), &[], msg).await;
    drop(out_tx);
    let _ = writer.await;
    let _ = done_tx.send(true);
    let _ = reader.await;
}

/// Carries a SPDY session in binary websocket messages: returns the local
/// end of a pipe whose other end the websocket feeds and drains.
pub(crate) fn tunnel(socket: WebSocket) -> tokio::io::DuplexStream {
    let (local, remote) = tokio::io::duplex(64 * 1024);
    let (mut rd, mut wr) = tokio::io::split(remote);
    let (mut sink, mut source) = socket.split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; crate::pipe::CHUNK];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = sink.send(normal_close()).await;
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(msg)) = source.next().await {
            match msg {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    });
    local
}
