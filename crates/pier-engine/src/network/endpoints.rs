//! Containers on networks: checks at create, wiring at start, unwiring at
//! exit, re-adoption after a daemon restart, `network connect`/`disconnect`.
//! Published ports are in `ports.rs`, the API's view of it all in `inspect.rs`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pier_api::models::{ContainerConfig, EndpointSettings, HostConfig, NetworkingConfig};
use pier_network::{link, netns};
use pier_runtime::spec::NetworkNs;

use super::attach::{links_of, own_dns_servers, requested_ip, Plumbing};
use super::ports::port_specs;
use super::service::NetworkService;
use super::{hosts, mode_of, owns_netns, NetworkRecord};
use crate::records::{ContainerNetwork, ContainerRecord};
use crate::{Engine, EngineError, Result};

/// The namespace the container's spec joins.
pub(crate) fn netns_for(rec: &ContainerRecord) -> NetworkNs {
    let mode = mode_of(rec);
    let key = &rec.network.sandbox_key;
    match mode.as_str() {
        "host" => NetworkNs::Host,
        "none" if key.is_empty() => NetworkNs::New,
        m if m.starts_with("container:") && key.is_empty() => NetworkNs::Host,
        _ if key.is_empty() => NetworkNs::New,
        _ => NetworkNs::Path(PathBuf::from(key)),
    }
}

impl Engine {
    /// At create: applies Docker's default mode (`bridge`), resolves the
    /// network names, and checks IPs, aliases, MACs and ports.
    pub(crate) fn network_for_create(
        &self,
        cfg: &ContainerConfig,
        host: &mut HostConfig,
        nc: Option<&NetworkingConfig>,
    ) -> Result<ContainerNetwork> {
        let mut mode = match host.network_mode.as_deref() {
            None | Some("") | Some("default") => "bridge".to_string(),
            Some(m) => m.to_string(),
        };
        port_specs(cfg, host)?;
        let mut out = ContainerNetwork::default();
        if let Some(other) = mode.strip_prefix("container:") {
            self.find_container(other)?;
            if host.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
                || host.publish_all_ports.unwrap_or(false)
            {
                return Err(EngineError::invalid_argument(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            host.network_mode = Some(mode);
            return Ok(out);
        }
        if mode != "host" && mode != "none" {
            let n = self.networks.find(&mode)?;
            mode = match n.driver.as_str() {
                "host" => "host".into(),
                "null" => "none".into(),
                _ => n.name.clone(),
            };
        }
        host.network_mode = Some(mode.clone());
        if mode == "host" || mode == "none" {
            return Ok(out);
        }
        for (k, ep) in nc
            .and_then(|n| n.endpoints_config.as_ref())
            .into_iter()
            .flatten()
        {
            // Docker 25+ clients key the endpoint of `--network default` (the
            // mode they send when none is given) by that name too.
            let k = if k == "default" { "bridge" } else { k.as_str() };
            let n = self.networks.find(k)?;
            if n.driver != "bridge" {
                continue;
            }
            check_endpoint(&n, ep)?;
            out.requested.insert(n.name.clone(), ep.clone());
        }
        out.requested.entry(mode).or_default();
        Ok(out)
    }

    /// Before the shim starts: a namespace with the container's networks
    /// plugged in and its ports published. On error nothing is left behind.
    pub(crate) async fn network_setup(&self, rec: &mut ContainerRecord) -> Result<()> {
        let p = self.network_prepare(rec).await?;
        if let Err(e) = self.network_plumb(p).await {
            self.network_teardown(rec).await;
            return Err(e);
        }
        Ok(())
    }

    /// The first half of [`Self::network_setup`]: the namespace, addresses,
    /// names and ports, everything the container's record, /etc files and
    /// spec need. The kernel's side of its interfaces is left to
    /// [`Self::network_plumb`], which can run while the root is prepared and
    /// the container created (moving a veth into a namespace alone waits
    /// 10-20 ms for RCU). On error nothing is left behind.
    pub(crate) async fn network_prepare(&self, rec: &mut ContainerRecord) -> Result<Plumbing> {
        let mode = mode_of(rec);
        // A namespace begun at create is this start's (see prestart.rs).
        let early = take(&self.networks.pinning, &rec.id);
        let pinned = match early {
            Some(h) => h.await.unwrap_or(false) && owns_netns(&mode),
            None => false,
        };
        self.unwire(rec, false, pinned).await;
        if mode == "host" {
            return Ok(Plumbing::default());
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.find_container(other)?;
            if !o.state.running() {
                return Err(EngineError::conflict(format!(
                    "cannot join network namespace of a non running container: container {} is {}",
                    o.id, o.state.status
                )));
            }
            rec.network.sandbox_key = match mode_of(&o).as_str() {
                "host" => String::new(),
                _ if !o.network.sandbox_key.is_empty() => o.network.sandbox_key.clone(),
                _ => format!("/proc/{}/ns/net", o.state.pid),
            };
            rec.network.dns_server = o.network.dns_server.clone();
            return Ok(Plumbing::default());
        }
        let path = self.cfg.exec_root.join("netns").join(&rec.id);
        let p = path.clone();
        if !pinned {
            tokio::task::spawn_blocking(move || {
                netns::delete(&p)?;
                netns::create(&p)
            })
            .await??;
        }
        rec.network.sandbox_key = path.display().to_string();
        // Loopback up, also for `none` (as Docker's) and with no network attached.
        let mut plumbing = Plumbing {
            netns: Some(path),
            endpoints: Vec::new(),
        };
        if mode == "none" {
            return Ok(plumbing);
        }
        let mut names: Vec<String> = rec.network.requested.keys().cloned().collect();
        if let Some(i) = names.iter().position(|n| *n == mode) {
            let m = names.remove(i);
            names.insert(0, m);
        }
        let r = async {
            for (i, name) in names.iter().enumerate() {
                self.networks
                    .attach_endpoint(rec, name, i, Some(&mut plumbing))
                    .await?;
            }
            self.publish_ports(rec)
        }
        .await;
        if let Err(e) = r {
            self.network_teardown(rec).await;
            return Err(e);
        }
        for (name, a) in &rec.network.attached {
            self.networks.endpoint_event("connect", name, a, &rec.id);
        }
        Ok(plumbing)
    }

    /// The second half of [`Self::network_setup`]: creates the veths planned
    /// by [`Self::network_prepare`], configures them inside the namespace and
    /// brings loopback up. On error the caller tears the network down.
    pub(crate) async fn network_plumb(&self, p: Plumbing) -> Result<()> {
        let Some(netns) = p.netns else {
            return Ok(());
        };
        for (net_id, ep) in &p.endpoints {
            // Also brings loopback up.
            self.networks.ctl.attach(&netns, net_id, ep).await?;
        }
        if p.endpoints.is_empty() {
            let nl = link::Netlink::in_netns(&netns)?;
            nl.loopback_up().await?;
        }
        Ok(())
    }

    /// Unwires a container that stopped (idempotent): ports, names, veths,
    /// leases, and its own namespace.
    pub(crate) async fn network_teardown(&self, rec: &mut ContainerRecord) {
        self.unwire(rec, false, false).await
    }

    /// [`Self::network_teardown`] for a container that exited. Deleting a
    /// veth waits for RCU grace periods (10-20 ms), which `run --rm` would
    /// otherwise wait for: the host ends go in the background. Their
    /// addresses stay leased until the link is gone, so a new container never
    /// shares the bridge with the old one's address; ports, names and the
    /// namespace go at once.
    pub(crate) async fn network_teardown_exited(&self, rec: &mut ContainerRecord) {
        self.unwire(rec, true, false).await
    }

    /// Begins pinning the namespace of created container `id` in the
    /// background (see prestart.rs); [`Self::network_prepare`] takes it over.
    pub(crate) fn pin_netns_early(&self, id: &str) {
        let path = self.cfg.exec_root.join("netns").join(id);
        let h = tokio::task::spawn_blocking(move || {
            netns::delete(&path)
                .and_then(|()| netns::create(&path))
                .is_ok()
        });
        self.networks
            .pinning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), h);
    }

    /// Containers whose namespace was begun at create and not yet taken.
    pub(crate) fn net_pinning_ids(&self) -> Vec<String> {
        let pinning = self
            .networks
            .pinning
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pinning.keys().cloned().collect()
    }

    pub(crate) fn net_pinning_early(&self, id: &str) -> bool {
        let pinning = self
            .networks
            .pinning
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pinning.contains_key(id)
    }

    /// Removes a namespace begun at create that no start took.
    pub(crate) async fn unpin_early_netns(&self, id: &str) {
        let early = take(&self.networks.pinning, id);
        let Some(h) = early else {
            return;
        };
        let _ = h.await;
        let _ = spawn_unpin(self.cfg.exec_root.join("netns").join(id)).await;
    }

    /// Takes a container off its networks. `background`: see
    /// [`Self::network_teardown_exited`]; `keep_netns`: leave the container's
    /// own namespace pinned (a new one from [`Self::pin_netns_early`]).
    async fn unwire(&self, rec: &mut ContainerRecord, background: bool, keep_netns: bool) {
        if let Err(e) = self.networks.ctl.unpublish(&rec.id) {
            tracing::warn!("unpublishing ports of {}: {e}", rec.id);
        }
        rec.network.ports.clear();
        for (name, a) in std::mem::take(&mut rec.network.attached) {
            self.networks
                .endpoint_event("disconnect", &name, &a, &rec.id);
            if background {
                self.networks.detach_endpoint_in_background(&rec.id, a);
            } else {
                self.networks.detach_endpoint(&rec.id, &a).await;
            }
        }
        rec.network.dns_server = None;
        let own = self.cfg.exec_root.join("netns").join(&rec.id);
        let pending = take(&self.networks.unpinning, &rec.id);
        if let Some(h) = pending {
            let _ = h.await;
        }
        if !keep_netns && (Path::new(&rec.network.sandbox_key) == own || own.exists()) {
            // Unpinning can wait for an RCU grace period (up to ~3 ms seen);
            // an exited container need not wait for it. The next start of
            // the same container does (`network_prepare`).
            let h = spawn_unpin(own);
            if background {
                let mut pending = self
                    .networks
                    .unpinning
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                pending.retain(|_, h| !h.is_finished());
                pending.insert(rec.id.clone(), h);
            } else {
                let _ = h.await;
            }
        }
        rec.network.sandbox_key.clear();
    }

    /// After a daemon restart, for a container still running: its leases,
    /// names and published ports come back.
    pub(crate) fn readopt_endpoints(&self, rec: &ContainerRecord) {
        for (name, a) in &rec.network.attached {
            let Ok(ip) = a.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            if let Some(req) = rec.network.requested.get(name) {
                self.networks
                    .ctl
                    .set_links(&a.network_id, &rec.id, &links_of(req));
            }
            self.networks
                .leases()
                .entry(a.network_id.clone())
                .or_default()
                .insert(ip);
            if !a.dns_names.is_empty() {
                self.networks
                    .ctl
                    .set_names(&a.network_id, &rec.id, &a.dns_names, ip);
                self.networks.ctl.set_upstreams(
                    &a.network_id,
                    &rec.id,
                    ip,
                    &own_dns_servers(rec, &self.networks.daemon_dns),
                );
            }
        }
        self.republish_ports(rec);
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_network(
        self: &Arc<Self>,
        key: &str,
        container: &str,
        cfg: Option<EndpointSettings>,
    ) -> Result<()> {
        let _g = self.networks.ops.lock().await;
        let n = self.networks.find(key)?;
        let id = self.find_container(container)?.id;
        let lock = self.op_lock(&id);
        let _c = lock.lock().await;
        let mut rec = self.find_container(&id)?;
        let mode = mode_of(&rec);
        if n.driver != "bridge" || mode == "host" {
            return Err(EngineError::invalid_argument(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        if mode == "none" {
            return Err(EngineError::invalid_argument(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode",
            ));
        }
        if mode.starts_with("container:") {
            return Err(EngineError::invalid_argument(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if rec.network.requested.contains_key(&n.name) || rec.network.attached.contains_key(&n.name)
        {
            return Err(EngineError::conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let ep = cfg.unwrap_or_default();
        check_endpoint(&n, &ep)?;
        rec.network.requested.insert(n.name.clone(), ep);
        if rec.state.running() {
            let used: Vec<&str> = rec
                .network
                .attached
                .values()
                .map(|a| a.ifname.as_str())
                .collect();
            let idx = (0..)
                .find(|i| !used.contains(&format!("eth{i}").as_str()))
                .unwrap_or(0);
            self.networks
                .attach_endpoint(&mut rec, &n.name, idx, None)
                .await?;
            if let Some(a) = rec.network.attached.get(&n.name) {
                let names = hosts::names(&rec, &a.aliases);
                if let Err(e) = hosts::add_entry(Path::new(&rec.hosts_path), &a.ip, &names) {
                    tracing::warn!("updating /etc/hosts of {}: {e}", rec.id);
                }
            }
        }
        self.save_container(&rec)?;
        self.networks
            .event("connect", &n, &[("container", rec.id.clone())]);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(
        self: &Arc<Self>,
        key: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let _ = force;
        let _g = self.networks.ops.lock().await;
        let n = self.networks.find(key)?;
        let id = self.find_container(container)?.id;
        let lock = self.op_lock(&id);
        let _c = lock.lock().await;
        let mut rec = self.find_container(&id)?;
        let mode = mode_of(&rec);
        if n.driver == "host" || mode == "host" {
            return Err(EngineError::invalid_argument(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let was_requested = rec.network.requested.remove(&n.name).is_some();
        let attached = rec.network.attached.remove(&n.name);
        if !was_requested && attached.is_none() {
            return Err(EngineError::invalid_argument(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        if let Some(a) = attached {
            if rec.state.running() {
                let names = hosts::names(&rec, &a.aliases);
                if let Err(e) = hosts::remove_entry(Path::new(&rec.hosts_path), &a.ip, &names) {
                    tracing::warn!("updating /etc/hosts of {}: {e}", rec.id);
                }
            }
            if a.ifname == "eth0" {
                let _ = self.networks.ctl.unpublish(&rec.id);
                rec.network.ports.clear();
                rec.network.dns_server = None;
            }
            self.networks.detach_endpoint(&rec.id, &a).await;
        }
        self.save_container(&rec)?;
        self.networks
            .event("disconnect", &n, &[("container", rec.id.clone())]);
        Ok(())
    }
}

/// Docker's rules for endpoint settings on a network.
fn check_endpoint(n: &NetworkRecord, ep: &EndpointSettings) -> Result<()> {
    let default_bridge = n.is_default_bridge();
    // Pier's bridges carry IPv4 only: an IPv6 address asked for would be dropped.
    if let Some(ip6) = ep
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv6_address.as_deref())
        .filter(|a| !a.is_empty())
    {
        return Err(EngineError::invalid_argument(format!(
            "not supported by Pier: IPv6 address {ip6} (--ip6); Pier's networks are IPv4 only"
        )));
    }
    if let Some(ip) = requested_ip(ep)? {
        if default_bridge {
            return Err(EngineError::invalid_argument(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !n.user_subnet {
            return Err(EngineError::invalid_argument(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        if !n.subnet.is_some_and(|s| s.contains(ip)) {
            return Err(EngineError::invalid_argument(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    if default_bridge && ep.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(EngineError::invalid_argument(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if let Some(m) = ep.mac_address.as_deref().filter(|m| !m.is_empty())
        && link::parse_mac(m).is_none()
    {
        return Err(EngineError::invalid_argument(format!(
            "invalid MAC address: {m}"
        )));
    }
    Ok(())
}

/// Unpins and removes the namespace file at `path` on a blocking thread.
fn spawn_unpin(path: PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = netns::delete(&path) {
            tracing::warn!("removing network namespace {}: {e}", path.display());
        }
    })
}

/// Takes `id`'s entry out of one of the pending-work maps.
fn take<T>(map: &std::sync::Mutex<std::collections::HashMap<String, T>>, id: &str) -> Option<T> {
    map.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
}

impl Engine {
    /// Networks: records, IPAM, the controller and its leases.
    pub fn networks(&self) -> &NetworkService {
        &self.networks
    }

    /// Makes sure `bridge`, `host` and `none` exist, brings every bridge
    /// network up and rebuilds leases, names and ports of running
    /// containers (after a daemon restart).
    pub(crate) async fn restore_networks(&self) {
        self.networks.restore().await;
        let Ok(recs) = self.meta.containers::<ContainerRecord>() else {
            return;
        };
        for rec in recs.into_iter().filter(|r| r.state.running()) {
            self.readopt_endpoints(&rec);
        }
    }
}
