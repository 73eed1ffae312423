//! The daemon's network settings, dockerd's `--bridge`, `--bip` and
//! `--default-address-pool` (and the daemon.json keys of the same names).

use std::net::Ipv4Addr;

use crate::error::{NetError, Result};
use crate::ipam::{AddressPool, Subnet};

/// How the daemon lays out its networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// `--bridge`: the default bridge network's interface (None: `pier0`).
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's own address and its subnet.
    pub bip: Option<(Ipv4Addr, Subnet)>,
    /// `--default-address-pool`: where new networks' subnets come from
    /// (empty: Docker's defaults).
    pub default_address_pools: Vec<AddressPool>,
}

impl NetworkOptions {
    /// Checks and parses the settings as given on the command line.
    pub fn parse(
        bridge: Option<&str>,
        bip: Option<&str>,
        pools: &[String],
    ) -> Result<NetworkOptions> {
        let bridge = bridge.map(check_bridge_name).transpose()?;
        let bip = bip.map(parse_bip).transpose()?;
        let default_address_pools = pools
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<AddressPool>>>()?;
        Ok(NetworkOptions {
            bridge,
            bip,
            default_address_pools,
        })
    }
}

fn check_bridge_name(name: &str) -> Result<String> {
    if name == "none" {
        return Err(NetError::InvalidArgument(
            "not supported by Pier: --bridge none (a daemon without the default bridge network)"
                .into(),
        ));
    }
    if !valid_bridge_name(name) {
        return Err(NetError::InvalidArgument(format!(
            "invalid bridge name {name:?}: 1 to 15 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(name.to_string())
}

/// A bridge name Pier accepts: an interface name that is also safe to
/// write into nft and iptables-restore scripts unquoted.
pub fn valid_bridge_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

/// `--bip 10.20.0.1/24`: the bridge's address within its subnet.
fn parse_bip(s: &str) -> Result<(Ipv4Addr, Subnet)> {
    let bad = |why: &str| NetError::InvalidArgument(format!("invalid --bip {s:?}: {why}"));
    let (a, _) = s
        .split_once('/')
        .ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
    let ip: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
    let subnet: Subnet = s.parse().map_err(|e: NetError| bad(&e.to_string()))?;
    crate::ipam::check_gateway(&subnet, ip).map_err(|e| bad(&e.to_string()))?;
    Ok((ip, subnet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let o = NetworkOptions::parse(
            Some("pier1"),
            Some("10.77.0.1/24"),
            &["base=10.78.0.0/16,size=24".into()],
        )
        .unwrap();
        assert_eq!(o.bridge.as_deref(), Some("pier1"));
        let (ip, sn) = o.bip.unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(sn.to_string(), "10.77.0.0/24");
        assert_eq!(o.default_address_pools[0].size, 24);
        assert_eq!(
            NetworkOptions::parse(None, None, &[]).unwrap(),
            NetworkOptions::default()
        );
        for (b, ip) in [
            (Some("none"), None),
            (Some("a-name-that-is-too-long"), None),
            (Some("bad/name"), None),
            (None, Some("10.77.0.0/24")),
            (None, Some("10.77.0.1")),
            (None, Some("10.77.0.255/24")),
            (None, Some("nope/24")),
        ] {
            assert!(NetworkOptions::parse(b, ip, &[]).is_err(), "{b:?} {ip:?}");
        }
        assert!(NetworkOptions::parse(None, None, &["base=10.0.0.0/8".into()]).is_err());
    }
}
