//! The compose commands, one file per group.

pub mod config;
pub mod down;
pub mod events;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod ps;
pub mod simple;
pub mod transfer;
pub mod up;

use crate::error::{ComposeError, Result};
use crate::load::Project;

/// A project known only by name: its services are those its containers'
/// labels name, with the image and `depends_on` the labels record.
pub async fn project_from_labels(ctx: &crate::ctx::Ctx, name: &str) -> Result<Project> {
    use crate::model::{Condition, DependsOn, Service};
    let mut p = Project::named(name);
    let api = ctx.api().await?;
    for c in api.all_compose_containers().await? {
        let l = &c["Labels"];
        let label = |k: &str| l[k].as_str().unwrap_or_default().to_string();
        if label(crate::labels::PROJECT) != p.name || label(crate::labels::ONEOFF) == "True" {
            continue;
        }
        let service = label(crate::labels::SERVICE);
        if service.is_empty() || p.services.contains_key(&service) {
            continue;
        }
        let mut svc = Service {
            image: c["Image"].as_str().map(str::to_string),
            ..Default::default()
        };
        // `db:service_healthy:false,cache:service_started:false`
        for dep in label(crate::labels::DEPENDS_ON)
            .split(',')
            .filter(|d| !d.is_empty())
        {
            let mut parts = dep.split(':');
            let (Some(d), cond) = (parts.next(), parts.next()) else {
                continue;
            };
            let condition = match cond {
                Some("service_healthy") => Condition::ServiceHealthy,
                Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
                _ => Condition::ServiceStarted,
            };
            svc.depends_on.insert(
                d.to_string(),
                DependsOn {
                    condition,
                    restart: false,
                    required: false,
                },
            );
        }
        p.services.insert(service, svc);
    }
    // A dependency whose containers are gone is not waited for.
    let known: Vec<String> = p.services.keys().cloned().collect();
    for s in p.services.values_mut() {
        s.depends_on.retain(|d, _| known.contains(d));
    }
    p.services.sort_keys();
    Ok(p)
}

/// `names` and, transitively, what they depend on.
pub fn with_deps(p: &Project, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if out.contains(&n) {
            continue;
        }
        if let Some(s) = p.services.get(&n) {
            todo.extend(s.depends_on.keys().cloned());
        }
        out.push(n);
    }
    out
}

/// `names` ordered so every service comes after those it depends on
/// (file order otherwise). A cycle is an error, as in Compose.
pub fn dependency_order(p: &Project, names: &[String]) -> Result<Vec<String>> {
    let mut order: Vec<String> = Vec::new();
    fn visit(
        p: &Project,
        n: &str,
        names: &[String],
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|o| o == n) || !names.iter().any(|x| x == n) {
            return Ok(());
        }
        if stack.iter().any(|s| s == n) {
            return Err(ComposeError::Project(format!(
                "dependency cycle detected: {} -> {n}",
                stack.join(" -> ")
            )));
        }
        stack.push(n.to_string());
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                visit(p, d, names, stack, order)?;
            }
        }
        stack.pop();
        order.push(n.to_string());
        Ok(())
    }
    let mut stack = Vec::new();
    for n in p.services.keys() {
        visit(p, n, names, &mut stack, &mut order)?;
    }
    Ok(order)
}

/// `proj-web-1` → `web-1`, the name Compose shows in log prefixes.
pub fn short_name(project: &str, name: &str) -> String {
    name.strip_prefix(&format!("{project}-"))
        .unwrap_or(name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Options};

    fn project(yaml: &str) -> Result<Project> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        load(&Options {
            cwd: dir.path().to_path_buf(),
            ..Default::default()
        })
    }

    #[test]
    fn dependencies_come_first_and_cycles_are_refused() {
        let p = project(
            "services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on: [db, cache]\n  db:\n    image: x\n  cache:\n    image: x\n  other:\n    image: x\n",
        )
        .unwrap();
        let all: Vec<String> = p.services.keys().cloned().collect();
        assert_eq!(
            dependency_order(&p, &all).unwrap(),
            vec!["db", "cache", "api", "web", "other"]
        );
        let mut web = with_deps(&p, &["web".to_string()]);
        web.sort();
        assert_eq!(web, vec!["api", "cache", "db", "web"]);
        let p = project(
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
        )
        .unwrap();
        let all: Vec<String> = p.services.keys().cloned().collect();
        let e = dependency_order(&p, &all).unwrap_err().to_string();
        assert_eq!(e, "dependency cycle detected: a -> b -> a");
    }

    #[test]
    fn config_hash_follows_the_service_not_its_scale() {
        let a = project("services:\n  s:\n    image: x\n    scale: 1\n").unwrap();
        let b = project("services:\n  s:\n    image: x\n    scale: 3\n").unwrap();
        let c = project("services:\n  s:\n    image: x\n    environment: [A=1]\n").unwrap();
        let d = project(
            "services:\n  s:\n    image: x\n    profiles: [p]\n    pull_policy: always\n    deploy: {replicas: 2}\n",
        )
        .unwrap();
        let h = |p: &Project| crate::convert::config_hash(&p.services["s"]);
        assert_eq!(h(&a), h(&b));
        let hd = crate::convert::config_hash(&d.disabled["s"]);
        let mut plain = d.disabled["s"].clone();
        plain.deploy.as_mut().unwrap().replicas = None;
        plain.profiles.clear();
        plain.pull_policy = None;
        assert_eq!(hd, crate::convert::config_hash(&plain));
        assert_ne!(h(&a), h(&c));
        assert_eq!(h(&a).len(), 64);
    }

    #[test]
    fn short_names_drop_the_project() {
        assert_eq!(short_name("gs", "gs-web-1"), "web-1");
        assert_eq!(short_name("gs", "custom"), "custom");
    }
}
