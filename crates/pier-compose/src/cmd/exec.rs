//! `exec` and `run`. The terminal side (raw mode, resize, stdin, detach keys)
//! is the `pier exec` / `pier start -a -i` of this same binary, so it lives in
//! one place; compose finds the container and prepares it.

use crate::convert::container_name;
use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::load::Project;
use clap::Args;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::IsTerminal;

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Disable pseudo-TTY allocation. By default `docker compose exec` allocates a TTY
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub service: String,
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long)]
    pub service_ports: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Run as specified username or uid
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Add or override a label
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long)]
    pub volume: Vec<String>,
    pub service: String,
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs this binary's own CLI (`pier -H <host> <args>`) and returns its exit code.
pub(crate) async fn self_cli(ctx: &Ctx, args: Vec<String>) -> Result<i32> {
    self_cli_quiet(ctx, args, false).await
}

/// [`self_cli`], with its stdout dropped when `quiet`.
pub(crate) async fn self_cli_quiet(ctx: &Ctx, args: Vec<String>, quiet: bool) -> Result<i32> {
    ctx.pause_progress();
    let exe = std::env::current_exe().map_err(|e| ComposeError::io("current executable", e))?;
    let mut cmd = tokio::process::Command::new(&exe);
    let c = &ctx.conn;
    if let Some(h) = &c.host {
        cmd.arg("-H").arg(h);
    }
    if let Some(name) = &c.context {
        cmd.arg("--context").arg(name);
    }
    if c.tls {
        cmd.arg("--tls");
    }
    if c.tlsverify {
        cmd.arg("--tlsverify");
    }
    for (flag, path) in [
        ("--tlscacert", &c.tlscacert),
        ("--tlscert", &c.tlscert),
        ("--tlskey", &c.tlskey),
    ] {
        if let Some(path) = path {
            cmd.arg(flag).arg(path);
        }
    }
    if quiet {
        cmd.stdout(std::process::Stdio::null());
    }
    let status = cmd
        .args(args)
        .status()
        .await
        .map_err(|e| ComposeError::io(exe.display(), e))?;
    Ok(status.code().unwrap_or(1))
}

pub async fn exec(ctx: &Ctx, p: &Project, a: &ExecArgs) -> Result<i32> {
    let mut p = p.clone();
    select(&mut p, std::slice::from_ref(&a.service))?;
    let api = ctx.api().await?;
    let c = api
        .containers(&p.name, false, Some(false))
        .await?
        .into_iter()
        .find(|c| c.service == a.service && c.number == a.index)
        .ok_or_else(|| ComposeError::Project(format!("service {:?} is not running", a.service)))?;
    let mut args = vec!["exec".to_string()];
    if a.detach {
        args.push("-d".into());
    } else {
        args.push("-i".into());
        if !a.no_tty && std::io::stdin().is_terminal() {
            args.push("-t".into());
        }
    }
    for e in &a.env {
        args.extend(["-e".to_string(), e.clone()]);
    }
    if let Some(u) = &a.user {
        args.extend(["-u".to_string(), u.clone()]);
    }
    if let Some(w) = &a.workdir {
        args.extend(["-w".to_string(), w.clone()]);
    }
    if a.privileged {
        args.push("--privileged".into());
    }
    args.push(c.id);
    args.extend(a.command.iter().cloned());
    self_cli(ctx, args).await
}

/// `run -p` and `-v` in the service's own short syntax: `-p` ports are
/// published (alone, or with the service's under `--service-ports`), `-v`
/// mounts come after the service's. Whether ports are published.
fn add_ports_and_volumes(p: &mut Project, a: &RunArgs) -> Result<bool> {
    let wd = p.working_dir.clone();
    let declared: Vec<String> = p.volumes.keys().cloned().collect();
    let svc = p
        .services
        .get_mut(&a.service)
        .ok_or_else(|| ComposeError::Project(format!("no such service: {}", a.service)))?;
    let mut extra = Vec::new();
    for spec in &a.publish {
        extra.extend(crate::ports::parse_short(spec).map_err(ComposeError::Project)?);
    }
    if !a.publish.is_empty() && !a.service_ports {
        svc.ports.clear();
    }
    svc.ports.extend(extra);
    for spec in &a.volume {
        let mut v = crate::volumes::parse_short(spec).map_err(ComposeError::Project)?;
        match (v.kind.as_str(), &v.source) {
            ("bind", Some(src)) if !src.starts_with('/') => {
                v.source = Some(wd.join(src).display().to_string());
            }
            ("volume", Some(src)) if !declared.contains(src) => {
                return Err(ComposeError::Project(format!(
                    "service {:?} refers to undefined volume {src}: invalid compose project",
                    a.service
                )));
            }
            _ => {}
        }
        svc.volumes.push(v);
    }
    Ok(a.service_ports || !a.publish.is_empty())
}

fn random_suffix() -> String {
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    hex::encode(Sha256::digest(seed.as_bytes()))[..12].to_string()
}

pub async fn run(ctx: &Ctx, p: &Project, a: &RunArgs) -> Result<i32> {
    let mut p = p.clone();
    select(&mut p, std::slice::from_ref(&a.service))?;
    let deps: Vec<String> = p.services[&a.service].depends_on.keys().cloned().collect();
    if !a.no_deps && !deps.is_empty() {
        let up = super::up::UpArgs {
            detach: true,
            services: deps,
            ..Default::default()
        };
        super::up::up(ctx, &p, &up).await?;
    }
    let with_ports = add_ports_and_volumes(&mut p, a)?;
    let api = ctx.api().await?;
    let svc_name = a.service.clone();
    super::up::ensure_networks(ctx, &api, &p, std::slice::from_ref(&svc_name)).await?;
    super::up::ensure_volumes(ctx, &api, &p).await?;
    let images = super::images::ensure_images(
        ctx,
        &api,
        &p,
        std::slice::from_ref(&svc_name),
        false,
        false,
        None,
    )
    .await?;
    let tty = !a.no_tty && !a.detach && std::io::stdin().is_terminal();
    let name = a.name.clone().unwrap_or_else(|| {
        let base = container_name(&p.name, &a.service, &p.services[&a.service], 1);
        let base = base.trim_end_matches("-1");
        format!("{base}-run-{}", random_suffix())
    });
    let entrypoint = match &a.entrypoint {
        Some(e) => Some(
            shlex::split(e)
                .ok_or_else(|| ComposeError::Project(format!("invalid --entrypoint {e:?}")))?,
        ),
        None => None,
    };
    let id = super::up::create_container(
        &api,
        &p,
        &a.service,
        1,
        &images[&a.service],
        &name,
        true,
        with_ports,
        |b| {
            if !a.command.is_empty() {
                b["Cmd"] = json!(a.command);
            }
            if let Some(e) = &entrypoint {
                b["Entrypoint"] = json!(e);
                if a.command.is_empty() {
                    b["Cmd"] = json!([]);
                }
            }
            if let Some(env) = b["Env"].as_array_mut() {
                env.extend(a.env.iter().map(|e| json!(e)));
            }
            if let Some(u) = &a.user {
                b["User"] = json!(u);
            }
            if let Some(w) = &a.workdir {
                b["WorkingDir"] = json!(w);
            }
            for l in &a.label {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                b["Labels"][k] = json!(v);
            }
            b["Tty"] = json!(tty);
            b["OpenStdin"] = json!(!a.detach);
            b["AttachStdin"] = json!(!a.detach);
            b["StdinOnce"] = json!(!a.detach);
            // A one-off container is not restarted.
            b["HostConfig"]["RestartPolicy"] = json!({"Name": "no"});
            if a.rm && a.detach {
                b["HostConfig"]["AutoRemove"] = json!(true);
            }
        },
    )
    .await?;
    if a.detach {
        api.start(&id).await?;
        crate::out::line(&name);
        return Ok(0);
    }
    let code = self_cli(
        ctx,
        vec!["start".into(), "-a".into(), "-i".into(), id.clone()],
    )
    .await?;
    if a.rm {
        api.remove(&id, true, true).await?;
    }
    Ok(code)
}
