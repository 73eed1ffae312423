//! Layer compression: detect by magic bytes, decompress as a stream.

use std::io::{self, Cursor, Read};

/// Media types of layers, by family.
pub mod media_types {
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// Detects from the first bytes of a stream (4 are enough).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// From a layer media type (OCI or Docker); `None` for unknown types.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        use media_types::*;
        match mt {
            OCI_LAYER
            | DOCKER_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            OCI_LAYER_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => media_types::OCI_LAYER,
            Compression::Gzip => media_types::OCI_LAYER_GZIP,
            Compression::Zstd => media_types::OCI_LAYER_ZSTD,
        }
    }

    /// The Docker schema2 layer media type for this compression.
    pub fn docker_media_type(self) -> &'static str {
        match self {
            Compression::None => media_types::DOCKER_LAYER,
            Compression::Gzip => media_types::DOCKER_LAYER_GZIP,
            Compression::Zstd => media_types::DOCKER_LAYER_ZSTD,
        }
    }
}

/// Returns a reader of the decompressed stream (the input itself when it is plain),
/// detecting gzip or zstd by the first bytes.
pub fn decompress<'a, R: Read + Send + 'a>(r: R) -> crate::Result<Box<dyn Read + Send + 'a>> {
    decompress_detect(r)
        .map(|(_, r)| r)
        .map_err(crate::error::stream_err("reading compressed stream"))
}

/// Like [`decompress`], also saying which compression was found.
pub fn decompress_detect<'a, R: Read + Send + 'a>(
    mut r: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let c = Compression::detect(&head[..n]);
    let whole = Cursor::new(head[..n].to_vec()).chain(r);
    let out: Box<dyn Read + Send + 'a> = match c {
        Compression::None => Box::new(whole),
        // MultiGzDecoder: some tools write layers as concatenated gzip members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    };
    Ok((c, out))
}

/// libdeflate's level for pushed layers. `docker push` gzips at Go's default
/// level 6. On a 25 MiB layer of programs and libraries (bench/registry.sh
/// DATA=binaries) Docker's blob was 9.085 MB; libdeflate at level 5 in 1 MiB
/// members made 9.107 MB in 230 ms, where zlib-rs made 9.093 MB in 330 ms
/// at level 5 and 9.05 MB in 388 ms at level 6 (one stream). Compression is
/// most of a push's time, so: Docker's size for 40% less CPU.
pub const GZIP_LEVEL: u32 = 5;

/// A gzip-compressing writer at [`GZIP_LEVEL`], storing rather than
/// compressing stretches that do not compress.
pub fn gzip_writer<W: io::Write>(w: W) -> crate::gzip::GzipWriter<W> {
    crate::gzip::GzipWriter::new(w, GZIP_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detect_and_decompress_each_kind() {
        let plain = b"just some tar-ish bytes that are long enough".to_vec();
        let mut gz = gzip_writer(Vec::new());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&plain[..], 3).unwrap();
        for (data, kind) in [
            (plain.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
        ] {
            assert_eq!(Compression::detect(&data), kind);
            let (c, mut r) = decompress_detect(&data[..]).unwrap();
            assert_eq!(c, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain, "{kind:?}");
        }
    }

    #[test]
    fn short_inputs() {
        for data in [&b""[..], b"a", b"\x1f"] {
            let (c, mut r) = decompress_detect(data).unwrap();
            assert_eq!(c, Compression::None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn media_types_map() {
        assert_eq!(
            Compression::from_media_type(media_types::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
        assert_eq!(
            Compression::Zstd.oci_media_type(),
            media_types::OCI_LAYER_ZSTD
        );
    }
}
