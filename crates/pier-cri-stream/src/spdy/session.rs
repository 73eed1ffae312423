//! One server-side SPDY connection: a reader task that answers the session
//! (replies, pings) and hands new streams to the protocol handler, and a
//! writer task that serializes every frame in queue order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::debug;

use super::frame::{Codec, Frame, FLAG_FIN, GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, RST_REFUSED_STREAM};
use super::Headers;
use super::ProtocolError;
use crate::idle::{self, Activity};
use crate::pipe::{self, Budget, Feed, InStream, Out};

/// Streams a connection may have open for input at once; more are refused.
const MAX_OPEN_STREAMS: usize = 1024;
/// How long a closed session waits for the client to hang up.
const LINGER: Duration = Duration::from_secs(5);

/// A stream the client opened (already replied to).
pub(crate) struct NewStream {
    pub id: u32,
    pub headers: Headers,
    pub input: InStream,
}

pub(crate) struct Session {
    /// New streams, in the order the client opened them; ends with the
    /// connection.
    pub incoming: mpsc::Receiver<NewStream>,
    /// The writer's queue: stream output, and `Out::Close` at the end.
    pub out: mpsc::Sender<Out>,
}

/// Starts serving SPDY on an upgraded connection.
pub(crate) fn start<IO>(io: IO, idle: Duration) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let (r, w) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel(16);
    let (closed_tx, closed_rx) = watch::channel(false);
    tokio::spawn(write_loop(w, out_rx, closed_tx, activity.clone()));
    tokio::spawn(read_loop(
        r,
        out_tx.clone(),
        in_tx,
        closed_rx,
        (activity, idle),
    ));
    Session {
        incoming: in_rx,
        out: out_tx,
    }
}

async fn write_loop<W>(
    w: W,
    mut rx: mpsc::Receiver<Out>,
    closed: watch::Sender<bool>,
    activity: Arc<Activity>,
) where
    W: AsyncWrite + Unpin,
{
    let mut sink = FramedWrite::new(w, Codec::new());
    // Each stream's FIN comes once and last: `Ender` sees to it.
    while let Some(out) = rx.recv().await {
        let frame = match out {
            Out::Data { id, data } => Frame::Data {
                stream_id: id,
                flags: 0,
                data,
            },
            Out::Fin { id } => Frame::Data {
                stream_id: id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Out::Control(f) => f,
            Out::Close => {
                // As spdystream's Close, which the kubelet's server calls.
                // The socket stays open until the client hangs up (or
                // LINGER passes): spdystream hands frames to its streams
                // asynchronously, and an early end of the connection can
                // overtake the last data and status.
                let _ = sink
                    .send(Frame::GoAway {
                        last_good: 0,
                        status: GOAWAY_OK,
                    })
                    .await;
                break;
            }
        };
        if sink.feed(frame).await.is_err() {
            break;
        }
        activity.touch();
        if rx.is_empty() && sink.flush().await.is_err() {
            break;
        }
    }
    let _ = closed.send(true);
}

async fn read_loop<R>(
    r: R,
    out: mpsc::Sender<Out>,
    incoming: mpsc::Sender<NewStream>,
    mut closed: watch::Receiver<bool>,
    (activity, idle): (Arc<Activity>, Duration),
) where
    R: AsyncRead + Unpin,
{
    let mut frames = FramedRead::new(r, Codec::new());
    let budget = Budget::new();
    let mut inputs: HashMap<u32, Feed> = HashMap::new();
    let mut last_id = 0u32;
    let mut linger = false;
    let mut idle_check = tokio::time::interval(idle::check_every(idle));
    loop {
        let next = tokio::select! {
            f = frames.next() => f,
            _ = closed.changed(), if !linger => { linger = true; continue; }
            _ = tokio::time::sleep(LINGER), if linger => break,
            _ = idle_check.tick() => {
                if activity.expired(idle) {
                    debug!("SPDY connection idle for over {idle:?}: closing");
                    let _ = out.send(Out::Close).await;
                    break;
                }
                continue;
            }
        };
        activity.touch();
        let frame = match next {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                debug!("SPDY connection dropped: {e}");
                let status = match e {
                    ProtocolError::Io(_) => break,
                    _ => GOAWAY_PROTOCOL_ERROR,
                };
                let _ = out
                    .send(Out::Control(Frame::GoAway {
                        last_good: last_id,
                        status,
                    }))
                    .await;
                let _ = out.send(Out::Close).await;
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
            } => {
                if stream_id % 2 == 0 || stream_id <= last_id {
                    debug!("{}", ProtocolError::BadStreamId(stream_id));
                    let _ = out
                        .send(Out::Control(Frame::GoAway {
                            last_good: last_id,
                            status: GOAWAY_PROTOCOL_ERROR,
                        }))
                        .await;
                    let _ = out.send(Out::Close).await;
                    break;
                }
                last_id = stream_id;
                if inputs.len() >= MAX_OPEN_STREAMS || incoming.is_closed() {
                    let _ = out
                        .send(Out::Control(Frame::RstStream {
                            stream_id,
                            status: RST_REFUSED_STREAM,
                        }))
                        .await;
                    continue;
                }
                let (tx, rx) = pipe::input(&budget);
                if flags & FLAG_FIN == 0 {
                    inputs.insert(stream_id, tx);
                }
                // The client waits for this reply before it opens the next stream.
                let _ = out
                    .send(Out::Control(Frame::SynReply {
                        stream_id,
                        flags: 0,
                        headers: Headers::default(),
                    }))
                    .await;
                let stream = NewStream {
                    id: stream_id,
                    headers,
                    input: rx,
                };
                if incoming.send(stream).await.is_err() {
                    inputs.remove(&stream_id);
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(tx) = inputs.get(&stream_id)
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    // Nobody reads this stream's input any more: drop it.
                    inputs.remove(&stream_id);
                }
                if flags & FLAG_FIN != 0 {
                    inputs.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                inputs.remove(&stream_id);
            }
            // We never ping, so every PING is the client's, to be echoed.
            Frame::Ping { id } => {
                let _ = out.send(Out::Control(Frame::Ping { id })).await;
            }
            Frame::GoAway { .. } => break,
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored => {}
        }
    }
    // Dropping the inputs ends every stream's input; dropping `incoming`
    // tells the handler that no stream will come.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::frame::GOAWAY_PROTOCOL_ERROR;

    fn syn(id: u32) -> Frame {
        Frame::SynStream {
            stream_id: id,
            flags: 0,
            headers: Headers(vec![("streamtype".into(), "stdin".into())]),
        }
    }

    type ClientRx = FramedRead<tokio::io::ReadHalf<tokio::io::DuplexStream>, Codec>;
    type ClientTx = FramedWrite<tokio::io::WriteHalf<tokio::io::DuplexStream>, Codec>;

    /// The client side of a session over an in-memory pipe.
    fn pair() -> (Session, ClientRx, ClientTx) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(b);
        (
            start(a, crate::idle::DEFAULT),
            FramedRead::new(r, Codec::new()),
            FramedWrite::new(w, Codec::new()),
        )
    }

    #[tokio::test]
    async fn a_stream_id_going_back_is_a_protocol_error() {
        let (_session, mut rx, mut tx) = pair();
        tx.send(syn(3)).await.unwrap();
        tx.send(syn(1)).await.unwrap();
        let mut saw = Vec::new();
        while let Some(Ok(f)) = rx.next().await {
            saw.push(f);
        }
        assert!(matches!(saw[0], Frame::SynReply { stream_id: 3, .. }));
        assert!(
            saw.contains(&Frame::GoAway {
                last_good: 3,
                status: GOAWAY_PROTOCOL_ERROR
            }),
            "{saw:?}"
        );
    }

    #[tokio::test]
    async fn input_ends_on_fin_and_on_reset_and_streams_come_in_order() {
        let (mut session, mut rx, mut tx) = pair();
        tx.send(syn(1)).await.unwrap();
        tx.send(syn(3)).await.unwrap();
        for id in [1, 3] {
            assert!(matches!(
                rx.next().await.unwrap().unwrap(),
                Frame::SynReply { stream_id, .. } if stream_id == id
            ));
        }
        tx.send(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"in"),
        })
        .await
        .unwrap();
        tx.send(Frame::RstStream {
            stream_id: 3,
            status: 5,
        })
        .await
        .unwrap();
        let mut one = session.incoming.recv().await.unwrap();
        let mut three = session.incoming.recv().await.unwrap();
        assert_eq!((one.id, three.id), (1, 3));
        assert_eq!(one.input.recv().await.as_deref(), Some(&b"in"[..]));
        assert_eq!(one.input.recv().await, None);
        assert_eq!(three.input.recv().await, None);
    }
}
