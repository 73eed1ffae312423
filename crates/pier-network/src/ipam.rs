//! IPv4 address management: subnets, gateways, per-network leases.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// The default bridge's subnet: not Docker's 172.17/16, so Pier can run
/// beside a host's docker0.
pub const DEFAULT_BRIDGE_SUBNET: Subnet = Subnet {
    addr: Ipv4Addr::new(172, 18, 0, 0),
    prefix: 16,
};

/// An IPv4 network: `addr/prefix` with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 30 {
            return Err(NetError::InvalidArgument(format!(
                "invalid subnet {addr}/{prefix}: too small for containers"
            )));
        }
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The network of `addr/prefix` whatever its size (a host route's /32
    /// too), for overlap checks.
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    pub fn network(&self) -> u32 {
        u32::from(self.addr)
    }

    pub fn broadcast(&self) -> u32 {
        self.network() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.network()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        self.network() & mask(p) == other.network() & mask(p)
    }

    /// The first usable address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + 1)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || NetError::InvalidArgument(format!("invalid subnet {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A range networks are cut from: `base` split into subnets of `size` bits
/// (dockerd's `--default-address-pool base=172.30.0.0/16,size=24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Subnet,
    pub size: u8,
}

impl AddressPool {
    /// The pool's subnets, lowest first.
    fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        let step = 1u64 << (32 - u32::from(self.size));
        let count = 1u64 << (self.size - self.base.prefix);
        (0..count).map(move |i| Subnet {
            addr: Ipv4Addr::from((u64::from(self.base.network()) + i * step) as u32),
            prefix: self.size,
        })
    }
}

impl FromStr for AddressPool {
    type Err = NetError;
    /// `base=CIDR,size=N`, as dockerd takes it.
    fn from_str(s: &str) -> Result<AddressPool> {
        let bad = |why: &str| {
            NetError::InvalidArgument(format!("invalid default address pool {s:?}: {why}"))
        };
        let (mut base, mut size) = (None, None);
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(v.parse::<Subnet>().map_err(|_| bad("bad base"))?),
                Some(("size", v)) => size = Some(v.parse::<u8>().map_err(|_| bad("bad size"))?),
                _ => return Err(bad("expected base=CIDR,size=N")),
            }
        }
        let (Some(base), Some(size)) = (base, size) else {
            return Err(bad("both base and size are needed"));
        };
        AddressPool::new(base, size).map_err(|e| bad(&e.to_string()))
    }
}

impl AddressPool {
    pub fn new(base: Subnet, size: u8) -> Result<AddressPool> {
        if size < base.prefix || size > 30 {
            return Err(NetError::InvalidArgument(format!(
                "size {size} must be between the base's prefix length {} and 30",
                base.prefix
            )));
        }
        Ok(AddressPool { base, size })
    }
}

/// Docker's default local pools: 172.17.0.0/16 to 172.31.0.0/16, then
/// 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31u8)
        .map(|b| AddressPool {
            base: Subnet {
                addr: Ipv4Addr::new(172, b, 0, 0),
                prefix: 16,
            },
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: Subnet {
            addr: Ipv4Addr::new(192, 168, 0, 0),
            prefix: 16,
        },
        size: 20,
    });
    v
}

/// docker0's usual home: left to Docker when Pier uses the default pools, so
/// a Docker engine started later on the same host keeps its usual subnet.
const DOCKER0_SUBNET: Subnet = Subnet {
    addr: Ipv4Addr::new(172, 17, 0, 0),
    prefix: 16,
};

/// Picks the first subnet of `pools` (the defaults when empty) that overlaps
/// none of `taken`: the other networks' subnets, and every route and
/// interface address of the namespace, as Docker skips them.
pub fn pick_subnet(pools: &[AddressPool], taken: &[Subnet]) -> Result<Subnet> {
    let defaults;
    let pools = if pools.is_empty() {
        defaults = default_pools();
        &defaults[..]
    } else {
        pools
    };
    let reserve_docker0 = pools == default_pools();
    let taken_by = |s: &Subnet| {
        taken.iter().any(|t| t.overlaps(s)) || (reserve_docker0 && s.overlaps(&DOCKER0_SUBNET))
    };
    let found = pools
        .iter()
        .flat_map(|p| p.subnets())
        .find(|s| !taken_by(s));
    found.ok_or_else(|| {
        NetError::Conflict(
            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
        )
    })
}

/// Checks a user-given gateway against its subnet.
pub fn check_gateway(subnet: &Subnet, gw: Ipv4Addr) -> Result<()> {
    let g = u32::from(gw);
    if !subnet.contains(gw) || g == subnet.network() || g == subnet.broadcast() {
        return Err(NetError::InvalidArgument(format!(
            "Invalid gateway {gw} for subnet {subnet}"
        )));
    }
    Ok(())
}

/// Leases an address of `subnet`: `requested` if given and free, else the
/// lowest free one. The network, broadcast and gateway addresses and `used`
/// ones are never handed out.
pub fn allocate(
    subnet: &Subnet,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let reserved = |ip: Ipv4Addr| {
        let n = u32::from(ip);
        n == subnet.network() || n == subnet.broadcast() || ip == gateway
    };
    if let Some(ip) = requested {
        if !subnet.contains(ip) || reserved(ip) {
            return Err(NetError::InvalidArgument(format!(
                "Address {ip} does not belong to the usable range of subnet {subnet}"
            )));
        }
        if used.contains(&ip) {
            return Err(NetError::Conflict(format!("Address already in use: {ip}")));
        }
        return Ok(ip);
    }
    (subnet.network() + 1..subnet.broadcast())
        .map(Ipv4Addr::from)
        .find(|ip| !reserved(*ip) && !used.contains(ip))
        .ok_or_else(|| {
            NetError::Conflict(format!(
                "no available IPv4 addresses on network with subnet {subnet}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_normalise() {
        let s: Subnet = "10.5.3.7/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.5.0.0/16");
        assert!(s.contains(Ipv4Addr::new(10, 5, 200, 1)));
        assert!(!s.contains(Ipv4Addr::new(10, 6, 0, 1)));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 5, 0, 1));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Subnet>(&j).unwrap(), s);
    }

    #[test]
    fn pool_skips_taken() {
        let a = pick_subnet(&[], &[DEFAULT_BRIDGE_SUBNET]).unwrap();
        assert_eq!(a.to_string(), "172.19.0.0/16");
        let b = pick_subnet(
            &[],
            &[DEFAULT_BRIDGE_SUBNET, a, "172.20.1.0/24".parse().unwrap()],
        )
        .unwrap();
        assert_eq!(b.to_string(), "172.21.0.0/16");
        // A host route covering every 172 pool sends it to 192.168/20s; a
        // /24 route inside 192.168.0.0/20 skips that block too.
        let wide: Subnet = "172.16.0.0/12".parse().unwrap();
        let c = pick_subnet(&[], &[wide, "192.168.1.0/24".parse().unwrap()]).unwrap();
        assert_eq!(c.to_string(), "192.168.16.0/20");
    }

    #[test]
    fn configured_pools() {
        let p: AddressPool = "base=10.10.0.0/16,size=24".parse().unwrap();
        assert_eq!(p.base.to_string(), "10.10.0.0/16");
        let taken: Vec<Subnet> = vec!["10.10.0.0/24".parse().unwrap()];
        // Configured pools are used as given (no docker0 reservation).
        assert_eq!(
            pick_subnet(&[p], &taken).unwrap().to_string(),
            "10.10.1.0/24"
        );
        let full = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(matches!(
            pick_subnet(&[p], &full),
            Err(NetError::Conflict(_))
        ));
        for bad in [
            "base=10.0.0.0/16",
            "size=24",
            "base=10.0.0.0/16,size=8",
            "base=10.0.0.0/16,size=31",
            "base=x,size=24",
            "base=10.0.0.0/16,size=24,foo=1",
        ] {
            assert!(bad.parse::<AddressPool>().is_err(), "{bad}");
        }
        let q: AddressPool = "size=16,base=172.80.0.0/12".parse().unwrap();
        assert_eq!(q.subnets().count(), 16);
    }

    #[test]
    fn allocation() {
        let s: Subnet = "10.1.0.0/29".parse().unwrap();
        let gw = s.first_host();
        let mut used = HashSet::new();
        let a = allocate(&s, gw, &used, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 0, 2));
        used.insert(a);
        assert_eq!(
            allocate(&s, gw, &used, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 3)
        );
        assert!(matches!(
            allocate(&s, gw, &used, Some(a)),
            Err(NetError::Conflict(_))
        ));
        assert!(allocate(&s, gw, &used, Some(Ipv4Addr::new(10, 1, 0, 7))).is_err());
        assert!(allocate(&s, gw, &used, Some(gw)).is_err());
        for i in 3..7 {
            used.insert(Ipv4Addr::new(10, 1, 0, i));
        }
        assert!(allocate(&s, gw, &used, None).is_err());
        assert!(check_gateway(&s, Ipv4Addr::new(10, 1, 0, 7)).is_err());
        assert!(check_gateway(&s, Ipv4Addr::new(10, 1, 0, 6)).is_ok());
    }
}
