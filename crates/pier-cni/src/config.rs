//! Network configurations as libcni loads them: `*.conflist` (a list of
//! plugins), `*.conf` and `*.json` (one plugin, made a list of one), in the
//! conf dir's file-name order; the first is the default network, as
//! containerd and CRI-O pick it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{io_err, CniError, Result};
use crate::version::Version;

/// The extensions libcni reads, in no particular order (files sort by name).
pub const CONF_EXTENSIONS: [&str; 3] = ["conf", "conflist", "json"];

/// One plugin of a list: its `type` (the binary's name) and its JSON object
/// as written, which the caller may read for plugin-specific keys.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    pub plugin_type: String,
    pub raw: Map<String, Value>,
}

impl PluginConf {
    /// Whether the plugin declares capability `name` (`"capabilities":
    /// {"portMappings": true}`), so it is handed that runtime config.
    pub fn has_capability(&self, name: &str) -> bool {
        self.raw
            .get("capabilities")
            .and_then(|c| c.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// A network: a named list of plugins run in order on ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    pub cni_version: String,
    /// `disableCheck`: CHECK succeeds without running the plugins.
    pub disable_check: bool,
    pub plugins: Vec<PluginConf>,
    /// The file it came from (None for configs built in memory).
    pub source: Option<PathBuf>,
    /// The bytes as loaded, kept in the result cache as libcni does.
    pub bytes: Vec<u8>,
}

impl NetworkConfigList {
    /// Parses a `.conflist` document.
    pub fn from_conflist(bytes: &[u8]) -> Result<NetworkConfigList, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(obj) = v else {
            return Err("not a JSON object".into());
        };
        let name = string_key(&obj, "name")?.ok_or("missing \"name\"")?;
        check_name(&name)?;
        let cni_version = version_of(&obj)?;
        let disable_check = match obj.get("disableCheck") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // libcni accepts the string form too.
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(v) => return Err(format!("\"disableCheck\" must be a boolean, not {v}")),
        };
        let plugins = match obj.get("plugins") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => return Err("\"plugins\" is empty".into()),
            Some(_) => return Err("\"plugins\" must be a list".into()),
            None => return Err("missing \"plugins\"".into()),
        };
        let plugins = plugins
            .iter()
            .enumerate()
            .map(|(i, p)| plugin_of(p).map_err(|e| format!("plugins[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check,
            plugins,
            source: None,
            bytes: bytes.to_vec(),
        })
    }

    /// Parses a single-plugin `.conf` / `.json` document into a list of one.
    pub fn from_conf(bytes: &[u8]) -> Result<NetworkConfigList, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(obj) = &v else {
            return Err("not a JSON object".into());
        };
        let name = string_key(obj, "name")?.ok_or("missing \"name\"")?;
        check_name(&name)?;
        let cni_version = version_of(obj)?;
        let plugin = plugin_of(&v)?;
        // As libcni's ConfListFromConf: the list is written out anew.
        let list = serde_json::json!({
            "cniVersion": cni_version,
            "name": name,
            "plugins": [Value::Object(plugin.raw.clone())],
        });
        Ok(NetworkConfigList {
            name,
            cni_version,
            disable_check: false,
            plugins: vec![plugin],
            source: None,
            bytes: serde_json::to_vec(&list).unwrap_or_default(),
        })
    }

    /// Reads one file, by its extension (`.conflist`, else a single plugin).
    pub fn from_file(path: &Path) -> Result<NetworkConfigList> {
        let bytes = std::fs::read(path).map_err(io_err("read CNI config", path))?;
        let parsed = if path.extension().is_some_and(|e| e == "conflist") {
            Self::from_conflist(&bytes)
        } else {
            Self::from_conf(&bytes)
        };
        let mut list = parsed.map_err(|msg| CniError::Config {
            path: path.to_path_buf(),
            msg,
        })?;
        list.source = Some(path.to_path_buf());
        Ok(list)
    }

    /// The loopback network containerd's CRI attaches every pod to (as
    /// `lo`) before its default network.
    pub fn loopback() -> NetworkConfigList {
        let text =
            br#"{"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]}"#;
        // A constant that parses: a failure here is a bug caught by the tests.
        Self::from_conflist(text).unwrap_or_else(|e| unreachable!("loopback config: {e}"))
    }

    pub(crate) fn version(&self) -> Version {
        Version::parse(&self.cni_version).unwrap_or_default()
    }
}

fn string_key(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("\"{key}\" must be a string, not {v}")),
    }
}

fn version_of(obj: &Map<String, Value>) -> Result<String, String> {
    // libcni treats a missing version as 0.1.0.
    let v = string_key(obj, "cniVersion")?.unwrap_or_else(|| "0.1.0".into());
    Version::parse(&v).ok_or_else(|| format!("\"cniVersion\" {v:?} is not a version"))?;
    Ok(v)
}

fn plugin_of(v: &Value) -> Result<PluginConf, String> {
    let Value::Object(obj) = v else {
        return Err("a plugin must be a JSON object".into());
    };
    let plugin_type = string_key(obj, "type")?.ok_or("missing \"type\"")?;
    if plugin_type.is_empty() || plugin_type.contains('/') || plugin_type.starts_with('.') {
        return Err(format!("\"type\" {plugin_type:?} is not a plugin name"));
    }
    Ok(PluginConf {
        plugin_type,
        raw: obj.clone(),
    })
}

/// Network names as libcni accepts them (they become file names).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if valid_id(name) {
        Ok(())
    } else {
        Err(format!(
            "network name {name:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        ))
    }
}

pub(crate) fn valid_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The config files of `dir` in the order libcni reads them. A missing
/// directory holds none.
// A conf dir holds a handful of files; callers run this on a blocking thread.
#[allow(clippy::disallowed_methods)]
pub fn conf_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read CNI conf dir", dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(io_err("read CNI conf dir", dir))?;
        let path = e.path();
        // Symlinks to files count, as with os.Stat in libcni.
        if path.is_dir() {
            continue;
        }
        if path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| CONF_EXTENSIONS.contains(&x))
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Every network of `dir`, lowest file name first. An invalid file is an
/// error naming it, as containerd refuses to start pod networking then.
pub fn load_conf_dir(dir: &Path) -> Result<Vec<NetworkConfigList>> {
    conf_files(dir)?
        .iter()
        .map(|p| NetworkConfigList::from_file(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_in_name_order_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("20-b.conf"),
            r#"{"cniVersion":"0.4.0","name":"b","type":"bridge","bridge":"x"}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("10-a.conflist"),
            r#"{"cniVersion":"1.0.0","name":"a","disableCheck":true,
                "plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        std::fs::write(d.join("30-c.json"), r#"{"name":"c","type":"loopback"}"#).unwrap();
        std::fs::write(d.join("README"), "not a config").unwrap();
        std::fs::create_dir(d.join("40-dir.conf")).unwrap();
        let nets = load_conf_dir(d).unwrap();
        let names: Vec<_> = nets.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(nets[0].disable_check);
        assert!(nets[0].plugins[1].has_capability("portMappings"));
        assert!(!nets[0].plugins[0].has_capability("portMappings"));
        assert_eq!(nets[1].plugins[0].plugin_type, "bridge");
        assert_eq!(nets[2].cni_version, "0.1.0");
        // A single plugin becomes a list of one that keeps its keys.
        let list: Value = serde_json::from_slice(&nets[1].bytes).unwrap();
        assert_eq!(list["plugins"][0]["bridge"], "x");
        assert_eq!(list["name"], "b");
    }

    #[test]
    fn missing_dir_is_empty() {
        assert!(load_conf_dir(Path::new("/nonexistent/cni/net.d"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "a.conflist",
                r#"{"name":"a","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                "b.conflist",
                r#"{"plugins":[{"type":"x"}]}"#,
                "missing \"name\"",
            ),
            (
                "c.conflist",
                r#"{"name":"c","plugins":[{"bridge":"x"}]}"#,
                "plugins[0]: missing \"type\"",
            ),
            ("d.conf", r#"{"name":"d"}"#, "missing \"type\""),
            (
                "e.conf",
                r#"{"name":"e","type":"../x"}"#,
                "not a plugin name",
            ),
            ("f.conflist", "{", "not JSON"),
            (
                "g.conflist",
                r#"{"name":"bad/name","plugins":[{"type":"x"}]}"#,
                "network name",
            ),
            (
                "h.conflist",
                r#"{"name":"h","cniVersion":"one","plugins":[{"type":"x"}]}"#,
                "cniVersion",
            ),
        ];
        for (file, text, want) in cases {
            let p = dir.path().join(file);
            std::fs::write(&p, text).unwrap();
            let e = NetworkConfigList::from_file(&p).unwrap_err().to_string();
            assert!(e.contains(file) && e.contains(want), "{file}: {e}");
        }
    }
}
