//! `build`, `pull`, and the images `up` needs (built or pulled as the
//! service's `pull_policy` says).

use crate::api::Api;
use crate::convert::image_name;
use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::load::Project;
use crate::model::Service;
use clap::Args;
use pier_client::{query, ClientError, JsonLines};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short, long)]
    pub quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg", value_name = "KEY=VAL")]
    pub build_arg: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Ignore images that can be built
    #[arg(long)]
    pub ignore_buildable: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// The image ID for each of `services`, building or pulling what is missing.
pub async fn ensure_images(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    services: &[String],
    build: bool,
    no_build: bool,
    pull: Option<&str>,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for s in services {
        let svc = &p.services[s];
        let image = image_name(&p.name, s, svc);
        let policy = pull
            .map(str::to_string)
            .or_else(|| svc.pull_policy.clone())
            .unwrap_or_else(|| "missing".into());
        let mut id = api.image_id(&image).await?;
        let must_build = svc.build.is_some() && (build || policy == "build" || id.is_none());
        if must_build && !no_build {
            build_service(ctx, api, p, s, svc, &BuildOpts::default()).await?;
            id = api.image_id(&image).await?;
        } else if svc.build.is_none() || id.is_none() {
            let pull_now = match policy.as_str() {
                "always" => true,
                "never" => false,
                "missing" | "if_not_present" | "build" => id.is_none(),
                other => {
                    return Err(ComposeError::Project(format!(
                        "services.{s}.pull_policy: invalid value {other:?}"
                    )))
                }
            };
            if pull_now && svc.image.is_some() {
                pull_one(ctx, api, s, &image).await?;
                id = api.image_id(&image).await?;
            }
        }
        let id = id.ok_or_else(|| {
            ComposeError::Project(format!(
                "service {s:?} has no image {image:?} here and it may not be built or pulled"
            ))
        })?;
        out.insert(s.clone(), id);
    }
    Ok(out)
}

async fn pull_one(ctx: &Ctx, api: &Api, service: &str, image: &str) -> Result<()> {
    ctx.event("", service, "Pulling");
    api.pull(image).await?;
    ctx.event("", service, "Pulled");
    Ok(())
}

#[derive(Default)]
pub struct BuildOpts {
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub args: Vec<(String, String)>,
}

/// The daemon's answer when it cannot read the context directory by path.
const LOCAL_CONTEXT_UNSEEN: &str = "build context directory not visible to the daemon";

pub async fn build_service(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    service: &str,
    svc: &Service,
    o: &BuildOpts,
) -> Result<()> {
    let b = svc.build.as_ref().expect("caller checks").long();
    let image = image_name(&p.name, service, svc);
    let context = b.context.clone().unwrap_or_else(|| ".".into());
    if context.contains("://") {
        return Err(ComposeError::Project(format!(
            "services.{service}.build.context: remote contexts are not supported by pier compose yet"
        )));
    }
    let dockerfile = b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    let mut buildargs = serde_json::Map::new();
    for (k, v) in &b.args {
        let v = v.clone().or_else(|| p.environment.get(k).cloned());
        if let Some(v) = v {
            buildargs.insert(k.clone(), json!(v));
        }
    }
    for (k, v) in &o.args {
        buildargs.insert(k.clone(), json!(v));
    }
    let mut labels = serde_json::Map::new();
    for (k, v) in &b.labels {
        labels.insert(k.clone(), json!(v.clone().unwrap_or_default()));
    }
    let mut q = vec![
        ("t", image.clone()),
        ("dockerfile", dockerfile.clone()),
        ("buildargs", Value::Object(buildargs).to_string()),
        ("labels", Value::Object(labels).to_string()),
        ("rm", "1".into()),
    ];
    if let Some(t) = &b.target {
        q.push(("target", t.clone()));
    }
    if let Some(n) = &b.network {
        q.push(("networkmode", n.clone()));
    }
    if o.no_cache || b.no_cache == Some(true) {
        q.push(("nocache", "1".into()));
    }
    if o.pull || b.pull == Some(true) {
        q.push(("pull", "1".into()));
    }
    let dir = Path::new(&context);
    ctx.event("Service", service, "Building");
    // The build's own output follows the block.
    ctx.pause_progress();
    // A daemon on this host reads the directory in place; otherwise it gets a tar.
    use std::os::unix::fs::MetadataExt;
    let canon = std::fs::canonicalize(dir).map_err(|e| ComposeError::io(dir.display(), e))?;
    let m = std::fs::metadata(&canon).map_err(|e| ComposeError::io(canon.display(), e))?;
    let mut by_path = q.clone();
    by_path.push(("piercontext", canon.display().to_string()));
    by_path.push(("piercontextid", format!("{}:{}", m.dev(), m.ino())));
    let resp = match api
        .client
        .request(
            http::Method::POST,
            &format!("/build{}", query(&by_path)),
            pier_client::body_empty(),
        )
        .await
    {
        Err(ClientError::Daemon { message, .. }) if message.contains(LOCAL_CONTEXT_UNSEEN) => {
            let tar = tar_dir(&canon)?;
            api.client
                .request_with(
                    http::Method::POST,
                    &format!("/build{}", query(&q)),
                    pier_client::body_bytes(tar),
                    &[("Content-Type", "application/x-tar".into())],
                )
                .await?
        }
        r => r?,
    };
    let mut lines = JsonLines::new(resp);
    while let Some(m) = lines.next::<Value>().await {
        let m = m?;
        if let Some(e) = m["error"].as_str() {
            return Err(ComposeError::Project(format!(
                "failed to solve: {}",
                e.trim_end()
            )));
        }
        if let Some(s) = m["stream"].as_str()
            && !o.quiet
        {
            eprint!("{s}");
        }
    }
    ctx.event("Service", service, "Built");
    Ok(())
}

fn tar_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)
        .map_err(|e| ComposeError::io(dir.display(), e))?;
    b.into_inner()
        .map_err(|e| ComposeError::io(dir.display(), e))
}

pub async fn build(ctx: &Ctx, p: &Project, a: &BuildArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.services)?;
    let api = ctx.api().await?;
    let mut args = Vec::new();
    for kv in &a.build_arg {
        match kv.split_once('=') {
            Some((k, v)) => args.push((k.to_string(), v.to_string())),
            None => {
                if let Some(v) = p.environment.get(kv) {
                    args.push((kv.clone(), v.clone()));
                }
            }
        }
    }
    let o = BuildOpts {
        no_cache: a.no_cache,
        pull: a.pull,
        quiet: a.quiet,
        args,
    };
    for n in names {
        let svc = &p.services[&n];
        if svc.build.is_some() {
            build_service(ctx, &api, &p, &n, svc, &o).await?;
        }
    }
    Ok(0)
}

pub async fn pull(ctx: &Ctx, p: &Project, a: &PullArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.services)?;
    let api = ctx.api().await?;
    let mut failed = false;
    for n in names {
        let svc = &p.services[&n];
        let Some(image) = &svc.image else { continue };
        if svc.build.is_some() && a.ignore_buildable {
            continue;
        }
        if !a.quiet {
            ctx.event("", &n, "Pulling");
        }
        match api.pull(image).await {
            Ok(()) => {
                if !a.quiet {
                    ctx.event("", &n, "Pulled");
                }
            }
            // A buildable service whose image is not in a registry is built instead.
            Err(_) if svc.build.is_some() => {}
            Err(e) if a.ignore_pull_failures => {
                eprintln!("{n} Warning {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    let _ = failed;
    Ok(0)
}
