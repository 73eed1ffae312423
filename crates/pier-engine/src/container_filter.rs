//! `docker ps --filter`: which containers a listing keeps, with Docker's
//! rules (values of one key are alternatives, except `label`, whose values
//! must all match; different keys must all match).

use std::collections::HashMap;

use pier_api::models::{EndpointSettings, PortSummary};

use crate::records::ContainerRecord;
use crate::{Engine, EngineError, Result};

pub(crate) struct ContainerFilter<'a> {
    filters: &'a HashMap<String, Vec<String>>,
    /// `before=` / `since=`: creation times of the containers named.
    before: Vec<String>,
    since: Vec<String>,
}

impl<'a> ContainerFilter<'a> {
    /// Resolves the containers `before` and `since` name; an unknown one is
    /// an error, as in Docker.
    pub(crate) fn new(engine: &Engine, filters: &'a HashMap<String, Vec<String>>) -> Result<Self> {
        let created = |key: &str| -> Result<Vec<String>> {
            filters
                .get(key)
                .into_iter()
                .flatten()
                .map(|v| Ok(engine.find_container(v)?.created))
                .collect()
        };
        crate::util::check_filter_keys(filters, KEYS)?;
        for v in filters.get("status").into_iter().flatten() {
            if v.parse::<crate::ContainerStatus>().is_err() {
                return Err(EngineError::invalid_argument(format!(
                    "Invalid filter 'status={v}'"
                )));
            }
        }
        for v in filters.get("health").into_iter().flatten() {
            if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
                return Err(EngineError::invalid_argument(format!(
                    "Unrecognised filter value for health: {v}"
                )));
            }
        }
        Ok(ContainerFilter {
            filters,
            before: created("before")?,
            since: created("since")?,
        })
    }

    /// The filters answered by the record alone.
    pub(crate) fn matches_record(&self, rec: &ContainerRecord) -> bool {
        let labels = rec.config.labels.clone().unwrap_or_default();
        self.filters.iter().all(|(k, vals)| {
            if k == "label" {
                return crate::util::labels_match(vals, &labels);
            }
            vals.is_empty()
                || match k.as_str() {
                    "before" => self.before.iter().any(|t| rec.created < *t),
                    "since" => self.since.iter().any(|t| rec.created > *t),
                    // Answered with the container's attachments.
                    "network" | "publish" | "expose" | "health" | "volume" => true,
                    _ => vals.iter().any(|v| record_matches(k, v, rec)),
                }
        })
    }

    /// The filters that need the container's ports, networks, mounts and
    /// health.
    pub(crate) fn matches_attachments(
        &self,
        engine: &Engine,
        rec: &ContainerRecord,
        ports: &[PortSummary],
        networks: &HashMap<String, EndpointSettings>,
    ) -> bool {
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            self.filters
                .get(key)
                .filter(|v| !v.is_empty())
                .is_none_or(|vals| vals.iter().any(|v| f(v)))
        };
        any("network", &|v| {
            networks.iter().any(|(name, ep)| {
                name == v || ep.network_id.as_deref().is_some_and(|id| id.starts_with(v))
            })
        }) && any("publish", &|v| {
            ports
                .iter()
                .any(|p| p.public_port.is_some() && port_matches(v, p))
        }) && any("expose", &|v| ports.iter().any(|p| port_matches(v, p)))
            && any("volume", &|v| {
                rec.mounts
                    .iter()
                    .any(|m| (m.kind == "volume" && m.name == v) || m.destination == v)
            })
            && any("health", &|v| {
                let status = engine.health_report(rec).map_or("none", |h| h.status);
                status == v
            })
    }
}

const KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "label",
    "exited",
    "ancestor",
    "before",
    "since",
    "network",
    "volume",
    "health",
    "publish",
    "expose",
    "isolation",
    "is-task",
];

fn record_matches(key: &str, v: &str, rec: &ContainerRecord) -> bool {
    match key {
        "id" => rec.id.starts_with(v),
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "status" => rec.state.status.as_str() == v,
        "exited" => {
            rec.state.status == crate::ContainerStatus::Exited
                && rec.state.exit_code.to_string() == v
        }
        "ancestor" => {
            rec.image == v
                || rec.image_id == v
                || rec.image_id.trim_start_matches("sha256:").starts_with(v)
                || pier_reference::Reference::parse(v)
                    .ok()
                    .zip(pier_reference::Reference::parse(&rec.image).ok())
                    .is_some_and(|(a, b)| a == b)
        }
        // Linux containers have the default isolation and are never swarm tasks.
        "isolation" => v == "default",
        "is-task" => v == "false",
        _ => false,
    }
}

/// `80`, `80/udp` or a range `8000-8080[/tcp]` against a container port.
fn port_matches(spec: &str, p: &PortSummary) -> bool {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let typ = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
    if !typ.eq_ignore_ascii_case(proto) {
        return false;
    }
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&p.private_port),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pier_api::models::PortSummaryTypeEnum;

    #[test]
    fn port_specs_like_docker() {
        let p = |port, typ| PortSummary {
            private_port: port,
            typ: Some(typ),
            ..Default::default()
        };
        assert!(port_matches("80", &p(80, PortSummaryTypeEnum::TCP)));
        assert!(port_matches("80/tcp", &p(80, PortSummaryTypeEnum::TCP)));
        assert!(!port_matches("80/udp", &p(80, PortSummaryTypeEnum::TCP)));
        assert!(port_matches("53/udp", &p(53, PortSummaryTypeEnum::UDP)));
        assert!(port_matches(
            "8000-8100",
            &p(8080, PortSummaryTypeEnum::TCP)
        ));
        assert!(!port_matches(
            "8000-8079",
            &p(8080, PortSummaryTypeEnum::TCP)
        ));
        assert!(!port_matches("http", &p(80, PortSummaryTypeEnum::TCP)));
    }
}
