//! Legacy links (`--link name:alias`) between containers on the default bridge,
//! kept the way Docker keeps them: the parent sees the child under the alias in
//! its /etc/hosts and in `ALIAS_*` environment variables, inspect shows
//! `HostConfig.Links` as `/child:/parent/alias`, the child is also listed under
//! the name `/parent/alias`, and `rm --link /parent/alias` drops the link.
//!
//! The record keeps each link as `<child id>:<alias>` in `HostConfig.Links`,
//! so a rename of either side keeps it, as Docker's link graph (keyed by ID)
//! does. On a user-defined network links are only DNS aliases: they go to the
//! network's endpoint settings and `HostConfig.Links` stays as the user wrote it.

use std::collections::HashMap;

use pier_api::models::HostConfig;

use crate::network::mode_of;
use crate::records::{ContainerNetwork, ContainerRecord};
use crate::{Engine, EngineError, ErrorKind, Result};

/// Docker's `name:alias` forms: `name` (its own alias), `name:alias`, and the
/// `/name:/parent/alias` that inspect prints (so an inspected config can be
/// sent back).
fn parse_link(s: &str) -> Result<(String, String)> {
    if s.is_empty() {
        return Err(EngineError::invalid_argument(
            "empty string specified for links",
        ));
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((
            name.trim_start_matches('/').into(),
            name.trim_start_matches('/').into(),
        )),
        [name, alias] => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            Ok((name.trim_start_matches('/').into(), alias.to_string()))
        }
        _ => Err(EngineError::invalid_argument(format!(
            "bad format for links: {s}"
        ))),
    }
}

/// Whether links on this network mode are legacy ones (default bridge).
fn legacy_mode(mode: &str) -> bool {
    mode == "bridge" || mode == "none"
}

/// The (child id, alias) pairs of a record's legacy links.
pub(crate) fn stored_links(rec: &ContainerRecord) -> Vec<(String, String)> {
    if !legacy_mode(&mode_of(rec)) {
        return Vec::new();
    }
    rec.host_config
        .links
        .iter()
        .flatten()
        .filter_map(|l| l.split_once(':'))
        .filter(|(id, _)| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(id, alias)| (id.to_string(), alias.to_string()))
        .collect()
}

/// Docker's link environment for one child: `ALIAS_PORT*` for each exposed
/// port (consecutive ports of one protocol also as a `_START`/`_END` range),
/// `ALIAS_NAME`, and the child's own variables as `ALIAS_ENV_*` (but HOME and
/// PATH).
fn link_env(link_name: &str, child_ip: &str, child: &ContainerRecord) -> Vec<String> {
    let alias = link_name
        .rsplit('/')
        .next()
        .unwrap_or(link_name)
        .to_ascii_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u16, String)> = child
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // By number, tcp first among equal numbers.
    ports.sort_by(|a, b| a.0.cmp(&b.0).then((a.1 != "tcp").cmp(&(b.1 != "tcp"))));
    let mut env = Vec::new();
    if let Some((p, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{child_ip}:{p}"));
    }
    let mut i = 0;
    while i < ports.len() {
        // One run of consecutive ports with the same protocol.
        let mut j = i;
        while j + 1 < ports.len()
            && ports[j + 1].0 == ports[j].0 + 1
            && ports[j + 1].1 == ports[i].1
        {
            j += 1;
        }
        for (p, proto) in &ports[i..=j] {
            let pre = format!("{alias}_PORT_{p}_{}", proto.to_ascii_uppercase());
            env.push(format!("{pre}={proto}://{child_ip}:{p}"));
            env.push(format!("{pre}_ADDR={child_ip}"));
            env.push(format!("{pre}_PORT={p}"));
            env.push(format!("{pre}_PROTO={proto}"));
        }
        if j > i {
            let ((s, proto), (e, _)) = (&ports[i], &ports[j]);
            let pre = format!("{alias}_PORT_{s}_{}", proto.to_ascii_uppercase());
            env.push(format!("{pre}_START={proto}://{child_ip}:{s}"));
            env.push(format!("{pre}_PORT_START={s}"));
            env.push(format!("{pre}_END={proto}://{child_ip}:{e}"));
            env.push(format!("{pre}_PORT_END={e}"));
        }
        i = j + 1;
    }
    env.push(format!("{alias}_NAME={link_name}"));
    for e in child.config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=')
            && k != "HOME"
            && k != "PATH"
        {
            env.push(format!("{alias}_ENV_{k}={v}"));
        }
    }
    env
}

impl Engine {
    /// At create: checks each link and records it. Legacy links name a
    /// container that exists and does not use the host's network; on a
    /// user-defined network the links become the endpoint's.
    pub(crate) fn links_for_create(
        &self,
        host: &mut HostConfig,
        network: &mut ContainerNetwork,
    ) -> Result<()> {
        let Some(links) = host.links.clone().filter(|l| !l.is_empty()) else {
            return Ok(());
        };
        let mode = host.network_mode.clone().unwrap_or_else(|| "bridge".into());
        if mode == "host" {
            return Err(EngineError::invalid_argument(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
            ));
        }
        if mode.starts_with("container:") {
            return Err(EngineError::invalid_argument(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior",
            ));
        }
        if !legacy_mode(&mode) {
            let ep = network.requested.entry(mode).or_default();
            if ep.links.as_ref().is_none_or(|l| l.is_empty()) {
                ep.links = Some(links);
            }
            return Ok(());
        }
        let mut stored = Vec::new();
        for l in &links {
            let (name, alias) = parse_link(l)?;
            let child = self.find_container(&name).map_err(|e| match e.kind() {
                ErrorKind::NotFound => {
                    EngineError::invalid_argument(format!("could not get container for {name}"))
                        .with_source(e)
                }
                _ => e,
            })?;
            if mode_of(&child) == "host" {
                return Err(EngineError::invalid_argument(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
            stored.push(format!("{}:{alias}", child.id));
        }
        host.links = Some(stored);
        Ok(())
    }

    /// `HostConfig.Links` as inspect shows it: `/child:/parent/alias`.
    pub(crate) fn inspect_links(&self, rec: &ContainerRecord) -> Vec<String> {
        stored_links(rec)
            .into_iter()
            .filter_map(|(id, alias)| {
                let child = self.meta.container::<ContainerRecord>(&id).ok()??;
                Some(format!("/{}:/{}/{alias}", child.name, rec.name))
            })
            .collect()
    }

    /// The child a link name (`parent/alias`) stands for.
    pub fn resolve_link(&self, name: &str) -> Result<String> {
        let not_found = || EngineError::no_such_container(name.trim_start_matches('/'));
        let (parent, alias) = name
            .trim_start_matches('/')
            .rsplit_once('/')
            .ok_or_else(not_found)?;
        let p = self.find_container(parent).map_err(|_| not_found())?;
        let (child, _) = stored_links(&p)
            .into_iter()
            .find(|(_, a)| a == alias)
            .ok_or_else(not_found)?;
        // A removed child no longer answers to the link name.
        self.meta
            .container::<ContainerRecord>(&child)?
            .ok_or_else(not_found)?;
        Ok(child)
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: drops the parent's link.
    pub fn remove_link(&self, name: &str) -> Result<()> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let (parent, alias) = full.rsplit_once('/').unwrap_or(("", &full));
        if parent.is_empty() {
            return Err(EngineError::invalid_argument(
                "Conflict, cannot remove the default link name of the container",
            ));
        }
        self.resolve_link(&full)?;
        let mut p = self.find_container(parent)?;
        let keep: Vec<String> = stored_links(&p)
            .into_iter()
            .filter(|(_, a)| a != alias)
            .map(|(id, a)| format!("{id}:{a}"))
            .collect();
        p.host_config.links = (!keep.is_empty()).then_some(keep);
        self.save_container(&p)
    }

    /// A copy of the record as the container should start with its links:
    /// the children's addresses in /etc/hosts (through `ExtraHosts`, which the
    /// hosts file is written from) and their variables in the environment.
    /// Only on the default bridge, where Docker has them too.
    pub(crate) fn with_links(&self, rec: &ContainerRecord) -> Result<ContainerRecord> {
        let mut out = rec.clone();
        let links = stored_links(rec);
        if links.is_empty() || !rec.network.attached.contains_key("bridge") {
            return Ok(out);
        }
        let mut env = Vec::new();
        let mut hosts = Vec::new();
        for (id, alias) in links {
            // A removed child drops out of the link graph, as in Docker.
            let Some(child) = self.meta.container::<ContainerRecord>(&id)? else {
                continue;
            };
            let link_name = format!("/{}/{alias}", rec.name);
            if !child.state.running() {
                return Err(EngineError::conflict(format!(
                    "Cannot link to a non running container: /{} AS {link_name}",
                    child.name
                )));
            }
            let ip = child
                .network
                .attached
                .get("bridge")
                .map(|a| a.ip.clone())
                .ok_or_else(|| {
                    EngineError::conflict(format!(
                        "container {} not attached to default bridge network",
                        child.id
                    ))
                })?;
            env.extend(link_env(&link_name, &ip, &child));
            let mut names = vec![alias.clone()];
            if let Some(h) = child.config.hostname.as_deref().filter(|h| !h.is_empty()) {
                names.push(h.to_string());
            }
            if alias != child.name {
                names.push(child.name.clone());
            }
            // `ExtraHosts` entries are `names:ip`; names never hold a colon.
            hosts.push(format!("{}:{ip}", names.join(" ")));
        }
        // The container's own variables win over the link's.
        let own = out.config.env.take().unwrap_or_default();
        let key = |e: &str| e.split('=').next().unwrap_or(e).to_string();
        env.retain(|e| !own.iter().any(|o| key(o) == key(e)));
        env.extend(own);
        out.config.env = Some(env);
        hosts.extend(out.host_config.extra_hosts.take().unwrap_or_default());
        out.host_config.extra_hosts = Some(hosts);
        Ok(out)
    }

    /// Extra names of containers: `/parent/alias` for each legacy link to them.
    pub(crate) fn link_names(recs: &[ContainerRecord]) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for r in recs {
            for (id, alias) in stored_links(r) {
                out.entry(id)
                    .or_default()
                    .push(format!("/{}/{alias}", r.name));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn link_forms_parse_like_docker() {
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("db:data").unwrap(), ("db".into(), "data".into()));
        assert_eq!(
            parse_link("/db:/web/data").unwrap(),
            ("db".into(), "data".into())
        );
        assert!(parse_link("a:b:c").is_err());
        assert!(parse_link("").is_err());
    }

    #[test]
    fn link_env_has_ports_ranges_name_and_env() {
        let child: ContainerRecord = serde_json::from_value(json!({
            "id": "c", "name": "db", "created": "", "image": "", "image_id": "",
            "config": {"Env": ["PATH=/bin", "FOO=1", "HOME=/root"],
                       "ExposedPorts": {"80/tcp": {}, "81/tcp": {}, "53/udp": {}}},
            "host_config": {}, "path": "", "args": [],
            "state": crate::records::StateRecord::default(),
            "log_path": "", "hostname_path": "", "hosts_path": "", "resolv_conf_path": "",
            "cgroups_path": ""
        }))
        .unwrap();
        let env = link_env("/web/my-db", "10.0.0.2", &child);
        assert_eq!(env[0], "MY_DB_PORT=udp://10.0.0.2:53");
        assert!(env.contains(&"MY_DB_PORT_80_TCP=tcp://10.0.0.2:80".to_string()));
        assert!(env.contains(&"MY_DB_PORT_81_TCP_ADDR=10.0.0.2".to_string()));
        assert!(env.contains(&"MY_DB_PORT_80_TCP_START=tcp://10.0.0.2:80".to_string()));
        assert!(env.contains(&"MY_DB_PORT_80_TCP_PORT_END=81".to_string()));
        assert!(env.contains(&"MY_DB_NAME=/web/my-db".to_string()));
        assert!(env.contains(&"MY_DB_ENV_FOO=1".to_string()));
        assert!(!env
            .iter()
            .any(|e| e.starts_with("MY_DB_ENV_PATH") || e.starts_with("MY_DB_ENV_HOME")));
    }
}
