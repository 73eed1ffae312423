//! `kube generate --compose FILE`: a compose project as one pod, its services
//! as the pod's containers, through pier-compose's loader and its create bodies.

use crate::docs::Warnings;
use crate::error::Result;
use crate::generate::{dns_label, MountView, PodView, View};
use pier_compose::convert::{self, Instance};
use serde_json::{json, Value};
use std::path::PathBuf;

pub fn from_compose(files: &[PathBuf], w: &mut Warnings) -> Result<PodView> {
    let mut o = pier_compose::Options::from_process()?;
    o.files = files.to_vec();
    let p = pier_compose::load(&o)?;
    for x in &p.warnings {
        w.add(x.clone());
    }
    let mut pod = PodView {
        name: dns_label(&p.name),
        bindings: json!({}),
        ..Default::default()
    };
    for (name, svc) in &p.services {
        let spec = convert::create_spec(
            &p,
            &Instance {
                service: name,
                svc,
                number: 1,
                oneoff: false,
                image_id: "",
                hash: "",
            },
            true,
        )?;
        let body = spec.body;
        if convert::replicas(svc) > 1 {
            w.add(format!(
                "service {name}: {} replicas: the pod holds one of each service",
                convert::replicas(svc)
            ));
        }
        if !svc.depends_on.is_empty() {
            w.add(format!(
                "service {name}: depends_on has no Kubernetes equivalent in a pod, left out"
            ));
        }
        if svc.build.is_some() && svc.image.is_none() {
            w.add(format!("service {name}: built from a context: the pod names its image {:?} (build it with that tag)", body["Image"].as_str().unwrap_or_default()));
        }
        let host = &body["HostConfig"];
        for (k, b) in host["PortBindings"].as_object().into_iter().flatten() {
            pod.bindings[k] = b.clone();
        }
        let mut mounts = Vec::new();
        for b in host["Binds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let mut parts = b.splitn(3, ':');
            let (src, dst, opts) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let kind = if src.starts_with('/') {
                "bind"
            } else {
                "volume"
            };
            mounts.push(MountView {
                kind: kind.into(),
                name: src.to_string(),
                source: src.to_string(),
                target: dst.to_string(),
                read_only: opts.split(',').any(|o| o == "ro"),
                role: None,
                files: None,
            });
        }
        for (dst, _) in host["Tmpfs"].as_object().into_iter().flatten() {
            mounts.push(MountView {
                kind: "tmpfs".into(),
                name: dst.clone(),
                source: String::new(),
                target: dst.clone(),
                read_only: false,
                role: None,
                files: None,
            });
        }
        for (dst, _) in body["Volumes"].as_object().into_iter().flatten() {
            let key = format!("{name}-{}", dst.trim_start_matches('/').replace('/', "-"));
            mounts.push(MountView {
                kind: "volume".into(),
                name: key,
                source: String::new(),
                target: dst.clone(),
                read_only: false,
                role: Some("emptyDir".into()),
                files: None,
            });
        }
        pod.containers.push(View {
            name: name.clone(),
            config: body.clone(),
            host: host.clone(),
            mounts,
            image_config: Value::Null,
        });
    }
    Ok(pod)
}
