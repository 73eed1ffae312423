//! Manifests and indexes (OCI and Docker schema 2), platforms, and choosing
//! the manifest for a platform from an index.

use std::collections::BTreeMap;
use std::fmt;

use pier_content::media_types as mt;
use pier_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// What we send in `Accept` for manifests, most preferred first.
pub const MANIFEST_ACCEPT: &[&str] = &[
    mt::OCI_INDEX,
    mt::DOCKER_MANIFEST_LIST,
    mt::OCI_MANIFEST,
    mt::DOCKER_MANIFEST,
];

const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, in OCI names (`linux/amd64`).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: arch.into(),
            os: std::env::consts::OS.into(),
            variant: variant.map(str::to_string),
            ..Default::default()
        }
    }

    /// Parses `os/arch[/variant]` (also `arch` alone, meaning linux).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || {
            RegistryError::Invalid(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if !arch.is_empty() => ("linux", *arch, None),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                (*os, *arch, Some(*v))
            }
            _ => return Err(bad()),
        };
        let (arch, variant) = normalize_arch(&arch.to_lowercase(), variant.map(str::to_lowercase));
        Ok(Platform {
            architecture: arch,
            os: os.to_lowercase(),
            variant,
            ..Default::default()
        })
    }

    /// True when an image for `self` runs on `want` (variant-aware for ARM).
    pub fn matches(&self, want: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&self.architecture, self.variant.clone());
        if self.os != want.os || arch != want.architecture {
            return false;
        }
        match (&want.variant, &variant) {
            (None, _) => true,
            (Some(w), Some(v)) => w == v,
            // An unspecified variant on arm64 means v8.
            (Some(w), None) => arch == "arm64" && w == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// containerd's normalisation: `x86_64` -> `amd64`, `aarch64` -> `arm64`, ...
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match arch {
        "i386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        // arm64 without a variant is v8: keep it implicit so both compare equal.
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "8" && v != "v8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".into(),
                Some("5") | Some("v5") => "v5".into(),
                Some("6") | Some("v6") => "v6".into(),
                Some("8") | Some("v8") => "v8".into(),
                Some(v) => v.to_string(),
            }),
        ),
        other => (other.to_string(), variant),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

// Short-lived values: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses a manifest or index, trusting the body's `mediaType` over the
/// `Content-Type` header (registries get that wrong), and returns the
/// media type it is.
pub fn parse_manifest(content_type: &str, body: &[u8]) -> Result<(String, Manifest)> {
    let bad = |e: &dyn fmt::Display| RegistryError::Protocol(format!("invalid manifest: {e}"));
    let probe: Probe = serde_json::from_slice(body).map_err(|e| bad(&e))?;
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let media_type = probe
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| ct.to_string());
    if DOCKER_SCHEMA1.contains(&media_type.as_str()) || probe.schema_version == Some(1) {
        return Err(RegistryError::Invalid(
            "Docker Image manifest version 2, schema 1 is not supported; push the image again with a newer client"
                .into(),
        ));
    }
    let is_index = match media_type.as_str() {
        mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => true,
        mt::OCI_MANIFEST | mt::DOCKER_MANIFEST => false,
        _ => probe.manifests.is_some() && probe.config.is_none(),
    };
    if is_index {
        let idx: ImageIndex = serde_json::from_slice(body).map_err(|e| bad(&e))?;
        let mt = if media_type.is_empty() {
            mt::OCI_INDEX.to_string()
        } else {
            media_type
        };
        Ok((mt, Manifest::Index(idx)))
    } else {
        if probe.config.is_none() {
            return Err(RegistryError::Invalid(format!(
                "unsupported manifest media type {media_type:?}"
            )));
        }
        let m: ImageManifest = serde_json::from_slice(body).map_err(|e| bad(&e))?;
        let mt = if media_type.is_empty() {
            mt::OCI_MANIFEST.to_string()
        } else {
            media_type
        };
        Ok((mt, Manifest::Image(m)))
    }
}

/// Picks the manifest for `want` from an index: the first entry that
/// matches, preferring one whose variant equals the requested one exactly.
pub fn select_platform<'a>(idx: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| {
            matches!(
                d.media_type.as_str(),
                mt::OCI_MANIFEST | mt::DOCKER_MANIFEST
            ) || d.media_type.is_empty()
        })
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.matches(want)))
        .collect();
    if want.variant.is_none() {
        // No variant asked: for the host's own arch prefer its variant.
        let host = Platform::host();
        if host.architecture == want.architecture
            && host.variant.is_some()
            && let Some(d) = candidates
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(&host)))
        {
            return Some(d);
        }
    }
    candidates.first().copied()
}

/// Layer media types we can unpack; others (encrypted, foreign) are refused.
pub fn is_supported_layer(media_type: &str) -> bool {
    pier_content::Compression::from_media_type(media_type).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> ImageIndex {
        let d = |arch: &str, variant: Option<&str>, n: u8| Descriptor {
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
                ..Default::default()
            }),
            ..Descriptor::new(mt::OCI_MANIFEST, Digest::sha256(&[n]), 10)
        };
        let mut att = d("unknown", None, 9);
        att.platform.as_mut().unwrap().os = "unknown".into();
        ImageIndex {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.into()),
            manifests: vec![
                att,
                d("amd64", None, 1),
                d("arm", Some("v6"), 2),
                d("arm", Some("v7"), 3),
                d("arm64", Some("v8"), 4),
                d("386", None, 5),
            ],
            annotations: None,
        }
    }

    #[test]
    fn selects_by_platform_and_variant() {
        let i = idx();
        let pick =
            |s: &str| select_platform(&i, &Platform::parse(s).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64"), Some(Digest::sha256(&[1])));
        assert_eq!(pick("linux/arm/v6"), Some(Digest::sha256(&[2])));
        assert_eq!(pick("linux/arm"), Some(Digest::sha256(&[3])));
        assert_eq!(pick("linux/arm64"), Some(Digest::sha256(&[4])));
        assert_eq!(pick("linux/arm64/v8"), Some(Digest::sha256(&[4])));
        assert_eq!(pick("linux/aarch64"), Some(Digest::sha256(&[4])));
        assert_eq!(pick("linux/386"), Some(Digest::sha256(&[5])));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
        // The host platform is always present in this index.
        assert!(
            select_platform(&i, &Platform::host()).is_some()
                || Platform::host().architecture == "riscv64"
        );
    }

    #[test]
    fn platform_parse_and_display() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn parse_kinds() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":3}},"layers":[]}}"#,
            mt::DOCKER_MANIFEST,
            mt::DOCKER_CONFIG,
            Digest::sha256(b"abc")
        );
        let (t, p) = parse_manifest("text/plain", m.as_bytes()).unwrap();
        assert_eq!(t, mt::DOCKER_MANIFEST);
        assert!(matches!(p, Manifest::Image(_)));
        // No mediaType in the body: the header decides, then the shape.
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{}","size":3}},"layers":[]}}"#,
            mt::OCI_CONFIG,
            Digest::sha256(b"abc")
        );
        let (t, _) = parse_manifest(mt::OCI_MANIFEST, m.as_bytes()).unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let (t, _) = parse_manifest("", m.as_bytes()).unwrap();
        assert_eq!(t, mt::OCI_MANIFEST);
        let (t, p) = parse_manifest("", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert_eq!(t, mt::OCI_INDEX);
        assert!(matches!(p, Manifest::Index(_)));
        assert!(parse_manifest("", br#"{"schemaVersion":1,"fsLayers":[]}"#).is_err());
        assert!(parse_manifest("", b"nope").is_err());
    }

    #[test]
    fn layer_types() {
        assert!(is_supported_layer(mt::OCI_LAYER_ZSTD));
        assert!(is_supported_layer(mt::DOCKER_LAYER_GZIP));
        assert!(is_supported_layer(mt::OCI_LAYER));
        assert!(!is_supported_layer(
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
        ));
    }
}
