//! `down`: containers stopped in reverse dependency order and removed, then
//! the project's networks, and with `-v` its volumes, with `--rmi` its images.

use super::dependency_order;
use crate::api::Summary;
use crate::cmd::up::remove_container;
use crate::convert::{image_name, network_name, volume_name};
use crate::ctx::Ctx;
use crate::error::{ComposeError, Result};
use crate::load::Project;
use clap::Args;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
    #[arg(long, value_parser = ["local", "all"])]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<i64>,
    /// Project name (the global flag, also accepted after `down` as Compose's persistent flags are)
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    pub services: Vec<String>,
}

/// `names` and every service that depends on them, transitively (what
/// Compose takes down with them).
fn with_dependents(p: &Project, names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = names.to_vec();
    loop {
        let more: Vec<String> = p
            .services
            .iter()
            .filter(|(n, s)| !out.contains(n) && s.depends_on.keys().any(|d| out.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

pub async fn down(ctx: &Ctx, p: &Project, a: &DownArgs) -> Result<i32> {
    // `down` acts on every service of the file, whatever the active profiles.
    let mut p = p.clone();
    let disabled: Vec<(String, _)> = p.disabled.drain(..).collect();
    p.services.extend(disabled);
    for s in &a.services {
        if p.has_files() && !p.services.contains_key(s) {
            return Err(ComposeError::Project(format!("no such service: {s}")));
        }
    }
    let api = ctx.api().await?;
    let mut containers = api.containers(&p.name, true, None).await?;
    let all: Vec<String> = if a.services.is_empty() {
        p.services.keys().cloned().collect()
    } else {
        let named = with_dependents(&p, &a.services);
        containers.retain(|c| named.contains(&c.service));
        named
    };
    let mut order = dependency_order(&p, &all)?;
    order.reverse();
    let mut orphans: Vec<&Summary> = Vec::new();
    for c in containers.iter().filter(|_| p.has_files()) {
        if !p.services.contains_key(&c.service) && !c.oneoff {
            orphans.push(c);
        }
    }
    for s in &order {
        for c in containers.iter().filter(|c| &c.service == s) {
            remove_container(ctx, &api, c, a.timeout, a.volumes).await?;
        }
    }
    if !p.has_files() {
        // Known by name only: what no service label placed above (one-off
        // containers of a service with no other) goes too, last made first.
        let mut rest: Vec<&Summary> = containers
            .iter()
            .filter(|c| !p.services.contains_key(&c.service))
            .collect();
        rest.sort_by_key(|c| std::cmp::Reverse(c.created));
        for c in rest {
            remove_container(ctx, &api, c, a.timeout, a.volumes).await?;
        }
    }
    if a.remove_orphans {
        for c in &orphans {
            remove_container(ctx, &api, c, a.timeout, a.volumes).await?;
        }
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        ctx.pause_progress();
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        );
    }
    // Networks: those of the file that compose made, and any left by this project.
    let mut nets: Vec<String> = p
        .networks
        .iter()
        .filter(|(_, n)| !n.external)
        .map(|(k, _)| network_name(&p, k))
        .collect();
    for n in api.networks_by_project(&p.name).await? {
        if let Some(name) = n["Name"].as_str()
            && !nets.iter().any(|x| x == name)
        {
            nets.push(name.to_string());
        }
    }
    for n in nets {
        let Some(info) = api.network_inspect(&n).await? else {
            continue;
        };
        if info["Containers"]
            .as_object()
            .is_some_and(|c| !c.is_empty())
        {
            ctx.event("Network", &n, "Resource is still in use");
            continue;
        }
        ctx.event("Network", &n, "Removing");
        match api.network_remove(&n).await {
            Ok(_) => ctx.event("Network", &n, "Removed"),
            // Still used by a container that is not ours to remove (an orphan left in place).
            Err(crate::error::ComposeError::Client(e))
                if e.to_string().contains("active endpoints") =>
            {
                ctx.pause_progress();
                eprintln!("WARN[0000] network {n} not removed: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    if a.volumes && !p.has_files() {
        for name in api.volumes_by_project(&p.name).await? {
            ctx.event("Volume", &name, "Removing");
            api.volume_remove(&name).await?;
            ctx.event("Volume", &name, "Removed");
        }
    }
    if a.volumes {
        for (k, v) in &p.volumes {
            if v.external {
                continue;
            }
            let name = volume_name(&p, k);
            if api.volume_inspect(&name).await?.is_none() {
                continue;
            }
            ctx.event("Volume", &name, "Removing");
            match api.volume_remove(&name).await {
                Ok(_) => ctx.event("Volume", &name, "Removed"),
                Err(ComposeError::Client(e)) if e.status() == Some(409) => {
                    ctx.event("Volume", &name, "Resource is still in use")
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(rmi) = &a.rmi {
        for (n, s) in &p.services {
            // "local": only images compose named itself (no `image:`).
            if rmi == "local" && s.image.is_some() {
                continue;
            }
            let img = image_name(&p.name, n, s);
            if api.image_id(&img).await?.is_none() {
                continue;
            }
            ctx.event("Image", &img, "Removing");
            api.image_remove(&img).await?;
            ctx.event("Image", &img, "Removed");
        }
    }
    Ok(0)
}
