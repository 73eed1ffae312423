//! The network service: records, IPAM and the `/networks` API.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use pier_api::models::{
    EventMessageTypeEnum, IpamConfig, NetworkCreateResponse, NetworkPruneResponse,
};
use pier_api::NetworkCreateRequest;
use pier_metadata::Metadata;
use pier_network::{Controller, NetworkOptions, Subnet};

use super::{
    mode_of, not_found, set_default_bridge, NetworkRecord, DEFAULT_BRIDGE, DEFAULT_GATEWAY, NS,
};
use crate::events::Events;
use crate::records::{Attached, ContainerRecord};
use crate::util::{now_rfc3339, random_id};
use crate::views::{NetworkContainer, NetworkDetails};
use crate::{EngineError, Result};

/// Networks: their records (in the metadata store), IPAM, the controller
/// that makes bridges and veths, and the address leases. It reaches no other
/// part of the engine: containers come in as their records (to tell which
/// endpoints are on a network); a container's endpoints are made and undone
/// by the calls in `attach.rs`, which `endpoints.rs` (the container side)
/// uses with the handles below.
pub struct NetworkService {
    meta: Arc<Metadata>,
    events: Arc<Events>,
    /// `--bridge`, `--bip`, `--default-address-pool`.
    opts: NetworkOptions,
    pub(crate) ctl: Controller,
    /// Addresses in use per network ID (rebuilt from running containers).
    /// Shared with the background deletions of veths (see `attach.rs`).
    pub(super) leases: Arc<Mutex<HashMap<String, HashSet<Ipv4Addr>>>>,
    /// Serialises network create/remove/connect.
    pub(super) ops: tokio::sync::Mutex<()>,
    /// Namespaces of exited containers still being unpinned, by container ID
    /// (see `endpoints.rs`); a new start of the same container waits for it.
    pub(crate) unpinning: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Namespaces begun at create (see `prestart.rs`), by container ID; true
    /// once pinned.
    pub(crate) pinning: Mutex<HashMap<String, tokio::task::JoinHandle<bool>>>,
    /// The daemon's `dns` (daemon.json), for containers without `--dns`.
    pub(crate) daemon_dns: Vec<String>,
}

impl NetworkService {
    pub(crate) fn new(
        opts: &NetworkOptions,
        daemon_dns: Vec<String>,
        meta: Arc<Metadata>,
        events: Arc<Events>,
    ) -> Self {
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let bridge = opts.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE);
        NetworkService {
            meta,
            events,
            opts: opts.clone(),
            ctl: Controller::new(pier_network::dns::upstreams_from_resolv_conf(&resolv))
                .for_bridge(bridge),
            leases: Arc::new(Mutex::new(HashMap::new())),
            ops: tokio::sync::Mutex::new(()),
            unpinning: Mutex::new(HashMap::new()),
            pinning: Mutex::new(HashMap::new()),
            daemon_dns,
        }
    }

    pub(super) fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<Ipv4Addr>>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NetworkService {
    pub(crate) fn records(&self) -> Result<Vec<NetworkRecord>> {
        let mut v: Vec<NetworkRecord> =
            self.meta.kv_list(NS)?.into_iter().map(|(_, r)| r).collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(v)
    }

    /// By full ID, then name, then unique ID prefix (Docker's order).
    pub(crate) fn find(&self, key: &str) -> Result<NetworkRecord> {
        let all = self.records()?;
        if let Some(n) = all.iter().find(|n| n.id == key) {
            return Ok(n.clone());
        }
        let by_name: Vec<&NetworkRecord> = all.iter().filter(|n| n.name == key).collect();
        match by_name.len() {
            1 => return Ok(by_name[0].clone()),
            0 => {}
            _ => {
                return Err(EngineError::invalid_argument(format!(
                    "network {key} is ambiguous ({} matches found based on name)",
                    by_name.len()
                )))
            }
        }
        let by_prefix: Vec<&NetworkRecord> = all
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match by_prefix.len() {
            1 => Ok(by_prefix[0].clone()),
            0 => Err(not_found(key)),
            _ => Err(EngineError::invalid_argument(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    pub(super) fn event(&self, action: &str, n: &NetworkRecord, extra: &[(&str, String)]) {
        self.emit(action, &n.id, &n.name, &n.driver, extra);
    }

    /// `connect`/`disconnect` of a container's endpoint as it starts or
    /// stops, as Docker reports them (endpoints exist on bridges only).
    pub(crate) fn endpoint_event(&self, action: &str, net: &str, a: &Attached, container: &str) {
        let extra = [("container", container.to_string())];
        self.emit(action, &a.network_id, net, "bridge", &extra);
    }

    fn emit(&self, action: &str, id: &str, name: &str, driver: &str, extra: &[(&str, String)]) {
        let mut attrs = HashMap::from([
            ("name".to_string(), name.to_string()),
            ("type".to_string(), driver.to_string()),
        ]);
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events
            .emit(EventMessageTypeEnum::NETWORK, action, id, attrs);
    }

    /// Makes sure `bridge`, `host` and `none` exist and brings every bridge
    /// network up. Errors are logged: a daemon without nftables still runs
    /// host/none containers.
    pub(crate) async fn restore(&self) {
        if let Err(e) = self.ensure_builtin_networks().await {
            tracing::error!("creating built-in networks: {e}");
        }
        for n in self.records().unwrap_or_default() {
            if let Some(spec) = n.spec()
                && let Err(e) = self.ctl.add_network(spec).await
            {
                tracing::error!("bringing up network {}: {e}", n.name);
            }
        }
        self.ctl.watch_firewall();
    }

    async fn ensure_builtin_networks(&self) -> Result<()> {
        let all = self.records()?;
        let opts = &self.opts;
        let bridge_name = opts.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE);
        if let Some(old) = all.iter().find(|n| n.is_default_bridge()) {
            self.reconfigure_default_bridge(old.clone(), bridge_name)
                .await?;
        }
        let have: HashSet<String> = all.iter().map(|n| n.name.clone()).collect();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if have.contains(name) {
                continue;
            }
            let mut n = NetworkRecord {
                id: random_id() + &random_id(),
                name: name.into(),
                driver: driver.into(),
                created: now_rfc3339(),
                internal: false,
                attachable: false,
                enable_ipv6: false,
                labels: HashMap::new(),
                options: HashMap::new(),
                ipam_config: Vec::new(),
                ipam_options: None,
                subnet: None,
                gateway: None,
                ip_range: None,
                reserved: Vec::new(),
                user_subnet: false,
                bridge: String::new(),
            };
            n.id.truncate(64);
            if name == "bridge" {
                let (gateway, subnet) = match opts.bip {
                    Some(b) => b,
                    None => {
                        let sn = self.default_bridge_subnet(&all).await?;
                        (sn.first_host(), sn)
                    }
                };
                set_default_bridge(&mut n, bridge_name, subnet, gateway);
                for (k, v) in [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    ("com.docker.network.driver.mtu", "1500"),
                ] {
                    n.options.insert(k.into(), v.into());
                }
            }
            self.meta.kv_put(NS, &n.id, &n)?;
        }
        let gw = self
            .records()?
            .into_iter()
            .find(|n| n.is_default_bridge())
            .and_then(|n| n.gateway);
        *DEFAULT_GATEWAY.write().unwrap_or_else(|e| e.into_inner()) = gw;
        Ok(())
    }

    /// With `--default-address-pool`, the pools' first free subnet, as
    /// Docker's; else Pier's usual 172.18.0.0/16 unless the namespace
    /// already routes it (another engine's bridge), then the defaults' first
    /// free one.
    async fn default_bridge_subnet(&self, all: &[NetworkRecord]) -> Result<Subnet> {
        let mut taken = self.ctl.used_ranges().await?;
        taken.extend(all.iter().filter_map(|n| n.subnet));
        let pools = &self.opts.default_address_pools;
        let usual = pier_network::ipam::DEFAULT_BRIDGE_SUBNET;
        if pools.is_empty() && !taken.iter().any(|t| t.overlaps(&usual)) {
            return Ok(usual);
        }
        pier_network::ipam::pick_subnet(pools, &taken).map_err(EngineError::from)
    }

    /// Applies `--bridge`/`--bip` to the default bridge made by an earlier
    /// start, unless containers still run on it (their addresses would be
    /// wrong): then the old settings stay until they stop.
    async fn reconfigure_default_bridge(&self, mut n: NetworkRecord, bridge: &str) -> Result<()> {
        let (gateway, subnet) = match self.opts.bip {
            Some(b) => b,
            None => match (n.gateway, n.subnet) {
                (Some(g), Some(s)) => (g, s),
                _ => return Ok(()),
            },
        };
        if n.bridge == bridge && n.subnet == Some(subnet) && n.gateway == Some(gateway) {
            return Ok(());
        }
        if !self.endpoints_on(&n.id).is_empty() {
            tracing::warn!(
                "the default bridge keeps {} {:?} until its containers stop \
                 (asked: {bridge} {subnet})",
                n.bridge,
                n.subnet
            );
            return Ok(());
        }
        tracing::info!(
            "default bridge: now {bridge} {subnet} (was {} {:?})",
            n.bridge,
            n.subnet
        );
        // The same interface would keep its old address (and route) too. One
        // of another name is left alone: another daemon may use it now.
        if n.bridge == bridge {
            pier_network::link::Netlink::current()?
                .delete_link(bridge)
                .await?;
        }
        set_default_bridge(&mut n, bridge, subnet, gateway);
        self.leases().remove(&n.id);
        self.meta.kv_put(NS, &n.id, &n)?;
        Ok(())
    }

    /// Containers (running) attached to network `id`: (record, endpoint).
    pub(super) fn endpoints_on(&self, id: &str) -> Vec<(ContainerRecord, Attached)> {
        let recs = self
            .meta
            .containers::<ContainerRecord>()
            .unwrap_or_default();
        recs.into_iter()
            .filter(|r| r.state.running())
            .filter_map(|r| {
                let a = r
                    .network
                    .attached
                    .values()
                    .find(|a| a.network_id == id)
                    .cloned()?;
                Some((r, a))
            })
            .collect()
    }

    fn details(&self, n: &NetworkRecord) -> NetworkDetails {
        let mut containers: Vec<(String, NetworkContainer)> = self
            .endpoints_on(&n.id)
            .into_iter()
            .map(|(r, a)| {
                let c = NetworkContainer {
                    name: r.name,
                    endpoint_id: a.endpoint_id,
                    mac_address: a.mac,
                    ipv4_address: format!("{}/{}", a.ip, a.prefix),
                };
                (r.id, c)
            })
            .collect();
        // Containers sharing host's stack show up on `host` in Docker too.
        if n.driver == "host" {
            for r in self
                .meta
                .containers::<ContainerRecord>()
                .unwrap_or_default()
            {
                if r.state.running() && mode_of(&r) == "host" {
                    let c = NetworkContainer {
                        name: r.name,
                        ..Default::default()
                    };
                    match containers.iter_mut().find(|(id, _)| *id == r.id) {
                        Some(e) => e.1 = c,
                        None => containers.push((r.id, c)),
                    }
                }
            }
        }
        NetworkDetails {
            id: n.id.clone(),
            name: n.name.clone(),
            created: n.created.clone(),
            driver: n.driver.clone(),
            enable_ipv6: n.enable_ipv6,
            internal: n.internal,
            attachable: n.attachable,
            ipam_options: n.ipam_options.clone(),
            ipam_config: n.ipam_config.clone(),
            containers,
            options: n.options.clone(),
            labels: n.labels.clone(),
        }
    }

    /// `GET /networks`.
    pub fn list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<NetworkDetails>> {
        let known = ["name", "id", "driver", "scope", "type", "label", "dangling"];
        crate::util::check_filter_keys(filters, &known)?;
        let mut out = Vec::new();
        for n in self.records()? {
            let ok = filters.iter().all(|(k, vals)| {
                if k == "label" {
                    return crate::util::labels_match(vals, &n.labels);
                }
                vals.is_empty()
                    || vals.iter().any(|v| match k.as_str() {
                        "name" => n.name.contains(v.as_str()),
                        "id" => n.id.starts_with(v.as_str()),
                        "driver" => n.driver == *v,
                        "scope" => v == "local",
                        "type" => (v == "builtin") == n.builtin(),
                        "dangling" => {
                            let unused = !n.builtin() && self.endpoints_on(&n.id).is_empty();
                            (v == "true" || v == "1") == unused
                        }
                        _ => false,
                    })
            });
            if ok {
                out.push(self.details(&n));
            }
        }
        Ok(out)
    }

    /// `GET /networks/{id}`.
    pub fn inspect(&self, key: &str) -> Result<NetworkDetails> {
        let n = self.find(key)?;
        Ok(self.details(&n))
    }

    /// `POST /networks/create`.
    pub async fn create(&self, req: NetworkCreateRequest) -> Result<NetworkCreateResponse> {
        let _g = self.ops.lock().await;
        let body = req.body;
        let name = body.name;
        if name.is_empty() {
            return Err(EngineError::invalid_argument(
                "network name must not be empty",
            ));
        }
        let driver = match body.driver.as_deref().unwrap_or("") {
            "" | "bridge" => "bridge".to_string(),
            d @ ("host" | "null") => {
                return Err(EngineError::invalid_argument(format!(
                    "only one instance of \"{d}\" network is allowed"
                )))
            }
            other => {
                return Err(EngineError::not_found(format!(
                    "plugin \"{other}\" not found"
                )))
            }
        };
        let existing = self.records()?;
        // `CheckDuplicate: false` no longer allows a second network of the
        // same name: a daemon serving API 1.44 refuses it for every version.
        if existing.iter().any(|n| n.name == name) {
            return Err(EngineError::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let ipam = body.ipam.unwrap_or_default();
        if let Some(d) = ipam.driver.as_deref()
            && !d.is_empty()
            && d != "default"
        {
            return Err(EngineError::not_found(format!("plugin \"{d}\" not found")));
        }
        // Keep only what was given, as Docker echoes it.
        let given = |v: Option<String>| v.filter(|s| !s.is_empty());
        let mut ipam_config: Vec<IpamConfig> = ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| IpamConfig {
                subnet: given(c.subnet),
                ip_range: given(c.ip_range),
                gateway: given(c.gateway),
                auxiliary_addresses: c.auxiliary_addresses.filter(|m| !m.is_empty()),
            })
            .collect();
        // Pier's bridges are IPv4 only: an IPv6 network would be recorded and
        // shown but never get an address, so it is refused rather than faked.
        if body.enable_ipv6 == Some(true)
            || ipam_config
                .iter()
                .any(|c| c.subnet.as_deref().is_some_and(|s| s.contains(':')))
        {
            return Err(EngineError::invalid_argument(
                "not supported by Pier: IPv6 networks (EnableIPv6 or an IPv6 subnet)",
            ));
        }
        let taken: Vec<Subnet> = existing.iter().filter_map(|n| n.subnet).collect();
        let bad = |m: String| EngineError::invalid_argument(m);
        let mut subnet = None;
        let mut gateway = None;
        let mut ip_range = None;
        let mut reserved = Vec::new();
        let v4 = ipam_config
            .iter()
            .find(|c| c.subnet.as_deref().is_some_and(|s| !s.contains(':')));
        if let Some(c) = v4 {
            let sn: Subnet = c.subnet.as_deref().unwrap_or("").parse()?;
            if let Some(t) = taken.iter().find(|t| t.overlaps(&sn)) {
                return Err(EngineError::conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({t})"
                )));
            }
            let gw = match c.gateway.as_deref() {
                Some(g) => {
                    let g: Ipv4Addr = g
                        .parse()
                        .map_err(|_| bad(format!("invalid gateway address {g}")))?;
                    pier_network::ipam::check_gateway(&sn, g)?;
                    g
                }
                None => sn.first_host(),
            };
            if let Some(r) = c.ip_range.as_deref() {
                let r: Subnet = r.parse()?;
                if !sn.contains(r.addr) || r.prefix < sn.prefix {
                    return Err(bad(format!("Invalid range {r} for subnet {sn}")));
                }
                ip_range = Some(r);
            }
            for a in c.auxiliary_addresses.iter().flatten() {
                if let Ok(ip) = a.1.parse::<Ipv4Addr>() {
                    reserved.push(ip);
                }
            }
            subnet = Some(sn);
            gateway = Some(gw);
        }
        let user_subnet = subnet.is_some();
        if subnet.is_none() {
            let mut avoid = self.ctl.used_ranges().await?;
            avoid.extend(taken.iter().copied());
            let pools = &self.opts.default_address_pools;
            let sn = pier_network::ipam::pick_subnet(pools, &avoid)?;
            subnet = Some(sn);
            gateway = Some(sn.first_host());
            ipam_config.insert(
                0,
                IpamConfig {
                    subnet: Some(sn.to_string()),
                    gateway: Some(sn.first_host().to_string()),
                    ..Default::default()
                },
            );
        }
        let id = random_id() + &random_id();
        let mut n = NetworkRecord {
            id: id[..64].to_string(),
            name,
            driver,
            created: now_rfc3339(),
            internal: body.internal.unwrap_or(false),
            attachable: body.attachable.unwrap_or(false),
            enable_ipv6: body.enable_ipv6.unwrap_or(false),
            labels: body.labels.unwrap_or_default(),
            options: body.options.unwrap_or_default(),
            ipam_config,
            ipam_options: ipam.options,
            subnet,
            gateway,
            ip_range,
            reserved,
            user_subnet,
            bridge: String::new(),
        };
        n.bridge = n
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &n.id[..12]));
        if !pier_network::valid_bridge_name(&n.bridge) {
            return Err(EngineError::invalid_argument(format!(
                "invalid bridge name {:?}: 1 to 15 letters, digits, '-', '_' or '.'",
                n.bridge
            )));
        }
        if let Some(o) = existing.iter().find(|o| o.bridge == n.bridge) {
            return Err(EngineError::conflict(format!(
                "bridge name {} is already used by network {}",
                n.bridge, o.name
            )));
        }
        if let Some(spec) = n.spec() {
            self.ctl.add_network(spec).await?;
        }
        if let Err(e) = self.meta.kv_put(NS, &n.id, &n) {
            let _ = self.ctl.remove_network(&n.id).await;
            return Err(e.into());
        }
        self.event("create", &n, &[]);
        Ok(NetworkCreateResponse {
            id: n.id,
            warning: String::new(),
        })
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove(&self, key: &str) -> Result<()> {
        let _g = self.ops.lock().await;
        let n = self.find(key)?;
        self.remove_locked(&n).await
    }

    async fn remove_locked(&self, n: &NetworkRecord) -> Result<()> {
        // moby answers 403 Forbidden here, as for creating a pre-defined one.
        if n.builtin() {
            return Err(EngineError::forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let eps = self.endpoints_on(&n.id);
        if !eps.is_empty() {
            return Err(EngineError::conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.ctl.remove_network(&n.id).await?;
        self.meta.kv_delete(NS, &n.id)?;
        self.leases().remove(&n.id);
        self.event("destroy", n, &[]);
        Ok(())
    }

    /// `POST /networks/prune`: user networks no running container uses.
    pub async fn prune(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<NetworkPruneResponse> {
        let f = crate::prune_filter::PruneFilter::parse(filters, &[])?;
        let _g = self.ops.lock().await;
        let mut deleted = Vec::new();
        for n in self.records()? {
            if n.builtin() || !self.endpoints_on(&n.id).is_empty() {
                continue;
            }
            if !f.allows(&n.created, &n.labels) {
                continue;
            }
            if self.remove_locked(&n).await.is_ok() {
                deleted.push(n.name.clone());
            }
        }
        Ok(NetworkPruneResponse {
            networks_deleted: Some(deleted),
        })
    }
}
