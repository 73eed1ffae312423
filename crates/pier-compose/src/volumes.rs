//! Service `volumes`, short (`src:dst[:opts]`) and long syntax, normalised to
//! the long form (`type`, `source`, `target`, `read_only`, …).

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOpts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOpts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOpts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindOpts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOpts {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOpts {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_string"
    )]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

pub fn parse_short(spec: &str) -> Result<ServiceVolume, String> {
    let bad = || format!("invalid volume specification {spec:?}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, o] => (Some(*s), *t, *o),
        _ => return Err(bad()),
    };
    if target.is_empty() || !target.starts_with('/') || source == Some("") {
        return Err(bad());
    }
    let kind = match source {
        None => "volume",
        Some(s) if is_path(s) => "bind",
        Some(_) => "volume",
    };
    let mut v = ServiceVolume {
        kind: kind.into(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: false,
        bind: None,
        volume: None,
        tmpfs: None,
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => v.read_only = true,
            "rw" => {}
            "nocopy" if kind == "volume" => {
                v.volume.get_or_insert_with(Default::default).nocopy = true
            }
            "z" | "Z" if kind == "bind" => {
                v.bind.get_or_insert_with(Default::default).selinux = Some(o.into())
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                if kind == "bind" =>
            {
                v.bind.get_or_insert_with(Default::default).propagation = Some(o.into())
            }
            _ => return Err(format!("invalid mode {o:?} in volume {spec:?}")),
        }
    }
    if kind == "bind" {
        v.bind.get_or_insert_with(Default::default).create_host_path = Some(true);
    }
    Ok(v)
}

pub fn de_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(D::Error::custom("must be a list")),
    };
    let mut out = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let vol = match v {
            Value::String(s) => parse_short(&s),
            v @ Value::Object(_) => serde_json::from_value::<ServiceVolume>(v)
                .map_err(|e| e.to_string())
                .and_then(|v| match v.kind.as_str() {
                    "bind" | "volume" | "tmpfs" => Ok(v),
                    k => Err(format!(
                        "volume type {k:?} is not supported by pier compose yet"
                    )),
                }),
            other => Err(format!("invalid volume {other}")),
        }
        .map_err(|e| D::Error::custom(format!("[{i}]: {e}")))?;
        out.push(vol);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let v = parse_short("data:/var/lib/data").unwrap();
        assert_eq!(v.kind, "volume");
        assert_eq!(v.source.as_deref(), Some("data"));
        let v = parse_short("./conf:/etc/conf:ro").unwrap();
        assert_eq!(v.kind, "bind");
        assert!(v.read_only);
        let v = parse_short("/cache").unwrap();
        assert_eq!((v.kind.as_str(), v.source), ("volume", None));
        assert!(parse_short("a:b:c:d").is_err());
        assert!(parse_short("data:relative").is_err());
        assert!(parse_short("data:/x:bogus").is_err());
    }
}
