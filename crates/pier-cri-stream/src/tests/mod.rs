//! The server driven end to end on loopback by test clients: an SPDY
//! client on our own frame codec, websocket clients (tokio-tungstenite),
//! over a fake backend.

mod portforward;
mod remotecommand;
mod websocket;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::spdy::{Codec, Frame, Headers, FLAG_FIN};
use crate::{
    AttachRequest, Backend, BackendError, ExecRequest, PortStream, StreamHandle, StreamServer,
    Streams,
};

/// A container that knows a few commands.
struct Fake;

impl Backend for Fake {
    async fn exec(&self, req: ExecRequest, mut s: Streams) -> Result<i32, BackendError> {
        let args: Vec<&str> = req.cmd.iter().map(String::as_str).collect();
        let mut out = s.stdout.take();
        match args.as_slice() {
            ["echo", rest @ ..] => {
                let line = format!("{}\n", rest.join(" "));
                out.as_mut().unwrap().write_all(line.as_bytes()).await?;
                Ok(0)
            }
            ["cat"] => {
                let mut input = s.stdin.take().ok_or("cat needs stdin")?;
                tokio::io::copy(&mut input, out.as_mut().unwrap()).await?;
                Ok(0)
            }
            ["exit", code] => {
                if let Some(e) = s.stderr.as_mut() {
                    e.write_all(b"bye\n").await?;
                }
                Ok(code.parse()?)
            }
            ["size"] => {
                let mut sizes = s.resize.take().ok_or("no resize stream")?;
                let size = sizes.recv().await.ok_or("no size came")?;
                let line = format!("{}x{}\n", size.width, size.height);
                out.as_mut().unwrap().write_all(line.as_bytes()).await?;
                Ok(0)
            }
            _ => Err(format!("no such command: {:?}", req.cmd).into()),
        }
    }

    async fn attach(&self, req: AttachRequest, mut s: Streams) -> Result<(), BackendError> {
        if req.container_id == "gone" {
            return Err("container gone is not running".into());
        }
        let mut out = s.stdout.take().ok_or("attach needs stdout")?;
        out.write_all(b"attached\n").await?;
        if let Some(mut input) = s.stdin.take() {
            tokio::io::copy(&mut input, &mut out).await?;
        }
        Ok(())
    }

    async fn port_forward(
        &self,
        _sandbox: String,
        port: u16,
        mut stream: PortStream,
    ) -> Result<(), BackendError> {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
        tokio::io::copy_bidirectional(&mut conn, &mut stream).await?;
        Ok(())
    }
}

async fn start() -> StreamHandle {
    start_with_idle_timeout(Duration::from_secs(3600)).await
}

async fn start_with_idle_timeout(limit: Duration) -> StreamHandle {
    let server = StreamServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_idle_timeout(limit);
    let handle = server.handle();
    tokio::spawn(server.serve(Fake));
    handle
}

/// Runs a test body with a bound: a hang is a failure, not a stuck suite.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("the test took over 15 s")
}

/// `http://host:port/path` into its parts.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let slash = rest.find('/').unwrap();
    (rest[..slash].to_string(), rest[slash..].to_string())
}

/// A raw HTTP/1.1 request; returns the status, the response head, and the
/// connection positioned after the head.
async fn http_request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
) -> (u16, String, TcpStream) {
    let (host, path) = split_url(url);
    let mut conn = TcpStream::connect(&host).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = conn.read_u8().await.expect("a response head");
        head.push(b);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head, conn)
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The client side of a SPDY session, as client-go's spdystream uses it.
struct SpdyClient {
    rx: FramedRead<BoxRead, Codec>,
    tx: FramedWrite<BoxWrite, Codec>,
    next_id: u32,
}

/// What the server sent until it hung up.
#[derive(Debug, Default)]
struct Received {
    data: HashMap<u32, Vec<u8>>,
    fin: Vec<u32>,
    goaway: bool,
}

impl Received {
    fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.data.get(&id).map(Vec::as_slice).unwrap_or_default())
            .into_owned()
    }
}

fn hs(pairs: &[(&str, &str)]) -> Headers {
    Headers(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

impl SpdyClient {
    fn over<IO: AsyncRead + AsyncWrite + Send + 'static>(io: IO) -> Self {
        let (r, w) = tokio::io::split(io);
        SpdyClient {
            rx: FramedRead::new(Box::new(r) as BoxRead, Codec::new()),
            tx: FramedWrite::new(Box::new(w) as BoxWrite, Codec::new()),
            next_id: 1,
        }
    }

    /// Upgrades `url` with `protocols`; the negotiated one and the client.
    async fn connect(url: &str, protocols: &[&str]) -> (String, SpdyClient) {
        let mut headers = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
        for p in protocols {
            headers.push(("X-Stream-Protocol-Version", p));
        }
        let (status, head, conn) = http_request(url, "POST", &headers).await;
        assert_eq!(status, 101, "{head}");
        // What client-go's SPDY round tripper checks in the answer.
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
        assert!(lower.contains("\r\nupgrade: spdy/3.1\r\n"), "{head}");
        let protocol = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-stream-protocol-version: ")
                    .map(str::to_string)
            })
            .unwrap_or_default();
        (protocol, SpdyClient::over(conn))
    }

    async fn send(&mut self, f: Frame) {
        self.tx.send(f).await.unwrap();
    }

    /// Opens a stream and waits for the server's reply, as spdystream does.
    async fn open(&mut self, headers: &[(&str, &str)]) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        self.send(Frame::SynStream {
            stream_id: id,
            flags: 0,
            headers: hs(headers),
        })
        .await;
        loop {
            match self.rx.next().await.expect("a reply").unwrap() {
                Frame::SynReply { stream_id, .. } if stream_id == id => return id,
                Frame::Ping { .. } => {}
                other => panic!("expected the reply to {id}, got {other:?}"),
            }
        }
    }

    async fn write(&mut self, id: u32, data: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id: id,
            flags: if fin { FLAG_FIN } else { 0 },
            data: Bytes::copy_from_slice(data),
        })
        .await;
    }

    /// Reads frames until the server hangs up.
    async fn read_to_end(&mut self) -> Received {
        let mut r = Received::default();
        while let Some(f) = self.rx.next().await {
            match f.unwrap() {
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    r.data
                        .entry(stream_id)
                        .or_default()
                        .extend_from_slice(&data);
                    if flags & FLAG_FIN != 0 {
                        assert!(!r.fin.contains(&stream_id), "two FINs on {stream_id}");
                        r.fin.push(stream_id);
                    }
                }
                // As client-go: done once the server says so.
                Frame::GoAway { .. } => {
                    r.goaway = true;
                    break;
                }
                _ => {}
            }
        }
        r
    }

    /// Reads until stream `id` ends, keeping what came.
    async fn read_until_fin(&mut self, id: u32, r: &mut Received) {
        while !r.fin.contains(&id) {
            match self.rx.next().await.expect("more frames").unwrap() {
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    r.data
                        .entry(stream_id)
                        .or_default()
                        .extend_from_slice(&data);
                    if flags & FLAG_FIN != 0 {
                        r.fin.push(stream_id);
                    }
                }
                Frame::GoAway { .. } => r.goaway = true,
                _ => {}
            }
        }
    }
}

/// A websocket client with the given subprotocols.
async fn ws_connect(
    url: &str,
    protocols: &str,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
        String,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
    let proto = resp
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Ok((ws, proto))
}

/// SPDY over a websocket, as client-go's tunnelling dialer.
fn ws_tunnel_client(
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> SpdyClient {
    let (local, remote) = tokio::io::duplex(64 * 1024);
    let (mut rd, mut wr) = tokio::io::split(remote);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            if let Message::Binary(b) = m
                && wr.write_all(&b).await.is_err()
            {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    SpdyClient::over(local)
}
