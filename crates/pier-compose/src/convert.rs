//! A service of the model as Engine API bodies: container create (with the
//! compose labels and the config hash), networks and volumes.

use crate::de::{parse_bytes, parse_duration};
use crate::error::{ComposeError, Result};
use crate::labels as l;
use crate::load::Project;
use crate::model::{Network, Service, Ulimit};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub fn image_name(project: &str, service: &str, svc: &Service) -> String {
    svc.image
        .clone()
        .unwrap_or_else(|| format!("{project}-{service}"))
}

pub fn container_name(project: &str, service: &str, svc: &Service, n: u32) -> String {
    match &svc.container_name {
        Some(c) => c.clone(),
        None => format!("{project}-{service}-{n}"),
    }
}

pub fn network_name(p: &Project, key: &str) -> String {
    match p.networks.get(key).and_then(|n| n.name.clone()) {
        Some(n) => n,
        None => format!("{}_{key}", p.name),
    }
}

pub fn volume_name(p: &Project, key: &str) -> String {
    match p.volumes.get(key).and_then(|v| v.name.clone()) {
        Some(n) => n,
        None => format!("{}_{key}", p.name),
    }
}

pub fn replicas(svc: &Service) -> u64 {
    svc.scale
        .or_else(|| svc.deploy.as_ref().and_then(|d| d.replicas))
        .unwrap_or(1)
}

/// The service's hash, without what Docker Compose's `ServiceHash` leaves
/// out (build, pull policy, scale, `deploy.replicas`, dependencies,
/// profiles): a container whose label differs is recreated. The bytes hashed
/// are Pier's normalised model, not compose-go's Go struct, so the value
/// differs from Docker Compose's (see docs/compose.md).
pub fn config_hash(svc: &Service) -> String {
    let mut s = svc.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    s.depends_on.clear();
    s.profiles.clear();
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    let data = serde_json::to_vec(&s).unwrap_or_default();
    hex::encode(Sha256::digest(&data))
}

fn kv_list(m: &crate::model::KvMap) -> Vec<String> {
    m.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect()
}

fn duration(s: &Option<String>, what: &str) -> Result<Option<i64>> {
    match s {
        None => Ok(None),
        Some(s) => parse_duration(s)
            .map(Some)
            .ok_or_else(|| ComposeError::Project(format!("{what}: invalid duration {s:?}"))),
    }
}

fn bytes(s: &str, what: &str) -> Result<i64> {
    parse_bytes(s).ok_or_else(|| ComposeError::Project(format!("{what}: invalid size {s:?}")))
}

fn healthcheck(name: &str, svc: &Service) -> Result<Option<Value>> {
    let Some(h) = &svc.healthcheck else {
        return Ok(None);
    };
    let test: Option<Vec<String>> = if h.disable {
        Some(vec!["NONE".into()])
    } else {
        match &h.test {
            None => None,
            Some(Value::String(s)) => Some(vec!["CMD-SHELL".into(), s.clone()]),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect(),
            ),
            Some(other) => {
                return Err(ComposeError::Project(format!(
                    "services.{name}.healthcheck.test: must be a string or a list, not {other}"
                )))
            }
        }
    };
    let p = format!("services.{name}.healthcheck");
    let mut out = Map::new();
    if let Some(t) = test {
        out.insert("Test".into(), json!(t));
    }
    for (key, val) in [
        ("Interval", &h.interval),
        ("Timeout", &h.timeout),
        ("StartPeriod", &h.start_period),
        ("StartInterval", &h.start_interval),
    ] {
        if let Some(d) = duration(val, &p)? {
            out.insert(key.into(), json!(d));
        }
    }
    if let Some(r) = h.retries {
        out.insert("Retries".into(), json!(r));
    }
    Ok(Some(Value::Object(out)))
}

fn restart_policy(name: &str, svc: &Service) -> Result<Value> {
    if let Some(r) = &svc.restart {
        let (n, max) = match r.split_once(':') {
            Some((n, m)) => (n, m.parse::<i64>().ok()),
            None => (r.as_str(), None),
        };
        return match n {
            "no" | "" | "always" | "unless-stopped" | "on-failure" => Ok(json!({
                "Name": if n.is_empty() { "no" } else { n },
                "MaximumRetryCount": max.unwrap_or(0),
            })),
            _ => Err(ComposeError::Project(format!(
                "services.{name}.restart: invalid restart policy {r:?}"
            ))),
        };
    }
    if let Some(rp) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        let n = match rp.condition.as_deref() {
            None | Some("any") => "always",
            Some("on-failure") => "on-failure",
            Some("none") => "no",
            Some(c) => {
                return Err(ComposeError::Project(format!(
                    "services.{name}.deploy.restart_policy.condition: invalid value {c:?}"
                )))
            }
        };
        return Ok(json!({"Name": n, "MaximumRetryCount": rp.max_attempts.unwrap_or(0)}));
    }
    Ok(json!({"Name": "no", "MaximumRetryCount": 0}))
}

/// What to create for one container, and the networks to connect it to
/// after creation (the Engine API takes one network at create).
pub struct CreateSpec {
    pub body: Value,
    pub extra_networks: Vec<(String, Value)>,
    /// Secrets and configs to copy in before the container starts.
    pub injects: Vec<crate::secrets::Inject>,
}

pub struct Instance<'a> {
    pub service: &'a str,
    pub svc: &'a Service,
    pub number: u32,
    pub oneoff: bool,
    pub image_id: &'a str,
    pub hash: &'a str,
}

pub fn create_spec(p: &Project, it: &Instance<'_>, with_ports: bool) -> Result<CreateSpec> {
    let (service, svc) = (it.service, it.svc);
    let path = format!("services.{service}");
    let mut labels = Map::new();
    for (k, v) in &svc.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(d, c)| format!("{d}:{}:{}", c.condition.as_str(), c.restart))
        .collect();
    let files: Vec<String> = p
        .config_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    for (k, v) in [
        (l::PROJECT, p.name.clone()),
        (l::SERVICE, service.to_string()),
        (l::NUMBER, it.number.to_string()),
        (
            l::ONEOFF,
            if it.oneoff { "True" } else { "False" }.to_string(),
        ),
        (l::CONFIG_HASH, it.hash.to_string()),
        (l::CONFIG_FILES, files.join(",")),
        (l::WORKING_DIR, p.working_dir.display().to_string()),
        (l::DEPENDS_ON, deps.join(",")),
        (l::IMAGE, it.image_id.to_string()),
        (l::VERSION, l::COMPOSE_VERSION.to_string()),
    ] {
        labels.insert(k.into(), json!(v));
    }
    if !p.env_files.is_empty() {
        let ef: Vec<String> = p
            .env_files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        labels.insert(l::ENV_FILE.into(), json!(ef.join(",")));
    }

    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for e in &svc.expose {
        let k = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(k, json!({}));
    }
    for port in &svc.ports {
        let k = format!("{}/{}", port.target, port.protocol);
        exposed.insert(k.clone(), json!({}));
        if with_ports {
            let b = json!({
                "HostIp": port.host_ip.clone().unwrap_or_default(),
                "HostPort": port.published.clone().unwrap_or_default(),
            });
            match bindings.get_mut(&k) {
                Some(Value::Array(a)) => a.push(b),
                _ => {
                    bindings.insert(k, json!([b]));
                }
            }
        }
    }

    let mut binds = Vec::new();
    let mut anon = Map::new();
    let mut tmpfs = Map::new();
    for t in &svc.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(dst.to_string(), json!(opts));
    }
    for v in &svc.volumes {
        match (v.kind.as_str(), &v.source) {
            ("tmpfs", _) => {
                let mut opts = Vec::new();
                if let Some(t) = &v.tmpfs {
                    if let Some(s) = &t.size {
                        opts.push(format!("size={}", bytes(s, &path)?));
                    }
                    if let Some(m) = t.mode {
                        opts.push(format!("mode={m:o}"));
                    }
                }
                tmpfs.insert(v.target.clone(), json!(opts.join(",")));
            }
            ("volume", None) => {
                anon.insert(v.target.clone(), json!({}));
            }
            (kind, Some(src)) => {
                let create = v.bind.as_ref().and_then(|b| b.create_host_path) == Some(true);
                if kind == "bind" && !create && !std::path::Path::new(src).exists() {
                    return Err(ComposeError::Project(format!(
                        "{path}.volumes: invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                let src = if kind == "volume" {
                    volume_name(p, src)
                } else {
                    src.clone()
                };
                let mut opts = Vec::new();
                if v.read_only {
                    opts.push("ro".to_string());
                }
                if let Some(b) = &v.bind {
                    opts.extend(b.selinux.clone());
                    opts.extend(b.propagation.clone());
                }
                if v.volume.as_ref().is_some_and(|o| o.nocopy) {
                    opts.push("nocopy".into());
                }
                if v.volume.as_ref().is_some_and(|o| o.subpath.is_some()) {
                    return Err(ComposeError::Project(format!(
                        "{path}.volumes: volume.subpath is not supported by pier compose yet"
                    )));
                }
                let mut s = format!("{src}:{}", v.target);
                if !opts.is_empty() {
                    s = format!("{s}:{}", opts.join(","));
                }
                binds.push(s);
            }
            (kind, None) => {
                return Err(ComposeError::Project(format!(
                    "{path}.volumes: a {kind} mount needs a source"
                )))
            }
        }
    }

    let (secret_binds, injects) = crate::secrets::plan(p, service, svc)?;
    binds.extend(secret_binds);
    let mut host = Map::new();
    host.insert("Binds".into(), json!(binds));
    host.insert("PortBindings".into(), Value::Object(bindings));
    host.insert("RestartPolicy".into(), restart_policy(service, svc)?);
    if !tmpfs.is_empty() {
        host.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    host.insert("Privileged".into(), json!(svc.privileged));
    if !svc.cap_add.is_empty() {
        host.insert("CapAdd".into(), json!(svc.cap_add));
    }
    if !svc.cap_drop.is_empty() {
        host.insert("CapDrop".into(), json!(svc.cap_drop));
    }
    if !svc.security_opt.is_empty() {
        host.insert("SecurityOpt".into(), json!(svc.security_opt));
    }
    if let Some(ro) = svc.read_only {
        host.insert("ReadonlyRootfs".into(), json!(ro));
    }
    if let Some(i) = svc.init {
        host.insert("Init".into(), json!(i));
    }
    if !svc.extra_hosts.is_empty() {
        let hosts: Vec<String> = svc
            .extra_hosts
            .iter()
            .map(|(h, ip)| format!("{h}:{}", ip.clone().unwrap_or_default()))
            .collect();
        host.insert("ExtraHosts".into(), json!(hosts));
    }
    for (key, list) in [
        ("Dns", &svc.dns),
        ("DnsSearch", &svc.dns_search),
        ("DnsOptions", &svc.dns_opt),
        ("GroupAdd", &svc.group_add),
    ] {
        if !list.is_empty() {
            host.insert(key.into(), json!(list));
        }
    }
    if !svc.sysctls.is_empty() {
        let m: Map<String, Value> = svc
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
            .collect();
        host.insert("Sysctls".into(), Value::Object(m));
    }
    if !svc.ulimits.is_empty() {
        let u: Vec<Value> = svc
            .ulimits
            .iter()
            .map(|(n, u)| match u {
                Ulimit::Single(v) => json!({"Name": n, "Soft": v, "Hard": v}),
                Ulimit::Pair { soft, hard } => json!({"Name": n, "Soft": soft, "Hard": hard}),
            })
            .collect();
        host.insert("Ulimits".into(), json!(u));
    }
    if !svc.devices.is_empty() {
        let d: Vec<Value> = svc
            .devices
            .iter()
            .map(|d| {
                let parts: Vec<&str> = d.split(':').collect();
                let src = parts[0];
                let dst = parts.get(1).copied().unwrap_or(src);
                let perms = parts.get(2).copied().unwrap_or("rwm");
                json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms})
            })
            .collect();
        host.insert("Devices".into(), json!(d));
    }
    if let Some(lg) = &svc.logging {
        let cfg: Map<String, Value> = lg
            .options
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
            .collect();
        host.insert(
            "LogConfig".into(),
            json!({"Type": lg.driver.clone().unwrap_or_default(), "Config": cfg}),
        );
    }
    if let Some(s) = &svc.shm_size {
        host.insert("ShmSize".into(), json!(bytes(s, &path)?));
    }
    if let Some(pid) = &svc.pid {
        host.insert("PidMode".into(), json!(pid));
    }
    if let Some(ipc) = &svc.ipc {
        host.insert("IpcMode".into(), json!(ipc));
    }
    if let Some(m) = &svc.mem_limit {
        host.insert("Memory".into(), json!(bytes(m, &path)?));
    }
    if let Some(c) = svc.cpus {
        host.insert("NanoCpus".into(), json!((c * 1e9) as i64));
    }
    if let Some(r) = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()) {
        if let Some(lim) = &r.limits {
            if let Some(m) = &lim.memory {
                host.insert("Memory".into(), json!(bytes(m, &path)?));
            }
            if let Some(c) = lim.cpus {
                host.insert("NanoCpus".into(), json!((c * 1e9) as i64));
            }
            if let Some(pids) = lim.pids {
                host.insert("PidsLimit".into(), json!(pids));
            }
        }
        if let Some(res) = &r.reservations {
            if let Some(m) = &res.memory {
                host.insert("MemoryReservation".into(), json!(bytes(m, &path)?));
            }
            if res.cpus.is_some() || res.pids.is_some() {
                return Err(ComposeError::Project(format!(
                    "{path}.deploy.resources.reservations: only memory is supported by pier compose yet"
                )));
            }
        }
    }

    // Networks: the highest priority one at create, the rest connected after.
    let mut nets: Vec<(&String, Option<&crate::model::ServiceNetwork>)> =
        svc.networks.iter().map(|(k, v)| (k, v.as_ref())).collect();
    nets.sort_by_key(|(k, v)| {
        (
            std::cmp::Reverse(v.and_then(|n| n.priority).unwrap_or(0)),
            (*k).clone(),
        )
    });
    let endpoint = |key: &str, sn: Option<&crate::model::ServiceNetwork>| {
        let mut aliases = vec![service.to_string()];
        let mut ipam = Map::new();
        if let Some(sn) = sn {
            aliases.extend(sn.aliases.iter().cloned());
            if let Some(a) = &sn.ipv4_address {
                ipam.insert("IPv4Address".into(), json!(a));
            }
            if let Some(a) = &sn.ipv6_address {
                ipam.insert("IPv6Address".into(), json!(a));
            }
        }
        let mut e = json!({ "Aliases": aliases });
        if !ipam.is_empty() {
            e["IPAMConfig"] = Value::Object(ipam);
        }
        (network_name(p, key), e)
    };
    let mut endpoints = Map::new();
    let mut extra = Vec::new();
    let network_mode = match &svc.network_mode {
        Some(m) => match m.strip_prefix("service:") {
            Some(other) => {
                let o = p.services.get(other).ok_or_else(|| {
                    ComposeError::Project(format!(
                        "{path}.network_mode: service {other:?} is not in the project"
                    ))
                })?;
                format!("container:{}", container_name(&p.name, other, o, 1))
            }
            None => m.clone(),
        },
        None => {
            let mut it = nets.into_iter();
            match it.next() {
                Some((k, sn)) => {
                    let (n, e) = endpoint(k, sn);
                    endpoints.insert(n.clone(), e);
                    extra = it.map(|(k, sn)| endpoint(k, sn)).collect();
                    n
                }
                None => "default".into(),
            }
        }
    };
    host.insert("NetworkMode".into(), json!(network_mode));

    let mut body = Map::new();
    body.insert("Image".into(), json!(image_name(&p.name, service, svc)));
    body.insert("Labels".into(), Value::Object(labels));
    body.insert("Env".into(), json!(kv_list(&svc.environment)));
    if let Some(c) = &svc.command {
        body.insert("Cmd".into(), json!(c));
    }
    if let Some(e) = &svc.entrypoint {
        body.insert("Entrypoint".into(), json!(e));
    }
    for (key, val) in [
        ("Hostname", &svc.hostname),
        ("Domainname", &svc.domainname),
        ("User", &svc.user),
        ("WorkingDir", &svc.working_dir),
        ("StopSignal", &svc.stop_signal),
    ] {
        if let Some(v) = val {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(g) = duration(&svc.stop_grace_period, &path)? {
        body.insert("StopTimeout".into(), json!(g / 1_000_000_000));
    }
    body.insert("Tty".into(), json!(svc.tty.unwrap_or(false)));
    body.insert("OpenStdin".into(), json!(svc.stdin_open.unwrap_or(false)));
    body.insert("AttachStdout".into(), json!(true));
    body.insert("AttachStderr".into(), json!(true));
    body.insert("ExposedPorts".into(), Value::Object(exposed));
    if !anon.is_empty() {
        body.insert("Volumes".into(), Value::Object(anon));
    }
    if let Some(h) = healthcheck(service, svc)? {
        body.insert("Healthcheck".into(), h);
    }
    if svc.platform.is_some() {
        return Err(ComposeError::Project(format!(
            "{path}.platform: not supported by pier compose yet"
        )));
    }
    body.insert("HostConfig".into(), Value::Object(host));
    body.insert(
        "NetworkingConfig".into(),
        json!({ "EndpointsConfig": endpoints }),
    );
    Ok(CreateSpec {
        body: Value::Object(body),
        extra_networks: extra,
        injects,
    })
}

pub fn network_body(p: &Project, key: &str, n: &Network) -> Value {
    let mut labels = Map::new();
    for (k, v) in &n.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    labels.insert(l::NETWORK.into(), json!(key));
    labels.insert(l::PROJECT.into(), json!(p.name));
    labels.insert(l::VERSION.into(), json!(l::COMPOSE_VERSION));
    let opts: Map<String, Value> = n
        .driver_opts
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
        .collect();
    let mut body = json!({
        "Name": network_name(p, key),
        "CheckDuplicate": true,
        "Driver": n.driver.clone().unwrap_or_else(|| "bridge".into()),
        "Options": opts,
        "Internal": n.internal,
        "Attachable": n.attachable,
        "EnableIPv6": n.enable_ipv6,
        "Labels": labels,
    });
    if let Some(ipam) = &n.ipam {
        let cfg: Vec<Value> = ipam
            .config
            .iter()
            .map(|c| {
                let mut m = Map::new();
                if let Some(s) = &c.subnet {
                    m.insert("Subnet".into(), json!(s));
                }
                if let Some(g) = &c.gateway {
                    m.insert("Gateway".into(), json!(g));
                }
                if let Some(r) = &c.ip_range {
                    m.insert("IPRange".into(), json!(r));
                }
                Value::Object(m)
            })
            .collect();
        body["IPAM"] = json!({
            "Driver": ipam.driver.clone().unwrap_or_else(|| "default".into()),
            "Config": cfg,
        });
    }
    body
}

pub fn volume_body(p: &Project, key: &str) -> Value {
    let v = p.volumes.get(key).cloned().unwrap_or_default();
    let mut labels = Map::new();
    for (k, val) in &v.labels {
        labels.insert(k.clone(), json!(val.clone().unwrap_or_default()));
    }
    labels.insert(l::VOLUME.into(), json!(key));
    labels.insert(l::PROJECT.into(), json!(p.name));
    labels.insert(l::VERSION.into(), json!(l::COMPOSE_VERSION));
    let opts: Map<String, Value> = v
        .driver_opts
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
        .collect();
    json!({
        "Name": volume_name(p, key),
        "Driver": v.driver.clone().unwrap_or_else(|| "local".into()),
        "DriverOpts": opts,
        "Labels": labels,
    })
}
