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
    ("log-format", "log-format"),
    ("log-level", "log-level"),
    ("log-opts", "log-opt"),
    ("registry-mirrors", "registry-mirror"),
    ("tls", "tls"),
    ("tlscacert", "tlscacert"),
    ("tlscert", "tlscert"),
    ("tlskey", "tlskey"),
    ("tlsverify", "tlsverify"),
    // Container defaults, applied at each start (pier_server::ContainerDefaults).
    ("dns", "dns"),
    ("dns-opts", "dns-opt"),
    ("dns-search", "dns-search"),
    ("default-ulimits", "default-ulimit"),
    // Accepted as what Pier always does, or refused (see `checked_switches`).
    ("live-restore", "live-restore"),
    ("features", ""),
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
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub log_opts: Option<HashMap<String, String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub tls: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub tlsverify: Option<bool>,
    pub dns: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub default_ulimits: Option<HashMap<String, pier_api::models::ResourcesUlimits>>,
    pub live_restore: Option<bool>,
    pub features: Option<HashMap<String, bool>>,
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
        if let Some(f) = &cfg.log_format {
            f.parse::<pier_server::LogFormat>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        cfg.checked_switches()?;
        Ok(cfg)
    }

    /// `live-restore` and `features`: what Pier does anyway is accepted,
    /// the rest refused rather than ignored.
    fn checked_switches(&self) -> Result<()> {
        if self.live_restore == Some(false) {
            bail!("not supported by Pier: live-restore=false (containers always keep running while the daemon restarts)");
        }
        let mut names: Vec<_> = self.features.iter().flatten().collect();
        names.sort();
        for (name, on) in names {
            match (name.as_str(), on) {
                // Pier has one builder; either value leaves it as it is.
                ("buildkit", _) => {}
                ("cdi", true) | ("containerd-snapshotter", false) => {}
                ("cdi", false) => bail!(
                    "not supported by Pier: features.cdi=false (CDI devices are always enabled)"
                ),
                _ => bail!("not supported by Pier: features.{name}={on}"),
            }
        }
        Ok(())
    }

    /// The container defaults of the file (`dns`, `dns-opts`, `dns-search`,
    /// `default-ulimits`), flags winning (they cannot both be given).
    pub fn container_defaults(
        &self,
        flags: ContainerDefaultFlags,
    ) -> Result<pier_server::ContainerDefaults> {
        let or = |flag: Vec<String>, file: &Option<Vec<String>>| {
            if flag.is_empty() {
                file.clone().unwrap_or_default()
            } else {
                flag
            }
        };
        let ulimits = if flags.ulimits.is_empty() {
            let mut v: Vec<_> = self
                .default_ulimits
                .iter()
                .flatten()
                .map(|(k, u)| pier_api::models::ResourcesUlimits {
                    name: u.name.clone().or_else(|| Some(k.clone())),
                    ..u.clone()
                })
                .collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        } else {
            flags
                .ulimits
                .iter()
                .map(|s| super::opts::ulimit(s))
                .collect::<Result<_>>()?
        };
        Ok(pier_server::ContainerDefaults {
            dns: or(flags.dns, &self.dns),
            dns_options: or(flags.dns_opts, &self.dns_opts),
            dns_search: or(flags.dns_search, &self.dns_search),
            ulimits,
        })
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

/// `pier daemon --dns`, `--dns-opt`, `--dns-search`, `--default-ulimit`.
#[derive(Debug, Default)]
pub struct ContainerDefaultFlags {
    pub dns: Vec<String>,
    pub dns_opts: Vec<String>,
    pub dns_search: Vec<String>,
    pub ulimits: Vec<String>,
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
    fn container_defaults_and_switches() {
        let c = DaemonConfig::parse(
            br#"{"dns":["10.0.0.53"],"dns-opts":["ndots:3"],"dns-search":["corp.example"],
                "default-ulimits":{"nofile":{"Name":"nofile","Soft":100,"Hard":200},
                                   "nproc":{"Hard":9,"Soft":9}},
                "live-restore":true,"features":{"buildkit":true,"cdi":true}}"#,
        )
        .unwrap();
        let d = c.container_defaults(Default::default()).unwrap();
        assert_eq!(d.dns, ["10.0.0.53"]);
        assert_eq!(d.dns_options, ["ndots:3"]);
        assert_eq!(d.dns_search, ["corp.example"]);
        let names: Vec<_> = d.ulimits.iter().map(|u| u.name.clone().unwrap()).collect();
        assert_eq!(names, ["nofile", "nproc"]);
        assert_eq!(
            (d.ulimits[0].soft, d.ulimits[0].hard),
            (Some(100), Some(200))
        );
        let d = c
            .container_defaults(ContainerDefaultFlags {
                ulimits: vec!["core=0:0".into()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.ulimits[0].name.as_deref(), Some("core"));
        for bad in [
            r#"{"live-restore":false}"#,
            r#"{"features":{"cdi":false}}"#,
            r#"{"features":{"containerd-snapshotter":true}}"#,
            r#"{"features":{"no-such-feature":true}}"#,
        ] {
            let e = DaemonConfig::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with("not supported by Pier: "), "{bad}: {e}");
        }
        let c = DaemonConfig::parse(br#"{"dns":["1.1.1.1"]}"#).unwrap();
        let e = c.check_flags(&[("dns", "8.8.8.8".into())]).unwrap_err();
        assert!(
            e.to_string()
                .contains("dns: (from flag: 8.8.8.8, from file: [\"1.1.1.1\"])"),
            "{e}"
        );
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
