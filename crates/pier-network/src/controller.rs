//! The live side of networking: bridges, DNS servers, proxies and the
//! firewall table, kept consistent with what the engine's records say.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::dns::{DnsServer, DnsTable};
use crate::error::{NetError, Result};
use crate::ipam::Subnet;
use crate::link::Netlink;
use crate::nft::{BridgeRules, PortRule};
use crate::proxy::PortProxy;

/// A bridge network to bring up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub id: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// Run an embedded DNS server on the gateway (user networks).
    pub dns: bool,
}

/// One container interface on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The name inside the container (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// The host end of the veth pair (at most 15 bytes).
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Route everything through this network's gateway.
    pub default_route: bool,
}

/// A port to publish: `host_ip:host_ports` -> `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: String,
    /// `0.0.0.0` with `all_families`: `[::]` too, on the same port, when
    /// the namespace has IPv6 (Docker's default for a port without an IP).
    pub host_ip: IpAddr,
    pub all_families: bool,
    /// `(0, 0)`: any free port.
    pub host_ports: (u16, u16),
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// A port as published: the host port is the one actually bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub proto: String,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

struct LiveNetwork {
    spec: NetworkSpec,
    table: DnsTable,
    _dns: Option<DnsServer>,
}

#[derive(Default)]
struct State {
    nets: HashMap<String, LiveNetwork>,
    /// Per owner: each proxy and its DNAT rule (none for IPv6: containers
    /// have IPv4 only, so the proxy alone carries IPv6 clients).
    ports: HashMap<String, Vec<(Option<PortRule>, PortProxy)>>,
}

/// The proxies for one request: its address, and for a port published on
/// every address also `[::]` on the same port when there is IPv6 (a port
/// the kernel picked that is taken on `[::]` is picked again).
fn bind_request(r: &PortRequest, v6: bool) -> Result<Vec<PortProxy>> {
    let target = SocketAddrV4::new(r.container_ip, r.container_port);
    let (lo, hi) = r.host_ports;
    if !(v6 && r.all_families && r.host_ip.is_unspecified()) {
        return Ok(vec![crate::proxy::start(
            &r.proto,
            r.host_ip,
            lo..=hi,
            target,
        )?]);
    }
    let candidates: Vec<(u16, u16)> = if lo == 0 {
        vec![(0, 0); 8]
    } else {
        (lo..=hi).map(|p| (p, p)).collect()
    };
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mut last = None;
    for (a, b) in candidates {
        let first = match crate::proxy::start(&r.proto, r.host_ip, a..=b, target) {
            Ok(p) => p,
            Err(e @ NetError::Conflict(_)) => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let port = first.host_port;
        match crate::proxy::start(&r.proto, any6, port..=port, target) {
            Ok(second) => return Ok(vec![first, second]),
            Err(e @ NetError::Conflict(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(match last {
        Some(e) if lo == hi => e,
        _ => NetError::Conflict(format!(
            "Bind for 0.0.0.0:{lo}-{hi} failed: all ports are already allocated"
        )),
    })
}

/// Owns the live networking state of a daemon.
pub struct Controller {
    state: Mutex<State>,
    upstreams: Vec<SocketAddr>,
    /// The bridges PIER-FORWARD last accepted (None: not yet synced by this
    /// daemon). Published ports need no iptables change, so container
    /// starts spare the iptables runs.
    iptables_bridges: Arc<Mutex<Option<Vec<String>>>>,
    /// This daemon's nftables table and iptables chain (see [`Controller::for_bridge`]).
    table: String,
    chain: String,
}

impl Controller {
    /// `upstreams`: where the embedded DNS servers forward names they do
    /// not know (the host's resolvers).
    pub fn new(upstreams: Vec<SocketAddr>) -> Controller {
        Controller {
            state: Mutex::new(State::default()),
            upstreams,
            iptables_bridges: Arc::new(Mutex::new(None)),
            table: crate::nft::TABLE.into(),
            chain: crate::iptables::CHAIN.into(),
        }
    }

    /// Names the firewall table and chain after the daemon's default bridge,
    /// so that daemons sharing a namespace with their own `--bridge` keep
    /// their rules apart.
    pub fn for_bridge(mut self, default_bridge: &str) -> Controller {
        self.table = crate::nft::table_for(default_bridge);
        self.chain = crate::iptables::chain_for(default_bridge);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings a bridge network up (idempotent: also used on daemon start).
    pub async fn add_network(&self, spec: NetworkSpec) -> Result<()> {
        crate::link::enable_forwarding()?;
        let nl = Netlink::current()?;
        nl.ensure_bridge(&spec.bridge, spec.gateway, spec.subnet.prefix)
            .await?;
        // Replacing an entry stops its old DNS server first (it holds the
        // gateway's port 53); the names stay.
        let old = self.state().nets.remove(&spec.id);
        let table = old.map(|n| n.table.clone()).unwrap_or_default();
        let dns = if spec.dns {
            let addr = SocketAddr::new(spec.gateway.into(), 53);
            Some(DnsServer::start(addr, table.clone(), self.upstreams.clone()).await?)
        } else {
            None
        };
        self.state().nets.insert(
            spec.id.clone(),
            LiveNetwork {
                spec,
                table,
                _dns: dns,
            },
        );
        self.refresh_firewall()
    }

    /// Takes a network's bridge and rules away.
    pub async fn remove_network(&self, id: &str) -> Result<()> {
        let Some(net) = self.state().nets.remove(id) else {
            return Ok(());
        };
        let bridge = net.spec.bridge.clone();
        drop(net);
        self.refresh_firewall()?;
        Netlink::current()?.delete_link(&bridge).await
    }

    fn spec(&self, id: &str) -> Result<NetworkSpec> {
        self.state()
            .nets
            .get(id)
            .map(|n| n.spec.clone())
            .ok_or_else(|| NetError::NotFound(format!("network {id} is not up")))
    }

    /// Plugs the namespace at `netns` into network `net_id`.
    pub async fn attach(&self, netns: &Path, net_id: &str, ep: &EndpointSpec) -> Result<()> {
        let spec = self.spec(net_id)?;
        let host = Netlink::current()?;
        let bridge = host
            .index(&spec.bridge)
            .await?
            .ok_or_else(|| NetError::NotFound(format!("bridge {} is missing", spec.bridge)))?;
        let ns = crate::netns::open(netns)?;
        host.veth_into_netns(&ep.host_veth, bridge, &ns, &ep.ifname, ep.mac)
            .await?;
        let r = async {
            let inner = Netlink::in_netns(netns)?;
            inner.loopback_up().await?;
            let gw = ep.default_route.then_some(spec.gateway);
            inner
                .configure_interface(&ep.ifname, ep.ip, spec.subnet.prefix, gw)
                .await
        }
        .await;
        if r.is_err() {
            let _ = host.delete_link(&ep.host_veth).await;
        }
        r
    }

    /// Unplugs an endpoint (deleting the host end takes the pair away).
    pub async fn detach(&self, host_veth: &str) -> Result<()> {
        Netlink::current()?.delete_link(host_veth).await
    }

    /// Sets the DNS names of `owner` on a network.
    pub fn set_names(&self, net_id: &str, owner: &str, names: &[String], ip: Ipv4Addr) {
        if let Some(n) = self.state().nets.get(net_id) {
            n.table.set(owner, names, ip);
        }
    }

    /// Sets the link aliases of `owner` on a network: `(alias, target name)`.
    pub fn set_links(&self, net_id: &str, owner: &str, links: &[(String, String)]) {
        if let Some(n) = self.state().nets.get(net_id) {
            n.table.set_links(owner, links);
        }
    }

    /// Sets the DNS servers of `owner` (at `ip` on a network): the network's
    /// embedded server forwards its queries there (`--dns`).
    pub fn set_upstreams(&self, net_id: &str, owner: &str, ip: Ipv4Addr, servers: &[SocketAddr]) {
        if let Some(n) = self.state().nets.get(net_id) {
            n.table.set_upstreams(owner, ip, servers);
        }
    }

    pub fn clear_names(&self, net_id: &str, owner: &str) {
        if let Some(n) = self.state().nets.get(net_id) {
            n.table.remove(owner);
        }
    }

    /// Publishes ports of `owner` (a container on bridge network `net_id`):
    /// every proxy binds first, so a taken port fails the whole set and
    /// leaves nothing behind.
    pub fn publish(
        &self,
        owner: &str,
        net_id: &str,
        reqs: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        if reqs.is_empty() {
            // Nothing changes: spare the container start an nft run.
            return Ok(Vec::new());
        }
        let spec = self.spec(net_id)?;
        let v6 = crate::proxy::host_has_ipv6();
        let mut bound: Vec<(Option<PortRule>, PortProxy)> = Vec::new();
        let mut out = Vec::new();
        for r in reqs {
            for proxy in bind_request(r, v6)? {
                out.push(PublishedPort {
                    proto: r.proto.clone(),
                    host_ip: proxy.host_ip,
                    host_port: proxy.host_port,
                    container_port: r.container_port,
                });
                let rule = match proxy.host_ip {
                    IpAddr::V4(ip) => Some(PortRule {
                        proto: r.proto.clone(),
                        host_ip: Some(ip),
                        host_port: proxy.host_port,
                        container_ip: r.container_ip,
                        container_port: r.container_port,
                        bridge: spec.bridge.clone(),
                    }),
                    IpAddr::V6(_) => None,
                };
                bound.push((rule, proxy));
            }
        }
        self.state()
            .ports
            .entry(owner.to_string())
            .or_default()
            .extend(bound);
        if let Err(e) = self.refresh_firewall() {
            self.state().ports.remove(owner);
            let _ = self.refresh_firewall();
            return Err(e);
        }
        Ok(out)
    }

    /// Closes the ports of `owner`.
    pub fn unpublish(&self, owner: &str) -> Result<()> {
        if self.state().ports.remove(owner).is_some() {
            self.refresh_firewall()?;
        }
        Ok(())
    }

    /// Rewrites this daemon's nftables table and iptables chain from the
    /// live state.
    pub fn refresh_firewall(&self) -> Result<()> {
        let (bridges, ports) = {
            let st = self.state();
            let mut bridges: Vec<BridgeRules> = st
                .nets
                .values()
                .map(|n| BridgeRules {
                    bridge: n.spec.bridge.clone(),
                    subnet: n.spec.subnet,
                    internal: n.spec.internal,
                })
                .collect();
            bridges.sort_by(|a, b| a.bridge.cmp(&b.bridge));
            let mut ports: Vec<PortRule> = st
                .ports
                .values()
                .flatten()
                .filter_map(|(r, _)| r.clone())
                .collect();
            ports.sort_by_key(|p| (p.host_port, p.proto.clone()));
            (bridges, ports)
        };
        crate::nft::apply(&self.table, &bridges, &ports)?;
        let names: Vec<String> = bridges.into_iter().map(|b| b.bridge).collect();
        let mut synced = self
            .iptables_bridges
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if synced.as_ref() != Some(&names) {
            crate::iptables::sync(&self.chain, &names, synced.is_none())?;
            *synced = Some(names);
        }
        Ok(())
    }

    /// Watches iptables' filter table for the rest of the process's life
    /// and puts this daemon's FORWARD jump back when another program (a
    /// Docker started later) makes the table or flushes the jump.
    pub fn watch_firewall(&self) {
        crate::watch::start(self.chain.clone(), self.iptables_bridges.clone());
    }

    /// The IPv4 ranges the daemon's namespace already routes (other
    /// engines' bridges, VPNs, the uplink): new networks stay off them.
    pub async fn used_ranges(&self) -> Result<Vec<Subnet>> {
        Netlink::current()?.used_ipv4_ranges().await
    }

    /// Takes every bridge, proxy, DNS server and rule of this daemon away
    /// (tests; a daemon that stops keeps its networks for the next one).
    pub async fn shutdown(&self) -> Result<()> {
        let (bridges, _live) = {
            let mut st = self.state();
            st.ports.clear();
            let nets: Vec<LiveNetwork> = st.nets.drain().map(|(_, n)| n).collect();
            (
                nets.iter()
                    .map(|n| n.spec.bridge.clone())
                    .collect::<Vec<_>>(),
                nets,
            )
        };
        let nl = Netlink::current()?;
        for b in bridges {
            nl.delete_link(&b).await?;
        }
        crate::nft::remove_table(&self.table)?;
        *self
            .iptables_bridges
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        crate::iptables::remove(&self.chain)
    }
}
