//! The docker CLI's configuration directory (`$DOCKER_CONFIG`, else
//! `~/.docker`) and its `config.json`, shared with the docker CLI: keys
//! Pier does not know are kept as they are.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{ClientError, Result};

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn config_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => home_dir().join(".docker"),
    }
}

fn home_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from("/root"),
    }
}

/// `config.json` in [`config_dir`].
pub fn config_file() -> PathBuf {
    config_dir().join("config.json")
}

/// The parsed `config.json`; a missing file is empty.
pub fn load_config() -> Result<Map<String, Value>> {
    load_config_at(&config_file())
}

pub fn load_config_at(path: &Path) -> Result<Map<String, Value>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(ClientError::io(format!("reading {}", path.display()), e)),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    serde_json::from_slice(&text)
        .map_err(|e| ClientError::Protocol(format!("loading config file {}: {e}", path.display())))
}

/// Writes `config.json` (mode 0600: it can hold credentials) through a
/// temporary file, so a reader never sees half of it.
pub fn save_config(cfg: &Map<String, Value>) -> Result<()> {
    save_config_at(&config_file(), cfg)
}

pub fn save_config_at(path: &Path, cfg: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let mut text = serde_json::to_vec_pretty(cfg)?;
    text.push(b'\n');
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ClientError::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn config_round_trips_unknown_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.json");
        assert!(load_config_at(&p).unwrap().is_empty());
        let mut m = Map::new();
        m.insert("psFormat".into(), "table {{.ID}}".into());
        save_config_at(&p, &m).unwrap();
        assert_eq!(load_config_at(&p).unwrap(), m);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
