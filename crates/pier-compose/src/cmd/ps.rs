//! `ps`: the project's containers, as Compose v2 lists them.

use crate::ctx::{select, Ctx};
use crate::error::Result;
use crate::load::Project;
use crate::out;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]
    #[arg(long)]
    pub status: Vec<String>,
    /// Format output: table or json
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

fn ports(v: &[Value]) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in v {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let proto = p["Type"].as_str().unwrap_or("tcp");
        let s = match p["PublicPort"].as_u64() {
            Some(public) => {
                let ip = p["IP"].as_str().unwrap_or("");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{ip}:{public}->{private}/{proto}")
            }
            None => format!("{private}/{proto}"),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

pub(crate) fn ago(created: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(created);
    let s = (now - created).max(0);
    match s {
        0..=1 => "Less than a second ago".into(),
        2..=59 => format!("{s} seconds ago"),
        60..=119 => "About a minute ago".into(),
        120..=3599 => format!("{} minutes ago", s / 60),
        3600..=7199 => "About an hour ago".into(),
        _ => format!("{} hours ago", s / 3600),
    }
}

pub async fn ps(ctx: &Ctx, p: &Project, a: &PsArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.names)?;
    let api = ctx.api().await?;
    let oneoff = if a.all { None } else { Some(false) };
    let list: Vec<_> = api
        .containers(&p.name, a.all || !a.status.is_empty(), oneoff)
        .await?
        .into_iter()
        .filter(|c| names.contains(&c.service) || (a.names.is_empty() && !c.oneoff && a.all))
        .filter(|c| a.status.is_empty() || a.status.contains(&c.state))
        .collect();
    if a.services {
        let mut seen = Vec::new();
        for c in &list {
            if !seen.contains(&c.service) {
                seen.push(c.service.clone());
                out::line(&c.service);
            }
        }
        return Ok(0);
    }
    if a.quiet {
        for c in &list {
            out::line(&c.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
        for c in &list {
            out::line(
                &json!({
                    "ID": c.id, "Name": c.name, "Image": c.image, "Command": c.command,
                    "Project": p.name, "Service": c.service, "Created": c.created,
                    "State": c.state, "Status": c.status, "Ports": ports(&c.ports),
                })
                .to_string(),
            );
        }
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            let mut cmd = c.command.clone();
            if !a.no_trunc && cmd.chars().count() > 20 {
                cmd = cmd.chars().take(19).collect::<String>() + "…";
            }
            [
                c.name.clone(),
                c.image.clone(),
                format!("\"{cmd}\""),
                c.service.clone(),
                ago(c.created),
                c.status.clone(),
                ports(&c.ports),
            ]
        })
        .collect();
    let head = [
        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
    ];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let fmt = |r: &[String]| {
        let mut s = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 3));
            }
        }
        s.trim_end().to_string()
    };
    out::line(&fmt(&head.map(str::to_string)));
    for r in &rows {
        out::line(&fmt(r));
    }
    Ok(0)
}
