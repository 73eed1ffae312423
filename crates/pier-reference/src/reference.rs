//! Image references per Docker's distribution reference grammar, with Docker Hub
//! normalisation (`busybox` -> `docker.io/library/busybox:latest`).
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [domain '/'] path-component ['/' path-component]*
//! domain    := host [':' port-number]
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+
//! tag       := [\w][\w.-]{0,127}
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{is_lower_hex, Digest, DigestError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Parse failures; the texts are the ones the Docker CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    IdentifierAsName(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A normalised image reference. `tag` and `digest` may both be present
/// (`name:tag@digest`: the digest wins when pulling, as in Docker).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises like `docker pull`: adds `docker.io`, `library/` and, when
    /// neither tag nor digest is given, the tag `latest`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Like [`Reference::parse`] but never adds a default tag (for `docker images busybox`
    /// style filters and `docker push name` = all tags).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::IdentifierAsName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or("");
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::NameContainsUppercase);
        }
        parse_full(&domain, &remainder, s)
    }

    /// Builds a reference from its parts, validating each.
    pub fn from_parts(
        domain: &str,
        path: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let mut s = format!("{domain}/{path}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        Reference::parse_normalized(&s)
    }

    /// Registry host, possibly with port: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Repository name as Docker prints it: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// As Docker prints it: `busybox:latest`, `localhost:5000/x:t`, `busybox@sha256:...`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// Fully qualified: `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        self.with_suffix(self.name())
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The repository alone, no tag nor digest.
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// True for Docker Hub repositories.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DEFAULT_DOMAIN
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form, like Go's `reference.Named.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full())
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// True when `s` can only be an image ID: 64 lowercase hex characters, or
/// `sha256:` followed by 1 to 64 hex characters. Such strings are never names.
pub fn looks_like_id(s: &str) -> bool {
    if s.len() == 64 && is_lower_hex(s) {
        return true;
    }
    match s.strip_prefix("sha256:") {
        Some(hex) => !hex.is_empty() && hex.len() <= 64 && is_lower_hex(hex),
        None => false,
    }
}

/// The hex part of `s` if it could be a (possibly shortened) image ID: optional
/// `sha256:` then 1 to 64 lowercase hex characters. A short hex string like `abc123` is
/// also a valid repository name; Docker tries the name first, then the ID prefix.
pub fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty() && hex.len() <= 64 && is_lower_hex(hex)).then_some(hex)
}

/// What a user may pass where Docker takes "IMAGE": a name or an ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// Hex ID or prefix (without `sha256:`); only produced when `s` cannot be a name.
    Id(String),
    /// A name, which might also be an ID prefix: see [`id_prefix`].
    Name(Reference),
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if looks_like_id(s) {
            let hex = s.strip_prefix("sha256:").unwrap_or(s);
            return Ok(ImageRef::Id(hex.to_string()));
        }
        Reference::parse(s).map(ImageRef::Name)
    }
}

/// Docker's `splitDockerDomain`: the first component is a registry host only if it
/// contains `.` or `:`, is `localhost`, or has uppercase letters.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Validates `domain/remainder` where remainder is `path[:tag][@digest]`.
fn parse_full(domain: &str, remainder: &str, original: &str) -> Result<Reference, ReferenceError> {
    if original.is_empty() {
        return Err(ReferenceError::NameEmpty);
    }
    // Name and tag cannot contain '@', so the first '@' starts the digest.
    let (rest, digest) = match remainder.split_once('@') {
        Some((r, d)) => {
            if !is_digest_syntax(d) {
                return Err(ReferenceError::InvalidFormat);
            }
            (r, Some(d.parse::<Digest>()?))
        }
        None => (remainder, None),
    };
    // A tag cannot contain '/', so only a ':' after the last '/' separates it.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !is_valid_tag(t)
    {
        return Err(ReferenceError::InvalidFormat);
    }
    if !is_valid_domain(domain) || !is_valid_path(path) {
        // Docker reports uppercase separately when the lowercased input would parse.
        let lower = path.to_lowercase();
        if lower != path && is_valid_path(&lower) && is_valid_domain(domain) {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_path_component)
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// `host[:port]` where host is dotted `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` components
/// or a bracketed IPv6 address.
fn is_valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let addr = &rest[..end];
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        (None, &rest[end + 1..])
    } else {
        match d.find(':') {
            Some(i) => (Some(&d[..i]), &d[i..]),
            None => (Some(d), ""),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|c| {
                let b = c.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
            });
        if !ok {
            return false;
        }
    }
    match port.strip_prefix(':') {
        Some(p) => !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()),
        None => port.is_empty(),
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalisation_table() {
        let d = format!("sha256:{HEX}");
        // input, domain, path, tag, digest, familiar, full
        type Case<'a> = (
            String,
            &'a str,
            &'a str,
            Option<&'a str>,
            bool,
            String,
            String,
        );
        let cases: Vec<Case> = vec![
            (
                "busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                false,
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "user/app".into(),
                "docker.io",
                "user/app",
                Some("latest"),
                false,
                "user/app:latest".into(),
                "docker.io/user/app:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                false,
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io",
                "library/a/b",
                Some("latest"),
                false,
                "library/a/b:latest".into(),
                "docker.io/library/a/b:latest".into(),
            ),
            (
                "localhost:5000/a/b:t".into(),
                "localhost:5000",
                "a/b",
                Some("t"),
                false,
                "localhost:5000/a/b:t".into(),
                "localhost:5000/a/b:t".into(),
            ),
            (
                "localhost/x".into(),
                "localhost",
                "x",
                Some("latest"),
                false,
                "localhost/x:latest".into(),
                "localhost/x:latest".into(),
            ),
            (
                "localhost:5000".into(),
                "docker.io",
                "library/localhost",
                Some("5000"),
                false,
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "127.0.0.1:5000/x:t".into(),
                "127.0.0.1:5000",
                "x",
                Some("t"),
                false,
                "127.0.0.1:5000/x:t".into(),
                "127.0.0.1:5000/x:t".into(),
            ),
            (
                "[::1]:5000/x".into(),
                "[::1]:5000",
                "x",
                Some("latest"),
                false,
                "[::1]:5000/x:latest".into(),
                "[::1]:5000/x:latest".into(),
            ),
            (
                "Reg.Example.com/a".into(),
                "Reg.Example.com",
                "a",
                Some("latest"),
                false,
                "Reg.Example.com/a:latest".into(),
                "Reg.Example.com/a:latest".into(),
            ),
            (
                format!("busybox@{d}"),
                "docker.io",
                "library/busybox",
                None,
                true,
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                format!("busybox:1@{d}"),
                "docker.io",
                "library/busybox",
                Some("1"),
                true,
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
            (
                "a.b/c-d/e__f/g.h:V1.0-x_y".into(),
                "a.b",
                "c-d/e__f/g.h",
                Some("V1.0-x_y"),
                false,
                "a.b/c-d/e__f/g.h:V1.0-x_y".into(),
                "a.b/c-d/e__f/g.h:V1.0-x_y".into(),
            ),
            (
                "a---b".into(),
                "docker.io",
                "library/a---b",
                Some("latest"),
                false,
                "a---b:latest".into(),
                "docker.io/library/a---b:latest".into(),
            ),
        ];
        for (input, domain, path, tag, has_digest, familiar, full) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.domain(), domain, "{input}");
            assert_eq!(r.path(), path, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.full(), full, "{input}");
            assert_eq!(r.to_string(), full, "{input}");
            // full() must itself parse back to the same reference
            assert_eq!(Reference::parse(&r.full()).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn error_table() {
        use ReferenceError::*;
        let cases: Vec<(String, ReferenceError)> = vec![
            ("".into(), NameEmpty),
            ("Busybox".into(), NameContainsUppercase),
            ("user/App".into(), NameContainsUppercase),
            ("localhost:5000/A".into(), NameContainsUppercase),
            ("busybox:".into(), InvalidFormat),
            ("busybox:-x".into(), InvalidFormat),
            (format!("busybox:{}", "a".repeat(129)), InvalidFormat),
            ("a//b".into(), InvalidFormat),
            ("a/".into(), InvalidFormat),
            ("-a".into(), InvalidFormat),
            ("a_-b".into(), InvalidFormat),
            ("a___b".into(), InvalidFormat),
            ("a b".into(), InvalidFormat),
            ("busybox@sha256:abc".into(), InvalidFormat),
            ("busybox@".into(), InvalidFormat),
            ("host:port/x".into(), InvalidFormat),
            ("-bad.com/x".into(), InvalidFormat),
            (
                format!("busybox@sha256:{}", "a".repeat(40)),
                Digest(DigestError::InvalidLength),
            ),
            (
                format!("busybox@md5:{}", "a".repeat(32)),
                Digest(DigestError::UnsupportedAlgorithm),
            ),
            (HEX.into(), IdentifierAsName(HEX.into())),
            (format!("docker.io/{}", "a".repeat(250)), NameTooLong),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(&input), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn error_wording_matches_docker() {
        assert_eq!(
            Reference::parse("a b").unwrap_err().to_string(),
            "invalid reference format"
        );
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name must be lowercase"
        );
    }

    #[test]
    fn normalized_keeps_missing_tag() {
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.familiar(), "busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        let t = r.with_tag("1.0").unwrap();
        assert_eq!(t.familiar(), "busybox:1.0");
        assert!(r.with_tag("bad tag").is_err());
        let d = t.with_digest(Digest::sha256(b""));
        assert_eq!(d.tag(), None);
        assert_eq!(d.repository(), r);
        assert!(d.is_docker_hub());
    }

    #[test]
    fn from_parts_validates() {
        let r = Reference::from_parts("localhost:5000", "x/y", Some("t"), None).unwrap();
        assert_eq!(r.familiar(), "localhost:5000/x/y:t");
        assert!(Reference::from_parts("docker.io", "X", None, None).is_err());
    }

    #[test]
    fn serde_roundtrip() {
        let r = Reference::parse("busybox").unwrap();
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&s).unwrap(), r);
    }

    #[test]
    fn id_detection() {
        let sha = format!("sha256:{HEX}");
        let cases: &[(&str, bool, Option<&str>)] = &[
            (HEX, true, Some(HEX)),
            (&sha, true, Some(HEX)),
            ("sha256:e3b0c4", true, Some("e3b0c4")),
            ("e3b0c4", false, Some("e3b0c4")),
            ("busybox", false, None),
            ("sha256:", false, None),
            ("sha256:XYZ", false, None),
            ("E3B0C4", false, None),
        ];
        for (s, is_id, prefix) in cases {
            assert_eq!(looks_like_id(s), *is_id, "{s}");
            assert_eq!(id_prefix(s), *prefix, "{s}");
        }
        assert_eq!(ImageRef::parse(&sha).unwrap(), ImageRef::Id(HEX.into()));
        assert_eq!(ImageRef::parse(HEX).unwrap(), ImageRef::Id(HEX.into()));
        assert!(matches!(
            ImageRef::parse("e3b0c4").unwrap(),
            ImageRef::Name(_)
        ));
        assert!(ImageRef::parse("Bad").is_err());
    }
}
