//! Links over rtnetlink: bridges, veth pairs, addresses, routes.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetError, Result};

const ENOENT: i32 = 2;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

/// A route-netlink connection bound to one network namespace (the one the
/// socket was opened in). The connection task stops when this is dropped.
pub struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// A connection in the calling thread's namespace (the daemon's).
    /// Must be called inside a tokio runtime.
    pub fn current() -> Result<Netlink> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetError::io("open netlink socket", e))?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(conn),
        })
    }

    /// A connection in the namespace pinned at `path`: the socket is opened
    /// on a dedicated thread that joined it, and keeps talking to that
    /// namespace from any thread afterwards.
    pub fn in_netns(path: &Path) -> Result<Netlink> {
        let ns = crate::netns::open(path)?;
        let rt = tokio::runtime::Handle::current();
        let what = path.display().to_string();
        let (conn, handle) = std::thread::spawn(move || -> Result<_> {
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::io(format!("setns {what}"), e.into()))?;
            let _g = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetError::io(format!("open netlink socket in {what}"), e))?;
            Ok((conn, handle))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetError::io(
                "netlink thread",
                std::io::Error::other("panicked"),
            ))
        })?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(conn),
        })
    }

    /// The index of link `name`, or None.
    pub async fn index(&self, name: &str) -> Result<Option<u32>> {
        let r = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match r {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = NetError::netlink(format!("get link {name}"), e);
                match e.errno() {
                    Some(ENODEV) | Some(ENOENT) => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }

    async fn must_index(&self, name: &str) -> Result<u32> {
        self.index(name)
            .await?
            .ok_or_else(|| NetError::NotFound(format!("link {name} not found")))
    }

    /// Makes sure bridge `name` exists, is up and carries `addr/prefix`.
    pub async fn ensure_bridge(&self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<u32> {
        if self.index(name).await?.is_none()
            && let Err(e) = self
                .handle
                .link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
        {
            let e = NetError::netlink(format!("create bridge {name}"), e);
            if e.errno() != Some(EEXIST) {
                return Err(e);
            }
        }
        let idx = self.must_index(name).await?;
        self.add_address(idx, name, addr, prefix).await?;
        self.set_up(idx, name).await?;
        Ok(idx)
    }

    async fn add_address(&self, idx: u32, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        match self
            .handle
            .address()
            .add(idx, IpAddr::V4(addr), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetError::netlink(format!("add {addr}/{prefix} to {name}"), e);
                if e.errno() == Some(EEXIST) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn set_up(&self, idx: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("set {name} up"), e))
    }

    /// Deletes link `name` (a veth takes its peer with it). Missing is fine.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(idx) = self.index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = NetError::netlink(format!("delete link {name}"), e);
                match e.errno() {
                    Some(ENODEV) | Some(ENOENT) => Ok(()),
                    _ => Err(e),
                }
            }
        }
    }

    /// Brings up `lo` (in a fresh namespace it starts down).
    pub async fn loopback_up(&self) -> Result<()> {
        let idx = self.must_index("lo").await?;
        self.set_up(idx, "lo").await
    }

    /// Creates a veth pair in one request: `host` here, plugged into bridge
    /// index `bridge` and up; its peer born inside namespace `ns` as `ifname`
    /// with address `mac` (still down: the kernel cannot open a veth end
    /// before its pair is complete). A peer made in place never moves between
    /// namespaces, which would cost an RCU grace period and a re-registration.
    pub async fn veth_into_netns(
        &self,
        host: &str,
        bridge: u32,
        ns: &File,
        ifname: &str,
        mac: [u8; 6],
    ) -> Result<()> {
        let peer = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(ifname.to_string())
            .address(mac.to_vec())
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let msg = rtnetlink::LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("create veth {host}/{ifname}"), e))
    }

    /// Inside a container's namespace: gives `ifname` its address, brings it
    /// up and, when asked, adds the default route via `gateway`.
    pub async fn configure_interface(
        &self,
        ifname: &str,
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let idx = self.must_index(ifname).await?;
        self.add_address(idx, ifname, addr, prefix).await?;
        self.set_up(idx, ifname).await?;
        if let Some(gw) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(idx)
                .build();
            if let Err(e) = self.handle.route().add(route).execute().await {
                let e = NetError::netlink(format!("default route via {gw}"), e);
                if e.errno() != Some(EEXIST) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The IPv4 ranges this namespace already uses: every main-table route
    /// but the default one, and every interface address's subnet. A new
    /// network on any of them would shadow or be shadowed by it.
    pub async fn used_ipv4_ranges(&self) -> Result<Vec<crate::ipam::Subnet>> {
        use rtnetlink::packet_route::address::AddressAttribute;
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
        let mut out = Vec::new();
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(r) = routes
            .try_next()
            .await
            .map_err(|e| NetError::netlink("list routes", e))?
        {
            let prefix = r.header.destination_prefix_length;
            if r.header.table != RouteHeader::RT_TABLE_MAIN || prefix == 0 {
                continue;
            }
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(dst)) = a {
                    out.push(crate::ipam::Subnet::containing(*dst, prefix));
                }
            }
        }
        let mut addrs = self.handle.address().get().execute();
        while let Some(a) = addrs
            .try_next()
            .await
            .map_err(|e| NetError::netlink("list addresses", e))?
        {
            for attr in &a.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = attr
                    && !ip.is_loopback()
                {
                    out.push(crate::ipam::Subnet::containing(*ip, a.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// The MAC address of link `name`.
    pub async fn mac_of(&self, name: &str) -> Result<Option<[u8; 6]>> {
        let r = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        let Ok(Some(m)) = r else {
            return Ok(None);
        };
        Ok(m.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(b) if b.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(b);
                Some(mac)
            }
            _ => None,
        }))
    }
}

/// Docker's MAC for an IPv4 address: 02:42 followed by the address bytes.
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// Turns on IPv4 forwarding in the daemon's namespace (containers' traffic
/// crosses from their bridge to the uplink).
pub fn enable_forwarding() -> Result<()> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p).is_ok_and(|s| s.trim() == "1") {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::io(format!("write {p}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        let m = mac_for_ip(Ipv4Addr::new(172, 18, 0, 2));
        assert_eq!(format_mac(&m), "02:42:ac:12:00:02");
        assert_eq!(parse_mac("02:42:AC:12:00:02"), Some(m));
        assert_eq!(parse_mac("02:42:ac:12:00"), None);
        assert_eq!(parse_mac("zz:42:ac:12:00:02"), None);
    }
}
