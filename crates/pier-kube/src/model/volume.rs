//! A pod's volumes: emptyDir, hostPath, claims, and ConfigMap or Secret files.

use super::{Ctx, VolSource, Volume};
use crate::error::{KubeError, Result};
use serde_json::Value;
use std::collections::BTreeMap;

impl Ctx {
    pub(super) fn volume(&mut self, what: &str, at: &str, v: &Value) -> Result<Volume> {
        let name = v["name"]
            .as_str()
            .ok_or_else(|| KubeError::Invalid(format!("{what}: {at}.name: Required value")))?
            .to_string();
        self.warnings.unknown_keys(
            what,
            at,
            v,
            &[
                "name",
                "emptyDir",
                "hostPath",
                "persistentVolumeClaim",
                "configMap",
                "secret",
            ],
        );
        let source = if let Some(e) = v.get("emptyDir") {
            self.warnings
                .unknown_keys(what, &format!("{at}.emptyDir"), e, &["medium"]);
            let memory = e["medium"].as_str() == Some("Memory");
            if memory {
                self.warnings.add(format!("{what}: {at}.emptyDir.medium: Memory is not supported by pier kube play: the volume is on disk"));
            }
            VolSource::EmptyDir { memory }
        } else if let Some(h) = v.get("hostPath") {
            self.warnings
                .unknown_keys(what, &format!("{at}.hostPath"), h, &["path", "type"]);
            let path = h["path"].as_str().ok_or_else(|| {
                KubeError::Invalid(format!("{what}: {at}.hostPath.path: Required value"))
            })?;
            // As Podman: a path without a slash names a volume.
            if !path.contains('/') {
                return Ok(Volume {
                    name,
                    source: VolSource::Claim(path.to_string()),
                });
            }
            match h["type"].as_str().unwrap_or("") {
                "DirectoryOrCreate" => {
                    std::fs::create_dir_all(path).map_err(|e| KubeError::io(path, e))?
                }
                "" => {}
                t => {
                    let m = std::fs::metadata(path);
                    let ok = match t {
                        "Directory" => m.as_ref().is_ok_and(|m| m.is_dir()),
                        "File" => m.as_ref().is_ok_and(|m| m.is_file()),
                        "FileOrCreate" => {
                            if m.is_err() {
                                std::fs::write(path, b"").map_err(|e| KubeError::io(path, e))?;
                            }
                            true
                        }
                        _ => m.is_ok(),
                    };
                    if !ok {
                        return Err(KubeError::Invalid(format!(
                            "{what}: {at}.hostPath: {path} is not a {t}"
                        )));
                    }
                }
            }
            VolSource::HostPath(path.to_string())
        } else if let Some(c) = v.get("persistentVolumeClaim") {
            self.warnings.unknown_keys(
                what,
                &format!("{at}.persistentVolumeClaim"),
                c,
                &["claimName", "readOnly"],
            );
            VolSource::Claim(
                c["claimName"]
                    .as_str()
                    .ok_or_else(|| {
                        KubeError::Invalid(format!(
                            "{what}: {at}.persistentVolumeClaim.claimName: Required value"
                        ))
                    })?
                    .to_string(),
            )
        } else if let Some(c) = v.get("configMap") {
            self.files(what, &format!("{at}.configMap"), c, "configmap", "name")?
        } else if let Some(c) = v.get("secret") {
            self.files(what, &format!("{at}.secret"), c, "secret", "secretName")?
        } else {
            return Err(KubeError::Invalid(format!("{what}: {at}: no volume source pier kube play supports (emptyDir, hostPath, persistentVolumeClaim, configMap, secret)")));
        };
        Ok(Volume { name, source })
    }

    fn files(
        &mut self,
        what: &str,
        at: &str,
        c: &Value,
        kind: &'static str,
        name_key: &str,
    ) -> Result<VolSource> {
        self.warnings
            .unknown_keys(what, at, c, &[name_key, "items", "defaultMode", "optional"]);
        let name = c[name_key].as_str().unwrap_or_default().to_string();
        let optional = c["optional"].as_bool().unwrap_or(false);
        let store = if kind == "secret" {
            &self.secrets
        } else {
            &self.configmaps
        };
        let data = match store.get(&name) {
            Some(d) => d.clone(),
            None if optional => BTreeMap::new(),
            None => {
                return Err(KubeError::Invalid(format!(
                    "{what}: {at}: {kind} {name:?} not found in the YAML"
                )))
            }
        };
        let mode = c["defaultMode"].as_u64().unwrap_or(0o644) as u32;
        let mut files = Vec::new();
        match c["items"].as_array() {
            Some(items) => {
                for it in items {
                    let key = it["key"].as_str().unwrap_or_default();
                    let path = it["path"].as_str().unwrap_or(key);
                    let m = it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
                    match data.get(key) {
                        Some(b) => files.push((path.to_string(), b.clone(), m)),
                        None if optional => {}
                        None => {
                            return Err(KubeError::Invalid(format!(
                                "{what}: {at}.items: {kind} {name:?} has no key {key:?}"
                            )))
                        }
                    }
                }
            }
            None => {
                for (k, b) in data {
                    files.push((k, b, mode));
                }
            }
        }
        Ok(VolSource::Files { kind, name, files })
    }
}
