//! Lenient field readers: YAML writes `8080`, `"8080"` and `${PORT}` (a string
//! after interpolation) for the same thing, and Compose accepts them all.

use indexmap::IndexMap;
use serde::de::Error;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn scalar_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    scalar_string(v).ok_or_else(|| D::Error::custom("must be a string"))
}

pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => scalar_string(v)
            .map(Some)
            .ok_or_else(|| D::Error::custom("must be a string")),
    }
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be an integer, not {s:?}"))),
        v => Err(D::Error::custom(format!("must be an integer, not {v}"))),
    }
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be a number, not {s:?}"))),
        v => Err(D::Error::custom(format!("must be a number, not {v}"))),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(Some(true)),
            "false" | "no" | "n" | "off" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!("must be a boolean, not {s:?}"))),
        },
        v => Err(D::Error::custom(format!("must be a boolean, not {v}"))),
    }
}

/// A string or a list of strings, as a list.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .into_iter()
            .map(|v| scalar_string(v).ok_or_else(|| D::Error::custom("must be a list of strings")))
            .collect(),
        v => scalar_string(v)
            .map(|s| vec![s])
            .ok_or_else(|| D::Error::custom("must be a string or a list of strings")),
    }
}

/// `command`/`entrypoint`: a string (split like a shell) or a list; `None` when absent.
pub fn opt_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .into_iter()
            .map(|v| scalar_string(v).ok_or_else(|| D::Error::custom("must be a list of strings")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        v => {
            let s = scalar_string(v).ok_or_else(|| D::Error::custom("must be a string or list"))?;
            shlex::split(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("cannot split {s:?} into words")))
        }
    }
}

/// `environment`, `labels`, `args`, `sysctls`: a map, or a list of `K=V`
/// (`K` alone is "unset" for the environment, "" for labels).
pub fn kv_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<String>>, D::Error> {
    let mut out = IndexMap::new();
    match Value::deserialize(d)? {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                let v = match v {
                    Value::Null => None,
                    v => Some(scalar_string(v).ok_or_else(|| {
                        D::Error::custom(format!("{k}: must be a string, number or boolean"))
                    })?),
                };
                out.insert(k, v);
            }
        }
        Value::Array(a) => {
            for v in a {
                let s = scalar_string(v)
                    .ok_or_else(|| D::Error::custom("must be a list of strings"))?;
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        _ => return Err(D::Error::custom("must be a mapping or a list")),
    }
    Ok(out)
}

/// Go durations as Compose writes them (`1m30s`, `500ms`, `10`=seconds) in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        return Some((n * 1e9) as i64);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

/// `64m`, `1g`, `512MB`, `1024` in bytes.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    Some((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("2"), Some(2_000_000_000));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("m"), None);
    }
}
