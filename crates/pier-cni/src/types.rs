//! What goes to plugins (the runtime config of the capabilities they
//! declare) and what comes back (the result of ADD), typed.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::version::Version;

/// One attachment of a container to a network.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConf {
    pub container_id: String,
    /// The network namespace, as a path (`/var/run/netns/x`, `/proc/<pid>/ns/net`).
    pub netns: PathBuf,
    /// The interface name inside the namespace (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS` pairs (Kubernetes sends `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, ...).
    pub args: Vec<(String, String)>,
    pub runtime_config: RuntimeConfig,
}

impl RuntimeConf {
    pub fn new(container_id: &str, netns: impl Into<PathBuf>, ifname: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: container_id.to_string(),
            netns: netns.into(),
            ifname: ifname.to_string(),
            ..Default::default()
        }
    }
}

/// Capability arguments. Each goes, under `runtimeConfig`, only to the
/// plugins whose `capabilities` name it (`portMappings` to portmap, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    /// Ranges for host-local, one inner list per range set (as `ranges`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_ranges: Vec<Vec<IpRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// Any other capability (`mac`, `ips`, `aliases`, `cgroupPath`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RuntimeConfig {
    /// The capability arguments as the JSON object they are injected from.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Empty: every host address.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub range_start: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub range_end: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// Rates in bits per second, bursts in bits, as the bandwidth plugin reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_rate: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ingress_burst: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_rate: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub egress_burst: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The result of ADD (spec 0.3.0 and later; older results are converted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for interfaces inside the container; empty on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    /// CIDR form: `10.88.0.5/16`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

impl IpConfig {
    /// The address without its prefix length.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }

    pub fn prefix_len(&self) -> Option<u8> {
        self.address.split_once('/')?.1.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// The 0.1.0 / 0.2.0 result: one `ip4` and one `ip6` block.
#[derive(Deserialize)]
struct LegacyResult {
    ip4: Option<LegacyIp>,
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Deserialize)]
struct LegacyIp {
    ip: String,
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<Route>,
}

impl CniResult {
    /// Reads a plugin's result written for spec `version`.
    pub(crate) fn parse(bytes: &[u8], version: &str) -> Result<CniResult, String> {
        let v = Version::parse(version).unwrap_or_default();
        if v >= Version::V0_3_0 {
            let mut r: CniResult =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid result: {e}"))?;
            if r.cni_version.is_empty() {
                r.cni_version = version.to_string();
            }
            return Ok(r);
        }
        let old: LegacyResult =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid result: {e}"))?;
        let mut r = CniResult {
            cni_version: version.to_string(),
            dns: old.dns,
            ..Default::default()
        };
        for ip in [old.ip4, old.ip6].into_iter().flatten() {
            r.ips.push(IpConfig {
                address: ip.ip,
                gateway: ip.gateway,
                interface: None,
            });
            r.routes.extend(ip.routes);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_config_uses_cni_names() {
        let rc = RuntimeConfig {
            port_mappings: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "127.0.0.1".into(),
            }],
            ip_ranges: vec![vec![IpRange {
                subnet: "10.1.0.0/24".into(),
                ..Default::default()
            }]],
            bandwidth: Some(Bandwidth {
                ingress_rate: 1000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = Value::Object(rc.to_map());
        assert_eq!(
            v,
            serde_json::json!({
                "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}],
                "ipRanges": [[{"subnet": "10.1.0.0/24"}]],
                "bandwidth": {"ingressRate": 1000},
            })
        );
    }

    #[test]
    fn results_of_each_version() {
        let r = CniResult::parse(
            br#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"aa"},{"name":"eth0","sandbox":"/x"}],
                "ips":[{"address":"10.1.0.2/24","gateway":"10.1.0.1","interface":1}],
                "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.1.0.1"]}}"#,
            "1.0.0",
        )
        .unwrap();
        assert_eq!(r.ips[0].ip(), Some("10.1.0.2".parse().unwrap()));
        assert_eq!(r.ips[0].prefix_len(), Some(24));
        assert_eq!(r.interfaces[1].sandbox, "/x");
        assert_eq!(r.dns.nameservers, ["10.1.0.1"]);
        // 0.3/0.4 results carry "version" in ips; it is ignored.
        let r = CniResult::parse(
            br#"{"ips":[{"version":"4","address":"10.1.0.3/24"}]}"#,
            "0.4.0",
        )
        .unwrap();
        assert_eq!(r.cni_version, "0.4.0");
        assert_eq!(r.ips[0].gateway, None);
        let r = CniResult::parse(
            br#"{"ip4":{"ip":"10.1.0.4/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]}}"#,
            "0.2.0",
        )
        .unwrap();
        assert_eq!(r.ips[0].address, "10.1.0.4/24");
        assert_eq!(r.routes[0].gw, Some("10.1.0.1".parse().unwrap()));
        assert!(CniResult::parse(b"", "1.0.0").is_err());
    }
}
