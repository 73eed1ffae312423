//! A gzip writer that does not spend time on data that does not compress.
//!
//! Layers are gzipped when pushed, about as small as Docker makes them (see
//! [`crate::compression::GZIP_LEVEL`]). Deflate at levels 5-6 runs at ~50
//! MB/s a core on data that is already compressed or random (which many
//! layers hold: archives, media, compressed binaries) and saves nothing on
//! it. So input is handled in blocks of [`BLOCK`], and each block is first
//! probed: its first [`SAMPLE`] bytes are deflated at the fastest level, and a
//! block whose sample shrinks by less than 2% goes out as stored deflate blocks
//! (a copy) instead of being compressed.
//!
//! Each compressed block is deflated by a compressor reset to the previous 32
//! KiB of input as its dictionary and ends in a sync flush, so blocks join into
//! one ordinary deflate stream (one gzip member) that any reader accepts, with
//! back-references across block edges as before. The output depends only on
//! the input, so the same layer always gets the same digest.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input per decision.
const BLOCK: usize = 1 << 20;
/// The part of a block deflated at level 1 to judge it.
const SAMPLE: usize = 64 << 10;
/// A block "compresses" when its sample shrinks below this share (in 1/1000).
const WORTH_PER_MILLE: usize = 980;
/// Deflate's window: the dictionary a block's compressor starts from.
const WINDOW: usize = 32 << 10;
/// Largest stored deflate block.
const STORED_MAX: usize = 65535;

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

pub struct GzipWriter<W: Write> {
    inner: W,
    deflate: Compress,
    /// Level 1, for the samples.
    probe: Compress,
    crc: Crc,
    /// Input not yet compressed (less than one block).
    pending: Vec<u8>,
    out: Vec<u8>,
    /// The last [`WINDOW`] bytes of input.
    window: Vec<u8>,
    /// The gzip header goes out with the first output (keeps `new` infallible).
    header_sent: bool,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(inner: W, level: Compression) -> GzipWriter<W> {
        GzipWriter {
            inner,
            deflate: Compress::new(level, false),
            probe: Compress::new(Compression::fast(), false),
            crc: Crc::new(),
            pending: Vec::with_capacity(BLOCK),
            out: Vec::with_capacity(BLOCK + BLOCK / 16 + 64),
            window: Vec::with_capacity(2 * WINDOW),
            header_sent: false,
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.header_sent {
            self.inner.write_all(&HEADER)?;
            self.header_sent = true;
        }
        self.inner.write_all(bytes)
    }

    /// Deflates `input` completely, ending in a sync flush.
    fn deflate_block(&mut self, mut input: &[u8]) -> io::Result<()> {
        let err = |e: flate2::CompressError| io::Error::other(format!("gzip: {e}"));
        self.deflate.reset();
        if !self.window.is_empty() {
            self.deflate.set_dictionary(&self.window).map_err(err)?;
        }
        loop {
            let mut out = std::mem::take(&mut self.out);
            out.clear();
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(err)?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            let full = out.len() == out.capacity();
            let r = self.emit(&out);
            self.out = out;
            r?;
            if matches!(status, Status::StreamEnd) || (input.is_empty() && !full) {
                return Ok(());
            }
        }
    }

    /// Writes `data` as stored deflate blocks (the previous block ended byte-aligned).
    fn store_block(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(STORED_MAX) {
            let len = chunk.len() as u16;
            let mut head = [0u8; 5];
            head[1..3].copy_from_slice(&len.to_le_bytes());
            head[3..5].copy_from_slice(&(!len).to_le_bytes());
            self.emit(&head)?;
            self.emit(chunk)?;
        }
        Ok(())
    }

    /// Whether `data` looks worth compressing, by its sample.
    fn compressible(&mut self, data: &[u8]) -> io::Result<bool> {
        let sample = &data[..data.len().min(SAMPLE)];
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.probe.reset();
        let r = self
            .probe
            .compress_vec(sample, &mut out, FlushCompress::Finish)
            .map_err(|e| io::Error::other(format!("gzip: {e}")));
        let n = out.len();
        self.out = out;
        r?;
        Ok(n * 1000 < sample.len() * WORTH_PER_MILLE)
    }

    fn block(&mut self, data: &[u8]) -> io::Result<()> {
        self.crc.update(data);
        if self.compressible(data)? {
            self.deflate_block(data)?;
        } else {
            self.store_block(data)?;
        }
        if data.len() >= WINDOW {
            self.window.clear();
            self.window.extend_from_slice(&data[data.len() - WINDOW..]);
        } else {
            self.window.extend_from_slice(data);
            let extra = self.window.len().saturating_sub(WINDOW);
            self.window.drain(..extra);
        }
        Ok(())
    }

    /// Writes the rest, the final (empty) block and the gzip trailer; returns
    /// the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.block(&rest)?;
        }
        // An empty stored block with BFINAL set ends the deflate stream.
        self.emit(&[1, 0, 0, 0xff, 0xff])?;
        let (sum, amount) = (self.crc.sum(), self.crc.amount());
        self.emit(&sum.to_le_bytes())?;
        self.emit(&amount.to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        // Whole blocks straight from the caller's buffer, no copy.
        if self.pending.is_empty() {
            while rest.len() >= BLOCK {
                let (b, r) = rest.split_at(BLOCK);
                self.block(b)?;
                rest = r;
            }
        }
        let take = rest.len().min(BLOCK - self.pending.len());
        self.pending.extend_from_slice(&rest[..take]);
        if self.pending.len() == BLOCK {
            let full = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
            self.block(&full)?;
        }
        Ok(buf.len() - rest.len() + take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], chunk: usize) -> Vec<u8> {
        let mut w = GzipWriter::new(Vec::new(), Compression::default());
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_mixed_data_deterministically() {
        // Text, then noise, then text again: both switches happen.
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog\n"
            .iter()
            .copied()
            .cycle()
            .take(3 * BLOCK + 123)
            .collect();
        let mut data = text.clone();
        data.extend(noise(12 * BLOCK + 7, 42));
        data.extend(&text);
        let a = gzip(&data, 65536);
        assert_eq!(gunzip(&a), data);
        // Same bytes however the input is cut.
        assert_eq!(gzip(&data, 7777), a);
        assert_eq!(gzip(&data, data.len()), a);
        // Text compresses, noise costs almost nothing extra.
        let noise_len = 12 * BLOCK + 7;
        assert!(a.len() < noise_len + noise_len / 100, "{}", a.len());
        // And as well as plain gzip at the same level, give or take 1%.
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        plain.write_all(&data).unwrap();
        let plain = plain.finish().unwrap().len();
        assert!(a.len() < plain + plain / 100, "{} vs {plain}", a.len());
    }

    #[test]
    fn empty_and_small() {
        for data in [&b""[..], b"x", b"hello hello hello hello"] {
            assert_eq!(gunzip(&gzip(data, 3)), data);
        }
    }
}
