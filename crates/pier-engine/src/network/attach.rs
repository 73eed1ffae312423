//! A container's endpoints on the network service's side: leasing an
//! address, recording the endpoint and its names, making or planning the
//! veth, and undoing it all. The container lifecycle (`endpoints.rs`) calls
//! these with the container's record; nothing here reaches the engine.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use pier_api::models::EndpointSettings;
use pier_network::{link, EndpointSpec};

use super::service::NetworkService;
use crate::records::{Attached, ContainerRecord};
use crate::util::random_id;
use crate::{EngineError, Result};

/// Kernel work planned by `network_prepare` for `network_plumb`.
#[derive(Default)]
pub(crate) struct Plumbing {
    /// The container's own namespace (None: host's or another container's).
    pub(super) netns: Option<PathBuf>,
    /// Veths to make: (network ID, endpoint).
    pub(super) endpoints: Vec<(String, EndpointSpec)>,
}

pub(super) fn requested_ip(ep: &EndpointSettings) -> Result<Option<Ipv4Addr>> {
    match ep
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| EngineError::invalid_argument(format!("invalid IPv4 address: {s}"))),
    }
}

/// `name:alias` links as (alias, target); a bare `name` is its own alias.
pub(super) fn links_of(ep: &EndpointSettings) -> Vec<(String, String)> {
    ep.links
        .iter()
        .flatten()
        .map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            (
                alias.trim_start_matches('/').to_string(),
                target.trim_start_matches('/').to_string(),
            )
        })
        .collect()
}

/// A container's `--dns` servers (else the daemon's `dns`), for the
/// embedded DNS to forward to.
pub(super) fn own_dns_servers(
    rec: &ContainerRecord,
    daemon: &[String],
) -> Vec<std::net::SocketAddr> {
    match rec.host_config.dns.as_deref() {
        Some(own) if !own.is_empty() => pier_network::dns::parse_servers(own),
        _ => pier_network::dns::parse_servers(daemon),
    }
}

fn endpoint_id() -> String {
    (random_id() + &random_id())[..64].to_string()
}

impl NetworkService {
    /// Leases an address on network `name` and records the endpoint; the
    /// veth is made now, or added to `later` for `Engine::network_plumb`.
    pub(super) async fn attach_endpoint(
        &self,
        rec: &mut ContainerRecord,
        name: &str,
        index: usize,
        later: Option<&mut Plumbing>,
    ) -> Result<()> {
        let n = self.find(name)?;
        let spec = n.spec().ok_or_else(|| {
            EngineError::invalid_argument(format!("network {name} cannot take endpoints"))
        })?;
        let req = rec.network.requested.get(name).cloned().unwrap_or_default();
        let want = requested_ip(&req)?;
        let ip = {
            let mut leases = self.leases();
            let used = leases.entry(n.id.clone()).or_default();
            let mut taken = used.clone();
            taken.extend(n.reserved.iter().copied());
            let pool = if want.is_none() {
                n.ip_range.unwrap_or(spec.subnet)
            } else {
                spec.subnet
            };
            let ip = pier_network::ipam::allocate(&pool, spec.gateway, &taken, want)?;
            used.insert(ip);
            ip
        };
        let mac = req
            .mac_address
            .as_deref()
            .filter(|m| !m.is_empty())
            .and_then(link::parse_mac)
            .unwrap_or_else(|| link::mac_for_ip(ip));
        let ep = EndpointSpec {
            ifname: format!("eth{index}"),
            host_veth: format!("veth{}", &random_id()[..7]),
            ip,
            mac,
            default_route: index == 0,
        };
        let netns = PathBuf::from(&rec.network.sandbox_key);
        match later {
            Some(p) => p.endpoints.push((n.id.clone(), ep.clone())),
            None => {
                if let Err(e) = self.ctl.attach(&netns, &n.id, &ep).await {
                    self.release(&n.id, ip);
                    return Err(EngineError::from(e));
                }
            }
        }
        let aliases = req.aliases.clone().unwrap_or_default();
        let dns_names = if spec.dns {
            let mut v = vec![rec.name.clone(), rec.id[..12].to_string()];
            v.extend(aliases.iter().cloned());
            v
        } else {
            Vec::new()
        };
        if spec.dns {
            self.ctl.set_names(&n.id, &rec.id, &dns_names, ip);
            self.ctl.set_links(&n.id, &rec.id, &links_of(&req));
            self.ctl
                .set_upstreams(&n.id, &rec.id, ip, &own_dns_servers(rec, &self.daemon_dns));
            if index == 0 {
                rec.network.dns_server = Some(spec.gateway.to_string());
            }
        }
        rec.network.attached.insert(
            name.to_string(),
            Attached {
                network_id: n.id.clone(),
                endpoint_id: endpoint_id(),
                ip: ip.to_string(),
                prefix: spec.subnet.prefix,
                gateway: spec.gateway.to_string(),
                mac: link::format_mac(&mac),
                host_veth: ep.host_veth,
                ifname: ep.ifname,
                aliases,
                dns_names,
            },
        );
        Ok(())
    }

    pub(super) fn release(&self, net_id: &str, ip: Ipv4Addr) {
        if let Some(s) = self.leases().get_mut(net_id) {
            s.remove(&ip);
        }
    }

    pub(super) async fn detach_endpoint(&self, id: &str, a: &Attached) {
        self.ctl.clear_names(&a.network_id, id);
        if let Err(e) = self.ctl.detach(&a.host_veth).await {
            tracing::warn!("removing {} of {id}: {e}", a.host_veth);
        }
        if let Ok(ip) = a.ip.parse() {
            self.release(&a.network_id, ip);
        }
    }

    pub(super) fn detach_endpoint_in_background(&self, id: &str, a: Attached) {
        self.ctl.clear_names(&a.network_id, id);
        let leases = self.leases.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let r = match link::Netlink::current() {
                Ok(nl) => nl.delete_link(&a.host_veth).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!("removing {} of {id}: {e}", a.host_veth);
            }
            if let Ok(ip) = a.ip.parse::<Ipv4Addr>()
                && let Some(s) = leases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&a.network_id)
            {
                s.remove(&ip);
            }
        });
    }
}
