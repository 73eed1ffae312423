//! The image config: the JSON blob whose digest is an image's ID. One type for
//! the builder, the engine, the registry client and the archive loader.
//!
//! Not `oci-spec`'s `ImageConfiguration`: its run config lacks Docker's
//! extensions (`Healthcheck`, `OnBuild`, `Shell`, `StopTimeout`, `ArgsEscaped`),
//! keeps labels in a `HashMap` (no stable order, so no stable image ID) and is
//! built through getters and builders where the builder edits fields in place.
//! The run config here is the Engine API's `ContainerConfig`, which is exactly
//! Docker's `container.Config`.
//!
//! A stored config is never re-encoded: its bytes stay in the content store and
//! this type is only what Pier reads from them. [`ImageConfig::to_json`] encodes
//! new images, [`DockerConfig`] is the run config as `image inspect` shows it.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::models::ContainerConfig;

/// An OCI/Docker image config. Fields are declared in the order of their JSON
/// keys, sorted, as Docker's BuildKit writes them (it re-encodes the config
/// through a Go map); unknown keys of a stored config are not kept here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "blob_config"
    )]
    pub config: Option<ContainerConfig>,
    /// Docker's classic builder and `commit`: the container the image was
    /// made from, and that container's config (`image inspect` shows both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "blob_config"
    )]
    pub container_config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default)]
    pub history: Vec<History>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    /// `sha256:<hex>` of each uncompressed layer, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry, its keys in the order Go's `ocispec.History` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob. The error is serde's; callers name the digest.
    pub fn from_slice(raw: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(raw)
    }

    /// The bytes of a new image's config: top-level keys sorted, the run
    /// config in `container.Config` order with map keys sorted as Go sorts
    /// them, so equal configs give equal bytes and therefore equal IDs.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The run config as `image inspect` shows it (`Config`).
    pub fn docker_config(&self) -> DockerConfig<'_> {
        DockerConfig::full(self.config.as_ref())
    }

    /// `ContainerConfig` of `image inspect`: all zero values unless the image
    /// was committed from a container.
    pub fn docker_container_config(&self) -> DockerConfig<'_> {
        DockerConfig::full(self.container_config.as_ref())
    }
}

fn blob_config<S: Serializer>(c: &Option<ContainerConfig>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => GoConfig {
            cfg: c,
            full: false,
        }
        .serialize(s),
        None => s.serialize_none(),
    }
}

/// A `ContainerConfig` encoded as Go encodes Docker's `container.Config`:
/// keys in declaration order, the maps (`ExposedPorts`, `Volumes`, `Labels`)
/// with sorted keys, unset strings `""`, unset lists and maps `null`, and the
/// `omitempty` fields (`ExposedPorts`, `Healthcheck`, `ArgsEscaped`,
/// `NetworkDisabled`, `StopSignal`, `StopTimeout`, `Shell`) left out when empty.
pub struct DockerConfig<'a> {
    cfg: Option<&'a ContainerConfig>,
}

impl<'a> DockerConfig<'a> {
    pub fn full(cfg: Option<&'a ContainerConfig>) -> Self {
        DockerConfig { cfg }
    }
}

impl Serialize for DockerConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let empty = ContainerConfig::default();
        GoConfig {
            cfg: self.cfg.unwrap_or(&empty),
            full: true,
        }
        .serialize(s)
    }
}

/// `full`: Go's encoding of every field (inspect). Otherwise only the fields
/// that are set, as a config blob carries them (BuildKit writes no zero values).
struct GoConfig<'a> {
    cfg: &'a ContainerConfig,
    full: bool,
}

/// Go's `map[string]struct{}`.
#[derive(Serialize)]
struct Empty {}

impl Serialize for GoConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.cfg;
        let mut m = Fields {
            map: s.serialize_map(None)?,
            full: self.full,
        };
        m.string("Hostname", &c.hostname, false)?;
        m.string("Domainname", &c.domainname, false)?;
        m.string("User", &c.user, false)?;
        m.flag("AttachStdin", c.attach_stdin, false)?;
        m.flag("AttachStdout", c.attach_stdout, false)?;
        m.flag("AttachStderr", c.attach_stderr, false)?;
        m.set("ExposedPorts", &c.exposed_ports, true)?;
        m.flag("Tty", c.tty, false)?;
        m.flag("OpenStdin", c.open_stdin, false)?;
        m.flag("StdinOnce", c.stdin_once, false)?;
        m.list("Env", &c.env, false)?;
        m.list("Cmd", &c.cmd, false)?;
        if let Some(h) = &c.healthcheck {
            m.map.serialize_entry("Healthcheck", h)?;
        }
        m.flag("ArgsEscaped", c.args_escaped, true)?;
        m.string("Image", &c.image, false)?;
        m.set("Volumes", &c.volumes, false)?;
        m.string("WorkingDir", &c.working_dir, false)?;
        m.list("Entrypoint", &c.entrypoint, false)?;
        m.flag("NetworkDisabled", c.network_disabled, true)?;
        m.list("OnBuild", &c.on_build, false)?;
        match &c.labels {
            Some(l) => {
                let sorted: BTreeMap<&String, &String> = l.iter().collect();
                m.map.serialize_entry("Labels", &sorted)?;
            }
            None if m.full => m.map.serialize_entry("Labels", &())?,
            None => {}
        }
        m.string("StopSignal", &c.stop_signal, true)?;
        if let Some(t) = c.stop_timeout {
            m.map.serialize_entry("StopTimeout", &t)?;
        }
        m.list("Shell", &c.shell, true)?;
        m.map.end()
    }
}

/// Writes one field by Go's rules (`full`) or only when set (blob).
struct Fields<M> {
    map: M,
    full: bool,
}

impl<M: SerializeMap> Fields<M> {
    fn string(&mut self, k: &str, v: &Option<String>, omitempty: bool) -> Result<(), M::Error> {
        match v.as_deref() {
            Some(v) if !(self.full && omitempty && v.is_empty()) => self.map.serialize_entry(k, v),
            None if self.full && !omitempty => self.map.serialize_entry(k, ""),
            _ => Ok(()),
        }
    }

    fn flag(&mut self, k: &str, v: Option<bool>, omitempty: bool) -> Result<(), M::Error> {
        match v {
            Some(v) if !(self.full && omitempty && !v) => self.map.serialize_entry(k, &v),
            None if self.full && !omitempty => self.map.serialize_entry(k, &false),
            _ => Ok(()),
        }
    }

    fn list(&mut self, k: &str, v: &Option<Vec<String>>, omitempty: bool) -> Result<(), M::Error> {
        match v {
            Some(v) if !(self.full && omitempty && v.is_empty()) => self.map.serialize_entry(k, v),
            None if self.full && !omitempty => self.map.serialize_entry(k, &()),
            _ => Ok(()),
        }
    }

    /// A `map[string]struct{}` kept as a list: sorted, each key once.
    fn set(&mut self, k: &str, v: &Option<Vec<String>>, omitempty: bool) -> Result<(), M::Error> {
        match v {
            Some(v) if !(self.full && omitempty && v.is_empty()) => {
                // A Go map holds each key once, in byte order.
                let sorted: BTreeMap<&String, Empty> = v.iter().map(|k| (k, Empty {})).collect();
                self.map.serialize_entry(k, &sorted)
            }
            None if self.full && !omitempty => self.map.serialize_entry(k, &()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ContainerConfig {
        ContainerConfig {
            exposed_ports: Some(vec!["9000/tcp".into(), "443/tcp".into(), "80/udp".into()]),
            env: Some(vec!["B=2".into(), "A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            volumes: Some(vec!["/zdata".into(), "/adata".into(), "/Mdata".into()]),
            labels: Some(
                [("zeta", "1"), ("alpha", "2"), ("Beta", "3"), ("a.b", "4")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_config_is_go_encoded() {
        let cfg = sample();
        let got = serde_json::to_string(&DockerConfig::full(Some(&cfg))).unwrap();
        // As Docker 20.10 shows a BuildKit image with these instructions.
        let want = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"443/tcp":{},"80/udp":{},"9000/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["B=2","A=1"],"Cmd":["sh"],"Image":"","Volumes":{"/Mdata":{},"/adata":{},"/zdata":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"Beta":"3","a.b":"4","alpha":"2","zeta":"1"}}"#;
        assert_eq!(got, want);
        let none = serde_json::to_string(&DockerConfig::full(None)).unwrap();
        assert_eq!(
            none,
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
    }

    #[test]
    fn omitempty_fields_appear_when_set() {
        let cfg = ContainerConfig {
            stop_signal: Some("SIGQUIT".into()),
            stop_timeout: Some(3),
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
            args_escaped: Some(true),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(DockerConfig::full(Some(&cfg))).unwrap();
        assert_eq!(v["StopSignal"], "SIGQUIT");
        assert_eq!(v["StopTimeout"], 3);
        assert_eq!(v["Shell"][0], "/bin/bash");
        assert_eq!(v["ArgsEscaped"], true);
        let empty = ContainerConfig {
            stop_signal: Some(String::new()),
            shell: Some(Vec::new()),
            args_escaped: Some(false),
            ..Default::default()
        };
        let v = serde_json::to_value(DockerConfig::full(Some(&empty))).unwrap();
        for k in [
            "StopSignal",
            "Shell",
            "ArgsEscaped",
            "ExposedPorts",
            "StopTimeout",
        ] {
            assert!(v.get(k).is_none(), "{k} in {v}");
        }
    }

    #[test]
    fn blob_is_deterministic_and_sorted() {
        let img = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(sample()),
            created: Some("2024-01-01T00:00:00Z".into()),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec!["sha256:aa".into()],
            },
            history: vec![History {
                created: Some("2024-01-01T00:00:00Z".into()),
                created_by: Some("ENV B=2 A=1".into()),
                comment: Some("buildkit.dockerfile.v0".into()),
                empty_layer: true,
                ..Default::default()
            }],
            ..Default::default()
        };
        let a = String::from_utf8(img.to_json()).unwrap();
        assert_eq!(
            a,
            r#"{"architecture":"amd64","config":{"ExposedPorts":{"443/tcp":{},"80/udp":{},"9000/tcp":{}},"Env":["B=2","A=1"],"Cmd":["sh"],"Volumes":{"/Mdata":{},"/adata":{},"/zdata":{}},"Labels":{"Beta":"3","a.b":"4","alpha":"2","zeta":"1"}},"created":"2024-01-01T00:00:00Z","history":[{"created":"2024-01-01T00:00:00Z","created_by":"ENV B=2 A=1","comment":"buildkit.dockerfile.v0","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#
        );
        // Read back (labels and ports come back in hash order) and written
        // again: the same bytes.
        let back = ImageConfig::from_slice(a.as_bytes()).unwrap();
        assert_eq!(back.to_json(), a.as_bytes());
    }

    #[test]
    fn reads_what_earlier_pier_versions_stored() {
        // The image record of an earlier version: the config with every key
        // sorted and the engine's fields (`comment`, `docker_version`).
        let old = r#"{"architecture":"amd64","comment":"Imported from -","config":{"Cmd":["sh"],"Env":["PATH=/bin"],"ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}},"created":"2024-01-01T00:00:00Z","docker_version":"x","history":[{"comment":"c","created":"2024-01-01T00:00:00Z","created_by":"","empty_layer":true}],"os":"linux","rootfs":{"diff_ids":["sha256:aa"],"type":"layers"}}"#;
        let c = ImageConfig::from_slice(old.as_bytes()).unwrap();
        assert_eq!(c.comment.as_deref(), Some("Imported from -"));
        assert_eq!(c.docker_version.as_deref(), Some("x"));
        assert_eq!(c.rootfs.diff_ids, ["sha256:aa"]);
        assert!(c.history[0].empty_layer);
        let cfg = c.config.unwrap();
        assert_eq!(cfg.exposed_ports.unwrap(), ["80/tcp"]);
        // A config without rootfs or history (some hand-made images).
        let bare = ImageConfig::from_slice(br#"{"architecture":"arm64","os":"linux"}"#).unwrap();
        assert_eq!(bare.rootfs, RootFs::default());
        assert!(bare.history.is_empty());
    }
}
