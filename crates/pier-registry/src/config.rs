//! Docker's client config (`~/.docker/config.json`): stored logins in `auths`,
//! and credential helpers (`credsStore`, `credHelpers`) run as
//! `docker-credential-<name> get|store|erase`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use crate::auth::{encode_basic, AuthConfig};
use crate::error::{io_err, RegistryError, Result};

/// The key Docker uses for Docker Hub in `auths` and with helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn default_config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// The key under which credentials for registry `domain` are stored.
pub fn auth_key(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_AUTH_KEY.into(),
        d => d.to_string(),
    }
}

/// Reduces a config key or server address to a host: strips the scheme and
/// any path (`https://index.docker.io/v1/` -> `index.docker.io`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, domain: &str) -> bool {
    let a = auth_key(key_host(key));
    let b = auth_key(key_host(domain));
    a == b
}

/// A loaded config file. Unknown fields are kept when saving.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl DockerConfig {
    /// Loads `dir/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::Credentials(format!(
                        "{}: not a JSON object",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(RegistryError::Credentials(format!(
                        "{}: {e}",
                        path.display()
                    )))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        Ok(DockerConfig { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.doc
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The helper for `domain`: `credHelpers[domain]`, else `credsStore`.
    fn helper_for(&self, domain: &str) -> Option<String> {
        if let Some(Value::Object(h)) = self.doc.get("credHelpers") {
            for (k, v) in h {
                if same_registry(k, domain)
                    && let Some(s) = v.as_str().filter(|s| !s.is_empty())
                {
                    return Some(s.to_string());
                }
            }
        }
        self.str_field("credsStore").map(str::to_string)
    }

    /// Credentials for registry `domain` (`docker.io`, `localhost:5000`).
    pub fn credentials(&self, domain: &str) -> Result<Option<AuthConfig>> {
        if let Some(helper) = self.helper_for(domain)
            && let Some(a) = helper_get(&helper, &auth_key(domain))?
        {
            return Ok(Some(a));
        }
        let Some(Value::Object(auths)) = self.doc.get("auths") else {
            return Ok(None);
        };
        for (k, v) in auths {
            if !same_registry(k, domain) {
                continue;
            }
            let mut a: AuthConfig = serde_json::from_value(v.clone()).map_err(|e| {
                RegistryError::Credentials(format!("{}: auths.{k}: {e}", self.path.display()))
            })?;
            a.expand_auth();
            if a.serveraddress.is_empty() {
                a.serveraddress = k.clone();
            }
            if !a.is_anonymous() {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Stores a login like `docker login`: through the helper when one is
    /// configured, else as base64 `auth` in `auths`.
    pub fn store(&mut self, domain: &str, a: &AuthConfig) -> Result<()> {
        let key = auth_key(domain);
        if let Some(helper) = self.helper_for(domain) {
            let (user, secret) = if a.identitytoken.is_empty() {
                (a.username.clone(), a.password.clone())
            } else {
                ("<token>".to_string(), a.identitytoken.clone())
            };
            let body = serde_json::json!({"ServerURL": key, "Username": user, "Secret": secret});
            helper_run(&helper, "store", body.to_string().as_bytes())?;
            // Docker keeps an empty entry so `docker info` can list the login.
            self.auths_mut().insert(key, Value::Object(Map::new()));
        } else {
            let mut entry = Map::new();
            entry.insert(
                "auth".into(),
                Value::String(encode_basic(&a.username, &a.password)),
            );
            if !a.identitytoken.is_empty() {
                entry.insert(
                    "identitytoken".into(),
                    Value::String(a.identitytoken.clone()),
                );
            }
            self.remove_matching(domain);
            self.auths_mut().insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Forgets the login for `domain` (`docker logout`); false if there was none.
    pub fn erase(&mut self, domain: &str) -> Result<bool> {
        let key = auth_key(domain);
        let mut found = false;
        if let Some(helper) = self.helper_for(domain) {
            found |= helper_run(&helper, "erase", key.as_bytes()).is_ok();
        }
        found |= self.remove_matching(domain);
        self.save()?;
        Ok(found)
    }

    fn remove_matching(&mut self, domain: &str) -> bool {
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| same_registry(k, domain))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("auths was just made an object"),
        }
    }

    /// Writes the file atomically with mode 0600 (it holds secrets).
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let body = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| RegistryError::Credentials(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(&body).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err("rename into", &self.path))
    }
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

fn helper_run(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RegistryError::Credentials(format!("running {prog} {action}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| RegistryError::Credentials(format!("writing to {prog}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("running {prog} {action}: {e}")))?;
    if !out.status.success() {
        let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        return Err(RegistryError::Credentials(format!(
            "{prog} {action}: {msg}"
        )));
    }
    Ok(out.stdout)
}

/// `docker-credential-<helper> get`; "credentials not found" is `None`.
fn helper_get(helper: &str, server: &str) -> Result<Option<AuthConfig>> {
    let out = match helper_run(helper, "get", server.as_bytes()) {
        Ok(o) => o,
        Err(RegistryError::Credentials(m)) if m.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let a: HelperAnswer = serde_json::from_slice(&out).map_err(|e| {
        RegistryError::Credentials(format!("docker-credential-{helper} get: bad answer: {e}"))
    })?;
    if a.username.is_empty() && a.secret.is_empty() {
        return Ok(None);
    }
    let mut cfg = AuthConfig {
        serveraddress: server.to_string(),
        ..Default::default()
    };
    if a.username == "<token>" {
        cfg.identitytoken = a.secret;
    } else {
        cfg.username = a.username;
        cfg.password = a.secret;
    }
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_by_host_and_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "localhost:5000":{"auth":"dTpw"},
                "https://reg.example.com/v2/":{"username":"x","password":"y"}},
               "psFormat":"table"}"#,
        )
        .unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        let hub = c.credentials("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let l = c.credentials("localhost:5000").unwrap().unwrap();
        assert_eq!((l.username.as_str(), l.password.as_str()), ("u", "p"));
        let r = c.credentials("reg.example.com").unwrap().unwrap();
        assert_eq!(r.username, "x");
        assert!(c.credentials("localhost:5001").unwrap().is_none());
    }

    #[test]
    fn store_and_erase_keep_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"psFormat":"table"}"#).unwrap();
        let mut c = DockerConfig::load(dir.path()).unwrap();
        c.store("127.0.0.1:5000", &AuthConfig::basic("me", "pw"))
            .unwrap();
        let raw: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(raw["psFormat"], "table");
        assert_eq!(
            raw["auths"]["127.0.0.1:5000"]["auth"],
            encode_basic("me", "pw")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let c2 = DockerConfig::load(dir.path()).unwrap();
        assert_eq!(
            c2.credentials("127.0.0.1:5000").unwrap().unwrap().password,
            "pw"
        );
        let mut c3 = c2.clone();
        assert!(c3.erase("127.0.0.1:5000").unwrap());
        assert!(!c3.erase("127.0.0.1:5000").unwrap());
        let c4 = DockerConfig::load(dir.path()).unwrap();
        assert!(c4.credentials("127.0.0.1:5000").unwrap().is_none());
    }

    #[test]
    fn missing_file_is_empty_and_helpers_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert!(c.credentials("docker.io").unwrap().is_none());
        // A helper that does not exist is an error, not silence.
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"reg.test":"pier-test-absent"}}"#,
        )
        .unwrap();
        let c = DockerConfig::load(dir.path()).unwrap();
        assert!(c.credentials("reg.test").is_err());
        assert!(c.credentials("other.test").unwrap().is_none());
    }

    #[test]
    fn keys_normalise() {
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(same_registry("http://localhost:5000", "localhost:5000"));
        assert!(!same_registry("localhost:5000", "localhost"));
    }
}
