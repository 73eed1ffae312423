//! SPDY/3 header blocks: the name/value block format and its zlib
//! compression, one zlib stream per direction for the whole session, primed
//! with the dictionary of the SPDY/3 draft (section 2.6.10.1).

use std::sync::OnceLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::ProtocolError;

/// Bounds on what a peer can make us hold: a decompressed block, the number
/// of pairs in it, and one name or value.
pub(crate) const MAX_BLOCK: usize = 64 * 1024;
pub(crate) const MAX_PAIRS: usize = 128;
pub(crate) const MAX_FIELD: usize = 16 * 1024;

/// Header names (lowercase, as SPDY requires) with their values; a value
/// with several NUL-separated parts becomes several entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The words and the tail of the SPDY/3 dictionary: each word goes in as a
/// 4-byte big-endian length and the word, the tail as it is.
const DICT_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];
const DICT_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

pub(crate) fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut d = Vec::with_capacity(1424);
        for w in DICT_WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(DICT_TAIL.as_bytes());
        d
    })
}

/// The receiving side's zlib stream.
pub(crate) struct Inflater {
    z: Decompress,
}

impl Inflater {
    pub fn new() -> Self {
        Inflater {
            z: Decompress::new(true),
        }
    }

    /// Decompresses one frame's header block (all of `input`, which the
    /// peer ended with a sync flush) and parses it.
    pub fn block(&mut self, input: &[u8]) -> Result<Headers, ProtocolError> {
        let raw = self.inflate(input)?;
        parse_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::with_capacity(1024);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.capacity() >= MAX_BLOCK {
                    return Err(ProtocolError::HeaderTooLarge);
                }
                out.reserve((MAX_BLOCK - out.capacity()).min(out.capacity()));
            }
            let (in0, out0) = (self.z.total_in(), out.len());
            let res = self
                .z
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - in0) as usize;
            match res {
                Ok(Status::StreamEnd) => return Err(ProtocolError::Compression),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|_| ProtocolError::Compression)?;
                    continue;
                }
                Err(_) => return Err(ProtocolError::Compression),
            }
            if pos == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if pos == input.len() && out.len() == out0 && self.z.total_in() == in0 {
                // Output space left and nothing moved: a truncated block.
                return Err(ProtocolError::Compression);
            }
        }
    }
}

/// The sending side's zlib stream.
pub(crate) struct Deflater {
    z: Compress,
}

impl Deflater {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(dictionary())
            .expect("a fresh deflate stream takes a dictionary");
        Deflater { z }
    }

    /// Encodes and compresses a header block, sync-flushed so the peer can
    /// decode it from this frame alone.
    pub fn block(&mut self, headers: &Headers) -> Vec<u8> {
        let raw = encode_block(headers);
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let in0 = self.z.total_in();
            self.z
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .expect("deflate of a memory buffer cannot fail");
            pos += (self.z.total_in() - in0) as usize;
            // With room left after a sync flush, everything is out.
            if pos == raw.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

fn encode_block(headers: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.0.len() as u32).to_be_bytes());
    for (n, v) in &headers.0 {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

fn take<'a>(raw: &mut &'a [u8], n: usize) -> Result<&'a [u8], ProtocolError> {
    if raw.len() < n {
        return Err(ProtocolError::BadHeaderBlock);
    }
    let (head, rest) = raw.split_at(n);
    *raw = rest;
    Ok(head)
}

fn take_u32(raw: &mut &[u8]) -> Result<usize, ProtocolError> {
    let b = take(raw, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn take_field(raw: &mut &[u8]) -> Result<String, ProtocolError> {
    let n = take_u32(raw)?;
    if n > MAX_FIELD {
        return Err(ProtocolError::HeaderTooLarge);
    }
    let b = take(raw, n)?;
    String::from_utf8(b.to_vec()).map_err(|_| ProtocolError::BadHeaderBlock)
}

pub(crate) fn parse_block(mut raw: &[u8]) -> Result<Headers, ProtocolError> {
    let count = take_u32(&mut raw)?;
    if count > MAX_PAIRS {
        return Err(ProtocolError::HeaderTooLarge);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_field(&mut raw)?.to_ascii_lowercase();
        if name.is_empty() {
            return Err(ProtocolError::BadHeaderBlock);
        }
        let value = take_field(&mut raw)?;
        for part in value.split('\0') {
            out.push((name.clone(), part.to_string()));
        }
    }
    if !raw.is_empty() {
        return Err(ProtocolError::BadHeaderBlock);
    }
    Ok(Headers(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn dictionary_is_the_spdy3_one() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // zlib's FDICT id of the SPDY/3 dictionary, as every SPDY/3 peer computes it.
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for &x in d {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn blocks_round_trip_across_one_stream() {
        let mut tx = Deflater::new();
        let mut rx = Inflater::new();
        for i in 0..50 {
            let h = hs(&[
                ("streamtype", "stdout"),
                ("port", &i.to_string()),
                ("requestid", "7"),
            ]);
            let wire = tx.block(&h);
            assert_eq!(rx.block(&wire).unwrap(), h);
        }
    }

    /// A block compressed by an independent zlib (Python's, level 9,
    /// with the SPDY/3 dictionary, sync-flushed), as a Go client's would
    /// be: {"streamtype": "error", "port": "80", "requestid": "0"} then
    /// {"streamtype": "data", ...} on the same stream.
    #[test]
    fn decodes_blocks_of_another_zlib() {
        let first: &[u8] = &[
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b, 0x29, 0x4a,
            0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45, 0xa0,
            0x24, 0xcc, 0x64, 0x61, 0x00, 0x24, 0x39, 0x8b, 0x20, 0x91, 0x98, 0x09, 0x4a, 0xdc,
            0x8c, 0x06, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let second: &[u8] = &[
            0xc2, 0xaa, 0x15, 0x54, 0x0a, 0x25, 0x12, 0xd2, 0x09, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let mut rx = Inflater::new();
        assert_eq!(
            rx.block(first).unwrap(),
            hs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")])
        );
        assert_eq!(
            rx.block(second).unwrap(),
            hs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")])
        );
    }

    #[test]
    fn nul_separated_values_are_several_entries() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&1u32.to_be_bytes());
        raw.extend_from_slice(&1u32.to_be_bytes());
        raw.extend_from_slice(b"A");
        raw.extend_from_slice(&3u32.to_be_bytes());
        raw.extend_from_slice(b"x\0y");
        assert_eq!(parse_block(&raw).unwrap(), hs(&[("a", "x"), ("a", "y")]));
    }

    #[test]
    fn hostile_blocks_are_refused() {
        // More pairs than allowed, a field longer than the block, trailing bytes.
        assert!(parse_block(&1000u32.to_be_bytes()).is_err());
        let mut raw = 1u32.to_be_bytes().to_vec();
        raw.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_block(&raw).is_err());
        let mut raw = 0u32.to_be_bytes().to_vec();
        raw.push(0);
        assert!(parse_block(&raw).is_err());
        // A decompression bomb: 1 MiB of zeros in a few hundred bytes.
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(dictionary()).unwrap();
        let mut bomb = Vec::with_capacity(1 << 20);
        z.compress_vec(&vec![0u8; 1 << 20], &mut bomb, FlushCompress::Sync)
            .unwrap();
        assert!(bomb.len() < 8192);
        assert!(matches!(
            Inflater::new().block(&bomb),
            Err(ProtocolError::HeaderTooLarge)
        ));
        // Garbage instead of zlib.
        assert!(Inflater::new().block(b"not zlib at all").is_err());
    }
}
