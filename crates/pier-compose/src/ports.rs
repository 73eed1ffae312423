//! Service `ports`, short (`[ip:][host[-range]:]container[-range][/proto]`)
//! and long syntax, normalised to one long-form entry per container port.

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "ingress")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_string"
    )]
    pub published: Option<String>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn ingress() -> String {
    "ingress".into()
}

fn tcp() -> String {
    "tcp".into()
}

fn range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let p = s.parse().ok()?;
            Some((p, p))
        }
    }
}

/// One short-syntax entry, expanded over its range.
pub fn parse_short(spec: &str) -> Result<Vec<Port>, String> {
    let bad = || format!("invalid port {spec:?}");
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) if matches!(p, "tcp" | "udp" | "sctp") => (r, p.to_string()),
        Some(_) => return Err(bad()),
        None => (spec, "tcp".to_string()),
    };
    // An IPv6 host address is written in brackets: [::1]:80:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(bad)?;
        (Some(ip.to_string()), r)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [ip, h, c]) => {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad());
            }
            (Some(ip.to_string()), *h, *c)
        }
        (Some(ip), [h, c]) => (Some(ip), *h, *c),
        _ => return Err(bad()),
    };
    let (c0, c1) = range(container).ok_or_else(bad)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host).ok_or_else(bad)?)
    };
    let n = (c1 - c0) as u32 + 1;
    let mut out = Vec::new();
    for i in 0..n {
        let published = match host_range {
            None => None,
            Some((h0, h1)) if h1 - h0 + 1 == c1 - c0 + 1 => Some((h0 as u32 + i).to_string()),
            // A host range for one container port: Docker picks one of it.
            Some((h0, h1)) if c0 == c1 => Some(format!("{h0}-{h1}")),
            Some(_) => return Err(bad()),
        };
        out.push(Port {
            name: None,
            mode: ingress(),
            host_ip: ip.clone(),
            target: (c0 as u32 + i) as u16,
            published,
            protocol: proto.clone(),
            app_protocol: None,
        });
    }
    Ok(out)
}

pub fn de_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(D::Error::custom("must be a list")),
    };
    let mut out = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let ports = match v {
            Value::String(s) => parse_short(&s),
            Value::Number(n) => parse_short(&n.to_string()),
            v @ Value::Object(_) => serde_json::from_value::<Port>(v)
                .map(|p| vec![p])
                .map_err(|e| e.to_string()),
            other => Err(format!("invalid port {other}")),
        }
        .map_err(|e| D::Error::custom(format!("[{i}]: {e}")))?;
        out.extend(ports);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let p = parse_short("8080:80").unwrap();
        assert_eq!(p[0].target, 80);
        assert_eq!(p[0].published.as_deref(), Some("8080"));
        let p = parse_short("127.0.0.1:5000:5000/udp").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p[0].protocol, "udp");
        let p = parse_short("3000-3001:4000-4001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].published.as_deref(), Some("3001"));
        assert_eq!(p[1].target, 4001);
        let p = parse_short("80").unwrap();
        assert_eq!(p[0].published, None);
        let p = parse_short("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
        assert_eq!(
            parse_short("80:80:80").unwrap_err(),
            "invalid port \"80:80:80\""
        );
        assert!(parse_short("80/xyz").is_err());
        assert!(parse_short("1-3:4-5").is_err());
    }
}
