//! RUN flags: `--mount`, `--network`, `--security`.

use super::units::ram_in_bytes;
use crate::error::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountType {
    #[default]
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn parse(s: &str) -> Option<MountType> {
        Some(match s {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// Cache mount sharing between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// One `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    pub kind: MountType,
    /// Stage or image to take the source from (bind, cache).
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: bool,
    /// tmpfs size in bytes (0 = default).
    pub size_limit: i64,
    /// Cache id or secret/ssh id.
    pub id: Option<String>,
    pub sharing: Option<CacheSharing>,
    pub required: bool,
    /// Secret exposed as this environment variable.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Splits a CSV record the way Go's encoding/csv does for one line.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

fn hint(val: &str, options: &[&str]) -> String {
    suggest(val, options, true)
        .map(|m| format!(" (did you mean {m}?)"))
        .unwrap_or_default()
}

/// Parses one `--mount` value. `expand` is applied to every value (the
/// builder passes its ARG/ENV expander; use `Ok` to take values literally).
pub fn parse_mount(
    val: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = Mount::default();
    let mut ro_auto = true;
    let secretish = |m: &Mount| matches!(m.kind, MountType::Secret | MountType::Ssh);
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v.to_string()),
            None => {
                match field.to_lowercase().as_str() {
                    "readonly" | "ro" => m.read_only = true,
                    "readwrite" | "rw" => m.read_only = false,
                    "required" if secretish(&m) => m.required = true,
                    k @ "required" => {
                        return Err(format!(
                            "unexpected key '{k}' for mount type '{}'",
                            m.kind.as_str()
                        ))
                    }
                    _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
                }
                if field.to_lowercase() != "required" {
                    ro_auto = false;
                }
                continue;
            }
        };
        let value = expand(&value)?;
        let unexpected = |m: &Mount| {
            format!(
                "unexpected key '{key}' for mount type '{}'",
                m.kind.as_str()
            )
        };
        let parse_u32 = |radix: u32, what: &str| {
            u32::from_str_radix(&value, radix)
                .map_err(|_| format!("invalid value {value} for {what}"))
        };
        match key.as_str() {
            "type" => {
                let lower = value.to_lowercase();
                m.kind = MountType::parse(&lower).ok_or_else(|| {
                    let all = ["bind", "cache", "tmpfs", "secret", "ssh"];
                    format!("unsupported mount type \"{value}\"{}", hint(&value, &all))
                })?;
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.read_only = parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&key, &value)?;
                ro_auto = false;
            }
            "required" if secretish(&m) => m.required = parse_bool(&key, &value)?,
            "required" => return Err(unexpected(&m)),
            "size" if m.kind == MountType::Tmpfs => {
                m.size_limit = ram_in_bytes(&value)
                    .map_err(|_| format!("invalid value for {key}: {value}"))?;
            }
            "size" => return Err(unexpected(&m)),
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        let all = ["shared", "private", "locked"];
                        return Err(format!(
                            "unsupported sharing value \"{value}\"{}",
                            hint(&value, &all)
                        ));
                    }
                })
            }
            "mode" => m.mode = Some(parse_u32(8, "mode")?),
            "uid" => m.uid = Some(parse_u32(10, "uid")?),
            "gid" => m.gid = Some(parse_u32(10, "gid")?),
            "env" => m.env = Some(value),
            _ => {
                let all = [
                    "type",
                    "from",
                    "source",
                    "target",
                    "readonly",
                    "id",
                    "sharing",
                    "required",
                    "size",
                    "mode",
                    "uid",
                    "gid",
                    "src",
                    "dst",
                    "destination",
                    "ro",
                    "rw",
                    "readwrite",
                    "env",
                ];
                return Err(format!(
                    "unexpected key '{key}' in '{field}'{}",
                    hint(&key, &all)
                ));
            }
        }
    }
    validate(m, ro_auto)
}

fn validate(mut m: Mount, ro_auto: bool) -> Result<Mount, String> {
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(format!(
                    "{what} not allowed for \"{}\" type mounts",
                    m.kind.as_str()
                ));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.as_str()
        ));
    }
    Ok(m)
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

impl NetworkMode {
    pub(crate) fn parse(s: &str) -> Option<NetworkMode> {
        Some(match s {
            "default" => NetworkMode::Default,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            _ => return None,
        })
    }
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

impl Security {
    pub(crate) fn parse(s: &str) -> Option<Security> {
        Some(match s {
            "sandbox" => Security::Sandbox,
            "insecure" => Security::Insecure,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Result<String, String> {
        Ok(s.to_string())
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked,id=pip", &lit).unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert!(!m.read_only);
        let m = parse_mount("type=bind,from=build,source=/out,target=/in", &lit).unwrap();
        assert!(m.read_only);
        let m = parse_mount("type=secret,id=tok,required,mode=0400,uid=1", &lit).unwrap();
        assert!(m.required);
        assert_eq!(m.mode, Some(0o400));
        let m = parse_mount("type=tmpfs,target=/t,size=64m", &lit).unwrap();
        assert_eq!(m.size_limit, 64 << 20);
        let m = parse_mount("target=/x,rw", &lit).unwrap();
        assert!(!m.read_only);
        assert!(parse_mount("type=bindd", &lit)
            .unwrap_err()
            .contains("did you mean bind?"));
        assert!(parse_mount("type=secret", &lit).is_err());
        assert!(parse_mount("type=bind,mode=0700,target=/x", &lit).is_err());
        assert!(parse_mount("type=bind,required", &lit).is_err());
        assert!(parse_mount("target=/x,sharing=shared", &lit).is_err());
        let m = parse_mount("\"target=/a,b\",type=cache", &lit).unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }
}
