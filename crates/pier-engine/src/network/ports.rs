//! Published ports of containers: what `-p`/`-P` ask for, binding them at start
//! (proxy and DNAT rules through the controller), and rebinding them for running
//! containers after a daemon restart.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use pier_api::models::{ContainerConfig, HostConfig, PortBinding};
use pier_network::PortRequest;

use super::primary;
use crate::records::{ContainerRecord, PortState};
use crate::{Engine, EngineError, Result};

/// `80/tcp` (or `80`) into port and protocol.
pub(super) fn parse_port_key(k: &str) -> Result<(u16, String)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let port = p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        EngineError::invalid_argument(format!("invalid port specification: \"{k}\""))
    })?;
    Ok((port, proto.to_ascii_lowercase()))
}

fn parse_host_ports(s: &str) -> Result<(u16, u16)> {
    let bad = || EngineError::invalid_argument(format!("invalid port specification: \"{s}\""));
    if s.is_empty() {
        return Ok((0, 0));
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// One `-p`/`-P` request: container port, proto, host IP (None: every
/// address, IPv6 too), host port range.
type PortSpec = (u16, String, Option<IpAddr>, (u16, u16));

/// What `-p` and `-P` ask for.
pub(super) fn port_specs(rec_cfg: &ContainerConfig, host: &HostConfig) -> Result<Vec<PortSpec>> {
    let mut map: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for (k, v) in host.port_bindings.iter().flatten() {
        map.insert(k.clone(), v.clone().unwrap_or_default());
    }
    if host.publish_all_ports.unwrap_or(false) {
        for p in rec_cfg.exposed_ports.iter().flatten() {
            map.entry(p.clone()).or_default();
        }
    }
    let mut out = Vec::new();
    for (k, binds) in map {
        let (port, proto) = parse_port_key(&k)?;
        let binds = if binds.is_empty() {
            vec![PortBinding::default()]
        } else {
            binds
        };
        for b in binds {
            let ip = b.host_ip.unwrap_or_default();
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            // IPv6 clients reach the IPv4-only container through the proxy.
            let ip: Option<IpAddr> = if ip.is_empty() {
                None
            } else {
                Some(ip.parse().map_err(|_| {
                    EngineError::invalid_argument(format!("invalid host IP address: {ip}"))
                })?)
            };
            let ports = parse_host_ports(b.host_port.as_deref().unwrap_or(""))?;
            out.push((port, proto.clone(), ip, ports));
        }
    }
    Ok(out)
}

impl Engine {
    pub(super) fn publish_ports(&self, rec: &mut ContainerRecord) -> Result<()> {
        let specs = port_specs(&rec.config, &rec.host_config)?;
        let Some(a) = primary(rec).cloned() else {
            return Ok(());
        };
        if specs.is_empty() {
            return Ok(());
        }
        let cip: Ipv4Addr =
            a.ip.parse()
                .map_err(|_| EngineError::internal(format!("bad address {}", a.ip)))?;
        let reqs: Vec<PortRequest> = specs
            .into_iter()
            .map(|(port, proto, host_ip, host_ports)| PortRequest {
                proto,
                host_ip: host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                all_families: host_ip.is_none(),
                host_ports,
                container_ip: cip,
                container_port: port,
            })
            .collect();
        let pubs = self
            .networks
            .ctl
            .publish(&rec.id, &a.network_id, &reqs)
            .map_err(|e| {
                EngineError::internal(format!(
                    "driver failed programming external connectivity on endpoint {} ({})",
                    rec.name, a.endpoint_id
                ))
                .with_source(e)
            })?;
        rec.network.ports = pubs
            .into_iter()
            .map(|p| PortState {
                proto: p.proto,
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port,
                container_port: p.container_port,
            })
            .collect();
        Ok(())
    }

    /// After a daemon restart, for a running container: its ports, bound again
    /// at the host ports it had.
    pub(super) fn republish_ports(&self, rec: &ContainerRecord) {
        let Some(a) = primary(rec) else { return };
        let Ok(cip) = a.ip.parse::<Ipv4Addr>() else {
            return;
        };
        let reqs: Vec<PortRequest> = rec
            .network
            .ports
            .iter()
            .filter_map(|p| {
                Some(PortRequest {
                    proto: p.proto.clone(),
                    host_ip: p.host_ip.parse().ok()?,
                    // Each address it had is in the record on its own.
                    all_families: false,
                    host_ports: (p.host_port, p.host_port),
                    container_ip: cip,
                    container_port: p.container_port,
                })
            })
            .collect();
        if !reqs.is_empty()
            && let Err(e) = self.networks.ctl.publish(&rec.id, &a.network_id, &reqs)
        {
            tracing::error!("republishing ports of {}: {e}", rec.id);
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn port_keys_and_host_ports() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, "tcp".into()));
        assert!(parse_port_key("x/tcp").is_err());
        assert_eq!(parse_host_ports("").unwrap(), (0, 0));
        assert_eq!(parse_host_ports("8000-8010").unwrap(), (8000, 8010));
        assert!(parse_host_ports("9-8").is_err());
    }

    #[test]
    fn publish_all_takes_exposed_ports() {
        let cfg = ContainerConfig {
            exposed_ports: Some(vec!["80/tcp".into(), "53/udp".into()]),
            ..Default::default()
        };
        let mut pb = HashMap::new();
        pb.insert(
            "80/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into()),
            }]),
        );
        let host = HostConfig {
            port_bindings: Some(pb),
            publish_all_ports: Some(true),
            ..Default::default()
        };
        let s = port_specs(&cfg, &host).unwrap();
        assert_eq!(s.len(), 2);
        // An IPv6 host address is published, bracketed or not.
        let mut pb = HashMap::new();
        pb.insert(
            "80/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("[::1]".into()),
                host_port: Some("8080".into()),
            }]),
        );
        let v6 = port_specs(
            &ContainerConfig::default(),
            &HostConfig {
                port_bindings: Some(pb),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            v6,
            [(
                80,
                "tcp".into(),
                Some(std::net::Ipv6Addr::LOCALHOST.into()),
                (8080, 8080)
            )]
        );
        assert!(s.contains(&(
            80,
            "tcp".into(),
            Some(Ipv4Addr::LOCALHOST.into()),
            (8080, 8080)
        )));
        assert!(s.contains(&(53, "udp".into(), None, (0, 0))));
    }
}
