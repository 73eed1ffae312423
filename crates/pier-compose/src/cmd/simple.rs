//! `start`, `stop`, `restart`, `rm`, `kill`, `pause`, `unpause`, `ls`.

use super::{dependency_order, with_deps};
use crate::api::Summary;
use crate::ctx::{select, Ctx};
use crate::error::Result;
use crate::labels;
use crate::load::Project;
use crate::out;
use clap::Args;
use indexmap::IndexMap;

#[derive(Args, Debug)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<i64>,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// The service containers (not one-off) of `names`, in dependency order
/// (reversed when `reverse`).
async fn targets(
    ctx: &Ctx,
    p: &mut Project,
    names: &[String],
    reverse: bool,
) -> Result<(crate::api::Api, Vec<Summary>)> {
    let names = select(p, names)?;
    let mut order = dependency_order(p, &names)?;
    if reverse {
        order.reverse();
    }
    let api = ctx.api().await?;
    let all = api.containers(&p.name, true, Some(false)).await?;
    let mut out = Vec::new();
    for s in order {
        out.extend(all.iter().filter(|c| c.service == s).cloned());
    }
    Ok((api, out))
}

pub async fn start(ctx: &Ctx, p: &Project, a: &ServicesArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.services)?;
    let wanted = with_deps(&p, &names);
    let order = dependency_order(&p, &wanted)?;
    let api = ctx.api().await?;
    super::up::start_in_order(ctx, &api, &p, &order, &wanted).await?;
    Ok(0)
}

pub async fn stop(ctx: &Ctx, p: &Project, a: &StopArgs, restart: bool) -> Result<i32> {
    let mut p = p.clone();
    let (api, list) = targets(ctx, &mut p, &a.services, !restart).await?;
    for c in list {
        if restart {
            ctx.event("Container", &c.name, "Restarting");
            api.restart(&c.id, a.timeout).await?;
            ctx.event("Container", &c.name, "Started");
        } else if c.running() {
            ctx.event("Container", &c.name, "Stopping");
            api.stop(&c.id, a.timeout).await?;
            ctx.event("Container", &c.name, "Stopped");
        }
    }
    Ok(0)
}

pub async fn rm(ctx: &Ctx, p: &Project, a: &RmArgs) -> Result<i32> {
    let mut p = p.clone();
    let (api, list) = targets(ctx, &mut p, &a.services, true).await?;
    let mut removable = Vec::new();
    for c in list {
        if c.running() {
            if !a.stop {
                continue;
            }
            ctx.event("Container", &c.name, "Stopping");
            api.stop(&c.id, None).await?;
            ctx.event("Container", &c.name, "Stopped");
        }
        removable.push(c);
    }
    if removable.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    if !a.force {
        // Compose asks; without a terminal to ask on, it is a refusal, not a yes.
        let names: Vec<&str> = removable.iter().map(|c| c.name.as_str()).collect();
        eprintln!("Going to remove {}", names.join(", "));
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!("not removing: confirm with -f when not on a terminal");
            return Ok(1);
        }
        eprint!("? Are you sure you want to remove them? (y/N) ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    for c in removable {
        ctx.event("Container", &c.name, "Removing");
        api.remove(&c.id, false, a.volumes).await?;
        ctx.event("Container", &c.name, "Removed");
    }
    Ok(0)
}

pub async fn kill(ctx: &Ctx, p: &Project, a: &KillArgs) -> Result<i32> {
    let mut p = p.clone();
    let (api, list) = targets(ctx, &mut p, &a.services, true).await?;
    for c in list.into_iter().filter(|c| c.running()) {
        ctx.event("Container", &c.name, "Killing");
        api.kill(&c.id, &a.signal).await?;
        ctx.event("Container", &c.name, "Killed");
    }
    // With --remove-orphans Compose kills the orphans too (services no
    // longer in the file); it removes nothing.
    let known = |s: &str| p.services.contains_key(s) || p.disabled.contains_key(s);
    if a.remove_orphans {
        for c in api.containers(&p.name, false, Some(false)).await? {
            if !known(&c.service) {
                ctx.event("Container", &c.name, "Killing");
                api.kill(&c.id, &a.signal).await?;
                ctx.event("Container", &c.name, "Killed");
            }
        }
    }
    Ok(0)
}

pub async fn pause(ctx: &Ctx, p: &Project, a: &ServicesArgs, pause: bool) -> Result<i32> {
    let mut p = p.clone();
    let (api, list) = targets(ctx, &mut p, &a.services, false).await?;
    let (doing, done) = if pause {
        ("Pausing", "Paused")
    } else {
        ("Unpausing", "Unpaused")
    };
    for c in list {
        ctx.event("Container", &c.name, doing);
        api.pause(&c.id, pause).await?;
        ctx.event("Container", &c.name, done);
    }
    Ok(0)
}

/// Every project with containers here, by the labels Compose writes.
pub async fn ls(ctx: &Ctx, a: &LsArgs) -> Result<i32> {
    let api = ctx.api().await?;
    let mut projects: IndexMap<String, (IndexMap<String, usize>, Vec<String>)> = IndexMap::new();
    for c in api.all_compose_containers().await? {
        let l = &c["Labels"];
        let name = l[labels::PROJECT].as_str().unwrap_or_default().to_string();
        let state = c["State"].as_str().unwrap_or_default().to_string();
        let e = projects.entry(name).or_default();
        *e.0.entry(state).or_default() += 1;
        if let Some(f) = l[labels::CONFIG_FILES].as_str() {
            for f in f.split(',') {
                if !e.1.iter().any(|x| x == f) {
                    e.1.push(f.to_string());
                }
            }
        }
    }
    projects.sort_keys();
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .filter(|(_, (st, _))| a.all || st.contains_key("running"))
        .map(|(n, (st, files))| {
            let status: Vec<String> = st.iter().map(|(s, c)| format!("{s}({c})")).collect();
            (n, status.join(", "), files.join(","))
        })
        .collect();
    if a.quiet {
        for r in rows {
            out::line(&r.0);
        }
    } else if a.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        out::line(&serde_json::Value::Array(v).to_string());
    } else {
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4) + 3;
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6) + 3;
        out::line(&format!("{:<w0$}{:<w1$}CONFIG FILES", "NAME", "STATUS"));
        for (n, s, f) in rows {
            out::line(&format!("{n:<w0$}{s:<w1$}{f}"));
        }
    }
    Ok(0)
}
