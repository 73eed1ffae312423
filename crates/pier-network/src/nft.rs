//! NAT and forwarding rules in one nftables table, `ip pier`.
//!
//! The whole table is rendered from the current state and replaced in one
//! `nft -f -` transaction on every change, so the kernel's rules are always
//! exactly what the records say (after a daemon restart too), and nothing
//! outside the table is touched.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::error::{NetError, Result};
use crate::ipam::Subnet;

/// The table of a daemon whose default bridge is `pier0`. A daemon with
/// another `--bridge` shares the namespace with it: its table is
/// `pier-<bridge>`, so neither replaces the other's rules.
pub const TABLE: &str = "pier";

/// The table of the daemon whose default bridge is `default_bridge` (a
/// checked interface name, which makes a valid nft identifier after the
/// prefix).
pub fn table_for(default_bridge: &str) -> String {
    if default_bridge == "pier0" {
        TABLE.to_string()
    } else {
        let safe: String = default_bridge
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        format!("{TABLE}-{safe}")
    }
}

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// No traffic in or out of the bridge (`--internal`).
    pub internal: bool,
}

/// A published port, DNAT'ed to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: String,
    /// None: every local address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    /// The bridge the container sits on: its own traffic to the port goes
    /// through the proxy instead (no hairpin NAT needed).
    pub bridge: String,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

/// The script that replaces `table` with these rules.
pub fn render(table: &str, bridges: &[BridgeRules], ports: &[PortRule]) -> String {
    let mut s = String::new();
    let t = table;
    // `add` then `delete` makes the replace work whether or not it existed.
    s.push_str(&format!(
        "add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n"
    ));
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n    fib daddr type local jump ports_in\n  }\n");
    // Locally made connections to the host's own non-loopback addresses;
    // loopback ones reach the userland proxy (no route_localnet needed).
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    ip daddr != 127.0.0.0/8 fib daddr type local jump ports_out\n  }\n");
    s.push_str("  chain ports_in {\n");
    for p in ports {
        s.push_str(&format!("    {}\n", port_rule(p, true)));
    }
    s.push_str("  }\n  chain ports_out {\n");
    for p in ports {
        s.push_str(&format!("    {}\n", port_rule(p, false)));
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n",
    );
    for b in bridges.iter().filter(|b| !b.internal) {
        s.push_str(&format!(
            "    ip saddr {} oifname != {} masquerade\n",
            b.subnet,
            quote(&b.bridge)
        ));
    }
    s.push_str("  }\n");
    s.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    for b in bridges.iter().filter(|b| b.internal) {
        let br = quote(&b.bridge);
        s.push_str(&format!("    iifname {br} oifname != {br} drop\n"));
        s.push_str(&format!("    oifname {br} iifname != {br} drop\n"));
    }
    // A published port is public: a container on another network reaching it
    // through a host address was DNAT'ed by ports_in and may cross (both
    // directions belong to that connection).
    if !ports.is_empty() {
        s.push_str("    ct status dnat accept\n");
    }
    for b in bridges {
        let br = quote(&b.bridge);
        // Networks are isolated from each other, as Docker's are.
        for o in bridges.iter().filter(|o| o.bridge != b.bridge) {
            s.push_str(&format!(
                "    iifname {br} oifname {} drop\n",
                quote(&o.bridge)
            ));
        }
    }
    s.push_str("  }\n}\n");
    s
}

fn port_rule(p: &PortRule, inbound: bool) -> String {
    let mut r = String::new();
    if let Some(ip) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
        r.push_str(&format!("ip daddr {ip} "));
    }
    if inbound {
        r.push_str(&format!("iifname != {} ", quote(&p.bridge)));
    }
    r.push_str(&format!(
        "{} dport {} dnat to {}:{}",
        p.proto, p.host_port, p.container_ip, p.container_port
    ));
    r
}

/// Runs `nft -f -` with `script`.
pub fn run(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::io("run nft", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::io("write nft script", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io("wait for nft", e))?;
    if !out.status.success() {
        return Err(NetError::Nft(format!(
            "{}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Replaces `table` with these rules.
pub fn apply(table: &str, bridges: &[BridgeRules], ports: &[PortRule]) -> Result<()> {
    run(&render(table, bridges, ports))
}

/// Removes `table` (missing is fine).
pub fn remove_table(table: &str) -> Result<()> {
    let t = table;
    run(&format!("add table ip {t}\ndelete table ip {t}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_isolation_and_ports() {
        let b = vec![
            BridgeRules {
                bridge: "pier0".into(),
                subnet: "172.18.0.0/16".parse().unwrap(),
                internal: false,
            },
            BridgeRules {
                bridge: "br-1".into(),
                subnet: "172.19.0.0/16".parse().unwrap(),
                internal: true,
            },
        ];
        let p = vec![PortRule {
            proto: "tcp".into(),
            host_ip: None,
            host_port: 8080,
            container_ip: "172.18.0.2".parse().unwrap(),
            container_port: 80,
            bridge: "pier0".into(),
        }];
        let s = render(TABLE, &b, &p);
        assert!(s.contains("table ip pier {"));
        assert_eq!(table_for("pier1"), "pier-pier1");
        assert!(s.contains("ip saddr 172.18.0.0/16 oifname != \"pier0\" masquerade"));
        assert!(!s.contains("172.19.0.0/16 oifname"));
        assert!(s.contains("iifname \"pier0\" oifname \"br-1\" drop"));
        assert!(s.contains("iifname \"br-1\" oifname != \"br-1\" drop"));
        assert!(s.contains("iifname != \"pier0\" tcp dport 8080 dnat to 172.18.0.2:80"));
        assert!(s.contains("    tcp dport 8080 dnat to 172.18.0.2:80"));
        // Published ports cross network isolation, internal networks stay shut.
        let fwd = &s[s.find("chain forward").unwrap()..];
        let ct = fwd.find("ct status dnat accept").unwrap();
        assert!(
            fwd.find("iifname \"br-1\" oifname != \"br-1\" drop")
                .unwrap()
                < ct
        );
        assert!(ct < fwd.find("iifname \"pier0\" oifname \"br-1\" drop").unwrap());
    }
}
