//! A container's networks as the Engine API shows them: `NetworkSettings` of
//! inspect and the `Ports`/`Networks` of the container list.

use std::collections::HashMap;

use pier_api::models::{EndpointSettings, PortSummary, PortSummaryTypeEnum};
use serde_json::{json, Value};

use super::mode_of;
use super::ports::parse_port_key;
use crate::records::ContainerRecord;
use crate::Engine;

impl Engine {
    /// `NetworkSettings` of `GET /containers/{id}/json`.
    pub(crate) fn network_settings_json(&self, rec: &ContainerRecord) -> Value {
        let mode = mode_of(rec);
        let names: Vec<String> = match mode.as_str() {
            "host" | "none" => vec![mode.clone()],
            m if m.starts_with("container:") => Vec::new(),
            _ => rec.network.requested.keys().cloned().collect(),
        };
        let mut nets = serde_json::Map::new();
        for name in names {
            let req = rec
                .network
                .requested
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let a = rec.network.attached.get(&name).cloned().unwrap_or_default();
            let net_id = if a.network_id.is_empty() {
                self.find_network(&name).map(|n| n.id).unwrap_or_default()
            } else {
                a.network_id.clone()
            };
            let links = req.links.clone().filter(|l| !l.is_empty());
            nets.insert(
                name,
                json!({
                    "IPAMConfig": req.ipam_config,
                    "Links": links,
                    "Aliases": req.aliases.clone().filter(|l| !l.is_empty()),
                    "MacAddress": if a.mac.is_empty() { req.mac_address.clone().unwrap_or_default() } else { a.mac.clone() },
                    "DriverOpts": req.driver_opts,
                    "NetworkID": net_id,
                    "EndpointID": a.endpoint_id,
                    "Gateway": a.gateway,
                    "IPAddress": a.ip,
                    "IPPrefixLen": a.prefix,
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "DNSNames": if a.dns_names.is_empty() { Value::Null } else { json!(a.dns_names) },
                }),
            );
        }
        let mut ports = serde_json::Map::new();
        if rec.state.running() {
            for p in rec.config.exposed_ports.iter().flatten() {
                let k = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(k, Value::Null);
            }
            for p in &rec.network.ports {
                let k = format!("{}/{}", p.container_port, p.proto);
                let e = ports.entry(k).or_insert_with(|| json!([]));
                if e.is_null() {
                    *e = json!([]);
                }
                if let Some(arr) = e.as_array_mut() {
                    arr.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
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
        json!({
            "Bridge": "",
            "SandboxID": if rec.network.sandbox_key.is_empty() { String::new() } else { rec.id.clone() },
            "SandboxKey": rec.network.sandbox_key,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": b.endpoint_id,
            "Gateway": b.gateway,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": b.ip,
            "IPPrefixLen": b.prefix,
            "IPv6Gateway": "",
            "MacAddress": b.mac,
            "Networks": nets,
        })
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
            if let Ok((port, proto)) = parse_port_key(e) {
                if !rec
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
        }
        let settings = self.network_settings_json(rec);
        let nets = settings["Networks"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        (ports, nets)
    }
}
