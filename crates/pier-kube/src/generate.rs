//! `kube generate`: containers (or a compose project) as a Pod or Deployment,
//! a Service and PersistentVolumeClaims. Both inputs are first put in one
//! shape, a [`View`] of a container's config, host config and mounts, so one
//! translation serves both.

use crate::api::{self, Api};
use crate::docs::Warnings;
use crate::error::{KubeError, Result};
use crate::labels as l;
use base64::Engine as _;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default)]
pub struct GenOpts {
    pub service: bool,
    /// `pod`, `deployment`, `daemonset` or `job`.
    pub kind: String,
    pub replicas: u64,
}

/// Files by relative path.
pub type Files = Vec<(String, Vec<u8>)>;

/// One container as the generator sees it.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub name: String,
    /// `Image`, `Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`, `Healthcheck`,
    /// `ExposedPorts`, `Tty`, `OpenStdin`, as in a create body or `Config`.
    pub config: Value,
    pub host: Value,
    pub mounts: Vec<MountView>,
    /// What the image already says (Entrypoint, Cmd, Env, WorkingDir): left out.
    pub image_config: Value,
}

#[derive(Debug, Clone)]
pub struct MountView {
    pub kind: String,
    /// The pod's name for the volume (its Kubernetes `volumes[].name`).
    pub name: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// For a volume: what `kube play` made it for, and the ConfigMap or Secret
    /// behind it with its files.
    pub role: Option<String>,
    pub files: Option<(String, Files)>,
}

/// A pod to print.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    pub name: String,
    pub labels: Map<String, Value>,
    pub hostname: Option<String>,
    /// Published ports (host config of the infra container or of each container).
    pub bindings: Value,
    pub containers: Vec<View>,
    pub init_containers: Vec<View>,
}

/// A DNS-1123 label: what Kubernetes accepts as a container, volume or pod name.
pub fn dns_label(s: &str) -> String {
    let mut out: String = s
        .trim_start_matches('/')
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(63);
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn secs(ns: &Value) -> Option<i64> {
    ns.as_i64()
        .filter(|n| *n > 0)
        .map(|n| ((n + 999_999_999) / 1_000_000_000).max(1))
}

fn container_yaml(v: &View, ports: &[Value], w: &mut Warnings) -> Value {
    let c = &v.config;
    let img = &v.image_config;
    let mut o = Map::new();
    o.insert("name".into(), json!(dns_label(&v.name)));
    o.insert("image".into(), c["Image"].clone());
    let ep = strings(&c["Entrypoint"]);
    let cmd = strings(&c["Cmd"]);
    if !ep.is_empty() && ep != strings(&img["Entrypoint"]) {
        o.insert("command".into(), json!(ep));
        if !cmd.is_empty() {
            o.insert("args".into(), json!(cmd));
        }
    } else if !cmd.is_empty() && cmd != strings(&img["Cmd"]) {
        o.insert("args".into(), json!(cmd));
    }
    let image_env = strings(&img["Env"]);
    let env: Vec<Value> = strings(&c["Env"])
        .into_iter()
        .filter(|e| !image_env.contains(e))
        .map(|e| match e.split_once('=') {
            Some((k, val)) => json!({ "name": k, "value": val }),
            None => json!({ "name": e, "value": "" }),
        })
        .collect();
    if !env.is_empty() {
        o.insert("env".into(), json!(env));
    }
    // An image without a working directory runs in `/`.
    let image_wd = img["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    if let Some(wd) = c["WorkingDir"].as_str().filter(|s| !s.is_empty())
        && wd != image_wd
    {
        o.insert("workingDir".into(), json!(wd));
    }
    if !ports.is_empty() {
        o.insert("ports".into(), json!(ports));
    }
    let mounts: Vec<Value> = v
        .mounts
        .iter()
        .map(|m| {
            let mut j = json!({ "name": volume_key(m), "mountPath": m.target });
            if m.read_only {
                j["readOnly"] = json!(true);
            }
            j
        })
        .collect();
    if !mounts.is_empty() {
        o.insert("volumeMounts".into(), json!(mounts));
    }
    if let Some(p) = probe(&c["Healthcheck"]) {
        o.insert("livenessProbe".into(), p);
    }
    let h = &v.host;
    let mut limits = Map::new();
    if let Some(m) = h["Memory"].as_i64().filter(|m| *m > 0) {
        limits.insert("memory".into(), json!(m.to_string()));
    }
    if let Some(n) = h["NanoCpus"].as_i64().filter(|m| *m > 0) {
        limits.insert("cpu".into(), json!(format!("{}m", n / 1_000_000)));
    }
    let mut requests = Map::new();
    if let Some(m) = h["MemoryReservation"].as_i64().filter(|m| *m > 0) {
        requests.insert("memory".into(), json!(m.to_string()));
    }
    if !limits.is_empty() || !requests.is_empty() {
        let mut r = Map::new();
        if !limits.is_empty() {
            r.insert("limits".into(), Value::Object(limits));
        }
        if !requests.is_empty() {
            r.insert("requests".into(), Value::Object(requests));
        }
        o.insert("resources".into(), Value::Object(r));
    }
    let mut sc = Map::new();
    if let Some(u) = c["User"].as_str().filter(|u| !u.is_empty()) {
        let (user, group) = u.split_once(':').map_or((u, None), |(a, b)| (a, Some(b)));
        match user.parse::<i64>() {
            Ok(n) => {
                sc.insert("runAsUser".into(), json!(n));
            }
            Err(_) => w.add(format!(
                "container {}: user {user:?} is not numeric: Kubernetes needs a UID, left out",
                v.name
            )),
        }
        if let Some(g) = group {
            match g.parse::<i64>() {
                Ok(n) => {
                    sc.insert("runAsGroup".into(), json!(n));
                }
                Err(_) => w.add(format!(
                    "container {}: group {g:?} is not numeric: Kubernetes needs a GID, left out",
                    v.name
                )),
            }
        }
    }
    if h["Privileged"].as_bool() == Some(true) {
        sc.insert("privileged".into(), json!(true));
    }
    if h["ReadonlyRootfs"].as_bool() == Some(true) {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if strings(&h["SecurityOpt"])
        .iter()
        .any(|s| s == "no-new-privileges" || s == "no-new-privileges:true")
    {
        sc.insert("allowPrivilegeEscalation".into(), json!(false));
    }
    let (add, drop) = (strings(&h["CapAdd"]), strings(&h["CapDrop"]));
    if !add.is_empty() || !drop.is_empty() {
        let mut caps = Map::new();
        if !add.is_empty() {
            caps.insert("add".into(), json!(add));
        }
        if !drop.is_empty() {
            caps.insert("drop".into(), json!(drop));
        }
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if !sc.is_empty() {
        o.insert("securityContext".into(), Value::Object(sc));
    }
    if c["Tty"].as_bool() == Some(true) {
        o.insert("tty".into(), json!(true));
    }
    if c["OpenStdin"].as_bool() == Some(true) {
        o.insert("stdin".into(), json!(true));
    }
    Value::Object(o)
}

fn probe(h: &Value) -> Option<Value> {
    let test = strings(&h["Test"]);
    let command: Vec<String> = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    let mut p = json!({ "exec": { "command": command } });
    if let Some(s) = secs(&h["Interval"]) {
        p["periodSeconds"] = json!(s);
    }
    if let Some(s) = secs(&h["Timeout"]) {
        p["timeoutSeconds"] = json!(s);
    }
    if let Some(s) = secs(&h["StartPeriod"]) {
        p["initialDelaySeconds"] = json!(s);
    }
    if let Some(r) = h["Retries"].as_i64().filter(|r| *r > 0) {
        p["failureThreshold"] = json!(r);
    }
    Some(p)
}

fn volume_key(m: &MountView) -> String {
    match m.kind.as_str() {
        "bind" => dns_label(&format!(
            "{}-host",
            m.source.trim_start_matches('/').replace('/', "-")
        )),
        "tmpfs" => dns_label(&format!(
            "{}-tmpfs",
            m.target.trim_start_matches('/').replace('/', "-")
        )),
        _ => dns_label(&m.name),
    }
}

/// The ConfigMap or Secret a volume's files came from, and the `items` that put
/// back files whose path is no valid key (a key has no `/`).
fn source_doc(kind: &str, name: &str, files: &Files) -> (Value, Vec<Value>) {
    let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
    let (mut data, mut binary) = (Map::new(), Map::new());
    let mut items = Vec::new();
    let needs_items = files.iter().any(|(p, _)| p.contains('/'));
    for (path, bytes) in files {
        let k = path.replace('/', "_");
        if needs_items {
            items.push(json!({ "key": k, "path": path }));
        }
        match (kind, std::str::from_utf8(bytes)) {
            ("secret", _) => {
                data.insert(k, b64(bytes));
            }
            (_, Ok(text)) => {
                data.insert(k, json!(text));
            }
            (_, Err(_)) => {
                binary.insert(k, b64(bytes));
            }
        }
    }
    let mut doc = json!({
        "apiVersion": "v1",
        "kind": if kind == "secret" { "Secret" } else { "ConfigMap" },
        "metadata": { "name": name },
        "data": data,
    });
    if !binary.is_empty() {
        doc["binaryData"] = Value::Object(binary);
    }
    (doc, items)
}

fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pod's `volumes`, and the extra documents they need (PVCs, ConfigMaps, Secrets).
fn volumes(pod: &PodView) -> (Vec<Value>, Vec<Value>) {
    let mut vols: Vec<Value> = Vec::new();
    let mut docs: Vec<Value> = Vec::new();
    for m in pod
        .init_containers
        .iter()
        .chain(&pod.containers)
        .flat_map(|c| c.mounts.iter())
    {
        let key = volume_key(m);
        if vols.iter().any(|v| v["name"] == key.as_str()) {
            continue;
        }
        let v = match (m.kind.as_str(), m.role.as_deref()) {
            ("bind", _) => {
                let t = match std::fs::metadata(&m.source) {
                    Ok(md) if md.is_file() => "File",
                    Ok(_) => "Directory",
                    Err(_) => "DirectoryOrCreate",
                };
                json!({ "name": key, "hostPath": { "path": m.source, "type": t } })
            }
            ("tmpfs", _) => json!({ "name": key, "emptyDir": { "medium": "Memory" } }),
            (_, Some("emptyDir")) => json!({ "name": key, "emptyDir": {} }),
            (_, Some(kind @ ("configMap" | "secret"))) if m.files.is_some() => {
                let (name, files) = m.files.clone().expect("checked");
                let (doc, items) = source_doc(kind, &name, &files);
                if !docs.iter().any(|d| {
                    d["kind"] == doc["kind"] && d["metadata"]["name"] == doc["metadata"]["name"]
                }) {
                    docs.push(doc);
                }
                let mut src = if kind == "secret" {
                    json!({ "secretName": name })
                } else {
                    json!({ "name": name })
                };
                if !items.is_empty() {
                    src["items"] = json!(items);
                }
                json!({ "name": key, kind: src })
            }
            _ if is_anonymous(&m.source) => json!({ "name": key, "emptyDir": {} }),
            _ => {
                docs.push(json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": { "name": dns_label(&m.source) },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": "1Gi" } }
                    }
                }));
                json!({ "name": key, "persistentVolumeClaim": { "claimName": dns_label(&m.source) } })
            }
        };
        vols.push(v);
    }
    (vols, docs)
}

/// The published ports of `bindings` (`{"80/tcp": [{"HostIp", "HostPort"}]}`),
/// each given to the container that exposes it (else the first).
fn ports_of(pod: &PodView) -> Vec<Vec<Value>> {
    let mut out = vec![Vec::new(); pod.containers.len()];
    let mut seen: Vec<String> = Vec::new();
    let mut add = |key: &str, b: Option<&Value>, idx: usize, out: &mut Vec<Vec<Value>>| {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(cp) = port.parse::<u16>() else { return };
        let mut p = json!({ "containerPort": cp });
        if let Some(b) = b {
            if let Some(hp) = b["HostPort"]
                .as_str()
                .and_then(|h| h.parse::<u16>().ok())
                .filter(|h| *h > 0)
            {
                p["hostPort"] = json!(hp);
            }
            if let Some(ip) = b["HostIp"]
                .as_str()
                .filter(|ip| !ip.is_empty() && *ip != "0.0.0.0")
            {
                p["hostIP"] = json!(ip);
            }
        }
        if proto != "tcp" {
            p["protocol"] = json!(proto.to_uppercase());
        }
        let id = p.to_string();
        if !seen.contains(&id) {
            seen.push(id);
            out[idx].push(p);
        }
    };
    for (key, bs) in pod.bindings.as_object().into_iter().flatten() {
        let idx = pod
            .containers
            .iter()
            .position(|c| c.config["ExposedPorts"].get(key).is_some())
            .unwrap_or(0);
        let bs = bs.as_array().cloned().unwrap_or_default();
        if bs.is_empty() {
            add(key, None, idx, &mut out);
        }
        for b in &bs {
            add(key, Some(b), idx, &mut out);
        }
    }
    for (idx, c) in pod.containers.iter().enumerate() {
        for key in c.config["ExposedPorts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            let bound = pod.bindings[key].as_array().is_some_and(|a| !a.is_empty());
            if !bound {
                add(key, None, idx, &mut out);
            }
        }
    }
    out
}

fn restart_policy(host: &Value) -> &'static str {
    match host["RestartPolicy"]["Name"].as_str().unwrap_or("") {
        "always" | "unless-stopped" => "Always",
        "on-failure" => "OnFailure",
        _ => "Never",
    }
}

/// The YAML documents of one pod (Pod or Deployment, Service, PVCs, ConfigMaps, Secrets).
pub fn documents(pod: &PodView, o: &GenOpts, w: &mut Warnings) -> Vec<Value> {
    let ports = ports_of(pod);
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .zip(&ports)
        .map(|(c, p)| container_yaml(c, p, w))
        .collect();
    let (vols, mut extra) = volumes(pod);
    let mut spec = Map::new();
    spec.insert("containers".into(), json!(containers));
    if !pod.init_containers.is_empty() {
        let init: Vec<Value> = pod
            .init_containers
            .iter()
            .map(|c| container_yaml(c, &[], w))
            .collect();
        spec.insert("initContainers".into(), json!(init));
    }
    let mut restart = pod
        .containers
        .first()
        .map_or("Never", |c| restart_policy(&c.host));
    match o.kind.as_str() {
        // The only policy a Deployment's or DaemonSet's pods may have.
        "deployment" | "daemonset" => restart = "Always",
        // A Job's pods must end.
        "job" if restart == "Always" => restart = "OnFailure",
        _ => {}
    }
    spec.insert("restartPolicy".into(), json!(restart));
    if let Some(h) = &pod.hostname {
        spec.insert("hostname".into(), json!(h));
    }
    if !vols.is_empty() {
        spec.insert("volumes".into(), json!(vols));
    }
    let mut labels = pod.labels.clone();
    if labels.is_empty() {
        labels.insert("app".into(), json!(pod.name));
    }
    let mut docs = Vec::new();
    let template = json!({ "metadata": { "labels": labels }, "spec": spec });
    let meta = |suffix: &str| json!({ "name": format!("{}-{suffix}", pod.name), "labels": labels });
    docs.push(match o.kind.as_str() {
        "deployment" => json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("deployment"),
            "spec": {
                "replicas": o.replicas.max(1),
                "selector": { "matchLabels": labels },
                "template": template,
            }
        }),
        "daemonset" => json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("daemonset"),
            "spec": { "selector": { "matchLabels": labels }, "template": template }
        }),
        "job" => json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta("job"),
            "spec": { "template": template }
        }),
        _ => json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": pod.name, "labels": labels },
            "spec": spec,
        }),
    });
    if o.service {
        let sports: Vec<Value> = ports
            .iter()
            .flatten()
            .map(|p| {
                let cp = p["containerPort"].as_u64().unwrap_or(0);
                let proto = p["protocol"].as_str().unwrap_or("TCP");
                let mut s = json!({
                    "name": format!("{cp}-{}", proto.to_lowercase()),
                    "port": cp,
                    "targetPort": cp,
                    "protocol": proto,
                });
                if let Some(hp) = p["hostPort"].as_u64() {
                    s["nodePort"] = json!(hp);
                }
                s
            })
            .collect();
        if sports.is_empty() {
            w.add(format!("pod {}: no ports, so no Service", pod.name));
        } else {
            let ty = if sports.iter().any(|p| p.get("nodePort").is_some()) {
                "NodePort"
            } else {
                "ClusterIP"
            };
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": pod.name, "labels": labels },
                "spec": { "selector": labels, "type": ty, "ports": sports },
            }));
        }
    }
    docs.append(&mut extra);
    docs
}

/// Multi-document YAML with Podman's kind of header.
pub fn render(docs: &[Value]) -> String {
    let mut out = format!(
        "# Save the output of this file and use kubectl create -f to import it into Kubernetes.\n#\n# Created with pier {}\n",
        env!("CARGO_PKG_VERSION")
    );
    for d in docs {
        out.push_str("---\n");
        out.push_str(&pier_compose::yaml::emit(d));
    }
    out
}

/// Files of a ConfigMap or Secret volume, read back from a container that mounts it.
async fn read_files(api: &Api, container: &str, path: &str) -> Result<Files> {
    let q = pier_client::query(&[("path", format!("{}/.", path.trim_end_matches('/')))]);
    let resp = api
        .client
        .get(&format!("/containers/{container}/archive{q}"))
        .await?;
    let body = pier_client::read_body(resp).await?;
    let mut ar = tar::Archive::new(body.as_ref());
    let mut files = Vec::new();
    let io = |e| KubeError::io(format!("the archive of {path} in {container}"), e);
    for e in ar.entries().map_err(io)? {
        let mut e = e.map_err(io)?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e
            .path()
            .map_err(io)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).map_err(io)?;
        files.push((name, data));
    }
    Ok(files)
}

/// A container's inspect answer as a [`View`].
async fn view_of(api: &Api, v: &Value) -> Result<View> {
    let id = v["Id"].as_str().unwrap_or_default();
    let labels = &v["Config"]["Labels"];
    let name = labels[l::CONTAINER]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            v["Name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string()
        });
    let image = v["Config"]["Image"].as_str().unwrap_or_default();
    let image_config = api::image_inspect(&api.client, image)
        .await?
        .map(|i| i["Config"].clone())
        .unwrap_or(Value::Null);
    let mut mounts = Vec::new();
    for m in v["Mounts"].as_array().into_iter().flatten() {
        let kind = m["Type"].as_str().unwrap_or("volume").to_string();
        let target = m["Destination"].as_str().unwrap_or_default().to_string();
        let source = if kind == "volume" {
            m["Name"].as_str()
        } else {
            m["Source"].as_str()
        }
        .unwrap_or_default()
        .to_string();
        let mut role = None;
        let mut files = None;
        if kind == "volume"
            && let Some(vi) = api.volume_inspect(&source).await?
        {
            role = vi["Labels"][l::VOLUME].as_str().map(str::to_string);
            if let (Some("configMap" | "secret"), Some(src)) =
                (role.as_deref(), vi["Labels"][l::SOURCE].as_str())
            {
                files = Some((src.to_string(), read_files(api, id, &target).await?));
            }
        }
        // A volume play made for the pod is named `<pod>-<volume>`.
        let vname = match labels[l::POD].as_str() {
            Some(pod)
                if role
                    .as_deref()
                    .is_some_and(|r| r != "persistentVolumeClaim") =>
            {
                source
                    .strip_prefix(&format!("{pod}-"))
                    .unwrap_or(&source)
                    .to_string()
            }
            _ => source.clone(),
        };
        mounts.push(MountView {
            kind,
            name: vname,
            source,
            target,
            read_only: m["RW"].as_bool() == Some(false),
            role,
            files,
        });
    }
    Ok(View {
        name,
        config: v["Config"].clone(),
        host: v["HostConfig"].clone(),
        mounts,
        image_config,
    })
}

/// `kube generate CONTAINER...`: a container of a played pod stands for its
/// whole pod; other containers are put together in one pod named after the first.
pub async fn from_containers(
    api: &Api,
    names: &[String],
    w: &mut Warnings,
) -> Result<Vec<PodView>> {
    let mut pods: Vec<PodView> = Vec::new();
    let mut loose: Vec<Value> = Vec::new();
    for n in names {
        let v = api.inspect(n).await?;
        let Some(pod) = v["Config"]["Labels"][l::POD].as_str().map(str::to_string) else {
            loose.push(v);
            continue;
        };
        if pods.iter().any(|p| p.name == pod) {
            continue;
        }
        let members = api::containers_with(&api.client, &format!("{}={pod}", l::POD)).await?;
        // Creation order is the YAML's order; the list's `Created` is in whole
        // seconds, inspect's is not.
        let mut full = Vec::new();
        for m in &members {
            full.push(api.inspect(m["Id"].as_str().unwrap_or_default()).await?);
        }
        full.sort_by(|a, b| a["Created"].as_str().cmp(&b["Created"].as_str()));
        let mut pv = PodView {
            name: pod.clone(),
            ..Default::default()
        };
        for full in &full {
            match full["Config"]["Labels"][l::ROLE].as_str() {
                Some("infra") => {
                    pv.bindings = full["HostConfig"]["PortBindings"].clone();
                    if let Some(h) = full["Config"]["Hostname"].as_str().filter(|h| *h != pod) {
                        pv.hostname = Some(h.to_string());
                    }
                    if let Some(Ok(Value::Object(m))) = full["Config"]["Labels"][l::POD_LABELS]
                        .as_str()
                        .map(serde_json::from_str)
                    {
                        pv.labels = m;
                    }
                }
                Some("app") => pv.containers.push(view_of(api, full).await?),
                _ => pv.init_containers.push(view_of(api, full).await?),
            }
        }
        pods.push(pv);
    }
    if !loose.is_empty() {
        let first = loose[0]["Name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/');
        let mut pv = PodView {
            name: dns_label(&format!("{first}-pod")),
            bindings: json!({}),
            ..Default::default()
        };
        for v in &loose {
            let net = v["HostConfig"]["NetworkMode"].as_str().unwrap_or("default");
            if !matches!(net, "default" | "bridge") {
                w.add(format!(
                    "container {}: network mode {net:?} has no pod equivalent, left out",
                    v["Name"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches('/')
                ));
            }
            for (k, b) in v["HostConfig"]["PortBindings"]
                .as_object()
                .into_iter()
                .flatten()
            {
                pv.bindings[k] = b.clone();
            }
            pv.containers.push(view_of(api, v).await?);
        }
        pods.push(pv);
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_files_back_to_keys_and_items() {
        let files = vec![
            ("a.txt".to_string(), b"text".to_vec()),
            ("dir/b.bin".to_string(), vec![0xff, 0x00]),
        ];
        let (doc, items) = source_doc("configMap", "c", &files);
        assert_eq!(doc["data"]["a.txt"], "text");
        assert_eq!(doc["binaryData"]["dir_b.bin"], "/wA=");
        assert_eq!(items[1], json!({ "key": "dir_b.bin", "path": "dir/b.bin" }));
        let (doc, items) = source_doc("secret", "s", &files[..1].to_vec());
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["data"]["a.txt"], "dGV4dA==");
        assert!(items.is_empty());
    }

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("/My_Volume."), "my-volume");
        assert_eq!(dns_label("___"), "x");
    }
}
