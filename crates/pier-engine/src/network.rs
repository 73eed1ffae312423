//! Networks: the records (`bridge`, `host`, `none` and user bridges); the
//! `/networks` API is `NetworkService` (`network/service.rs`). What a container asked of networks and what it got is
//! part of its record (`records::ContainerNetwork`). Wiring containers in and
//! out at start/stop lives in `network/endpoints.rs`; the kernel side is
//! pier-network's.

mod attach;
pub(crate) mod endpoints;
pub(crate) mod hosts;
mod inspect;
mod ports;
pub(crate) mod service;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use pier_api::models::IpamConfig;
use pier_network::{NetworkSpec, Subnet};
use serde::{Deserialize, Serialize};

use crate::records::{Attached, ContainerRecord};
use crate::EngineError;

const NS: &str = "network";
/// The default bridge: Docker's `docker0` is 172.17/16, ours sits beside it.
const DEFAULT_BRIDGE: &str = "pier0";

/// A network known to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// `IPAM.Config` as given (or as picked), echoed by inspect.
    #[serde(default)]
    pub ipam_config: Vec<IpamConfig>,
    #[serde(default)]
    pub ipam_options: Option<HashMap<String, String>>,
    /// The IPv4 pool addresses come from (bridge driver only).
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// `AuxiliaryAddresses`: never handed out.
    #[serde(default)]
    pub reserved: Vec<Ipv4Addr>,
    /// The subnet came from the user (so `--ip` is allowed).
    #[serde(default)]
    pub user_subnet: bool,
    #[serde(default)]
    pub bridge: String,
}

impl NetworkRecord {
    fn is_default_bridge(&self) -> bool {
        // No user network can be named `bridge`.
        self.name == "bridge" && self.driver == "bridge"
    }
    fn builtin(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
    fn spec(&self) -> Option<NetworkSpec> {
        Some(NetworkSpec {
            id: self.id.clone(),
            bridge: self.bridge.clone(),
            subnet: self.subnet?,
            gateway: self.gateway?,
            internal: self.internal,
            // The default bridge has no name resolution, as Docker's.
            dns: !self.is_default_bridge(),
        })
    }
}

/// The default bridge's interface, subnet and gateway, as inspect shows them.
fn set_default_bridge(n: &mut NetworkRecord, bridge: &str, subnet: Subnet, gateway: Ipv4Addr) {
    n.subnet = Some(subnet);
    n.gateway = Some(gateway);
    n.bridge = bridge.into();
    n.ipam_config = vec![IpamConfig {
        subnet: Some(subnet.to_string()),
        gateway: Some(gateway.to_string()),
        ..Default::default()
    }];
    n.options
        .insert("com.docker.network.bridge.name".into(), bridge.into());
}

/// The network mode with Docker's default applied.
pub(crate) fn mode_of(rec: &ContainerRecord) -> String {
    match rec.host_config.network_mode.as_deref() {
        None | Some("") | Some("default") => "bridge".into(),
        Some(m) => m.to_string(),
    }
}

/// Whether `mode` gives the container a namespace of its own.
pub(crate) fn owns_netns(mode: &str) -> bool {
    mode != "host" && !mode.starts_with("container:")
}

/// The endpoint on the container's own network (the one with the default route).
fn primary(rec: &ContainerRecord) -> Option<&Attached> {
    rec.network
        .attached
        .get(&mode_of(rec))
        .or_else(|| rec.network.attached.values().find(|a| a.ifname == "eth0"))
}

/// The default bridge's gateway as this daemon set it up (`--bip`, or a
/// subnet picked around routed ranges), for `host-gateway` in containers
/// that have no network of their own.
static DEFAULT_GATEWAY: std::sync::RwLock<Option<Ipv4Addr>> = std::sync::RwLock::new(None);

fn not_found(key: &str) -> EngineError {
    EngineError::not_found(format!("network {key} not found"))
}
