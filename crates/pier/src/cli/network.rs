//! `pier network create|ls|inspect|rm|prune|connect|disconnect`.

use super::container::{confirm, strings};
use super::inspect::{inspect, InspectArgs};
use super::opts::{kv, labels_map};
use super::ps::{filters_json, label_hook, labels_string};
use super::volume::{natural_cmp, string_map};
use super::{print, println, Exit};
use crate::format::table::Format;
use crate::format::units::{go_time_string, short_id};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use pier_client::{query, Client};
use serde_json::{json, Map, Value};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(name = "ls", visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectOneArgs),
    /// Remove one or more networks
    #[command(visible_aliases = ["remove"])]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct InspectOneArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Driver options for the network
    #[arg(long = "driver-opt")]
    pub driver_opt: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

/// The IPAM config docker sends for `--subnet`/`--gateway`/`--ip-range`:
/// each gateway and range belongs to the subnet that contains it.
fn ipam_configs(subnets: &[String], gateways: &[String], ranges: &[String]) -> Result<Vec<Value>> {
    if subnets.is_empty() && (!gateways.is_empty() || !ranges.is_empty()) {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let mut out: Vec<Map<String, Value>> = subnets
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("Subnet".into(), Value::String(s.clone()));
            m
        })
        .collect();
    for (key, vals) in [("Gateway", gateways), ("IPRange", ranges)] {
        for v in vals {
            let i = match subnets.len() {
                1 => 0,
                _ => subnets
                    .iter()
                    .position(|s| subnet_contains(s, v))
                    .ok_or_else(|| {
                        anyhow::anyhow!("no matching subnet for {} {v}", key.to_lowercase())
                    })?,
            };
            if out[i].contains_key(key) {
                bail!(
                    "cannot configure multiple {}s for the same subnet",
                    key.to_lowercase()
                );
            }
            out[i].insert(key.into(), Value::String(v.clone()));
        }
    }
    Ok(out.into_iter().map(Value::Object).collect())
}

/// Whether an IPv4 address (or the start of a CIDR range) lies in `subnet`.
fn subnet_contains(subnet: &str, addr: &str) -> bool {
    let parse = |s: &str| s.parse::<std::net::Ipv4Addr>().ok().map(u32::from);
    let Some((net, bits)) = subnet.split_once('/') else {
        return false;
    };
    let (Some(net), Ok(bits)) = (parse(net), bits.parse::<u32>()) else {
        return false;
    };
    let Some(a) = parse(addr.split('/').next().unwrap_or("")) else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits.min(32))
    };
    a & mask == net & mask
}

fn network_header() -> Value {
    json!({
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
    })
}

fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let created = n["Created"]
        .as_str()
        .and_then(|c| {
            time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| go_time_string(t.unix_timestamp()))
        .unwrap_or_default();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": n["Name"].as_str().unwrap_or(""),
        "Driver": n["Driver"].as_str().unwrap_or(""),
        "Scope": n["Scope"].as_str().unwrap_or(""),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels_string(&n["Labels"]),
        "CreatedAt": created,
    })
}

pub async fn network(client: &Client, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => create(client, a).await,
        NetworkCmd::Ls(a) => ls(client, a).await,
        NetworkCmd::Inspect(a) => {
            let a = InspectArgs {
                format: a.format,
                size: false,
                typ: Some("network".into()),
                names: a.names,
            };
            inspect(client, a).await
        }
        NetworkCmd::Rm(a) => rm(client, a).await,
        NetworkCmd::Prune(a) => prune(client, a).await,
        NetworkCmd::Connect(a) => connect(client, a).await,
        NetworkCmd::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            let resp = client
                .post(&format!("/networks/{}/disconnect", a.network), Some(&body))
                .await?;
            let _ = pier_client::read_body(resp).await?;
            Ok(0)
        }
    }
}

fn pairs_map(items: &[String], what: &str) -> Result<Value> {
    let mut m = std::collections::HashMap::new();
    for o in items {
        let (k, v) = kv(o, what)?;
        m.insert(k, v);
    }
    Ok(string_map(m))
}

fn create_body(a: &CreateArgs) -> Result<Value> {
    let config = ipam_configs(&a.subnet, &a.gateway, &a.ip_range)?;
    Ok(json!({
        "Name": a.name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "Options": pairs_map(&a.opt, "option")?,
        "Labels": string_map(labels_map(&a.label)),
        "IPAM": {
            "Driver": a.ipam_driver,
            "Config": config,
            "Options": pairs_map(&a.ipam_opt, "ipam option")?,
        },
    }))
}

async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    let body = create_body(&a)?;
    let v: Value = client.post_json("/networks/create", Some(&body)).await?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("{w}");
    }
    println(v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

async fn ls(client: &Client, a: LsArgs) -> Result<i32> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else {
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into()
    };
    let fmt = Format::parse(&format)?;
    let q = filters_json(&a.filter)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let mut nets: Vec<Value> = client.get_json(&format!("/networks{q}")).await?;
    nets.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = nets.iter().map(|n| network_row(n, !a.no_trunc)).collect();
    print(&fmt.render(&network_header(), &rows, &label_hook)?);
    Ok(0)
}

async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.networks {
        match client.delete(&format!("/networks/{n}")).await {
            Ok(_) => println(n),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(0)
}

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let q = filters_json(&a.filter)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = client
        .post_json::<Value, ()>(&format!("/networks/prune{q}"), None)
        .await?;
    let deleted = strings(&v["NetworksDeleted"]);
    if !deleted.is_empty() {
        let mut out = String::from("Deleted Networks:\n");
        for n in deleted {
            out.push_str(&n);
            out.push('\n');
        }
        out.push('\n');
        print(&out);
    }
    Ok(0)
}

fn connect_body(a: &ConnectArgs) -> Result<Value> {
    let mut ipam = Map::new();
    if let Some(ip) = a.ip.as_ref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv4Address".into(), Value::String(ip.clone()));
    }
    if let Some(ip) = a.ip6.as_ref().filter(|s| !s.is_empty()) {
        ipam.insert("IPv6Address".into(), Value::String(ip.clone()));
    }
    if !a.link_local_ip.is_empty() {
        ipam.insert("LinkLocalIPs".into(), Value::from(a.link_local_ip.clone()));
    }
    let mut ep = Map::new();
    if !ipam.is_empty() {
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    if !a.alias.is_empty() {
        ep.insert("Aliases".into(), Value::from(a.alias.clone()));
    }
    if !a.link.is_empty() {
        ep.insert("Links".into(), Value::from(a.link.clone()));
    }
    if !a.driver_opt.is_empty() {
        ep.insert("DriverOpts".into(), pairs_map(&a.driver_opt, "driver-opt")?);
    }
    Ok(json!({"Container": a.container, "EndpointConfig": ep}))
}

async fn connect(client: &Client, a: ConnectArgs) -> Result<i32> {
    let body = connect_body(&a)?;
    let resp = client
        .post(&format!("/networks/{}/connect", a.network), Some(&body))
        .await?;
    let _ = pier_client::read_body(resp).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use clap::Parser;

    fn parse(line: &str) -> NetworkCmd {
        match Cli::try_parse_from(line.split_whitespace()) {
            Ok(Cli {
                cmd: Some(Cmd::Network(n)),
                ..
            }) => n,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn create_request_like_docker() {
        let NetworkCmd::Create(a) = parse(
            "pier network create --driver bridge --subnet 10.10.0.0/16 --gateway 10.10.0.1 \
             --internal --label a=b -o com.docker.network.bridge.name=br-x backend",
        ) else {
            panic!()
        };
        let b = create_body(&a).unwrap();
        assert_eq!(b["Name"], "backend");
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(b["Internal"], true);
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.10.0.0/16", "Gateway": "10.10.0.1"}])
        );
        assert_eq!(b["Options"]["com.docker.network.bridge.name"], "br-x");
        let NetworkCmd::Create(a) = parse("pier network create n") else {
            panic!()
        };
        let b = create_body(&a).unwrap();
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(b["IPAM"]["Config"], json!([]));
    }

    #[test]
    fn gateways_find_their_subnet() {
        let s = vec!["10.1.0.0/16".to_string(), "10.2.0.0/16".to_string()];
        let c = ipam_configs(&s, &["10.2.0.1".into()], &[]).unwrap();
        assert_eq!(c[1]["Gateway"], "10.2.0.1");
        assert!(c[0].get("Gateway").is_none());
        assert!(ipam_configs(&[], &["10.2.0.1".into()], &[]).is_err());
        assert!(ipam_configs(&s, &["192.168.0.1".into()], &[]).is_err());
        assert!(subnet_contains("10.0.0.0/8", "10.255.1.2"));
        assert!(!subnet_contains("10.0.0.0/8", "11.0.0.1"));
    }

    #[test]
    fn connect_request() {
        let NetworkCmd::Connect(a) =
            parse("pier network connect --alias db --alias pg --ip 10.1.0.5 backend web")
        else {
            panic!()
        };
        assert_eq!(
            connect_body(&a).unwrap(),
            json!({"Container": "web", "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["db", "pg"]}})
        );
        let NetworkCmd::Connect(a) = parse("pier network connect n c") else {
            panic!()
        };
        assert_eq!(
            connect_body(&a).unwrap(),
            json!({"Container": "c", "EndpointConfig": {}})
        );
    }

    #[test]
    fn ls_rows() {
        let n = json!({"Name": "bridge", "Id": "0123456789abcdef0123", "Driver": "bridge",
                       "Scope": "local", "EnableIPv6": false, "Internal": false, "Labels": {}});
        let f = Format::parse("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}").unwrap();
        let out = f
            .render(&network_header(), &[network_row(&n, true)], &label_hook)
            .unwrap();
        assert_eq!(
            out,
            "NETWORK ID     NAME      DRIVER    SCOPE\n0123456789ab   bridge    bridge    local\n"
        );
        assert_eq!(network_row(&n, false)["ID"], "0123456789abcdef0123");
    }

    #[test]
    fn subcommands_parse() {
        for line in [
            "pier network ls -q --no-trunc -f driver=bridge --format {{.Name}}",
            "pier network list",
            "pier network inspect -f {{.Id}} -v a b",
            "pier network rm a b",
            "pier network remove -f a",
            "pier network prune -f --filter until=1h",
            "pier network disconnect -f n c",
        ] {
            parse(line);
        }
        assert!(Cli::try_parse_from(["pier", "network", "connect", "n"]).is_err());
        assert!(Cli::try_parse_from(["pier", "network", "create"]).is_err());
    }
}
