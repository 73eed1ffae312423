//! Daemon-wide defaults for containers (daemon.json `dns`, `dns-opts`,
//! `dns-search`, `default-ulimits`). As dockerd, they are applied at each
//! start, not stored: `inspect` shows only the container's own settings, and a
//! daemon restarted with other defaults gives them to its next starts.

use pier_api::models::{HostConfig, ResourcesUlimits};

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Default)]
pub struct ContainerDefaults {
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub ulimits: Vec<ResourcesUlimits>,
}

impl ContainerDefaults {
    /// Fills what `h` leaves unset: each DNS list on its own, as dockerd
    /// does, and the ulimits whose name the container does not set.
    pub(crate) fn apply(&self, h: &mut HostConfig) {
        let fill = |own: &mut Option<Vec<String>>, default: &Vec<String>| {
            if own.as_ref().is_none_or(Vec::is_empty) && !default.is_empty() {
                *own = Some(default.clone());
            }
        };
        fill(&mut h.dns, &self.dns);
        fill(&mut h.dns_options, &self.dns_options);
        fill(&mut h.dns_search, &self.dns_search);
        if !self.ulimits.is_empty() {
            let own = h.ulimits.get_or_insert_with(Vec::new);
            for u in &self.ulimits {
                if !own.iter().any(|o| o.name == u.name) {
                    own.push(u.clone());
                }
            }
        }
    }

    /// A bad default stops the daemon at start, not each container later.
    pub(crate) fn validate(&self) -> Result<()> {
        for u in &self.ulimits {
            crate::validate::ulimit(u).map_err(|e| {
                EngineError::invalid_argument(format!("invalid default-ulimits: {e}"))
            })?;
        }
        // dockerd's opts.ValidateIPAddress, word for word.
        match self
            .dns
            .iter()
            .find(|s| s.trim().parse::<std::net::IpAddr>().is_err())
        {
            Some(s) => Err(EngineError::invalid_argument(format!(
                "IP address is not correctly formatted: {s}"
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ul(name: &str, n: i64) -> ResourcesUlimits {
        ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(n),
            hard: Some(n),
        }
    }

    #[test]
    fn the_containers_own_settings_win() {
        let d = ContainerDefaults {
            dns: vec!["10.0.0.53".into()],
            dns_options: vec!["ndots:2".into()],
            dns_search: vec!["corp.example".into()],
            ulimits: vec![ul("nofile", 100), ul("nproc", 50)],
        };
        let mut h = HostConfig {
            dns_search: Some(vec!["mine.example".into()]),
            dns: Some(vec![]),
            ulimits: Some(vec![ul("nofile", 7)]),
            ..Default::default()
        };
        d.apply(&mut h);
        assert_eq!(h.dns.unwrap(), ["10.0.0.53"]);
        assert_eq!(h.dns_options.unwrap(), ["ndots:2"]);
        assert_eq!(h.dns_search.unwrap(), ["mine.example"]);
        assert_eq!(h.ulimits.unwrap(), [ul("nofile", 7), ul("nproc", 50)]);
        let mut h = HostConfig::default();
        ContainerDefaults::default().apply(&mut h);
        assert_eq!(h, HostConfig::default());
    }

    #[test]
    fn bad_defaults_are_refused() {
        let bad = ContainerDefaults {
            ulimits: vec![ul("nosuch", 1)],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = ContainerDefaults {
            dns: vec!["not-an-ip".into()],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(ContainerDefaults::default().validate().is_ok());
    }
}
