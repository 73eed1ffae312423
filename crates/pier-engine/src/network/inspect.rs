//! A container's networks as the Engine API shows them: `NetworkSettings` of
//! inspect and the `Ports`/`Networks` of the container list.

use std::collections::HashMap;

use pier_api::models::{EndpointSettings, PortBinding, PortSummary, PortSummaryTypeEnum};

use super::mode_of;
use super::ports::parse_port_key;
use crate::records::ContainerRecord;
use crate::views::{BridgeEndpoint, NetworkSettings};
use crate::Engine;

impl Engine {
    /// `NetworkSettings` of `GET /containers/{id}/json`.
    pub(crate) fn network_settings(&self, rec: &ContainerRecord) -> NetworkSettings {
        let mode = mode_of(rec);
        let names: Vec<String> = match mode.as_str() {
            "host" | "none" => vec![mode.clone()],
            m if m.starts_with("container:") => Vec::new(),
            _ => rec.network.requested.keys().cloned().collect(),
        };
        let mut networks = Vec::new();
        for name in names {
            let req = rec
                .network
                .requested
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let a = rec.network.attached.get(&name).cloned().unwrap_or_default();
            let net_id = if a.network_id.is_empty() {
                self.networks.find(&name).map(|n| n.id).unwrap_or_default()
            } else {
                a.network_id.clone()
            };
            let mac = if a.mac.is_empty() {
                req.mac_address.clone().unwrap_or_default()
            } else {
                a.mac.clone()
            };
            let ep = EndpointSettings {
                ipam_config: req.ipam_config,
                links: req.links.filter(|l| !l.is_empty()),
                aliases: req.aliases.filter(|l| !l.is_empty()),
                mac_address: Some(mac),
                driver_opts: req.driver_opts,
                network_id: Some(net_id),
                endpoint_id: Some(a.endpoint_id),
                gateway: Some(a.gateway),
                ip_address: Some(a.ip),
                ip_prefix_len: Some(i64::from(a.prefix)),
                ipv6_gateway: Some(String::new()),
                global_ipv6_address: Some(String::new()),
                global_ipv6_prefix_len: Some(0),
                dns_names: Some(a.dns_names).filter(|n| !n.is_empty()),
                ..Default::default()
            };
            networks.push((name, ep));
        }
        let mut ports: Vec<(String, Option<Vec<PortBinding>>)> = Vec::new();
        if rec.state.running() {
            for p in rec.config.exposed_ports.iter().flatten() {
                let k = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                match ports.iter_mut().find(|(key, _)| *key == k) {
                    Some(e) => e.1 = None,
                    None => ports.push((k, None)),
                }
            }
            for p in &rec.network.ports {
                let k = format!("{}/{}", p.container_port, p.proto);
                let b = PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(p.host_port.to_string()),
                };
                match ports.iter_mut().find(|(key, _)| *key == k) {
                    Some((_, e)) => e.get_or_insert_with(Vec::new).push(b),
                    None => ports.push((k, Some(vec![b]))),
                }
            }
        }
        // The top-level fields describe the default bridge only, as Docker's.
        let b = rec
            .network
            .attached
            .get("bridge")
            .cloned()
            .unwrap_or_default();
        NetworkSettings {
            sandbox_id: if rec.network.sandbox_key.is_empty() {
                String::new()
            } else {
                rec.id.clone()
            },
            sandbox_key: rec.network.sandbox_key.clone(),
            ports,
            bridge: BridgeEndpoint {
                endpoint_id: b.endpoint_id,
                gateway: b.gateway,
                ip_address: b.ip,
                ip_prefix_len: i64::from(b.prefix),
                mac_address: b.mac,
            },
            networks,
        }
    }

    /// `Ports` and `NetworkSettings.Networks` of `GET /containers/json`.
    pub(crate) fn network_summary(
        &self,
        rec: &ContainerRecord,
    ) -> (Vec<PortSummary>, HashMap<String, EndpointSettings>) {
        let typ = |p: &str| match p {
            "udp" => PortSummaryTypeEnum::UDP,
            "sctp" => PortSummaryTypeEnum::SCTP,
            _ => PortSummaryTypeEnum::TCP,
        };
        let mut ports: Vec<PortSummary> = rec
            .network
            .ports
            .iter()
            .map(|p| PortSummary {
                ip: Some(p.host_ip.clone()),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                typ: Some(typ(&p.proto)),
            })
            .collect();
        for e in rec.config.exposed_ports.iter().flatten() {
            if let Ok((port, proto)) = parse_port_key(e)
                && !rec
                    .network
                    .ports
                    .iter()
                    .any(|p| p.container_port == port && p.proto == proto)
            {
                ports.push(PortSummary {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: Some(typ(&proto)),
                });
            }
        }
        let nets = self.network_settings(rec).networks.into_iter().collect();
        (ports, nets)
    }
}
