//! Content digests (`sha256:<hex>`), as the OCI image spec and go-digest define them.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm we can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a digest. Wording follows go-digest, which Docker prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,
    #[error("invalid checksum digest length")]
    InvalidLength,
}

/// A validated content digest. Ordered and hashed by its string form, so sorting digests
/// sorts them the way `sha256:...` strings sort.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    // Kept as the full string so `as_str` is free and ordering matches the text.
    text: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Digest of `bytes` with SHA-256.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest::from_sha256_raw(&Sha256::digest(bytes))
    }

    /// Builds a digest from a 32-byte SHA-256 output.
    pub fn from_sha256_raw(raw: &[u8]) -> Digest {
        Digest {
            text: format!("sha256:{}", to_hex(raw)),
            algorithm: Algorithm::Sha256,
        }
    }

    /// Builds a sha256 digest from its hex encoding (64 lowercase hex characters).
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, DigestError> {
        Digest::new(Algorithm::Sha256, hex)
    }

    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !is_lower_hex(hex) {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest {
            text: format!("{algorithm}:{hex}"),
            algorithm,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded part after `algorithm:`.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    /// The first 12 hex characters, as `docker images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Digest of `bytes` with this digest's algorithm; used to verify content.
    pub fn verify(&self, bytes: &[u8]) -> bool {
        let actual = match self.algorithm {
            Algorithm::Sha256 => to_hex(&Sha256::digest(bytes)),
            Algorithm::Sha512 => to_hex(&Sha512::digest(bytes)),
        };
        actual == self.hex()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::InvalidFormat);
        };
        if alg.is_empty() || hex.is_empty() {
            return Err(DigestError::InvalidFormat);
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ if is_algorithm_syntax(alg) => return Err(DigestError::UnsupportedAlgorithm),
            _ => return Err(DigestError::InvalidFormat),
        };
        Digest::new(algorithm, hex)
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;
    fn try_from(s: &str) -> Result<Digest, DigestError> {
        s.parse()
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The OCI chain ID of a layer stack: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
///
/// # Panics
/// On an empty slice: an image with no layers has no chain ID; use [`chain_ids`] or check
/// first.
pub fn chain_id(diff_ids: &[Digest]) -> Digest {
    chain_ids(diff_ids)
        .pop()
        .expect("chain_id of an empty layer list")
}

/// The chain ID of every prefix of `diff_ids` (one per layer, bottom first).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::sha256(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A `Write` sink that hashes with SHA-256 and counts bytes. Wrap it in `io::copy` or use
/// [`HashingWriter`] to hash while writing elsewhere.
#[derive(Default, Clone)]
pub struct Sha256Writer {
    hasher: Sha256,
    len: u64,
}

impl Sha256Writer {
    pub fn new() -> Sha256Writer {
        Sha256Writer::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256_raw(&self.hasher.finalize()), self.len)
    }

    pub fn digest(self) -> Digest {
        self.finish().0
    }
}

impl io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes writes through to `inner` while hashing exactly the bytes it accepted.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256Writer,
}

impl<W: io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256Writer::new(),
        }
    }
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256Writer::new(),
        }
    }
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }
    /// Digest and byte count of what was read (not of what remains unread).
    pub fn finish(self) -> (R, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn to_hex(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(raw.len() * 2);
    for b in raw {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// digest-algorithm := component (separator component)*, component := [a-z0-9]+,
// separator := [+._-]
fn is_algorithm_syntax(s: &str) -> bool {
    s.split(['+', '.', '_', '-']).all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_bytes() {
        assert_eq!(Digest::sha256(b"").to_string(), EMPTY);
        let d = Digest::sha256(b"");
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert!(d.verify(b""));
        assert!(!d.verify(b"x"));
    }

    #[test]
    fn parse_table() {
        let long = "a".repeat(64);
        let cases: &[(&str, Result<(), DigestError>)] = &[
            (EMPTY, Ok(())),
            (&format!("sha512:{}", "0".repeat(128)), Ok(())),
            ("sha256:", Err(DigestError::InvalidFormat)),
            ("sha256", Err(DigestError::InvalidFormat)),
            (":abc", Err(DigestError::InvalidFormat)),
            ("", Err(DigestError::InvalidFormat)),
            ("sha256:abc", Err(DigestError::InvalidLength)),
            (
                &format!("sha256:{}", "A".repeat(64)),
                Err(DigestError::InvalidFormat),
            ),
            (
                &format!("sha256:{}", "g".repeat(64)),
                Err(DigestError::InvalidFormat),
            ),
            (
                &format!("md5:{long}"),
                Err(DigestError::UnsupportedAlgorithm),
            ),
            (&format!("SHA256:{long}"), Err(DigestError::InvalidFormat)),
        ];
        for (input, want) in cases {
            let got = input.parse::<Digest>().map(|d| {
                assert_eq!(&d.to_string(), input);
            });
            assert_eq!(&got, want, "input {input:?}");
        }
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256(b"");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }

    #[test]
    fn ordering_follows_text() {
        let mut v = [
            Digest::sha256(b"b"),
            Digest::sha256(b"a"),
            Digest::sha256(b""),
        ];
        v.sort();
        let texts: Vec<_> = v.iter().map(|d| d.to_string()).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn chain_id_per_spec() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let c = Digest::sha256(b"c");
        assert_eq!(chain_id(std::slice::from_ref(&a)), a);
        let ab = Digest::sha256(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone()]), ab);
        let abc = Digest::sha256(format!("{ab} {c}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone(), c.clone()]), abc);
        assert_eq!(chain_ids(&[a.clone(), b, c]), vec![a, ab, abc]);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn chain_id_known_value() {
        // Computed independently: printf 'sha256:<e3b0..> sha256:<e3b0..>' | sha256sum
        let e = Digest::sha256(b"");
        let got = chain_id(&[e.clone(), e.clone()]);
        assert_eq!(
            got.hex(),
            "de9d9016b852e46e9f3973e20d3a6d17e120f7144931d50cd6e2a8ad53e81960"
        );
    }

    #[test]
    fn writers_and_readers_hash() {
        let mut w = Sha256Writer::new();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (d, n) = w.finish();
        assert_eq!(d, Digest::sha256(b"hello world"));
        assert_eq!(n, 11);

        let mut hw = HashingWriter::new(Vec::new());
        hw.write_all(b"hello world").unwrap();
        let (inner, d2, n2) = hw.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!((d2, n2), (d.clone(), 11));

        let mut hr = HashingReader::new(&b"hello world"[..]);
        let mut buf = Vec::new();
        hr.read_to_end(&mut buf).unwrap();
        let (_, d3, n3) = hr.finish();
        assert_eq!((d3, n3), (d, 11));
    }
}
