//! Hijacked connections (attach, exec start): after the response head the
//! socket carries the container's raw stdio both ways.
//!
//! Written by hand rather than with hyper's upgrade support so that both of the
//! daemon's answers work: `101 Switching Protocols` (when we ask for an upgrade, as
//! Docker's CLI does) and a plain `200` followed by the raw stream.

use crate::{Client, ClientError, Result};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use crate::Io;

/// The write side of a hijacked stream.
pub type HijackWriter = WriteHalf<Box<dyn Io>>;

/// Both directions of a hijacked stream. Shut `writer` down (`shutdown().await`)
/// to tell the container its stdin is at EOF while still reading its output.
pub struct Hijacked {
    pub reader: HijackReader,
    pub writer: HijackWriter,
}

/// The read side: bytes that came with the response head first, then the socket.
pub struct HijackReader {
    leftover: Vec<u8>,
    pos: usize,
    inner: ReadHalf<Box<dyn Io>>,
}

impl AsyncRead for HijackReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.leftover.len() {
            let n = (self.leftover.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.leftover[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(head: &[u8]) -> Result<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ClientError::Protocol(format!("bad response from daemon: {status_line:?}"))
        })?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    Ok(Head {
        status,
        content_length,
        chunked,
    })
}

/// Decodes a chunked body that is entirely in `data` (error bodies are small).
fn dechunk(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&rest[..pos]);
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        rest = &rest[pos + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    out
}

impl Client {
    /// Sends `method path` asking for a hijacked stream and returns the stream
    /// once the daemon has accepted it. `body` is JSON (exec start) or nothing.
    pub async fn hijack(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Hijacked> {
        let mut stream = self.dial().await?;
        let body = body.unwrap_or_default();
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: pier\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n",
            Client::versioned(path)
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(&body);
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| ClientError::io("cannot send request to the daemon", e))?;

        let mut buf = Vec::with_capacity(1024);
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 64 * 1024 {
                return Err(ClientError::Protocol("response head too large".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| ClientError::io("cannot read the daemon's answer", e))?;
            if n == 0 {
                return Err(ClientError::Protocol(
                    "the daemon closed the connection".into(),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = parse_head(&buf[..head_end])?;
        let mut leftover = buf.split_off(head_end);
        if head.status >= 400 {
            // Read the error body: exactly Content-Length, or up to the end of the chunks.
            loop {
                let complete = match head.content_length {
                    Some(n) => leftover.len() >= n,
                    None if head.chunked => leftover.windows(5).any(|w| w == b"0\r\n\r\n"),
                    None => false,
                };
                if complete {
                    break;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => leftover.extend_from_slice(&chunk[..n]),
                }
            }
            let body = if head.chunked {
                dechunk(&leftover)
            } else {
                leftover
            };
            let message = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => v
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
                Err(_) => String::from_utf8_lossy(&body).trim().to_string(),
            };
            return Err(ClientError::Daemon {
                status: head.status,
                message,
            });
        }
        if head.status != 101 && head.status != 200 {
            return Err(ClientError::Protocol(format!(
                "unexpected status {} from the daemon",
                head.status
            )));
        }
        if head.chunked {
            // A 200 that is not a raw stream: hand over the decoded body.
            leftover = dechunk(&leftover);
        }
        let (r, w) = tokio::io::split(stream);
        Ok(Hijacked {
            reader: HijackReader {
                leftover,
                pos: 0,
                inner: r,
            },
            writer: w,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parses_status_and_length() {
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n").unwrap();
        assert_eq!(h.status, 404);
        assert_eq!(h.content_length, Some(12));
        let h = parse_head(b"HTTP/1.1 101 UPGRADED\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.status, 101);
        assert!(h.chunked);
    }

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
