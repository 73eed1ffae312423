//! `kube play`: each pod as an infra container holding the network and IPC
//! namespaces (the app image's `sleep` under Pier's init: no pause image,
//! nothing pulled), its volumes, init containers run to completion, then the
//! app containers joined to the infra one. `--down` removes by label.

use crate::api::{self, Api};
use crate::error::{KubeError, Result};
use crate::labels as l;
use crate::model::{Container, Kind, Plan, Pod, PortMap, VolSource};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct PlayOpts {
    pub replace: bool,
    /// `Some(true)`: build every image that has a directory; `None`: build only missing ones.
    pub build: Option<bool>,
    pub start: bool,
    /// Where `--build` looks for image directories (the YAML's directory).
    pub dir: PathBuf,
}

/// What one played pod came to.
struct Played {
    infra: String,
    containers: Vec<String>,
}

pub fn infra_name(pod: &str) -> String {
    format!("{pod}-infra")
}

pub fn container_name(pod: &str, c: &str) -> String {
    format!("{pod}-{c}")
}

/// `[[ip:]hostPort:]containerPort[/protocol]`, as Podman's `--publish`.
pub fn parse_publish(s: &str) -> Result<PortMap> {
    let bad = || {
        KubeError::Invalid(format!(
            "--publish {s:?}: expected [[ip:]hostPort:]containerPort[/protocol]"
        ))
    };
    let (ports, proto) = match s.rsplit_once('/') {
        Some((p, proto)) if matches!(proto, "tcp" | "udp" | "sctp") => (p, proto),
        Some(_) => return Err(bad()),
        None => (s, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let num = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", num(c)?, num(c)?),
        [h, c] => ("", num(h)?, num(c)?),
        [ip, h, c] => (*ip, num(h)?, num(c)?),
        _ => return Err(bad()),
    };
    Ok(PortMap {
        container_port: ctr,
        host_port: host,
        host_ip: ip.to_string(),
        protocol: proto.to_string(),
    })
}

/// Applies `--publish`: overrides the host port of a container port the YAML
/// declares (in any of its pods).
pub fn apply_publish(plan: &mut Plan, publish: &[String]) -> Result<()> {
    for s in publish {
        let p = parse_publish(s)?;
        let mut found = false;
        for pod in &mut plan.pods {
            let declared = pod.containers.iter().any(|c| {
                c.declared
                    .iter()
                    .any(|(_, cp, proto)| *cp == p.container_port && *proto == p.protocol)
            });
            if !declared {
                continue;
            }
            found = true;
            for c in &mut pod.containers {
                c.ports.retain(|x| {
                    !(x.container_port == p.container_port && x.protocol == p.protocol)
                });
            }
            pod.extra_ports
                .retain(|x| !(x.container_port == p.container_port && x.protocol == p.protocol));
            pod.extra_ports.push(p.clone());
        }
        if !found {
            return Err(KubeError::Invalid(format!(
                "--publish {s}: no container of the YAML declares port {}/{}",
                p.container_port, p.protocol
            )));
        }
    }
    Ok(())
}

pub async fn play(api: &Api, plan: &Plan, o: &PlayOpts) -> Result<i32> {
    for pod in &plan.pods {
        let existing =
            api::containers_with(&api.client, &format!("{}={}", l::POD, pod.name)).await?;
        if !existing.is_empty() {
            if !o.replace {
                return Err(KubeError::Invalid(format!(
                    "pod {:?} already exists: use --replace, or --down first",
                    pod.name
                )));
            }
            remove_containers(api, &pod.name).await?;
        }
    }
    if o.replace {
        for pod in &plan.pods {
            remove_volumes(api, &pod.name, true).await?;
        }
    }
    for claim in &plan.claims {
        if api.volume_inspect(claim).await?.is_none() {
            let mut vl = Map::new();
            vl.insert(l::VOLUME.into(), json!("persistentVolumeClaim"));
            vl.insert(l::CLAIM.into(), json!(claim));
            api.volume_create(&json!({ "Name": claim, "Labels": vl }))
                .await?;
        }
        println_out("Volume:");
        println_out(claim);
        println_out("");
    }
    let mut code = 0;
    for pod in &plan.pods {
        images(api, pod, o).await?;
        let played = match play_pod(api, pod, o).await {
            Ok(p) => p,
            Err(e) => {
                // No half pod left behind: what was made for it goes.
                if remove_containers(api, &pod.name).await.is_ok() {
                    let _ = remove_volumes(api, &pod.name, true).await;
                }
                return Err(e);
            }
        };
        println_out("Pod:");
        println_out(&played.infra);
        println_out(if played.containers.len() == 1 {
            "Container:"
        } else {
            "Containers:"
        });
        for c in &played.containers {
            println_out(c);
        }
        println_out("");
        if pod.kind == Kind::Job && o.start {
            let mut failed = false;
            for (c, id) in pod.containers.iter().zip(&played.containers) {
                let status = wait_job(api, id).await?;
                if status != 0 {
                    eprintln!(
                        "Job {}: container {} failed with exit code {status}",
                        pod.owner, c.name
                    );
                    failed = true;
                }
            }
            if failed {
                code = 1;
            } else {
                eprintln!("Job {}: completed", pod.owner);
            }
            // A finished Job's pod holds nothing running, as in Kubernetes.
            api.stop(&played.infra, None).await?;
        }
    }
    Ok(code)
}

/// A Job container's final exit code: with `OnFailure` it is restarted up to
/// `backoffLimit` times, and an exit followed by a restart is not the end.
async fn wait_job(api: &Api, id: &str) -> Result<i64> {
    loop {
        let code = api.wait(id).await?;
        if code == 0 {
            return Ok(0);
        }
        // The restart policy decides a moment after the exit.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let v = api.inspect(id).await?;
        let st = &v["State"];
        if st["Restarting"].as_bool() != Some(true) && st["Running"].as_bool() != Some(true) {
            return Ok(st["ExitCode"].as_i64().unwrap_or(code));
        }
    }
}

#[allow(clippy::print_stdout)]
fn println_out(s: &str) {
    println!("{s}");
}

async fn images(api: &Api, pod: &Pod, o: &PlayOpts) -> Result<()> {
    let mut done: Vec<&str> = Vec::new();
    for c in pod.init_containers.iter().chain(&pod.containers) {
        if done.contains(&c.image.as_str()) {
            continue;
        }
        done.push(&c.image);
        let have = api.image_id(&c.image).await?.is_some();
        if let Some((dir, file)) = build_dir(&o.dir, &c.image)
            && (o.build == Some(true) || (o.build.is_none() && !have))
        {
            api::build(&api.client, &dir, &file, &c.image).await?;
            continue;
        }
        let pull = match c.pull_policy.as_deref() {
            Some("Always") => true,
            Some("Never") => false,
            _ => !have,
        };
        if pull {
            api.pull(&c.image).await?;
        } else if !have {
            return Err(KubeError::Invalid(format!(
                "container {:?}: image {:?} is not here and imagePullPolicy is Never",
                c.name, c.image
            )));
        }
    }
    Ok(())
}

/// The directory `--build` builds an image from: named like the image (its
/// last path part, without tag), beside the YAML, with a Containerfile or Dockerfile.
fn build_dir(dir: &Path, image: &str) -> Option<(PathBuf, String)> {
    let (name, _) = pier_compose::api::split_tag(image);
    let base = name.rsplit('/').next()?;
    let d = dir.join(base);
    ["Containerfile", "Dockerfile"]
        .into_iter()
        .find(|f| d.join(f).is_file())
        .map(|f| (d.clone(), f.to_string()))
}

fn labels(pod: &Pod, role: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(l::POD.into(), json!(pod.name));
    m.insert(l::ROLE.into(), json!(role));
    m.insert(l::KIND.into(), json!(pod.kind.as_str()));
    m.insert(l::OWNER.into(), json!(pod.owner));
    m
}

fn volume_name(pod: &Pod, vol: &str) -> String {
    match pod
        .volumes
        .iter()
        .find(|v| v.name == vol)
        .map(|v| &v.source)
    {
        Some(VolSource::Claim(c)) => c.clone(),
        _ => format!("{}-{vol}", pod.name),
    }
}

/// Where the infra container holds a ConfigMap or Secret volume while its files are copied in.
fn staging(vol: &str) -> String {
    format!("/.pier-kube/{vol}")
}

async fn play_pod(api: &Api, pod: &Pod, o: &PlayOpts) -> Result<Played> {
    // Volumes first: each is a named volume labelled with the pod, except a
    // claim that already exists (it belongs to whoever made it).
    let mut staged = Vec::new();
    for v in &pod.volumes {
        let (kind, name) = match &v.source {
            VolSource::HostPath(_) => continue,
            VolSource::EmptyDir { .. } => ("emptyDir", volume_name(pod, &v.name)),
            VolSource::Claim(c) => {
                if api.volume_inspect(c).await?.is_some() {
                    continue;
                }
                ("persistentVolumeClaim", c.clone())
            }
            VolSource::Files { kind, .. } => {
                staged.push(v);
                (
                    if *kind == "secret" {
                        "secret"
                    } else {
                        "configMap"
                    },
                    volume_name(pod, &v.name),
                )
            }
        };
        let mut vl = Map::new();
        vl.insert(l::POD.into(), json!(pod.name));
        vl.insert(l::VOLUME.into(), json!(kind));
        if let VolSource::Files { name, .. } = &v.source {
            vl.insert(l::SOURCE.into(), json!(name));
        }
        api.volume_create(&json!({ "Name": name, "Labels": vl }))
            .await?;
    }
    let first = &pod.containers[0];
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for p in pod.ports() {
        // On the host's network a port is already the host's port.
        if pod.host_network {
            if p.host_port != p.container_port {
                return Err(KubeError::Invalid(format!(
                    "pod {}: hostPort {} must match containerPort {} when hostNetwork is true",
                    pod.name, p.host_port, p.container_port
                )));
            }
            continue;
        }
        let key = format!("{}/{}", p.container_port, p.protocol);
        exposed.insert(key.clone(), json!({}));
        let b = json!({ "HostIp": p.host_ip, "HostPort": p.host_port.to_string() });
        match bindings.get_mut(&key).and_then(Value::as_array_mut) {
            Some(a) => a.push(b),
            None => {
                bindings.insert(key, json!([b]));
            }
        }
    }
    let mut infra_labels = labels(pod, "infra");
    infra_labels.insert(
        l::POD_LABELS.into(),
        json!(Value::Object(pod.labels.clone()).to_string()),
    );
    let binds: Vec<String> = staged
        .iter()
        .map(|v| format!("{}:{}", volume_name(pod, &v.name), staging(&v.name)))
        .collect();
    let mut host = json!({
        "Init": true,
        "IpcMode": "shareable",
        "PortBindings": bindings,
        "Binds": binds,
        "RestartPolicy": { "Name": if pod.restart == "always" { "always" } else { "no" } },
    });
    if pod.host_network {
        host["NetworkMode"] = json!("host");
    }
    let mut body = json!({
        "Image": first.image,
        // The app image's `sleep` holds the namespaces; Pier's init (tini) as
        // PID 1 makes the infra container stop at once on SIGTERM.
        "Entrypoint": ["sleep"],
        "Cmd": ["2147483647"],
        "Labels": infra_labels,
        "ExposedPorts": exposed,
        "HostConfig": host,
    });
    if !pod.host_network {
        body["Hostname"] = json!(pod.hostname.clone().unwrap_or_else(|| pod.name.clone()));
    }
    let start = !staged.is_empty() || o.start || !pod.init_containers.is_empty();
    let infra = create_infra(api, &infra_name(&pod.name), &mut body, start)
        .await
        .map_err(|e| {
            KubeError::Invalid(format!(
                "pod {}: infra container (`sleep` of image {:?}): {e}",
                pod.name, first.image
            ))
        })?;
    for v in &staged {
        if let VolSource::Files { files, .. } = &v.source {
            api::put_archive(&api.client, &infra, &staging(&v.name), files_tar(files)?).await?;
        }
    }
    for c in &pod.init_containers {
        let id = api
            .create(
                &container_name(&pod.name, &c.name),
                &create_body(pod, c, &infra, "init")?,
            )
            .await?;
        api.start(&id).await?;
        let code = api.wait(&id).await?;
        if code != 0 {
            return Err(KubeError::Invalid(format!(
                "pod {}: init container {} exited with code {code}",
                pod.name, c.name
            )));
        }
    }
    let mut ids = Vec::new();
    for c in &pod.containers {
        let id = api
            .create(
                &container_name(&pod.name, &c.name),
                &create_body(pod, c, &infra, "app")?,
            )
            .await?;
        ids.push(id);
    }
    if o.start {
        for id in &ids {
            api.start(id).await?;
        }
    } else if !staged.is_empty() || !pod.init_containers.is_empty() {
        api.stop(&infra, None).await?;
    }
    Ok(Played {
        infra,
        containers: ids,
    })
}

/// Creates (and starts) the infra container. On a daemon host without a static
/// init, `sleep` is PID 1 itself: it ignores SIGTERM, so a stop waits for the
/// timeout, but the pod works.
async fn create_infra(api: &Api, name: &str, body: &mut Value, start: bool) -> Result<String> {
    let id = api.create(name, body).await?;
    if !start {
        return Ok(id);
    }
    match api.start(&id).await {
        Ok(()) => Ok(id),
        Err(pier_compose::ComposeError::Client(e)) if e.to_string().contains("--init needs") => {
            api.remove(&id, true, true).await?;
            body["HostConfig"]["Init"] = json!(false);
            let id = api.create(name, body).await?;
            api.start(&id).await?;
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

fn files_tar(files: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    let io = |e| KubeError::io("the archive of a ConfigMap or Secret volume", e);
    for (path, data, mode) in files {
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(KubeError::Invalid(format!(
                "volume item path {path:?} must be relative, without `..`"
            )));
        }
        let mut acc = String::new();
        for part in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, d)| d)
            .unwrap_or(&[])
        {
            acc = if acc.is_empty() {
                part.to_string()
            } else {
                format!("{acc}/{part}")
            };
            if !dirs.contains(&acc) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &acc, std::io::empty()).map_err(io)?;
                dirs.push(acc.clone());
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, rel, data.as_slice()).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

fn create_body(pod: &Pod, c: &Container, infra: &str, role: &str) -> Result<Value> {
    let mut lab = labels(pod, role);
    lab.insert(l::CONTAINER.into(), json!(c.name));
    let mut mounts = Vec::new();
    for m in &c.mounts {
        let v = pod
            .volumes
            .iter()
            .find(|v| v.name == m.volume)
            .expect("checked when read");
        let mut mount = match &v.source {
            VolSource::HostPath(p) => {
                let src = match &m.sub_path {
                    Some(s) => format!("{}/{s}", p.trim_end_matches('/')),
                    None => p.clone(),
                };
                json!({ "Type": "bind", "Source": src, "Target": m.path })
            }
            VolSource::Files { .. } => {
                // Kubernetes mounts these read-only whatever the mount says.
                let mut j = json!({ "Type": "volume", "Source": volume_name(pod, &v.name), "Target": m.path, "ReadOnly": true });
                if let Some(s) = &m.sub_path {
                    j["VolumeOptions"] = json!({ "Subpath": s });
                }
                j
            }
            _ => {
                let mut j = json!({ "Type": "volume", "Source": volume_name(pod, &v.name), "Target": m.path });
                if let Some(s) = &m.sub_path {
                    j["VolumeOptions"] = json!({ "Subpath": s });
                }
                j
            }
        };
        if m.read_only {
            mount["ReadOnly"] = json!(true);
        }
        mounts.push(mount);
    }
    let mut host = json!({
        "NetworkMode": format!("container:{infra}"),
        "IpcMode": format!("container:{infra}"),
        "Mounts": mounts,
        "Privileged": c.privileged,
        "ReadonlyRootfs": c.read_only,
    });
    if role == "app" {
        let mut rp = json!({ "Name": pod.restart });
        if let Some(n) = pod.max_retries {
            rp["MaximumRetryCount"] = json!(n);
        }
        host["RestartPolicy"] = rp;
    }
    if pod.share_pid {
        host["PidMode"] = json!(format!("container:{infra}"));
    }
    for (k, v) in [
        ("Memory", c.memory),
        ("MemoryReservation", c.memory_reservation),
        ("NanoCpus", c.nano_cpus),
        ("CpuShares", c.cpu_shares),
    ] {
        if let Some(v) = v {
            host[k] = json!(v);
        }
    }
    if !c.cap_add.is_empty() {
        host["CapAdd"] = json!(c.cap_add);
    }
    if !c.cap_drop.is_empty() {
        host["CapDrop"] = json!(c.cap_drop);
    }
    if !c.group_add.is_empty() {
        host["GroupAdd"] = json!(c.group_add);
    }
    if c.no_new_privs {
        host["SecurityOpt"] = json!(["no-new-privileges"]);
    }
    let mut body = json!({
        "Image": c.image,
        "Env": c.env,
        "Labels": lab,
        "Tty": c.tty,
        "OpenStdin": c.stdin,
        "HostConfig": host,
    });
    if let Some(cmd) = &c.command {
        body["Entrypoint"] = json!(cmd);
    }
    if let Some(a) = &c.args {
        body["Cmd"] = json!(a);
    }
    if let Some(w) = &c.working_dir {
        body["WorkingDir"] = json!(w);
    }
    // Each container has its own UTS namespace: the pod's hostname is given to each.
    if !pod.host_network {
        body["Hostname"] = json!(pod.hostname.clone().unwrap_or_else(|| pod.name.clone()));
    }
    if let Some(u) = &c.user {
        body["User"] = json!(u);
    }
    if let Some(h) = &c.healthcheck {
        body["Healthcheck"] = h.clone();
    }
    if let Some(t) = pod.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    let exposed: Map<String, Value> = c
        .declared
        .iter()
        .map(|(_, p, proto)| (format!("{p}/{proto}"), json!({})))
        .collect();
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
    }
    Ok(body)
}

/// Removes a pod's containers (apps first, the infra last); the infra container's ID.
pub async fn remove_containers(api: &Api, pod: &str) -> Result<Option<String>> {
    let mut all = api::containers_with(&api.client, &format!("{}={pod}", l::POD)).await?;
    all.sort_by_key(|c| c["Labels"][l::ROLE].as_str() == Some("infra"));
    let mut infra = None;
    for c in &all {
        let id = c["Id"].as_str().unwrap_or_default().to_string();
        if c["Labels"][l::ROLE].as_str() == Some("infra") {
            infra = Some(id.clone());
        }
        match api.remove(&id, true, true).await {
            Ok(()) => {}
            Err(pier_compose::ComposeError::Client(e)) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(infra)
}

/// Removes the volumes play made for a pod (after every pod sharing them is
/// gone); `keep_claims` keeps the claims' data (`--replace`, a failed play).
pub async fn remove_volumes(api: &Api, pod: &str, keep_claims: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for v in api::volumes_with(&api.client, &format!("{}={pod}", l::POD)).await? {
        if keep_claims
            && api
                .volume_inspect(&v)
                .await?
                .is_some_and(|i| i["Labels"][l::VOLUME].as_str() == Some("persistentVolumeClaim"))
        {
            continue;
        }
        if api.volume_remove(&v).await? {
            removed.push(v);
        }
    }
    Ok(removed)
}

/// `kube play --down` / `kube down`: what the YAML's pods left, as Podman reports it.
pub async fn down(api: &Api, plan: &Plan) -> Result<i32> {
    let mut pods = Vec::new();
    let mut vols = Vec::new();
    // Containers of every pod first: pods of one Deployment share a claim.
    for p in &plan.pods {
        pods.extend(remove_containers(api, &p.name).await?);
    }
    for p in &plan.pods {
        vols.extend(remove_volumes(api, &p.name, false).await?);
    }
    // A claim's volume goes only when play made it for this YAML's claim.
    for c in &plan.claims {
        if let Some(v) = api.volume_inspect(c).await?
            && v["Labels"][l::CLAIM].as_str() == Some(c.as_str())
            && api.volume_remove(c).await?
        {
            vols.push(c.clone());
        }
    }
    println_out("Pods stopped:");
    for p in &pods {
        println_out(p);
    }
    println_out("Pods removed:");
    for p in &pods {
        println_out(p);
    }
    println_out("Volumes removed:");
    for v in &vols {
        println_out(v);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            ),
            ("127.0.0.1", 8080, 80, "udp")
        );
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (80, 80));
        assert!(parse_publish("a:b").is_err());
    }
}
