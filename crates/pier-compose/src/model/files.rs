//! `secrets` and `configs`: top-level definitions (a host `file`, an
//! `environment` variable, or inline `content`) and the services' references
//! to them (short `- name` or long `{source, target, uid, gid, mode}`).

use super::is_false;
use crate::de;
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub file: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub environment: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub content: Option<String>,
    /// Swarm's; refused when true.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "super::bool_default_false"
    )]
    pub external: bool,
}

/// A service's use of a secret or config, in the long form.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    #[serde(deserialize_with = "de::string")]
    pub source: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub target: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub uid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub gid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_mode"
    )]
    pub mode: Option<u32>,
}

/// `mode: 0440` is octal as Compose reads it (YAML 1.1's leading zero, or `0o`).
fn opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let bad = |v: &dyn std::fmt::Display| D::Error::custom(format!("invalid file mode {v}"));
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .map(Some)
            .ok_or_else(|| bad(&n)),
        Value::String(s) => {
            let t = s.trim();
            let r = if let Some(o) = t.strip_prefix("0o") {
                u32::from_str_radix(o, 8)
            } else if t.len() > 1 && t.starts_with('0') {
                u32::from_str_radix(&t[1..], 8)
            } else {
                t.parse()
            };
            r.map(Some).map_err(|_| bad(&s))
        }
        v => Err(bad(&v)),
    }
}

/// `secrets: [a, {source: b, target: c}]`.
pub fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    let items: Vec<Value> = Vec::deserialize(d)?;
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(FileRef {
                source: s,
                ..Default::default()
            }),
            v @ Value::Object(_) => serde_json::from_value(v).map_err(D::Error::custom),
            v => Err(D::Error::custom(format!(
                "must be a name or a mapping, not {v}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct M {
        #[serde(deserialize_with = "opt_mode")]
        mode: Option<u32>,
    }

    #[test]
    fn modes_are_octal_with_a_leading_zero() {
        let m = |v: Value| {
            serde_json::from_value::<M>(serde_json::json!({ "mode": v }))
                .unwrap()
                .mode
        };
        assert_eq!(m("0440".into()), Some(0o440));
        assert_eq!(m("0o400".into()), Some(0o400));
        assert_eq!(m("292".into()), Some(292));
        assert_eq!(m(292.into()), Some(292));
    }
}
