//! Container Device Interface: `--device vendor.com/class=name` and `--gpus`
//! are looked up in the CDI specs of the daemon's spec directories (default
//! `/etc/cdi` and `/var/run/cdi`, as Docker and Podman read them) and their
//! container edits applied: device nodes, environment and bind mounts. Specs
//! are read as JSON; YAML specs and hooks are refused by name.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use pier_runtime::spec::{BindMount, Device, DeviceRule};
use serde::Deserialize;

use crate::{EngineError, Result};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::invalid_argument(msg.into())
}

#[derive(Debug, Deserialize)]
struct Spec {
    kind: String,
    #[serde(default)]
    devices: Vec<SpecDevice>,
    #[serde(default, rename = "containerEdits")]
    edits: Edits,
}

#[derive(Debug, Deserialize)]
struct SpecDevice {
    name: String,
    #[serde(default, rename = "containerEdits")]
    edits: Edits,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct Edits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default, rename = "deviceNodes")]
    device_nodes: Vec<Node>,
    #[serde(default)]
    mounts: Vec<CdiMount>,
    #[serde(default)]
    hooks: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct Node {
    path: String,
    #[serde(default, rename = "hostPath")]
    host_path: Option<String>,
    #[serde(default)]
    permissions: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct CdiMount {
    #[serde(rename = "hostPath")]
    host_path: String,
    #[serde(rename = "containerPath")]
    container_path: String,
    #[serde(default)]
    options: Vec<String>,
}

/// What the named CDI devices add to a container.
#[derive(Debug, Default)]
pub(crate) struct CdiEdits {
    pub devices: Vec<Device>,
    pub rules: Vec<DeviceRule>,
    pub env: Vec<String>,
    pub binds: Vec<BindMount>,
}

/// Whether a `--device` value is a CDI name (`vendor.com/class=name`).
pub(crate) fn is_cdi_name(s: &str) -> bool {
    !s.starts_with('/') && s.contains('/') && s.contains('=')
}

/// Every spec in `dirs`, by kind; a later directory wins (`/var/run/cdi`
/// over `/etc/cdi`, as the CDI specification orders them).
// Reached from create, on an async worker: the spec directories hold a few
// small files, read only when a CDI device or `--gpus` is asked for.
#[allow(clippy::disallowed_methods)]
fn load(dirs: &[PathBuf]) -> Result<HashMap<String, (PathBuf, Spec)>> {
    let mut out = HashMap::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    let data = std::fs::read(&f).map_err(|e| EngineError::from_io(&f, e))?;
                    let spec: Spec = serde_json::from_slice(&data)
                        .map_err(|e| bad(format!("CDI spec {}: {e}", f.display())))?;
                    out.insert(spec.kind.clone(), (f, spec));
                }
                Some("yaml") | Some("yml") => {
                    return Err(bad(format!(
                        "not supported by Pier: CDI spec in YAML ({}); write it as JSON",
                        f.display()
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Whether a spec of `kind` exists in `dirs`.
pub(crate) fn has_kind(dirs: &[PathBuf], kind: &str) -> Result<bool> {
    Ok(load(dirs)?.contains_key(kind))
}

fn apply(e: &Edits, spec: &Path, out: &mut CdiEdits) -> Result<()> {
    if !e.hooks.is_empty() {
        return Err(bad(format!(
            "not supported by Pier: CDI hooks ({})",
            spec.display()
        )));
    }
    out.env.extend(e.env.iter().cloned());
    for n in &e.device_nodes {
        let host = n.host_path.as_deref().unwrap_or(&n.path);
        let md = std::fs::metadata(host).map_err(|err| {
            bad(format!(
                "CDI device node {host} ({}): {err}",
                spec.display()
            ))
        })?;
        let kind = if md.file_type().is_char_device() {
            'c'
        } else if md.file_type().is_block_device() {
            'b'
        } else {
            return Err(bad(format!("CDI device node {host} is not a device node")));
        };
        let (major, minor) = (
            nix::sys::stat::major(md.rdev()),
            nix::sys::stat::minor(md.rdev()),
        );
        out.devices.push(Device {
            path: n.path.clone(),
            kind,
            major,
            minor,
            file_mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
        });
        out.rules.push(DeviceRule {
            kind,
            major: Some(major as i64),
            minor: Some(minor as i64),
            access: n.permissions.clone().unwrap_or_else(|| "rwm".into()),
        });
    }
    for m in &e.mounts {
        out.binds.push(BindMount {
            source: PathBuf::from(&m.host_path),
            destination: m.container_path.clone(),
            readonly: m.options.iter().any(|o| o == "ro"),
        });
    }
    Ok(())
}

/// The edits of the CDI devices `names` (`vendor.com/class=name`).
pub(crate) fn resolve(dirs: &[PathBuf], names: &[String]) -> Result<CdiEdits> {
    let mut out = CdiEdits::default();
    if names.is_empty() {
        return Ok(out);
    }
    let specs = load(dirs)?;
    let mut kinds_done = Vec::new();
    for name in names {
        let (kind, dev) = name
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid CDI device name {name:?}")))?;
        let Some((path, spec)) = specs.get(kind) else {
            return Err(bad(format!(
                "CDI device injection failed: unresolvable CDI devices {name}"
            )));
        };
        let d = spec.devices.iter().find(|d| d.name == dev).ok_or_else(|| {
            bad(format!(
                "CDI device injection failed: unresolvable CDI devices {name}"
            ))
        })?;
        if !kinds_done.contains(&kind) {
            apply(&spec.edits, path, &mut out)?;
            kinds_done.push(kind);
        }
        apply(&d.edits, path, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test, on its own thread
mod tests {
    use super::*;

    #[test]
    fn names_and_specs() {
        assert!(is_cdi_name("vendor.com/class=name"));
        assert!(!is_cdi_name("/dev/null"));
        let dir = std::env::temp_dir().join(format!("pier-cdi-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("v.json"),
            r#"{"cdiVersion":"0.6.0","kind":"example.com/dev","containerEdits":{"env":["ALL=1"]},
               "devices":[{"name":"null","containerEdits":{"env":["ONE=1"],
               "deviceNodes":[{"path":"/dev/xnull","hostPath":"/dev/null","permissions":"rw"}]}}]}"#,
        )
        .unwrap();
        let dirs = vec![dir.clone()];
        let e = resolve(&dirs, &["example.com/dev=null".into()]).unwrap();
        assert_eq!(e.env, vec!["ALL=1", "ONE=1"]);
        assert_eq!((e.devices[0].major, e.devices[0].minor), (1, 3));
        assert_eq!(e.rules[0].access, "rw");
        assert!(resolve(&dirs, &["example.com/dev=nope".into()]).is_err());
        assert!(resolve(&dirs, &["other.com/x=y".into()]).is_err());
        assert!(has_kind(&dirs, "example.com/dev").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
