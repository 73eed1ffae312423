//! One container of a pod spec: command, env (ConfigMaps, Secrets), ports,
//! mounts, probes as a health check, resources and securityContext.

use super::{str_list, str_of, Container, Ctx, Mount, PortMap, Volume};
use crate::error::{KubeError, Result};
use crate::quantity;
use serde_json::Value;

const CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "ports",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "resources",
    "securityContext",
    "tty",
    "stdin",
    "terminationMessagePath",
    "terminationMessagePolicy",
];

impl Ctx {
    pub(super) fn container(
        &mut self,
        what: &str,
        pod_name: &str,
        at: &str,
        c: &Value,
        psc: &Value,
        volumes: &[Volume],
    ) -> Result<Container> {
        self.warnings.unknown_keys(what, at, c, CONTAINER_KEYS);
        let name = c["name"]
            .as_str()
            .ok_or_else(|| KubeError::Invalid(format!("{what}: {at}.name: Required value")))?
            .to_string();
        let image = c["image"]
            .as_str()
            .ok_or_else(|| KubeError::Invalid(format!("{what}: {at}.image: Required value")))?
            .to_string();
        let mut out = Container {
            name,
            image,
            pull_policy: c["imagePullPolicy"].as_str().map(str::to_string),
            command: str_list(&c["command"], &format!("{what}: {at}.command"))?,
            args: str_list(&c["args"], &format!("{what}: {at}.args"))?,
            working_dir: c["workingDir"].as_str().map(str::to_string),
            tty: c["tty"].as_bool().unwrap_or(false),
            stdin: c["stdin"].as_bool().unwrap_or(false),
            ..Default::default()
        };
        // envFrom first: an explicit `env` entry wins over it, as in Kubernetes.
        for (i, e) in c["envFrom"].as_array().into_iter().flatten().enumerate() {
            let at = format!("{at}.envFrom[{i}]");
            self.warnings
                .unknown_keys(what, &at, e, &["configMapRef", "secretRef", "prefix"]);
            let prefix = e["prefix"].as_str().unwrap_or_default();
            let (kind, r) = if e.get("secretRef").is_some() {
                ("secret", &e["secretRef"])
            } else {
                ("configmap", &e["configMapRef"])
            };
            let name = r["name"].as_str().unwrap_or_default();
            match self.lookup(kind, name, None) {
                Some(kv) => out
                    .env
                    .extend(kv.into_iter().map(|(k, v)| format!("{prefix}{k}={v}"))),
                None if r["optional"].as_bool().unwrap_or(false) => {}
                None => {
                    return Err(KubeError::Invalid(format!(
                        "{what}: {at}: {kind} {name:?} not found in the YAML"
                    )))
                }
            }
        }
        for (i, e) in c["env"].as_array().into_iter().flatten().enumerate() {
            let at = format!("{at}.env[{i}]");
            self.warnings
                .unknown_keys(what, &at, e, &["name", "value", "valueFrom"]);
            let k = e["name"].as_str().unwrap_or_default();
            let value = match e.get("valueFrom") {
                None => Some(
                    e["value"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| str_of(&e["value"]))
                        .unwrap_or_default(),
                ),
                Some(f) => {
                    let (kind, r) = if f.get("secretKeyRef").is_some() {
                        ("secret", &f["secretKeyRef"])
                    } else if f.get("configMapKeyRef").is_some() {
                        ("configmap", &f["configMapKeyRef"])
                    } else if let Some(path) = f["fieldRef"]["fieldPath"].as_str() {
                        // The only pod fields one host knows before the pod runs.
                        match path {
                            "metadata.name" => {
                                out.env.push(format!("{k}={pod_name}"));
                                continue;
                            }
                            _ => {
                                self.warnings.add(format!("{what}: {at}.valueFrom.fieldRef: {path} not supported by pier kube play, ignored"));
                                continue;
                            }
                        }
                    } else {
                        self.warnings.add(format!(
                            "{what}: {at}.valueFrom: not supported by pier kube play, ignored"
                        ));
                        continue;
                    };
                    let name = r["name"].as_str().unwrap_or_default();
                    let key = r["key"].as_str().unwrap_or_default();
                    match self.lookup(kind, name, Some(key)) {
                        Some(kv) => kv.into_iter().next().map(|(_, v)| v),
                        None if r["optional"].as_bool().unwrap_or(false) => None,
                        None => return Err(KubeError::Invalid(format!("{what}: {at}.valueFrom: {kind} {name:?} has no key {key:?} in the YAML"))),
                    }
                }
            };
            if let Some(v) = value {
                out.env
                    .retain(|x| x.split_once('=').map(|(n, _)| n) != Some(k));
                out.env.push(format!("{k}={v}"));
            }
        }
        for (i, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
            let at = format!("{at}.ports[{i}]");
            self.warnings.unknown_keys(
                what,
                &at,
                p,
                &["containerPort", "hostPort", "hostIP", "protocol", "name"],
            );
            let cp = p["containerPort"]
                .as_u64()
                .filter(|p| *p > 0 && *p < 65536)
                .ok_or_else(|| {
                    KubeError::Invalid(format!("{what}: {at}.containerPort: Required value"))
                })? as u16;
            let proto = p["protocol"].as_str().unwrap_or("TCP").to_lowercase();
            if let Some(hp) = p["hostPort"].as_u64().filter(|p| *p > 0) {
                out.ports.push(PortMap {
                    container_port: cp,
                    host_port: hp as u16,
                    host_ip: p["hostIP"].as_str().unwrap_or_default().to_string(),
                    protocol: proto.clone(),
                });
            }
            out.declared
                .push((p["name"].as_str().map(str::to_string), cp, proto));
        }
        for (i, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{at}.volumeMounts[{i}]");
            self.warnings
                .unknown_keys(what, &at, m, &["name", "mountPath", "readOnly", "subPath"]);
            let vol = m["name"].as_str().unwrap_or_default();
            if !volumes.iter().any(|v| v.name == vol) {
                return Err(KubeError::Invalid(format!(
                    "{what}: {at}.name: Not found: {vol:?}"
                )));
            }
            out.mounts.push(Mount {
                volume: vol.to_string(),
                path: m["mountPath"]
                    .as_str()
                    .ok_or_else(|| {
                        KubeError::Invalid(format!("{what}: {at}.mountPath: Required value"))
                    })?
                    .to_string(),
                read_only: m["readOnly"].as_bool().unwrap_or(false),
                sub_path: m["subPath"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            });
        }
        let probes: Vec<&str> = ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .filter(|k| c.get(*k).is_some())
            .collect();
        if let Some(first) = probes.first() {
            let declared = out.declared.clone();
            out.healthcheck =
                Some(self.probe(what, &format!("{at}.{first}"), &c[*first], &declared)?);
            for other in &probes[1..] {
                self.warnings.add(format!("{what}: {at}.{other}: one health check per container: {first} is used, ignored"));
            }
        }
        let r = &c["resources"];
        self.warnings
            .unknown_keys(what, &format!("{at}.resources"), r, &["limits", "requests"]);
        for (part, known) in [
            ("limits", &["memory", "cpu"][..]),
            ("requests", &["memory", "cpu"][..]),
        ] {
            self.warnings
                .unknown_keys(what, &format!("{at}.resources.{part}"), &r[part], known);
        }
        let q = |v: &Value, f: fn(&str) -> Option<i64>, path: String| -> Result<Option<i64>> {
            match str_of(v) {
                None => Ok(None),
                Some(s) => f(&s).map(Some).ok_or_else(|| {
                    KubeError::Invalid(format!("{what}: {path}: invalid quantity {s:?}"))
                }),
            }
        };
        out.memory = q(
            &r["limits"]["memory"],
            quantity::bytes,
            format!("{at}.resources.limits.memory"),
        )?;
        out.nano_cpus = q(
            &r["limits"]["cpu"],
            quantity::milli_cpus,
            format!("{at}.resources.limits.cpu"),
        )?
        .map(|m| m * 1_000_000);
        out.memory_reservation = q(
            &r["requests"]["memory"],
            quantity::bytes,
            format!("{at}.resources.requests.memory"),
        )?;
        // Kubernetes' own mapping of a CPU request to cgroup shares.
        out.cpu_shares = q(
            &r["requests"]["cpu"],
            quantity::milli_cpus,
            format!("{at}.resources.requests.cpu"),
        )?
        .map(|m| (m * 1024 / 1000).max(2));
        let sc = &c["securityContext"];
        self.warnings.unknown_keys(
            what,
            &format!("{at}.securityContext"),
            sc,
            &[
                "runAsUser",
                "runAsGroup",
                "capabilities",
                "privileged",
                "readOnlyRootFilesystem",
                "allowPrivilegeEscalation",
                "runAsNonRoot",
            ],
        );
        self.warnings.unknown_keys(
            what,
            &format!("{at}.securityContext.capabilities"),
            &sc["capabilities"],
            &["add", "drop"],
        );
        let uid = sc["runAsUser"]
            .as_i64()
            .or_else(|| psc["runAsUser"].as_i64());
        let gid = sc["runAsGroup"]
            .as_i64()
            .or_else(|| psc["runAsGroup"].as_i64());
        out.user = match (uid, gid) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            (None, Some(g)) => Some(format!("0:{g}")),
            (None, None) => None,
        };
        for g in psc["supplementalGroups"].as_array().into_iter().flatten() {
            out.group_add.extend(str_of(g));
        }
        if let Some(g) = psc["fsGroup"].as_i64() {
            out.group_add.push(g.to_string());
        }
        let caps = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
                .map(|s| s.to_uppercase())
                .collect()
        };
        out.cap_add = caps(&sc["capabilities"]["add"]);
        out.cap_drop = caps(&sc["capabilities"]["drop"]);
        out.privileged = sc["privileged"].as_bool().unwrap_or(false);
        out.read_only = sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false);
        out.no_new_privs = sc["allowPrivilegeEscalation"].as_bool() == Some(false);
        Ok(out)
    }

    fn probe(
        &mut self,
        what: &str,
        at: &str,
        p: &Value,
        declared: &[(Option<String>, u16, String)],
    ) -> Result<Value> {
        self.warnings.unknown_keys(
            what,
            at,
            p,
            &[
                "exec",
                "httpGet",
                "tcpSocket",
                "initialDelaySeconds",
                "periodSeconds",
                "timeoutSeconds",
                "failureThreshold",
                "successThreshold",
            ],
        );
        // A port is a number or the name of one of the container's ports.
        let port = |v: &Value| match v.as_str() {
            Some(name) => declared
                .iter()
                .find(|(n, _, _)| n.as_deref() == Some(name))
                .map(|(_, p, _)| p.to_string())
                .unwrap_or_else(|| name.to_string()),
            None => str_of(v).unwrap_or_default(),
        };
        let test: Vec<String> = if let Some(cmd) =
            str_list(&p["exec"]["command"], &format!("{what}: {at}.exec.command"))?
        {
            std::iter::once("CMD".to_string()).chain(cmd).collect()
        } else if let Some(h) = p.get("httpGet") {
            self.warnings.unknown_keys(
                what,
                &format!("{at}.httpGet"),
                h,
                &["path", "port", "host", "scheme"],
            );
            let url = format!(
                "{}://{}:{}{}",
                h["scheme"].as_str().unwrap_or("HTTP").to_lowercase(),
                h["host"].as_str().unwrap_or("localhost"),
                port(&h["port"]),
                h["path"].as_str().unwrap_or("/")
            );
            // Whichever client the image has: busybox brings wget, others curl.
            vec![
                "CMD-SHELL".into(),
                format!("wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"),
            ]
        } else if let Some(t) = p.get("tcpSocket") {
            self.warnings
                .unknown_keys(what, &format!("{at}.tcpSocket"), t, &["port", "host"]);
            vec![
                "CMD-SHELL".into(),
                format!(
                    "nc -z {} {}",
                    t["host"].as_str().unwrap_or("localhost"),
                    port(&t["port"])
                ),
            ]
        } else {
            return Err(KubeError::Invalid(format!(
                "{what}: {at}: a probe needs exec, httpGet or tcpSocket"
            )));
        };
        let secs = |k: &str, d: i64| p[k].as_i64().unwrap_or(d) * 1_000_000_000;
        Ok(serde_json::json!({
            "Test": test,
            "Interval": secs("periodSeconds", 10),
            "Timeout": secs("timeoutSeconds", 1),
            "StartPeriod": secs("initialDelaySeconds", 0),
            "Retries": p["failureThreshold"].as_i64().unwrap_or(3),
        }))
    }
}
