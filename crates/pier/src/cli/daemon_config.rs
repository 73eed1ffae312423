//! daemon.json, read as dockerd reads it: known keys only, each key that
//! maps onto a flag refused when that flag is given too.
//!
//! To add a key: a field in [`DaemonConfig`] (kebab-case, as in daemon.json),
//! its entry in [`KEYS`] naming the flag it mirrors, and the flag's value in
//! the `given` list that `daemon.rs` passes to [`DaemonConfig::check_flags`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Every key daemon.json may hold, with the flag that sets the same thing.
pub const KEYS: &[(&str, &str)] = &[
    ("bip", "bip"),
    ("bridge", "bridge"),
    ("cri-socket", "cri-socket"),
    ("data-root", "data-root"),
    ("debug", "debug"),
    ("default-address-pools", "default-address-pool"),
    ("exec-root", "exec-root"),
    ("group", "group"),
    ("hosts", "host"),
    ("insecure-registries", "insecure-registry"),
    ("log-driver", "log-driver"),
    ("log-level", "log-level"),
    ("log-opts", "log-opt"),
    ("registry-mirrors", "registry-mirror"),
    ("tls", "tls"),
    ("tlscacert", "tlscacert"),
    ("tlscert", "tlscert"),
    ("tlskey", "tlskey"),
    ("tlsverify", "tlsverify"),
];

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    pub bip: Option<String>,
    pub bridge: Option<String>,
    pub cri_socket: Option<String>,
    pub data_root: Option<PathBuf>,
    pub debug: Option<bool>,
    pub default_address_pools: Option<Vec<AddressPool>>,
    pub exec_root: Option<PathBuf>,
    pub group: Option<String>,
    pub hosts: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub log_driver: Option<String>,
    pub log_level: Option<String>,
    pub log_opts: Option<HashMap<String, String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub tls: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub tlsverify: Option<bool>,
    /// The file's own values, for messages about conflicts.
    #[serde(skip)]
    raw: serde_json::Map<String, serde_json::Value>,
}

/// One of daemon.json's `default-address-pools`, as dockerd writes it.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

impl AddressPool {
    /// The pool as `--default-address-pool` spells it.
    pub fn as_flag(&self) -> String {
        format!("base={},size={}", self.base, self.size)
    }
}

impl DaemonConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DaemonConfig> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DaemonConfig::default())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        // One message, as dockerd prints it (the CLI shows no cause chain).
        Self::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "unable to configure the Docker daemon with file {}: {e:#}",
                path.display()
            )
        })
    }

    pub fn parse(text: &[u8]) -> Result<DaemonConfig> {
        let raw: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(text).context("invalid JSON")?;
        let mut unknown: Vec<&str> = raw
            .keys()
            .map(String::as_str)
            .filter(|k| !KEYS.iter().any(|(key, _)| key == k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            bail!(
                "the following directives don't match any configuration option: {}",
                unknown.join(", ")
            );
        }
        let mut cfg: DaemonConfig = serde_json::from_value(serde_json::Value::Object(raw.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.raw = raw;
        if let Some(l) = &cfg.log_level {
            tracing_level(l)?;
        }
        Ok(cfg)
    }

    /// Refuses keys of the file whose flag is in `given` (flag name, value
    /// as given), with dockerd's message.
    pub fn check_flags(&self, given: &[(&str, String)]) -> Result<()> {
        let mut conflicts = Vec::new();
        for (key, flag) in KEYS {
            let Some(file_value) = self.raw.get(*key) else {
                continue;
            };
            if let Some((_, flag_value)) = given.iter().find(|(f, _)| f == flag) {
                let file_value = match file_value {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                conflicts.push(format!(
                    "{key}: (from flag: {flag_value}, from file: {file_value})"
                ));
            }
        }
        if !conflicts.is_empty() {
            bail!(
                "the following directives are specified both as a flag and in the configuration file: {}",
                conflicts.join(", ")
            );
        }
        Ok(())
    }
}

/// The tracing filter for one of dockerd's `--log-level` values.
pub fn tracing_level(level: &str) -> Result<&'static str> {
    Ok(match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => bail!("unable to parse logging level: {level}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys() {
        let c = DaemonConfig::parse(
            br#"{"log-driver":"local","log-opts":{"max-size":"10m"},"debug":true,
                "insecure-registries":["r:5000"],"data-root":"/d","hosts":["unix:///s"],
                "log-level":"warn","exec-root":"/e","tls":true,"tlsverify":true,
                "tlscacert":"/t/ca.pem","tlscert":"/t/cert.pem","tlskey":"/t/key.pem"}"#,
        )
        .unwrap();
        assert_eq!((c.tls, c.tlsverify), (Some(true), Some(true)));
        assert_eq!(c.tlscacert, Some(PathBuf::from("/t/ca.pem")));
        assert_eq!(c.tlskey, Some(PathBuf::from("/t/key.pem")));
        assert_eq!(c.log_driver.as_deref(), Some("local"));
        assert_eq!(c.log_opts.as_ref().unwrap()["max-size"], "10m");
        assert_eq!(c.debug, Some(true));
        assert_eq!(c.data_root, Some(PathBuf::from("/d")));
        assert_eq!(c.insecure_registries.as_ref().unwrap(), &["r:5000"]);
        assert!(DaemonConfig::parse(b"{}").unwrap().log_driver.is_none());
    }

    #[test]
    fn reads_network_keys_and_group() {
        let c = DaemonConfig::parse(
            br#"{"bridge":"pierb","bip":"10.9.0.1/24","group":"staff",
                "default-address-pools":[{"base":"10.10.0.0/16","size":24}]}"#,
        )
        .unwrap();
        assert_eq!(c.bridge.as_deref(), Some("pierb"));
        assert_eq!(c.bip.as_deref(), Some("10.9.0.1/24"));
        assert_eq!(c.group.as_deref(), Some("staff"));
        let pools = c.default_address_pools.unwrap();
        assert_eq!(pools[0].as_flag(), "base=10.10.0.0/16,size=24");
        let e = DaemonConfig::parse(br#"{"default-address-pools":[{"base":"10.0.0.0/8"}]}"#)
            .unwrap_err();
        assert!(format!("{e:#}").contains("size"), "{e:#}");
    }

    #[test]
    fn unknown_keys_are_refused_like_dockerd() {
        let e = DaemonConfig::parse(br#"{"zeta":1,"log-driver":"local","alpha":true}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the following directives don't match any configuration option: alpha, zeta"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(DaemonConfig::parse(br#"{"log-opts":{"max-file":3}}"#).is_err());
        assert!(DaemonConfig::parse(br#"{"debug":"yes"}"#).is_err());
        assert!(DaemonConfig::parse(br#"{"log-level":"loud"}"#).is_err());
        assert!(DaemonConfig::parse(br#"["x"]"#).is_err());
    }

    #[test]
    fn a_key_and_its_flag_conflict() {
        let c = DaemonConfig::parse(br#"{"log-driver":"local","debug":true}"#).unwrap();
        c.check_flags(&[("log-opt", "max-size=1m".into())]).unwrap();
        let e = c
            .check_flags(&[("debug", "true".into()), ("log-driver", "none".into())])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: true), log-driver: (from flag: none, from file: local)"
        );
    }
}
