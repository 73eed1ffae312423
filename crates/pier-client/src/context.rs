//! Contexts, stored exactly where and as the docker CLI stores them, so both
//! CLIs share one list: `contexts/meta/<sha256 of name>/meta.json`, TLS files
//! in `contexts/tls/<sha256 of name>/docker/`, and the current one in
//! `config.json`'s `currentContext`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{config_dir, load_config, save_config};
use crate::{ClientError, Result};

/// The context that stands for `-H`/`DOCKER_HOST`/the default socket.
pub const DEFAULT_CONTEXT: &str = "default";

/// `meta.json`, field for field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextMeta {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
    #[serde(rename = "Endpoints", default)]
    pub endpoints: Map<String, Value>,
}

impl ContextMeta {
    pub fn description(&self) -> &str {
        self.metadata
            .get("Description")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The `docker` endpoint's host.
    pub fn host(&self) -> Option<&str> {
        self.endpoints
            .get("docker")
            .and_then(|e| e.get("Host"))
            .and_then(Value::as_str)
    }

    pub fn skip_tls_verify(&self) -> bool {
        self.endpoints
            .get("docker")
            .and_then(|e| e.get("SkipTLSVerify"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

fn digest(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `contexts/meta/<hash>` of `name`.
pub fn meta_dir(name: &str) -> PathBuf {
    config_dir().join("contexts/meta").join(digest(name))
}

/// `contexts/tls/<hash>` of `name`; the docker endpoint's files are in `docker/`.
pub fn tls_dir(name: &str) -> PathBuf {
    config_dir().join("contexts/tls").join(digest(name))
}

/// Docker's rule for names: a letter or digit, then letters, digits, `_.+-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if name == DEFAULT_CONTEXT {
        return Err(ClientError::Context(
            "\"default\" is a reserved context name".into(),
        ));
    }
    if !ok {
        return Err(ClientError::Context(format!(
            "context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\""
        )));
    }
    Ok(())
}

/// The stored context `name`.
pub fn load(name: &str) -> Result<ContextMeta> {
    let path = meta_dir(name).join("meta.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            ClientError::Context(format!("context {name:?}: {}: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClientError::Context(format!(
            "context {name:?} does not exist"
        ))),
        Err(e) => Err(ClientError::io(format!("reading {}", path.display()), e)),
    }
}

/// Every stored context, by name.
pub fn list() -> Result<Vec<ContextMeta>> {
    let dir = config_dir().join("contexts/meta");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ClientError::io(format!("reading {}", dir.display()), e)),
    };
    for e in entries.flatten() {
        let path = e.path().join("meta.json");
        if let Ok(b) = std::fs::read(&path)
            && let Ok(m) = serde_json::from_slice::<ContextMeta>(&b)
        {
            out.push(m);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The docker endpoint's TLS files of `name` that exist (`ca.pem`, `cert.pem`, `key.pem`).
pub fn tls_files(name: &str) -> Vec<(String, PathBuf)> {
    let dir = tls_dir(name).join("docker");
    ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .map(|f| (f.to_string(), dir.join(f)))
        .filter(|(_, p)| p.is_file())
        .collect()
}

/// Stores a new context; `tls` names files to copy in as `ca.pem`,
/// `cert.pem` and `key.pem`.
pub fn create(meta: &ContextMeta, tls: &[(&str, &Path)]) -> Result<()> {
    check_name(&meta.name)?;
    let dir = meta_dir(&meta.name);
    if dir.join("meta.json").exists() {
        return Err(ClientError::Context(format!(
            "context {:?} already exists",
            meta.name
        )));
    }
    let io = |p: &Path, e| ClientError::io(format!("writing {}", p.display()), e);
    if !tls.is_empty() {
        let tdir = tls_dir(&meta.name).join("docker");
        create_private_dir(&tdir).map_err(|e| io(&tdir, e))?;
        for (name, src) in tls {
            let data = std::fs::read(src)
                .map_err(|e| ClientError::io(format!("reading {}", src.display()), e))?;
            let dst = tdir.join(name);
            write_private(&dst, &data).map_err(|e| io(&dst, e))?;
        }
    }
    create_private_dir(&dir).map_err(|e| io(&dir, e))?;
    let path = dir.join("meta.json");
    std::fs::write(&path, serde_json::to_vec(meta)?).map_err(|e| io(&path, e))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(data)
}

/// Removes the context `name` and its TLS files.
pub fn remove(name: &str) -> Result<()> {
    load(name)?;
    for dir in [meta_dir(name), tls_dir(name)] {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ClientError::io(format!("removing {}", dir.display()), e)),
        }
    }
    Ok(())
}

/// `config.json`'s `currentContext`, if set.
pub fn current_in_config() -> Result<Option<String>> {
    Ok(load_config()?
        .get("currentContext")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

/// Makes `name` the current context (`default` clears the setting).
pub fn set_current(name: &str) -> Result<()> {
    if name != DEFAULT_CONTEXT {
        load(name)?;
    }
    let mut cfg = load_config()?;
    if name == DEFAULT_CONTEXT {
        cfg.remove("currentContext");
    } else {
        cfg.insert("currentContext".into(), Value::String(name.to_string()));
    }
    save_config(&cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hash_as_docker_hashes_them() {
        // sha256("default"), as docker's context store names its directory.
        assert_eq!(
            digest("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn names_are_checked() {
        check_name("remote-1.b_c+d").unwrap();
        assert!(check_name("default").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn meta_reads_docker_s_layout() {
        let m: ContextMeta = serde_json::from_str(
            r#"{"Name":"r","Metadata":{"Description":"d"},"Endpoints":{"docker":{"Host":"tcp://h:2376","SkipTLSVerify":true}}}"#,
        )
        .unwrap();
        assert_eq!(m.description(), "d");
        assert_eq!(m.host(), Some("tcp://h:2376"));
        assert!(m.skip_tls_verify());
    }
}
