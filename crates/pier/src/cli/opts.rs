//! Parsers for flag values, following the docker CLI's `opts` package.

use anyhow::{anyhow, bail, Context, Result};
use pier_api::models::{
    DeviceMapping, Mount, MountBindOptions, MountTmpfsOptions, MountType, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use std::collections::HashMap;
use std::str::FromStr;

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512k`, `1024`, `2GiB` (binary units).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let unit = unit.trim_start();
    if num.is_empty() {
        bail!("invalid size: '{s}'");
    }
    let value: f64 = num.parse().map_err(|_| anyhow!("invalid size: '{s}'"))?;
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((value * mult) as i64)
}

/// `--memory-swap`: like [`ram_in_bytes`], and `-1` for unlimited.
pub fn memory_swap(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus 1.5` -> NanoCpus.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let f: f64 = s
        .parse()
        .map_err(|_| anyhow!("failed to parse {s} as a rational number"))?;
    Ok((f * 1e9).round() as i64)
}

/// Go's `time.ParseDuration`: `1h2m3.5s`, `500ms`, `10us`; returns nanoseconds.
pub fn go_duration(s: &str) -> Result<i64> {
    let orig = s;
    let (neg, mut s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        bail!("time: invalid duration \"{orig}\"");
    }
    let mut total = 0f64;
    while !s.is_empty() {
        let n = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        if n == 0 {
            bail!("time: invalid duration \"{orig}\"");
        }
        let v: f64 = s[..n]
            .parse()
            .map_err(|_| anyhow!("time: invalid duration \"{orig}\""))?;
        s = &s[n..];
        let u = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let mult = match &s[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => bail!("time: missing unit in duration \"{orig}\""),
            other => bail!("time: unknown unit \"{other}\" in duration \"{orig}\""),
        };
        total += v * mult;
        s = &s[u..];
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// `-e VAR=x` passes through; `-e VAR` takes VAR from our environment if set.
pub fn env_value(v: &str) -> Result<String> {
    let (k, _) = v.split_once('=').unwrap_or((v, ""));
    if k.is_empty() {
        bail!("invalid environment variable: {v}");
    }
    if v.contains('=') {
        return Ok(v.to_string());
    }
    Ok(match std::env::var(k) {
        Ok(val) => format!("{k}={val}"),
        Err(_) => v.to_string(),
    })
}

/// Docker's `--env-file`/`--label-file` format: `KEY=VALUE` lines, `#`
/// comments, blank lines; a bare `KEY` takes its value from our environment
/// (and is dropped when unset, for env files).
pub fn parse_kv_file(path: &str, from_env: bool) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("open {path}: no such file or directory"))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            if k.is_empty() {
                bail!("invalid variable on line {} of {path}: {line}", i + 1);
            }
            if k.contains(char::is_whitespace) {
                bail!("variable '{k}' contains whitespaces");
            }
            out.push(line.to_string());
        } else {
            let k = line.trim();
            if from_env {
                if let Ok(v) = std::env::var(k) {
                    out.push(format!("{k}={v}"));
                }
            } else {
                out.push(k.to_string());
            }
        }
    }
    Ok(out)
}

/// `-l k=v` / `-l k` into a map (later values win).
pub fn labels_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// `--ulimit nofile=1024:2048` (or `nofile=1024`).
pub fn ulimit(s: &str) -> Result<ResourcesUlimits> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft
        .parse()
        .map_err(|_| anyhow!("invalid ulimit soft value: {soft}"))?;
    let hard: i64 = hard
        .parse()
        .map_err(|_| anyhow!("invalid ulimit hard value: {hard}"))?;
    if soft > hard && hard != -1 {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `--security-opt`, as the docker CLI sends it: a `seccomp=<file>` becomes
/// `seccomp=<the file's JSON>`, since the daemon may not see the client's files.
pub fn security_opts(opts: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        let (k, v) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some(kv) => kv,
            None => (opt.as_str(), ""),
        };
        if v.is_empty() && k != "no-new-privileges" {
            bail!("invalid --security-opt: {opt:?}");
        }
        if k != "seccomp" || matches!(v, "builtin" | "unconfined") {
            out.push(opt.clone());
            continue;
        }
        let data =
            std::fs::read(v).map_err(|e| anyhow!("opening seccomp profile ({v}) failed: {e}"))?;
        let json: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|e| anyhow!("compacting json for seccomp profile ({v}) failed: {e}"))?;
        out.push(format!("seccomp={json}"));
    }
    Ok(out)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`. As with docker, the
/// daemon judges the retry count (`always:3` is its error, not ours); a name
/// the API cannot carry is refused here in the daemon's words.
pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c).filter(|c| !c.is_empty())),
        None => (s, None),
    };
    let name_enum = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => bail!(
            "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
    };
    let max = count
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })
        })
        .transpose()?;
    Ok(RestartPolicy {
        name: Some(name_enum),
        maximum_retry_count: max,
    })
}

fn port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || anyhow!("invalid port range: {s}");
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p: u16 = s
                .parse()
                .map_err(|_| anyhow!("invalid containerPort: {s}"))?;
            Ok((p, p))
        }
    }
}

/// Ports and bindings from `-p [ip:][hostPort:]containerPort[/proto]`.
pub type PortSpecs = Vec<(String, Option<PortBinding>)>;

pub fn publish(spec: &str) -> Result<PortSpecs> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    // An IPv6 host IP is bracketed: [::1]:8080:80
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once(']')
            .ok_or_else(|| anyhow!("invalid IP address: {spec}"))?;
        (ip.to_string(), r.strip_prefix(':').unwrap_or(r).to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => bail!("invalid port format: {spec}"),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest.clone()),
    };
    if container.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let (c0, c1) = port_range(&container)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(&host)?)
    };
    let mut out = Vec::new();
    let count = (c1 - c0) as usize + 1;
    if let Some((h0, h1)) = host_range {
        let hcount = (h1 - h0) as usize + 1;
        if count > 1 && hcount != count {
            bail!("invalid ranges specified for container and host Ports: {container} and {host}");
        }
        if count == 1 && hcount > 1 {
            // One container port published on any port of a host range.
            out.push((
                format!("{c0}/{proto}"),
                Some(PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(format!("{h0}-{h1}")),
                }),
            ));
            return Ok(out);
        }
    }
    for i in 0..count {
        let cport = c0 + i as u16;
        let hport = host_range
            .map(|(h0, _)| (h0 + i as u16).to_string())
            .unwrap_or_default();
        out.push((
            format!("{cport}/{proto}"),
            Some(PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(hport),
            }),
        ));
    }
    Ok(out)
}

/// `--expose 80`, `--expose 8000-8010/udp`.
pub fn expose(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let (a, b) = port_range(ports)?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => bail!("invalid value for {k}: {v}"),
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly` and friends (CSV fields).
pub fn mount(spec: &str) -> Result<Mount> {
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let mut labels = HashMap::new();
    let mut driver_opts = HashMap::new();
    let mut driver = None;
    let mut subpath = None;
    let mut nocopy = None;
    let mut propagation = None;
    let mut tmpfs = MountTmpfsOptions::default();
    let mut has_tmpfs = false;
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (field.trim().to_ascii_lowercase(), String::new()),
        };
        let has_value = field.contains('=');
        match k.as_str() {
            "type" => {
                m.typ =
                    Some(MountType::from_str(&v).map_err(|_| anyhow!("invalid mount type: {v}"))?);
            }
            "source" | "src" => m.source = Some(v),
            "target" | "dst" | "destination" => m.target = Some(v),
            "readonly" | "ro" => m.read_only = Some(parse_bool(&k, &v)?),
            "consistency" => m.consistency = Some(v),
            "bind-propagation" => propagation = Some(v),
            "volume-nocopy" => nocopy = Some(parse_bool(&k, &v)?),
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((&v, ""));
                labels.insert(lk.to_string(), lv.to_string());
            }
            "volume-driver" => driver = Some(v),
            "volume-subpath" => subpath = Some(v),
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((&v, ""));
                driver_opts.insert(ok.to_string(), ov.to_string());
            }
            "tmpfs-size" => {
                tmpfs.size_bytes = Some(ram_in_bytes(&v)?);
                has_tmpfs = true;
            }
            "tmpfs-mode" => {
                tmpfs.mode = Some(
                    i64::from_str_radix(&v, 8)
                        .map_err(|_| anyhow!("invalid value for {k}: {v}"))?,
                );
                has_tmpfs = true;
            }
            "" => {}
            _ if !has_value => bail!("invalid field '{field}' must be a key=value pair"),
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if m.target.as_deref().unwrap_or("").is_empty() {
        bail!("target is required");
    }
    if let Some(p) = propagation {
        m.bind_options = Some(MountBindOptions {
            propagation: Some(
                serde_json::from_value(serde_json::Value::String(p.clone()))
                    .map_err(|_| anyhow!("invalid bind-propagation: {p}"))?,
            ),
            ..Default::default()
        });
    }
    if nocopy.is_some()
        || !labels.is_empty()
        || driver.is_some()
        || !driver_opts.is_empty()
        || subpath.is_some()
    {
        m.volume_options = Some(MountVolumeOptions {
            no_copy: nocopy,
            subpath,
            labels: (!labels.is_empty()).then_some(labels),
            // `volume-opt` without `volume-driver` is for the default driver.
            driver_config: (driver.is_some() || !driver_opts.is_empty()).then(|| {
                MountVolumeOptionsDriverConfig {
                    name: driver,
                    options: (!driver_opts.is_empty()).then_some(driver_opts),
                }
            }),
        });
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
pub fn device(spec: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perm) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, d] if d.chars().all(|c| "rwm".contains(c)) && !d.starts_with('/') => (*s, *s, *d),
        [s, d] => (*s, *d, "rwm"),
        [s, d, p] => (*s, *d, *p),
        _ => bail!("invalid device specification: {spec}"),
    };
    Ok(DeviceMapping {
        path_on_host: Some(src.into()),
        path_in_container: Some(dst.into()),
        cgroup_permissions: Some(perm.into()),
    })
}

/// `--tmpfs /run:rw,size=64m` -> (`/run`, `rw,size=64m`).
pub fn tmpfs(spec: &str) -> (String, String) {
    match spec.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (spec.to_string(), String::new()),
    }
}

/// `KEY=VALUE` into a pair (for `--sysctl`, `--log-opt`).
pub fn kv(s: &str, what: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow!("invalid {what} format '{s}': must be key=value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opts_send_the_profile_itself() {
        let dir = std::env::temp_dir().join(format!("pier-secopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{nope").unwrap();
        let s = |v: &[String]| security_opts(v);
        let out = s(&[
            format!("seccomp={}", good.display()),
            "seccomp=unconfined".into(),
            "no-new-privileges".into(),
            "apparmor=unconfined".into(),
        ])
        .unwrap();
        assert_eq!(out[0], r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(
            out[1..],
            [
                "seccomp=unconfined",
                "no-new-privileges",
                "apparmor=unconfined"
            ]
        );
        let e = s(&[format!("seccomp={}", bad.display())])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("compacting json for seccomp profile ("),
            "{e}"
        );
        let e = s(&["seccomp=/nonexistent/p.json".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("opening seccomp profile (/nonexistent/p.json) failed: "),
            "{e}"
        );
        assert!(s(&["seccomp".into()]).is_err());
        assert!(s(&["apparmor=".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_units() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 * 1024 * 1024);
        assert_eq!(ram_in_bytes("64M").unwrap(), 64 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("512").unwrap(), 512);
        assert_eq!(ram_in_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(ram_in_bytes("100mb").unwrap(), 100 << 20);
        assert!(ram_in_bytes("abc").is_err());
        assert!(ram_in_bytes("10x").is_err());
        assert_eq!(memory_swap("-1").unwrap(), -1);
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("10").is_err());
        assert!(go_duration("5x").is_err());
    }

    #[test]
    fn ports() {
        let p = publish("8080:80").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "80/tcp");
        let b = p[0].1.as_ref().unwrap();
        assert_eq!(b.host_port.as_deref(), Some("8080"));
        assert_eq!(b.host_ip.as_deref(), Some(""));

        let p = publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].0, "80/udp");
        assert_eq!(
            p[0].1.as_ref().unwrap().host_ip.as_deref(),
            Some("127.0.0.1")
        );

        let p = publish("80").unwrap();
        assert_eq!(p[0].1.as_ref().unwrap().host_port.as_deref(), Some(""));

        let p = publish("127.0.0.1::80").unwrap();
        assert_eq!(p[0].1.as_ref().unwrap().host_port.as_deref(), Some(""));

        let p = publish("[::1]:8080:80").unwrap();
        assert_eq!(p[0].1.as_ref().unwrap().host_ip.as_deref(), Some("::1"));

        let p = publish("8000-8001:80-81").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].0, "81/tcp");
        assert_eq!(p[1].1.as_ref().unwrap().host_port.as_deref(), Some("8001"));

        let p = publish("8000-8010:80").unwrap();
        assert_eq!(
            p[0].1.as_ref().unwrap().host_port.as_deref(),
            Some("8000-8010")
        );

        assert!(publish("8000-8001:80-85").is_err());
        assert!(publish("80/xyz").is_err());
        assert!(publish("abc").is_err());
        assert_eq!(
            expose("8000-8001/udp").unwrap(),
            vec!["8000/udp", "8001/udp"]
        );
    }

    #[test]
    fn env_and_files() {
        // PATH: set in every test run, so no test has to set a variable.
        let path = format!("PATH={}", std::env::var("PATH").unwrap());
        assert_eq!(env_value("A=1").unwrap(), "A=1");
        assert_eq!(env_value("A=").unwrap(), "A=");
        assert_eq!(env_value("PATH").unwrap(), path);
        assert_eq!(env_value("PIER_TEST_UNSET_Y").unwrap(), "PIER_TEST_UNSET_Y");
        assert!(env_value("=x").is_err());

        let dir = std::env::temp_dir().join(format!("pier-envfile-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# comment\n\nA=1\n  B=two words \nPATH\nPIER_TEST_UNSET_Y\n",
        )
        .unwrap();
        let v = parse_kv_file(dir.to_str().unwrap(), true).unwrap();
        assert_eq!(v, vec!["A=1".to_string(), "B=two words ".into(), path]);
        std::fs::write(&dir, "BAD KEY=1\n").unwrap();
        assert!(parse_kv_file(dir.to_str().unwrap(), true).is_err());
        std::fs::remove_file(&dir).unwrap();
        assert!(parse_kv_file("/nonexistent/pier-env", true).is_err());

        let l = labels_map(&["a=b".into(), "c".into(), "d=e=f".into()]);
        assert_eq!(l["a"], "b");
        assert_eq!(l["c"], "");
        assert_eq!(l["d"], "e=f");
    }

    #[test]
    fn ulimits() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (Some(10), Some(10)));
        assert!(ulimit("nofile").is_err());
        assert!(ulimit("nofile=2048:1024").is_err());
    }

    #[test]
    fn mounts() {
        let m = mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/a"));
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert_eq!(m.read_only, Some(true));

        let m = mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(m.typ, Some(MountType::TMPFS));
        let t = m.tmpfs_options.unwrap();
        assert_eq!(t.size_bytes, Some(64 << 20));
        assert_eq!(t.mode, Some(0o1770));

        let m = mount("src=data,target=/data,volume-nocopy,ro=false").unwrap();
        assert_eq!(m.typ, Some(MountType::VOLUME));
        assert_eq!(m.read_only, Some(false));
        assert_eq!(m.volume_options.unwrap().no_copy, Some(true));

        let m = mount("type=volume,src=v,dst=/d,volume-subpath=sub/dir").unwrap();
        assert_eq!(
            m.volume_options.unwrap().subpath.as_deref(),
            Some("sub/dir")
        );

        let m = mount("type=bind,src=/a,dst=/b,bind-propagation=rshared").unwrap();
        assert!(m.bind_options.unwrap().propagation.is_some());

        assert!(mount("type=bind,source=/a").is_err());
        assert!(mount("type=nope,target=/a").is_err());
        assert!(mount("target=/a,bogus=1").is_err());
    }

    #[test]
    fn restart_and_devices() {
        let r = restart_policy("on-failure:3").unwrap();
        assert_eq!(r.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(r.maximum_retry_count, Some(3));
        assert_eq!(
            restart_policy("always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        // The daemon refuses a count with `always`, in Docker's words.
        assert_eq!(
            restart_policy("always:3").unwrap().maximum_retry_count,
            Some(3)
        );
        assert!(restart_policy("on-failure:x").is_err());
        let e = restart_policy("sometimes").unwrap_err().to_string();
        assert!(e.contains("unknown policy 'sometimes'"), "{e}");

        let d = device("/dev/fuse").unwrap();
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/fuse"));
        let d = device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(d.cgroup_permissions.as_deref(), Some("r"));
        let d = device("/dev/sda:rw").unwrap();
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/sda"));
        assert_eq!(
            tmpfs("/run:rw,size=1m"),
            ("/run".into(), "rw,size=1m".into())
        );
    }
}
