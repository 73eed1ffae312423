//! SPDY/3.1 frames on the wire (draft-mbelshe-httpbis-spdy-00 section 2):
//! an 8-byte header, then the payload. Control frames carry a version and a
//! type, data frames a stream id. Decoding never trusts a length: control
//! and data payloads are bounded, and a bad frame is an error, not a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::headers::{Deflater, Headers, Inflater};
use super::ProtocolError;

pub(crate) const VERSION: u16 = 3;
pub(crate) const FLAG_FIN: u8 = 0x01;

/// Control frames carry headers at most; a SYN_STREAM from a client is tens
/// of bytes compressed.
pub(crate) const MAX_CONTROL: usize = 64 * 1024;
/// The 24-bit length allows 16 MiB; clients send their copy buffer (32 KiB).
pub(crate) const MAX_DATA: usize = 1024 * 1024;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM and GOAWAY status codes we send.
pub(crate) const RST_REFUSED_STREAM: u32 = 3;
pub(crate) const GOAWAY_OK: u32 = 0;
pub(crate) const GOAWAY_PROTOCOL_ERROR: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        headers: Headers,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// SETTINGS, WINDOW_UPDATE and control types SPDY/3.1 tells receivers
    /// to ignore. Our peers do no flow control, and we send no more than
    /// they read.
    Ignored,
}

/// Decoder and encoder of one connection: each direction owns its zlib
/// stream, so one codec value serves one direction.
pub(crate) struct Codec {
    inflater: Inflater,
    deflater: Deflater,
}

impl Codec {
    pub fn new() -> Self {
        Codec {
            inflater: Inflater::new(),
            deflater: Deflater::new(),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let first = be32(&buf[0..4]);
        let second = be32(&buf[4..8]);
        let flags = (second >> 24) as u8;
        let len = (second & 0x00ff_ffff) as usize;
        let control = first & 0x8000_0000 != 0;
        let max = if control { MAX_CONTROL } else { MAX_DATA };
        if len > max {
            return Err(ProtocolError::FrameTooLarge(len));
        }
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        buf.advance(8);
        let payload = buf.split_to(len).freeze();
        if !control {
            let stream_id = first & 0x7fff_ffff;
            if stream_id == 0 {
                return Err(ProtocolError::ZeroStreamId);
            }
            return Ok(Some(Frame::Data {
                stream_id,
                flags,
                data: payload,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(ProtocolError::Version(version));
        }
        let kind = (first & 0xffff) as u16;
        let p = &payload[..];
        let exact = |n: usize| {
            if p.len() == n {
                Ok(())
            } else {
                Err(ProtocolError::BadLength(kind, p.len()))
            }
        };
        let stream = |p: &[u8]| -> Result<u32, ProtocolError> {
            let id = be32(p) & 0x7fff_ffff;
            if id == 0 {
                Err(ProtocolError::ZeroStreamId)
            } else {
                Ok(id)
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                // stream id, associated stream id, priority and slot.
                if p.len() < 10 {
                    return Err(ProtocolError::BadLength(kind, p.len()));
                }
                let stream_id = stream(p)?;
                let headers = self.inflater.block(&p[10..])?;
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                if p.len() < 4 {
                    return Err(ProtocolError::BadLength(kind, p.len()));
                }
                // Even ignored, a block advances the shared zlib stream.
                let stream_id = stream(p)?;
                let headers = self.inflater.block(&p[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers { stream_id, headers }
                }
            }
            RST_STREAM => {
                exact(8)?;
                Frame::RstStream {
                    stream_id: stream(p)?,
                    status: be32(&p[4..8]),
                }
            }
            PING => {
                exact(4)?;
                Frame::Ping { id: be32(p) }
            }
            GOAWAY => {
                exact(8)?;
                Frame::GoAway {
                    last_good: be32(p) & 0x7fff_ffff,
                    status: be32(&p[4..8]),
                }
            }
            SETTINGS => {
                if p.len() < 4 || (p.len() - 4) / 8 < be32(p) as usize {
                    return Err(ProtocolError::BadLength(kind, p.len()));
                }
                Frame::Ignored
            }
            WINDOW_UPDATE => {
                exact(8)?;
                Frame::Ignored
            }
            _ => Frame::Ignored,
        };
        Ok(Some(frame))
    }
}

fn control_header(dst: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    dst.put_u32(0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(kind));
    dst.put_u32((u32::from(flags) << 24) | len as u32);
}

impl Encoder<Frame> for Codec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.deflater.block(&headers);
                control_header(dst, SYN_STREAM, flags, 10 + block.len());
                dst.put_u32(stream_id);
                dst.put_u32(0);
                dst.put_u16(0);
                dst.put_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.deflater.block(&headers);
                control_header(dst, SYN_REPLY, flags, 4 + block.len());
                dst.put_u32(stream_id);
                dst.put_slice(&block);
            }
            Frame::Headers { stream_id, headers } => {
                let block = self.deflater.block(&headers);
                control_header(dst, HEADERS, 0, 4 + block.len());
                dst.put_u32(stream_id);
                dst.put_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(dst, RST_STREAM, 0, 8);
                dst.put_u32(stream_id);
                dst.put_u32(status);
            }
            Frame::Ping { id } => {
                control_header(dst, PING, 0, 4);
                dst.put_u32(id);
            }
            Frame::GoAway { last_good, status } => {
                control_header(dst, GOAWAY, 0, 8);
                dst.put_u32(last_good);
                dst.put_u32(status);
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                // Callers split writes; a frame never exceeds what we accept.
                debug_assert!(data.len() <= MAX_DATA);
                dst.put_u32(stream_id & 0x7fff_ffff);
                dst.put_u32((u32::from(flags) << 24) | data.len() as u32);
                dst.put_slice(&data);
            }
            Frame::Ignored => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};
    use std::time::{Duration, Instant};

    fn hs(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                flags: 0,
                headers: hs(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: hs(&[("streamtype", "stdin"), ("port", "80")]),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: 0,
                headers: Headers::default(),
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::Headers {
                stream_id: 5,
                headers: hs(&[("x", "y")]),
            },
            Frame::RstStream {
                stream_id: 5,
                status: RST_REFUSED_STREAM,
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good: 5,
                status: GOAWAY_OK,
            },
        ]
    }

    #[test]
    fn frames_round_trip_whole_and_byte_by_byte() {
        let mut tx = Codec::new();
        let mut wire = BytesMut::new();
        for f in sample_frames() {
            tx.encode(f, &mut wire).unwrap();
        }
        let mut rx = Codec::new();
        let mut whole = wire.clone();
        let mut got = Vec::new();
        while let Some(f) = rx.decode(&mut whole).unwrap() {
            got.push(f);
        }
        assert_eq!(got, sample_frames());

        let mut rx = Codec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = rx.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, sample_frames());
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let mut rx = Codec::new();
        // A data frame claiming 16 MiB: refused from its header alone.
        let mut b = BytesMut::from(&[0, 0, 0, 1, 0, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            rx.decode(&mut b),
            Err(ProtocolError::FrameTooLarge(_))
        ));
        // SPDY/2.
        let mut b = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(rx.decode(&mut b), Err(ProtocolError::Version(2))));
        // A PING of 3 bytes, a RST on stream 0, data on stream 0.
        let mut b = BytesMut::from(&[0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1][..]);
        assert!(rx.decode(&mut b).is_err());
        let mut b = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1][..]);
        assert!(matches!(
            rx.decode(&mut b),
            Err(ProtocolError::ZeroStreamId)
        ));
        let mut b = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(rx.decode(&mut b).is_err());
        // SETTINGS claiming more entries than it holds.
        let mut b = BytesMut::from(&[0x80, 3, 0, 4, 0, 0, 0, 4, 0, 0, 1, 0][..]);
        assert!(rx.decode(&mut b).is_err());
    }

    /// Random bytes and mutated valid frames, in random chunks, through a
    /// decoder: errors are fine, a panic or a hang is not. Fixed seed,
    /// bounded in iterations and time.
    #[test]
    fn fuzz_decoder_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x5eed_c215);
        let mut valid = BytesMut::new();
        let mut tx = Codec::new();
        for f in sample_frames() {
            tx.encode(f, &mut valid).unwrap();
        }
        let start = Instant::now();
        for i in 0..20_000 {
            if start.elapsed() > Duration::from_secs(3) {
                break;
            }
            let mut input = if i % 2 == 0 {
                let mut v = valid.to_vec();
                for _ in 0..rng.random_range(1..8) {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                v
            } else {
                let mut v = vec![0u8; rng.random_range(0..512)];
                rng.fill_bytes(&mut v);
                // Often make it look like a SPDY/3 control frame.
                if v.len() >= 8 && rng.random_bool(0.5) {
                    v[0] = 0x80;
                    v[1] = 3;
                    v[2] = 0;
                    v[3] = rng.random_range(0..12);
                    v[4] = 0;
                    v[5] = 0;
                    v[6] = 0;
                    v[7] = (v.len() - 8).min(255) as u8;
                }
                v
            };
            let mut rx = Codec::new();
            let mut buf = BytesMut::new();
            'feed: while !input.is_empty() {
                let n = rng.random_range(1..=input.len());
                buf.extend_from_slice(&input[..n]);
                input.drain(..n);
                loop {
                    match rx.decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }
    }
}
