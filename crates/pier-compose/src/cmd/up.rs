//! `up`: networks, volumes, images, then containers created (or recreated
//! when their config hash or image changed) and started in dependency order,
//! each waiting for its `depends_on` conditions.

use super::{dependency_order, with_deps};
use crate::api::{Api, Summary};
use crate::convert::{self, config_hash, container_name, create_spec, Instance};
use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::labels;
use crate::load::Project;
use crate::model::Condition;
use clap::Args;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Default)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Don't start the services after creating them
    #[arg(long)]
    pub no_start: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Wait for services to be running|healthy. Implies detached mode
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long)]
    pub wait_timeout: Option<u64>,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Use this timeout in seconds for container shutdown when attached or when containers are already running
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<i64>,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Stops all containers if any container was stopped. Incompatible with -d
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Stops all containers if any container exited with failure. Incompatible with -d
    #[arg(long)]
    pub abort_on_container_failure: bool,
    /// Return the exit code of the selected service container. Implies --abort-on-container-exit
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Restrict attaching to the specified services. Incompatible with --attach-dependencies.
    #[arg(long)]
    pub attach: Vec<String>,
    /// Do not attach (stream logs) to the specified services
    #[arg(long)]
    pub no_attach: Vec<String>,
    /// Automatically attach to log output of dependent services
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Watch source code and rebuild/refresh containers when files are updated.
    #[arg(short = 'w', long)]
    pub watch: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Pull image before running ("always"|"missing"|"never"|"build")
    #[arg(long, value_parser = ["always", "missing", "never", "build"])]
    pub pull: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Assume "yes" as answer to all prompts and run non-interactively
    #[arg(short = 'y', long)]
    pub yes: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Do not build & start services before watching
    #[arg(long)]
    pub no_up: bool,
    /// hide build output
    #[arg(long)]
    pub quiet: bool,
    /// Prune dangling images on rebuild
    #[arg(long)]
    pub prune: bool,
    pub services: Vec<String>,
}

/// `create`: `up --no-start`.
pub async fn create(ctx: &Ctx, p: &Project, a: &CreateArgs) -> Result<i32> {
    let up_args = UpArgs {
        detach: true,
        no_start: true,
        build: a.build,
        no_build: a.no_build,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        pull: a.pull.clone(),
        remove_orphans: a.remove_orphans,
        scale: a.scale.clone(),
        services: a.services.clone(),
        ..Default::default()
    };
    up(ctx, p, &up_args).await
}

/// `watch` needs `develop.watch`, which the loader refuses by name, so no
/// loaded service can have it: the answer is Compose's own for that case.
pub fn watch(p: &Project, a: &WatchArgs) -> Result<i32> {
    let mut p = p.clone();
    select(&mut p, &a.services)?;
    Err(ComposeError::Project(
        "none of the selected services is configured for watch, consider setting a 'develop' section (develop.watch is not supported by pier compose yet)".into(),
    ))
}

/// Compose v2's checks of `up`'s flags against each other.
fn check_flags(p: &Project, a: &UpArgs) -> Result<()> {
    let err = |m: &str| Err(ComposeError::Project(m.to_string()));
    if a.watch {
        return err("up --watch: develop.watch is not supported by pier compose yet");
    }
    if let Some(s) = &a.exit_code_from
        && !p.services.contains_key(s)
    {
        return Err(ComposeError::Project(format!("no such service: {s}")));
    }
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    if abort && a.abort_on_container_failure {
        return err(
            "--abort-on-container-failure cannot be combined with --abort-on-container-exit",
        );
    }
    if !a.attach.is_empty() && a.attach_dependencies {
        return err("cannot combine --attach and --attach-dependencies");
    }
    let attached_flags =
        abort || a.abort_on_container_failure || !a.attach.is_empty() || a.attach_dependencies;
    if a.wait && attached_flags {
        return err("--wait cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach, --attach-dependencies or --watch");
    }
    if a.detach && attached_flags {
        return err("--detach cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach, --attach-dependencies or --watch");
    }
    Ok(())
}

/// The services `up` streams: `--attach`'s, or those named (with their
/// dependencies under `--attach-dependencies`) that do not say `attach:
/// false`; never those of `--no-attach`.
fn attached_services(p: &Project, named: &[String], a: &UpArgs) -> Result<Vec<String>> {
    let mut out: Vec<String> = if !a.attach.is_empty() {
        let unknown: Vec<&String> = a
            .attach
            .iter()
            .filter(|s| !p.services.contains_key(*s))
            .collect();
        if !unknown.is_empty() {
            let u: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(ComposeError::Project(format!(
                "cannot attach to services not included in up: {}",
                u.join(", ")
            )));
        }
        a.attach.clone()
    } else {
        let base = if a.attach_dependencies {
            with_deps(p, named)
        } else {
            named.to_vec()
        };
        base.into_iter()
            .filter(|s| p.services[s].attach != Some(false))
            .collect()
    };
    out.retain(|s| !a.no_attach.contains(s));
    Ok(out)
}

pub async fn up(ctx: &Ctx, p: &Project, a: &UpArgs) -> Result<i32> {
    let mut p = p.clone();
    let named = select(&mut p, &a.services)?;
    check_flags(&p, a)?;
    let attach = attached_services(&p, &named, a)?;
    let mut scale: HashMap<String, u64> = HashMap::new();
    for s in &a.scale {
        let (n, c) = s
            .split_once('=')
            .and_then(|(n, c)| Some((n.to_string(), c.parse::<u64>().ok()?)))
            .ok_or_else(|| {
                ComposeError::Project(format!("invalid --scale {s:?}: want SERVICE=NUM"))
            })?;
        if !p.services.contains_key(&n) {
            return Err(ComposeError::Project(format!("no such service: {n}")));
        }
        scale.insert(n, c);
    }
    let wanted = if a.no_deps {
        named.clone()
    } else {
        with_deps(&p, &named)
    };
    let order = dependency_order(&p, &wanted)?;
    let api = ctx.api().await?;
    handle_orphans(ctx, &api, &p, a.remove_orphans, a.timeout).await?;
    ensure_networks(ctx, &api, &p, &order).await?;
    ensure_volumes(ctx, &api, &p).await?;
    let images = super::images::ensure_images(
        ctx,
        &api,
        &p,
        &order,
        a.build,
        a.no_build,
        a.pull.as_deref(),
    )
    .await?;
    let recreate = if a.force_recreate {
        Recreate::Always
    } else if a.no_recreate {
        Recreate::Never
    } else {
        Recreate::Diverged
    };
    let mut started_fresh: Vec<String> = Vec::new();
    let mut all: Vec<(String, String)> = Vec::new();
    for s in &order {
        let n = scale
            .get(s)
            .copied()
            .unwrap_or_else(|| convert::replicas(&p.services[s]));
        let names = converge(ctx, &api, &p, s, n, &images[s], recreate, a.timeout).await?;
        for (name, fresh) in names {
            if fresh {
                started_fresh.push(name.clone());
            }
            all.push((s.clone(), name));
        }
    }
    if a.no_start {
        return Ok(0);
    }
    start_in_order(ctx, &api, &p, &order, &wanted).await?;
    if a.wait {
        return wait_ready(ctx, &api, &p, &all, a.wait_timeout).await;
    }
    if a.detach {
        return Ok(0);
    }
    let o = super::logs::AttachOpts {
        attach,
        fresh: started_fresh,
        timeout: a.timeout,
        abort: if a.abort_on_container_exit || a.exit_code_from.is_some() {
            Some(super::logs::Abort::OnExit)
        } else if a.abort_on_container_failure {
            Some(super::logs::Abort::OnFailure)
        } else {
            None
        },
        exit_code_from: a.exit_code_from.clone(),
        no_color: a.no_color,
        no_prefix: a.no_log_prefix,
    };
    super::logs::attach_until_done(ctx, &api, &p, &all, &o).await
}

#[derive(Clone, Copy, PartialEq)]
pub enum Recreate {
    Always,
    Never,
    Diverged,
}

async fn handle_orphans(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    remove: bool,
    t: Option<i64>,
) -> Result<()> {
    let known = |s: &str| p.services.contains_key(s) || p.disabled.contains_key(s);
    let orphans: Vec<Summary> = api
        .containers(&p.name, true, Some(false))
        .await?
        .into_iter()
        .filter(|c| !known(&c.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<String> = orphans.iter().map(|c| c.name.clone()).collect();
        ctx.pause_progress();
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        );
        return Ok(());
    }
    for c in orphans {
        remove_container(ctx, api, &c, t, false).await?;
    }
    Ok(())
}

/// Stops (when running) and removes one container, with progress lines.
pub async fn remove_container(
    ctx: &Ctx,
    api: &Api,
    c: &Summary,
    t: Option<i64>,
    volumes: bool,
) -> Result<()> {
    if c.running() {
        ctx.event("Container", &c.name, "Stopping");
        api.stop(&c.id, t).await?;
        ctx.event("Container", &c.name, "Stopped");
    }
    ctx.event("Container", &c.name, "Removing");
    match api.remove(&c.id, true, volumes).await {
        Ok(()) => {}
        Err(ComposeError::Client(e)) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    ctx.event("Container", &c.name, "Removed");
    Ok(())
}

pub async fn ensure_networks(ctx: &Ctx, api: &Api, p: &Project, services: &[String]) -> Result<()> {
    let mut used: Vec<&String> = Vec::new();
    for s in services {
        for n in p.services[s].networks.keys() {
            if !used.contains(&n) {
                used.push(n);
            }
        }
    }
    for key in used {
        let net = p.networks.get(key).cloned().unwrap_or_default();
        let name = convert::network_name(p, key);
        let existing = api.network_inspect(&name).await?;
        if net.external {
            if existing.is_none() {
                return Err(ComposeError::Project(format!(
                    "network {name} declared as external, but could not be found"
                )));
            }
            continue;
        }
        if let Some(v) = existing {
            let label = v["Labels"][labels::NETWORK].as_str().unwrap_or_default();
            if label != key {
                ctx.pause_progress();
                eprintln!(
                    "WARN[0000] a network with name {name} exists but was not created by compose.\nSet `external: true` to use an existing network"
                );
            }
            continue;
        }
        ctx.event("Network", &name, "Creating");
        api.network_create(&convert::network_body(p, key, &net))
            .await?;
        ctx.event("Network", &name, "Created");
    }
    Ok(())
}

pub async fn ensure_volumes(ctx: &Ctx, api: &Api, p: &Project) -> Result<()> {
    for (key, v) in &p.volumes {
        let name = convert::volume_name(p, key);
        let existing = api.volume_inspect(&name).await?;
        if v.external {
            if existing.is_none() {
                return Err(ComposeError::Project(format!(
                    "external volume \"{name}\" not found"
                )));
            }
            continue;
        }
        if existing.is_some() {
            continue;
        }
        ctx.event("Volume", &format!("\"{name}\""), "Creating");
        api.volume_create(&convert::volume_body(p, key)).await?;
        ctx.event("Volume", &format!("\"{name}\""), "Created");
    }
    Ok(())
}

/// Creates one container of `service` (number `n`) and connects its other networks.
#[allow(clippy::too_many_arguments)]
pub async fn create_container(
    api: &Api,
    p: &Project,
    service: &str,
    number: u32,
    image_id: &str,
    name: &str,
    oneoff: bool,
    with_ports: bool,
    adjust: impl FnOnce(&mut serde_json::Value),
) -> Result<String> {
    let svc = &p.services[service];
    let hash = config_hash(svc);
    let spec = create_spec(
        p,
        &Instance {
            service,
            svc,
            number,
            oneoff,
            image_id,
            hash: &hash,
        },
        with_ports,
    )?;
    let mut body = spec.body;
    adjust(&mut body);
    let id = api.create(name, &body).await?;
    for (net, endpoint) in spec.extra_networks {
        api.network_connect(&net, &id, &endpoint).await?;
    }
    for f in &spec.injects {
        let tar = crate::secrets::archive(std::slice::from_ref(f))?;
        api.put_archive(&id, "/", f.keep_owner, tar).await?;
    }
    Ok(id)
}

/// Brings `service` to `n` containers of the current configuration.
/// Returns each container's name and whether it is new (to be attached from its start).
#[allow(clippy::too_many_arguments)]
async fn converge(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    service: &str,
    n: u64,
    image_id: &str,
    recreate: Recreate,
    t: Option<i64>,
) -> Result<Vec<(String, bool)>> {
    let svc = &p.services[service];
    if svc.container_name.is_some() && n > 1 {
        return Err(ComposeError::Project(format!(
            "services.{service}: can't set container_name and {service} as container name must be unique: invalid compose project"
        )));
    }
    let hash = config_hash(svc);
    let existing: Vec<Summary> = api
        .containers(&p.name, true, Some(false))
        .await?
        .into_iter()
        .filter(|c| c.service == service)
        .collect();
    let mut out = Vec::new();
    for c in existing
        .iter()
        .filter(|c| c.number as u64 > n || c.number == 0)
    {
        remove_container(ctx, api, c, t, false).await?;
    }
    for i in 1..=n as u32 {
        let name = container_name(&p.name, service, svc, i);
        if let Some(c) = existing.iter().find(|c| c.number == i) {
            let diverged = c.config_hash != hash || c.image_label != image_id;
            let redo = match recreate {
                Recreate::Always => true,
                Recreate::Never => false,
                Recreate::Diverged => diverged,
            };
            if !redo {
                out.push((c.name.clone(), false));
                continue;
            }
            ctx.event("Container", &c.name, "Recreate");
            if c.running() {
                api.stop(&c.id, t).await?;
            }
            // Created under a temporary name first, as Compose does, so a
            // failing create leaves the old container in place.
            let tmp = format!("{}_{}", &c.id[..12.min(c.id.len())], name);
            let id = create_container(api, p, service, i, image_id, &tmp, false, true, |b| {
                b["Labels"][labels::REPLACE] = serde_json::json!(c.id);
            })
            .await?;
            api.remove(&c.id, true, false).await?;
            api.rename(&id, &name).await?;
            ctx.event("Container", &name, "Recreated");
            out.push((name, true));
        } else {
            ctx.event("Container", &name, "Creating");
            create_container(api, p, service, i, image_id, &name, false, true, |_| {}).await?;
            ctx.event("Container", &name, "Created");
            out.push((name, true));
        }
    }
    Ok(out)
}

/// Starts the containers of `order` that are not running, each service after
/// its dependencies meet their conditions.
pub async fn start_in_order(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    order: &[String],
    wanted: &[String],
) -> Result<()> {
    for s in order {
        let svc = &p.services[s];
        for (dep, d) in &svc.depends_on {
            if !wanted.contains(dep) {
                continue;
            }
            wait_dependency(ctx, api, p, dep, d.condition, d.required).await?;
        }
        let containers: Vec<Summary> = api
            .containers(&p.name, true, Some(false))
            .await?
            .into_iter()
            .filter(|c| &c.service == s)
            .collect();
        for c in containers {
            if c.running() {
                ctx.event("Container", &c.name, "Running");
                continue;
            }
            ctx.event("Container", &c.name, "Starting");
            api.start(&c.id).await?;
            ctx.event("Container", &c.name, "Started");
        }
    }
    Ok(())
}

async fn wait_dependency(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    dep: &str,
    cond: Condition,
    required: bool,
) -> Result<()> {
    if cond == Condition::ServiceStarted {
        return Ok(());
    }
    let containers: Vec<Summary> = api
        .containers(&p.name, true, Some(false))
        .await?
        .into_iter()
        .filter(|c| c.service == dep)
        .collect();
    if containers.is_empty() && !required {
        return Ok(());
    }
    for c in containers {
        ctx.event("Container", &c.name, "Waiting");
        loop {
            let v = api.inspect(&c.id).await?;
            let state = &v["State"];
            let status = state["Status"].as_str().unwrap_or_default();
            match cond {
                Condition::ServiceHealthy => {
                    let health = state["Health"]["Status"].as_str();
                    match health {
                        Some("healthy") => {
                            ctx.event("Container", &c.name, "Healthy");
                            break;
                        }
                        Some("unhealthy") => {
                            ctx.event("Container", &c.name, "Error");
                            return Err(ComposeError::Project(format!(
                                "dependency failed to start: container {} is unhealthy",
                                c.name
                            )));
                        }
                        None if v["Config"]["Healthcheck"].is_null() => {
                            return Err(ComposeError::Project(format!(
                                "container {} has no healthcheck configured",
                                c.name
                            )));
                        }
                        _ => {}
                    }
                    if status == "exited" || status == "dead" {
                        return Err(ComposeError::Project(format!(
                            "dependency failed to start: container {} exited ({})",
                            c.name, state["ExitCode"]
                        )));
                    }
                }
                Condition::ServiceCompletedSuccessfully => {
                    if status == "exited" || status == "dead" {
                        let code = state["ExitCode"].as_i64().unwrap_or(-1);
                        if code != 0 {
                            return Err(ComposeError::Project(format!(
                                "service {dep:?} didn't complete successfully: exit {code}"
                            )));
                        }
                        ctx.event("Container", &c.name, "Exited");
                        break;
                    }
                }
                Condition::ServiceStarted => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// `up --wait`: every container running, and healthy where it has a check.
async fn wait_ready(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    all: &[(String, String)],
    timeout: Option<u64>,
) -> Result<i32> {
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
    for (_, name) in all {
        ctx.event("Container", name, "Waiting");
        loop {
            let v = api.inspect(name).await?;
            let state = &v["State"];
            let running = state["Running"].as_bool().unwrap_or(false);
            let health = state["Health"]["Status"].as_str();
            let done = match health {
                Some("healthy") => true,
                Some("unhealthy") => {
                    ctx.pause_progress();
                    eprintln!("container {name} is unhealthy");
                    return Ok(1);
                }
                Some(_) => false,
                None => running,
            };
            if done {
                ctx.event(
                    "Container",
                    name,
                    if health.is_some() {
                        "Healthy"
                    } else {
                        "Running"
                    },
                );
                break;
            }
            if !running {
                ctx.pause_progress();
                eprintln!("container {name} exited ({})", state["ExitCode"]);
                return Ok(1);
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                ctx.pause_progress();
                eprintln!(
                    "timeout waiting for project {} to be running|healthy",
                    p.name
                );
                return Ok(1);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(0)
}
