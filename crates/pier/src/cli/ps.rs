//! `pier ps` / `pier container ls`.

use super::print;
use crate::format::table::Format;
use crate::format::units::{ellipsis, go_quote, human_size_prec, short_id, Clock};
use anyhow::Result;
use clap::Args;
use pier_client::{query, Client};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

/// `-f k=v` flags as the JSON `filters` query parameter.
pub fn filters_json(filters: &[String]) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for f in filters {
        let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    // Docker's filter encoding: {"key": {"value": true}}.
    let obj: Map<String, Value> = m
        .into_iter()
        .map(|(k, vs)| {
            (
                k,
                Value::Object(vs.into_iter().map(|v| (v, Value::Bool(true))).collect()),
            )
        })
        .collect();
    Some(Value::Object(obj).to_string())
}

/// Docker's `DisplayablePorts`: groups consecutive ports, host mappings last.
pub fn displayable_ports(ports: &[Value]) -> String {
    struct P {
        ip: String,
        addr: Option<std::net::IpAddr>,
        private: u64,
        public: u64,
        typ: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            addr: p["IP"].as_str().and_then(|ip| ip.parse().ok()),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            typ: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    // As addresses compare (IPv4 before IPv6), not as strings.
    ps.sort_by(|a, b| {
        (a.private, a.addr, a.public, &a.typ).cmp(&(b.private, b.addr, b.public, &b.typ))
    });
    let join_host_port = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let form_group = |key: &str, first: u64, last: u64| -> String {
        let (ip, typ) = match key.rsplit_once('/') {
            Some((ip, t)) => (ip, t),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{typ}")
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ps {
        let mut key = p.typ.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let host = join_host_port(&p.ip, &p.public.to_string());
                host_mappings.push(format!("{host}->{}/{}", p.private, p.typ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.typ);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for g in &groups {
        result.push(form_group(&g.0, g.1, g.2));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Labels as Docker's formatter shows them: `k=v,k2=v2` (sorted).
pub fn labels_string(v: &Value) -> String {
    let mut items: Vec<String> = v
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    items.join(",")
}

/// `.Label "k"` on rows that carry `Labels` as `k=v,…`.
pub fn label_hook(dot: &Value, name: &str, args: &[Value]) -> Option<Value> {
    if name != "Label" {
        return None;
    }
    let want = args.first()?.as_str()?;
    let labels = dot.get("Labels")?.as_str()?;
    let v = labels
        .split(',')
        .find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == want)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_or_default();
    Some(Value::String(v))
}

/// Docker's `ContainerContext.Image`: truncated, an image ID is shortened and
/// a reference loses its digest (not its tag) and its `docker.io/library/`.
fn container_image(c: &Value, trunc: bool) -> String {
    let image = c["Image"].as_str().unwrap_or("");
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let image_id = c["ImageID"].as_str().unwrap_or("");
    if short_id(image_id) == short_id(image) {
        return short_id(image);
    }
    let named = image.split_once('@').map_or(image, |(n, _)| n);
    let familiar = named
        .strip_prefix("docker.io/library/")
        .or_else(|| named.strip_prefix("docker.io/"))
        .unwrap_or(named);
    familiar.to_string()
}

/// The format `ps` renders: `-q`, a `--format`, or the default table
/// (with SIZE for `-s`).
fn ps_format(a: &PsArgs) -> String {
    if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}".into()
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into()
    }
}

/// Whether a format shows sizes, so the daemon must compute them (Docker
/// detects a use of `.Size`; `json` marshals every field, `.Size` included).
pub fn format_uses(format: &str, field: &str) -> bool {
    let f = format.strip_prefix("table").unwrap_or(format).trim();
    f == "json" || f.contains("json .}}") || f.contains(&format!(".{field}"))
}

/// `ps` output for the daemon's container list.
pub fn render_ps(list: &[Value], a: &PsArgs, clock: Clock) -> Result<String> {
    let fmt = Format::parse(&ps_format(a))
        .map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?;
    let failed = |e| anyhow::anyhow!("failed to execute template: {e}");
    fmt.check(&container_row(&json!({}), true, clock), &label_hook)
        .map_err(failed)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| container_row(c, !a.no_trunc, clock))
        .collect();
    fmt.render(&container_header(), &rows, &label_hook)
        .map_err(failed)
}

/// The fields Docker's container formatter offers, keys sorted like its JSON.
pub fn container_row(c: &Value, trunc: bool, clock: Clock) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let command = c["Command"].as_str().unwrap_or("");
    let command = if trunc {
        go_quote(&ellipsis(command, 20))
    } else {
        go_quote(command)
    };
    let mut names: Vec<String> = str_list(&c["Names"])
        .into_iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    if trunc {
        names.retain(|n| !n.contains('/'));
        names.truncate(1);
    }
    let image = container_image(c, trunc);
    let created = c["Created"].as_i64().unwrap_or(0);
    let size = match (c["SizeRw"].as_i64(), c["SizeRootFs"].as_i64()) {
        (None, None) => String::new(),
        (rw, root) => {
            let srw = human_size_prec(rw.unwrap_or(0) as f64, 3);
            match root {
                Some(r) if r > 0 => format!("{srw} (virtual {})", human_size_prec(r as f64, 3)),
                _ => srw,
            }
        }
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("");
                    if trunc {
                        ellipsis(name, 15)
                    } else {
                        name.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let local_volumes = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["Driver"].as_str() == Some("local"))
                .count()
        })
        .unwrap_or(0);
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let status = c["Status"].as_str().unwrap_or("").to_string();
    json!({
        "Command": command,
        "CreatedAt": clock.time_string(created),
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Image": image,
        "Labels": labels_string(&c["Labels"]),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names.join(","),
        "Networks": networks.join(","),
        // Docker 28 lists the image's platform when the daemon sends its
        // manifest descriptor (API 1.48); Pier's API does not, so null.
        "Platform": Value::Null,
        "Ports": displayable_ports(c["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[])),
        "RunningFor": clock.ago(created),
        "Size": size,
        "State": c["State"].as_str().unwrap_or(""),
        "Status": status,
    })
}

pub fn container_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
    })
}

pub async fn ps(client: &Client, a: PsArgs) -> Result<i32> {
    if a.quiet && a.format.as_deref().is_some_and(|f| !f.is_empty()) {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let mut q = Vec::new();
    let limit = if a.latest { 1 } else { a.last };
    if a.all || limit > 0 {
        q.push(("all", "1".to_string()));
    }
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if a.size || (!a.quiet && format_uses(&ps_format(&a), "Size")) {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&a.filter) {
        q.push(("filters", f));
    }
    let list: Vec<Value> = client
        .get_json(&format!("/containers/json{}", query(&q)))
        .await?;
    print(&render_ps(&list, &a, Clock::System)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_like_docker() {
        let ports = vec![
            json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"PrivatePort": 443, "Type": "tcp"}),
            json!({"PrivatePort": 444, "Type": "tcp"}),
            json!({"PrivatePort": 53, "Type": "udp"}),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "53/udp, 443-444/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        let same = vec![
            json!({"IP": "::", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"}),
            json!({"IP": "10.0.0.1", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"}),
            json!({"IP": "9.0.0.1", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"}),
        ];
        assert_eq!(
            displayable_ports(&same),
            "9.0.0.1:80->80/tcp, 10.0.0.1:80->80/tcp, [::]:80->80/tcp"
        );
    }

    #[test]
    fn row_and_table() {
        let c = json!({
            "Id": "0123456789abcdef0123456789abcdef", "Names": ["/web"], "Image": "busybox",
            "ImageID": "sha256:ffff", "Command": "sh -c 'sleep 1000; echo done'", "Created": 0,
            "State": "running", "Status": "Up 3 seconds", "Labels": {"b": "2", "a": "1"}, "Ports": [],
        });
        let row = container_row(&c, true, Clock::Fixed { now: 0 });
        assert_eq!(row["ID"], "0123456789ab");
        assert_eq!(row["Command"], "\"sh -c 'sleep 1000; …\"");
        assert_eq!(row["Labels"], "a=1,b=2");
        assert_eq!(row["Names"], "web");
        let f = Format::parse("table {{.ID}}\t{{.Status}}\t{{.Label \"b\"}}").unwrap();
        let out = f
            .render(&container_header(), std::slice::from_ref(&row), &label_hook)
            .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   STATUS         LABEL\n0123456789ab   Up 3 seconds   2\n"
        );
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(
            keys, sorted,
            "{{json .}} must list fields sorted like Go's map encoding"
        );
    }

    #[test]
    fn filters_encode_like_docker() {
        let f = filters_json(&["status=exited".into(), "status=created".into()]).unwrap();
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["status"]["exited"], true);
        assert_eq!(v["status"]["created"], true);
        assert!(filters_json(&[]).is_none());
    }
}
