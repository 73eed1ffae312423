//! Kubernetes objects read into what one host runs: pods (from Pods,
//! Deployments, DaemonSets and Jobs), each with its containers and volumes,
//! ConfigMaps and Secrets resolved into values and files, Services folded into
//! the published ports of the pod they select.

use crate::docs::Warnings;
use crate::error::{KubeError, Result};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Deployment,
    DaemonSet,
    Job,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
        }
    }
}

/// A published port: on the host (`host_ip:host_port`) to the pod's `container_port`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMap {
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: String,
    pub protocol: String,
}

#[derive(Debug, Clone)]
pub enum VolSource {
    EmptyDir {
        memory: bool,
    },
    HostPath(String),
    Claim(String),
    /// ConfigMap or Secret items: relative path, content, mode.
    Files {
        kind: &'static str,
        name: String,
        files: Vec<(String, Vec<u8>, u32)>,
    },
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub source: VolSource,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub pull_policy: Option<String>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub ports: Vec<PortMap>,
    /// Container ports declared without a host port (exposed only), with names.
    pub declared: Vec<(Option<String>, u16, String)>,
    pub mounts: Vec<Mount>,
    pub healthcheck: Option<Value>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privs: bool,
    pub tty: bool,
    pub stdin: bool,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub kind: Kind,
    /// The object the pod came from (a Deployment's name, or the pod's own).
    pub owner: String,
    pub labels: Map<String, Value>,
    pub hostname: Option<String>,
    pub host_network: bool,
    pub share_pid: bool,
    pub restart: String,
    pub max_retries: Option<i64>,
    pub stop_timeout: Option<i64>,
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    /// Ports published by Services and `--publish`, beside each container's hostPort.
    pub extra_ports: Vec<PortMap>,
}

impl Pod {
    pub fn ports(&self) -> Vec<PortMap> {
        let mut out: Vec<PortMap> = Vec::new();
        for p in self
            .containers
            .iter()
            .flat_map(|c| c.ports.iter())
            .chain(self.extra_ports.iter())
        {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// Everything a play runs.
#[derive(Debug, Default)]
pub struct Plan {
    pub pods: Vec<Pod>,
    /// PersistentVolumeClaims of the YAML: named volumes.
    pub claims: Vec<String>,
    pub warnings: Warnings,
}

mod container;
mod volume;

type Store = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

pub(crate) struct Ctx {
    configmaps: Store,
    secrets: Store,
    warnings: Warnings,
}

pub(crate) fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn str_list(v: &Value, what: &str) -> Result<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|x| str_of(x).ok_or_else(|| KubeError::Invalid(format!("{what}: not a string"))))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        _ => Err(KubeError::Invalid(format!("{what}: expected a list"))),
    }
}

fn name_of(doc: &Value, what: &str) -> Result<String> {
    doc["metadata"]["name"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| KubeError::Invalid(format!("{what}: metadata.name is required")))
}

const META_KEYS: &[&str] = &["name", "labels", "namespace"];

/// Reads every document into a plan. ConfigMaps and Secrets are gathered first,
/// so a pod may come before the ConfigMap it reads.
pub fn plan(docs: &[Value]) -> Result<Plan> {
    let mut cx = Ctx {
        configmaps: Store::new(),
        secrets: Store::new(),
        warnings: Warnings::default(),
    };
    for d in docs {
        match d["kind"].as_str() {
            Some("ConfigMap") => {
                let name = name_of(d, "ConfigMap")?;
                let mut m = BTreeMap::new();
                for (k, v) in d["data"].as_object().into_iter().flatten() {
                    m.insert(k.clone(), str_of(v).unwrap_or_default().into_bytes());
                }
                for (k, v) in d["binaryData"].as_object().into_iter().flatten() {
                    m.insert(
                        k.clone(),
                        b64(v, &format!("configmap/{name}: binaryData.{k}"))?,
                    );
                }
                let what = format!("configmap/{name}");
                cx.warnings.unknown_keys(
                    &what,
                    "",
                    d,
                    &[
                        "apiVersion",
                        "kind",
                        "metadata",
                        "data",
                        "binaryData",
                        "immutable",
                    ],
                );
                cx.configmaps.insert(name, m);
            }
            Some("Secret") => {
                let name = name_of(d, "Secret")?;
                let mut m = BTreeMap::new();
                for (k, v) in d["data"].as_object().into_iter().flatten() {
                    m.insert(k.clone(), b64(v, &format!("secret/{name}: data.{k}"))?);
                }
                for (k, v) in d["stringData"].as_object().into_iter().flatten() {
                    m.insert(k.clone(), str_of(v).unwrap_or_default().into_bytes());
                }
                let what = format!("secret/{name}");
                cx.warnings.unknown_keys(
                    &what,
                    "",
                    d,
                    &[
                        "apiVersion",
                        "kind",
                        "metadata",
                        "data",
                        "stringData",
                        "type",
                        "immutable",
                    ],
                );
                cx.secrets.insert(name, m);
            }
            _ => {}
        }
    }
    let mut pods = Vec::new();
    let mut services = Vec::new();
    let mut claims = Vec::new();
    for d in docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        match kind {
            "ConfigMap" | "Secret" => {}
            "Pod" => {
                let name = name_of(d, "Pod")?;
                let what = format!("pod/{name}");
                cx.warnings.unknown_keys(
                    &what,
                    "",
                    d,
                    &["apiVersion", "kind", "metadata", "spec", "status"],
                );
                cx.meta(&what, "metadata", &d["metadata"]);
                pods.push(cx.pod(
                    &what,
                    name.clone(),
                    Kind::Pod,
                    &name,
                    &d["metadata"],
                    &d["spec"],
                )?);
            }
            "Deployment" | "DaemonSet" | "Job" => {
                let name = name_of(d, kind)?;
                let what = format!("{}/{name}", kind.to_lowercase());
                let spec = &d["spec"];
                cx.warnings.unknown_keys(
                    &what,
                    "",
                    d,
                    &["apiVersion", "kind", "metadata", "spec", "status"],
                );
                cx.meta(&what, "metadata", &d["metadata"]);
                cx.meta(
                    &what,
                    "spec.template.metadata",
                    &spec["template"]["metadata"],
                );
                let (k, known, n): (Kind, &[&str], u64) = match kind {
                    "Deployment" => (
                        Kind::Deployment,
                        &[
                            "replicas",
                            "selector",
                            "template",
                            "strategy",
                            "revisionHistoryLimit",
                        ],
                        spec["replicas"].as_u64().unwrap_or(1),
                    ),
                    "DaemonSet" => (
                        Kind::DaemonSet,
                        &["selector", "template", "updateStrategy"],
                        1,
                    ),
                    _ => (
                        Kind::Job,
                        &[
                            "template",
                            "backoffLimit",
                            "completions",
                            "parallelism",
                            "selector",
                        ],
                        1,
                    ),
                };
                cx.warnings.unknown_keys(&what, "spec", spec, known);
                if k == Kind::Job
                    && (spec["completions"].as_u64().unwrap_or(1) > 1
                        || spec["parallelism"].as_u64().unwrap_or(1) > 1)
                {
                    cx.warnings.add(format!("{what}: spec.completions and spec.parallelism above 1 are not supported by pier kube play: one pod runs"));
                }
                let t = &spec["template"];
                cx.warnings
                    .unknown_keys(&what, "spec.template", t, &["metadata", "spec"]);
                let mut meta = t["metadata"].clone();
                if meta["labels"].is_null() {
                    meta["labels"] = d["metadata"]["labels"].clone();
                }
                for i in 0..n.max(if k == Kind::Deployment { 0 } else { 1 }) {
                    let pod_name = if n > 1 {
                        format!("{name}-pod-{}", i + 1)
                    } else {
                        format!("{name}-pod")
                    };
                    let mut p = cx.pod(&what, pod_name, k, &name, &meta, &t["spec"])?;
                    if k == Kind::Job {
                        let backoff = spec["backoffLimit"].as_i64().unwrap_or(6);
                        if p.restart == "always" {
                            return Err(KubeError::Invalid(format!("{what}: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"")));
                        }
                        if p.restart == "on-failure" {
                            p.max_retries = Some(backoff);
                        }
                    }
                    pods.push(p);
                }
            }
            "Service" => services.push(d.clone()),
            "PersistentVolumeClaim" => {
                let name = name_of(d, kind)?;
                let what = format!("persistentvolumeclaim/{name}");
                cx.warnings.unknown_keys(
                    &what,
                    "",
                    d,
                    &["apiVersion", "kind", "metadata", "spec", "status"],
                );
                cx.meta(&what, "metadata", &d["metadata"]);
                // Sizes and access modes mean nothing to a local volume.
                cx.warnings.unknown_keys(
                    &what,
                    "spec",
                    &d["spec"],
                    &["accessModes", "resources", "volumeMode", "storageClassName"],
                );
                claims.push(name);
            }
            "" => return Err(KubeError::Invalid("a document has no kind".into())),
            other => cx.warnings.add(format!(
                "{other} {:?}: kind not supported by pier kube play, ignored",
                d["metadata"]["name"].as_str().unwrap_or_default()
            )),
        }
    }
    for s in &services {
        cx.service(s, &mut pods)?;
    }
    Ok(Plan {
        pods,
        claims,
        warnings: cx.warnings,
    })
}

fn b64(v: &Value, what: &str) -> Result<Vec<u8>> {
    let s = v.as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| KubeError::Invalid(format!("{what}: not base64: {e}")))
}

fn selects(selector: &Map<String, Value>, labels: &Map<String, Value>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

const POD_KEYS: &[&str] = &[
    "containers",
    "initContainers",
    "volumes",
    "restartPolicy",
    "hostname",
    "hostNetwork",
    "shareProcessNamespace",
    "terminationGracePeriodSeconds",
    "securityContext",
    "dnsPolicy",
    "enableServiceLinks",
    "schedulerName",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
];

impl Ctx {
    /// Object metadata: a namespace other than `default` has no meaning on one host.
    fn meta(&mut self, what: &str, at: &str, m: &Value) {
        self.warnings.unknown_keys(what, at, m, META_KEYS);
        if let Some(ns) = m["namespace"].as_str()
            && ns != "default"
        {
            self.warnings.add(format!(
                "{what}: {at}.namespace: {ns:?}: pier kube play has no namespaces, ignored"
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pod(
        &mut self,
        what: &str,
        name: String,
        kind: Kind,
        owner: &str,
        meta: &Value,
        spec: &Value,
    ) -> Result<Pod> {
        let at = if kind == Kind::Pod {
            "spec"
        } else {
            "spec.template.spec"
        };
        self.warnings.unknown_keys(what, at, spec, POD_KEYS);
        // Defaults a Kubernetes API server writes back: harmless, not warned.
        for (k, default) in [
            ("dnsPolicy", "ClusterFirst"),
            ("schedulerName", "default-scheduler"),
        ] {
            if let Some(v) = spec[k].as_str()
                && v != default
            {
                self.warnings.add(format!(
                    "{what}: {at}.{k}: {v:?} not supported by pier kube play, ignored"
                ));
            }
        }
        for k in ["serviceAccountName", "serviceAccount"] {
            if spec[k].as_str().is_some_and(|v| v != "default") {
                self.warnings.add(format!(
                    "{what}: {at}.{k}: not supported by pier kube play, ignored"
                ));
            }
        }
        // No API server, so no token to mount.
        if spec["automountServiceAccountToken"].as_bool() == Some(true) {
            self.warnings.add(format!(
                "{what}: {at}.automountServiceAccountToken: not supported by pier kube play, ignored"
            ));
        }
        let restart = match spec["restartPolicy"].as_str() {
            None if kind == Kind::Job => {
                return Err(KubeError::Invalid(format!(
                    "{what}: {at}.restartPolicy: Required value: a Job needs OnFailure or Never"
                )))
            }
            None | Some("Always") => "always",
            Some("OnFailure") => "on-failure",
            Some("Never") => "no",
            Some(other) => {
                return Err(KubeError::Invalid(format!(
                    "{what}: {at}.restartPolicy: Unsupported value: {other:?}"
                )))
            }
        };
        let mut volumes = Vec::new();
        for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
            volumes.push(self.volume(what, &format!("{at}.volumes[{i}]"), v)?);
        }
        let psc = &spec["securityContext"];
        self.warnings.unknown_keys(
            what,
            &format!("{at}.securityContext"),
            psc,
            &[
                "runAsUser",
                "runAsGroup",
                "supplementalGroups",
                "fsGroup",
                "runAsNonRoot",
            ],
        );
        let mut containers = Vec::new();
        for (i, c) in spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            containers.push(self.container(
                what,
                &name,
                &format!("{at}.containers[{i}]"),
                c,
                psc,
                &volumes,
            )?);
        }
        if containers.is_empty() {
            return Err(KubeError::Invalid(format!(
                "{what}: {at}.containers: Required value"
            )));
        }
        let mut init_containers = Vec::new();
        for (i, c) in spec["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            init_containers.push(self.container(
                what,
                &name,
                &format!("{at}.initContainers[{i}]"),
                c,
                psc,
                &volumes,
            )?);
        }
        let labels = meta["labels"].as_object().cloned().unwrap_or_default();
        Ok(Pod {
            name,
            kind,
            owner: owner.to_string(),
            labels,
            hostname: spec["hostname"].as_str().map(str::to_string),
            host_network: spec["hostNetwork"].as_bool().unwrap_or(false),
            share_pid: spec["shareProcessNamespace"].as_bool().unwrap_or(false),
            restart: restart.to_string(),
            max_retries: None,
            stop_timeout: spec["terminationGracePeriodSeconds"].as_i64(),
            init_containers,
            containers,
            volumes,
            extra_ports: Vec::new(),
        })
    }

    fn lookup(&self, kind: &str, name: &str, key: Option<&str>) -> Option<Vec<(String, String)>> {
        let store = if kind == "secret" {
            &self.secrets
        } else {
            &self.configmaps
        };
        let m = store.get(name)?;
        match key {
            Some(k) => m
                .get(k)
                .map(|v| vec![(k.to_string(), String::from_utf8_lossy(v).into_owned())]),
            None => Some(
                m.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
            ),
        }
    }

    /// A Service publishes its ports on the host (nodePort, else port) to the
    /// first pod it selects.
    fn service(&mut self, s: &Value, pods: &mut [Pod]) -> Result<()> {
        let name = name_of(s, "Service")?;
        let what = format!("service/{name}");
        let spec = &s["spec"];
        self.warnings.unknown_keys(
            &what,
            "",
            s,
            &["apiVersion", "kind", "metadata", "spec", "status"],
        );
        self.warnings.unknown_keys(
            &what,
            "spec",
            spec,
            &[
                "selector",
                "ports",
                "type",
                "clusterIP",
                "clusterIPs",
                "sessionAffinity",
            ],
        );
        let selector = spec["selector"].as_object().cloned().unwrap_or_default();
        let mut matching = pods.iter_mut().filter(|p| selects(&selector, &p.labels));
        let Some(pod) = matching.next() else {
            self.warnings
                .add(format!("{what}: selects no pod of this YAML, ignored"));
            return Ok(());
        };
        if matching.next().is_some() {
            self.warnings.add(format!("{what}: selects several pods; its ports are published to the first one only (one host port, one pod)"));
        }
        // Re-borrow: the iterator above holds `pods`.
        let pod_name = pod.name.clone();
        let pod = pods
            .iter_mut()
            .find(|p| p.name == pod_name)
            .expect("found above");
        for (i, p) in spec["ports"].as_array().into_iter().flatten().enumerate() {
            let at = format!("spec.ports[{i}]");
            self.warnings.unknown_keys(
                &what,
                &at,
                p,
                &["port", "targetPort", "nodePort", "protocol", "name"],
            );
            let port = p["port"]
                .as_u64()
                .ok_or_else(|| KubeError::Invalid(format!("{what}: {at}.port: Required value")))?;
            let target = match &p["targetPort"] {
                Value::Number(n) => n.as_u64().unwrap_or(port),
                Value::String(named) => pod
                    .containers
                    .iter()
                    .flat_map(|c| c.declared.iter())
                    .find(|(n, _, _)| n.as_deref() == Some(named.as_str()))
                    .map(|(_, p, _)| u64::from(*p))
                    .ok_or_else(|| {
                        KubeError::Invalid(format!(
                            "{what}: {at}.targetPort: no container port named {named:?}"
                        ))
                    })?,
                _ => port,
            };
            let host = p["nodePort"].as_u64().unwrap_or(port);
            let pm = PortMap {
                container_port: target as u16,
                host_port: host as u16,
                host_ip: String::new(),
                protocol: p["protocol"].as_str().unwrap_or("TCP").to_lowercase(),
            };
            // A hostPort of the pod already publishes it (as `kube generate -s` writes both).
            let published = pod.ports().iter().any(|x| {
                (x.container_port, x.host_port, &x.protocol)
                    == (pm.container_port, pm.host_port, &pm.protocol)
            });
            if !published {
                pod.extra_ports.push(pm);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Value> {
        crate::docs::parse_all(text, "t.yaml").unwrap()
    }

    #[test]
    fn deployment_replicas_env_and_service_ports() {
        let p = plan(&docs(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {A: '1', B: two}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, annotations: {x: y}}\n\
             spec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n\
             \x20     containers:\n      - name: m\n        image: busybox\n\
             \x20       envFrom: [{configMapRef: {name: c}, prefix: P_}]\n\
             \x20       env: [{name: P_A, value: override}, {name: N, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n\
             \x20       ports: [{containerPort: 80, name: web}]\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: d}\n\
             \x20 ports: [{port: 8080, targetPort: web, nodePort: 30080}]\n",
        ))
        .unwrap();
        let names: Vec<&str> = p.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["d-pod-1", "d-pod-2"]);
        assert_eq!(
            p.pods[0].containers[0].env,
            ["P_B=two", "P_A=override", "N=d-pod-1"]
        );
        assert_eq!(
            p.pods[0].ports(),
            [PortMap {
                container_port: 80,
                host_port: 30080,
                host_ip: String::new(),
                protocol: "tcp".into()
            }]
        );
        assert!(p.pods[1].ports().is_empty());
        assert!(
            p.warnings.0.iter().any(|w| w
                == "deployment/d: metadata.annotations: not supported by pier kube play, ignored"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_job_needs_a_restart_policy_that_ends() {
        let e = plan(&docs(
            "kind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n\
             \x20     containers: [{name: m, image: busybox}]\n",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("Unsupported value: \"Always\""),
            "{e}"
        );
    }
}
