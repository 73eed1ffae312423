//! Reading a stream on a second thread, so its producer (network read, digest
//! of the compressed bytes, inflate) and its consumer (digest of the tar, file
//! writes) use two cores instead of taking turns on one.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};

/// Bytes per chunk handed over, and chunks in flight (bounded memory).
const CHUNK: usize = 256 << 10;
const DEPTH: usize = 4;

/// Runs `consume` on a reader fed by a scoped thread that reads `src`. The
/// thread stops when `consume` returns (its channel closes) or `src` ends.
pub fn with_read_ahead<R, T>(src: R, consume: impl FnOnce(&mut dyn Read) -> T) -> T
where
    R: Read + Send,
{
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
        s.spawn(move || {
            let mut src = src;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let mut n = 0;
                // Fill whole chunks: decoders return small reads.
                let r = loop {
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n < CHUNK;
                let sent = match r {
                    Ok(()) if n == 0 => break,
                    Ok(()) => tx.send(Ok(buf)),
                    Err(e) => {
                        let _ = tx.send(Ok(buf));
                        let _ = tx.send(Err(e));
                        break;
                    }
                };
                if sent.is_err() || end {
                    break;
                }
            }
        });
        let mut r = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let out = consume(&mut r);
        // Closing the channel stops a producer the consumer no longer reads.
        drop(r);
        out
    })
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.cur = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the producer is done
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_byte_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let got = with_read_ahead(&data[..], |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        });
        assert_eq!(got, data);
    }

    #[test]
    fn errors_reach_the_consumer_after_the_data_before_them() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("broken"));
                }
                let n = b.len().min(self.0);
                b[..n].fill(7);
                self.0 -= n;
                Ok(n)
            }
        }
        let (n, e) = with_read_ahead(Failing(1000), |r| {
            let mut v = Vec::new();
            let e = r.read_to_end(&mut v).unwrap_err();
            (v.len(), e.to_string())
        });
        assert_eq!((n, e.as_str()), (1000, "broken"));
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_producer() {
        let data = vec![1u8; 10 * CHUNK];
        let first = with_read_ahead(&data[..], |r| {
            let mut b = [0u8; 10];
            r.read_exact(&mut b).unwrap();
            b[0]
        });
        assert_eq!(first, 1);
    }
}
