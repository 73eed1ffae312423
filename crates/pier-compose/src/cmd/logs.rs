//! `logs`, and the attached mode of `up`: each container's output with a
//! `web-1  | ` prefix (coloured on a terminal), until the containers exit or
//! Ctrl-C stops the project.

use super::short_name;
use crate::api::{Api, Summary};
use crate::ctx::{select, Ctx};
use crate::error::Result;
use crate::load::Project;
use clap::Args;
use pier_client::{body_async_read, query};
use std::io::Write;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// index of the container if service has multiple replicas
    #[arg(long)]
    pub index: Option<u32>,
    pub services: Vec<String>,
}

/// Compose's colours for prefixes, in the order it hands them out.
const COLORS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

#[derive(Clone)]
struct Prefix {
    text: String,
}

impl Prefix {
    fn new(name: &str, width: usize, color: Option<&str>, none: bool) -> Prefix {
        if none {
            return Prefix {
                text: String::new(),
            };
        }
        // Compose pads to the longest name plus one: `web-1  | `.
        let padded = format!("{name:<w$} | ", w = width + 1);
        let text = match color {
            Some(c) => format!("\x1b[{c}m{padded}\x1b[0m"),
            None => padded,
        };
        Prefix { text }
    }
}

/// Copies a log stream to stdout line by line with the prefix; `tty`
/// streams are raw, others carry Docker's 8-byte frame headers.
async fn copy_prefixed<R: AsyncRead + Unpin>(mut r: R, tty: bool, prefix: Prefix) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let emit = |pending: &mut Vec<u8>, flush_all: bool| {
        let mut out = std::io::stdout().lock();
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let _ = out.write_all(prefix.text.as_bytes());
            let _ = out.write_all(&line);
        }
        if flush_all && !pending.is_empty() {
            let _ = out.write_all(prefix.text.as_bytes());
            let _ = out.write_all(pending);
            let _ = out.write_all(b"\n");
            pending.clear();
        }
        let _ = out.flush();
    };
    if tty {
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            pending.extend(buf[..n].iter().filter(|&&b| b != b'\r'));
            emit(&mut pending, false);
        }
    } else {
        let mut header = [0u8; 8];
        while r.read_exact(&mut header).await.is_ok() {
            let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut frame = vec![0u8; size];
            if r.read_exact(&mut frame).await.is_err() {
                break;
            }
            pending.extend_from_slice(&frame);
            emit(&mut pending, false);
        }
    }
    emit(&mut pending, true);
}

struct StreamOpts<'a> {
    follow: bool,
    timestamps: bool,
    tail: &'a str,
    since: Option<String>,
    until: Option<String>,
}

async fn stream_one(api: &Api, id: &str, o: &StreamOpts<'_>, prefix: Prefix) -> Result<()> {
    let tty = api.inspect(id).await?["Config"]["Tty"]
        .as_bool()
        .unwrap_or(false);
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("tail", o.tail.to_string()),
    ];
    if o.follow {
        q.push(("follow", "1".into()));
    }
    if o.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if let Some(s) = &o.since {
        q.push(("since", s.clone()));
    }
    if let Some(u) = &o.until {
        q.push(("until", u.clone()));
    }
    let resp = api
        .client
        .get(&format!("/containers/{id}/logs{}", query(&q)))
        .await?;
    copy_prefixed(body_async_read(resp), tty, prefix).await;
    Ok(())
}

fn prefixes(ctx: &Ctx, p: &Project, names: &[String], none: bool, no_color: bool) -> Vec<Prefix> {
    let shorts: Vec<String> = names.iter().map(|n| short_name(&p.name, n)).collect();
    let width = shorts.iter().map(String::len).max().unwrap_or(0);
    shorts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let color = (ctx.color && !no_color).then(|| COLORS[i % COLORS.len()]);
            Prefix::new(s, width, color, none)
        })
        .collect()
}

pub async fn logs(ctx: &Ctx, p: &Project, a: &LogsArgs) -> Result<i32> {
    let mut p = p.clone();
    let names = select(&mut p, &a.services)?;
    let api = Arc::new(ctx.api().await?);
    let containers: Vec<Summary> = api
        .containers(&p.name, true, Some(false))
        .await?
        .into_iter()
        .filter(|c| names.contains(&c.service))
        .filter(|c| a.index.is_none_or(|i| c.number == i))
        .collect();
    let cnames: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    let pre = prefixes(ctx, &p, &cnames, a.no_log_prefix, a.no_color);
    let mut tasks = Vec::new();
    for (c, prefix) in containers.into_iter().zip(pre) {
        let api = api.clone();
        let o = StreamOpts {
            follow: a.follow,
            timestamps: a.timestamps,
            tail: &a.tail,
            since: a.since.clone(),
            until: a.until.clone(),
        };
        let (follow, timestamps, tail, since, until) =
            (o.follow, o.timestamps, o.tail.to_string(), o.since, o.until);
        tasks.push(tokio::spawn(async move {
            let o = StreamOpts {
                follow,
                timestamps,
                tail: &tail,
                since,
                until,
            };
            stream_one(&api, &c.id, &o, prefix).await
        }));
    }
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            eprintln!("{e}");
        }
    }
    Ok(0)
}

/// When `up` stops the whole project on its own.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Abort {
    /// `--abort-on-container-exit`: when any container exits.
    OnExit,
    /// `--abort-on-container-failure`: when one exits with a non-zero code.
    OnFailure,
}

/// How `up` stays attached.
pub struct AttachOpts {
    /// Services whose output is streamed.
    pub attach: Vec<String>,
    /// Containers (re)created by this `up`, shown from their start.
    pub fresh: Vec<String>,
    pub timeout: Option<i64>,
    pub abort: Option<Abort>,
    pub exit_code_from: Option<String>,
    pub no_color: bool,
    pub no_prefix: bool,
}

/// Stops `names` last to first, with progress lines; a second Ctrl-C kills
/// the one being stopped.
async fn stop_all(ctx: &Ctx, api: &Api, names: &[String], timeout: Option<i64>) -> Result<()> {
    for n in names.iter().rev() {
        ctx.event("Container", n, "Stopping");
        let stop = api.stop(n, timeout);
        tokio::select! {
            r = stop => { r?; }
            _ = tokio::signal::ctrl_c() => {
                let _ = api.kill(n, "SIGKILL").await;
            }
        }
        ctx.event("Container", n, "Stopped");
    }
    Ok(())
}

/// `up` without `-d`: streams the attached containers' output until they
/// have exited (or, with an abort policy, until the first one does, then
/// stops the project); Ctrl-C stops the project. The exit code is 0, the
/// first exited container's under an abort policy, `--exit-code-from`'s
/// service's when given, 130 after Ctrl-C.
pub async fn attach_until_done(
    ctx: &Ctx,
    api: &Api,
    p: &Project,
    containers: &[(String, String)],
    o: &AttachOpts,
) -> Result<i32> {
    let attached: Vec<String> = containers
        .iter()
        .filter(|(s, _)| o.attach.contains(s))
        .map(|(_, n)| n.clone())
        .collect();
    // Under an abort policy every container is watched, attached or not.
    let watched: Vec<(String, String)> = containers
        .iter()
        .filter(|(_, n)| o.abort.is_some() || attached.contains(n))
        .cloned()
        .collect();
    let all_names: Vec<String> = containers.iter().map(|(_, n)| n.clone()).collect();
    let shorts: Vec<String> = attached.iter().map(|n| short_name(&p.name, n)).collect();
    ctx.pause_progress();
    eprintln!("Attaching to {}", shorts.join(", "));
    let pre = prefixes(ctx, p, &attached, o.no_prefix, o.no_color);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shared = Arc::new(Api::new(api.client.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for (service, name) in watched {
        let api = shared.clone();
        let prefix = attached
            .iter()
            .position(|n| n == &name)
            .map(|i| pre[i].clone());
        // Containers that were already running show only what they print from now on.
        let since = (!o.fresh.contains(&name)).then(|| now.to_string());
        tasks.spawn(async move {
            if let Some(prefix) = &prefix {
                let so = StreamOpts {
                    follow: true,
                    timestamps: false,
                    tail: "all",
                    since,
                    until: None,
                };
                let _ = stream_one(&api, &name, &so, prefix.clone()).await;
            }
            let code = api.wait(&name).await.unwrap_or(-1);
            (service, name, code, prefix.is_some())
        });
    }
    let mut code: i64 = 0;
    let mut aborted = false;
    let mut captured = false;
    loop {
        tokio::select! {
            r = tasks.join_next() => {
                let Some(r) = r else { return Ok(code as i32) };
                let Ok((service, name, exit, shown)) = r else { continue };
                if shown {
                    let short = short_name(&p.name, &name);
                    crate::out::line(&format!("{short} exited with code {exit}"));
                }
                if !captured && o.exit_code_from.as_deref() == Some(service.as_str()) {
                    code = exit;
                    captured = true;
                }
                let trigger = match o.abort {
                    Some(Abort::OnExit) => true,
                    Some(Abort::OnFailure) => exit != 0,
                    None => false,
                };
                if trigger && !aborted {
                    aborted = true;
                    if !captured {
                        code = exit;
                    }
                    ctx.pause_progress();
                    eprintln!("Aborting on container exit...");
                    stop_all(ctx, api, &all_names, o.timeout).await?;
                }
            },
            _ = tokio::signal::ctrl_c() => {
                ctx.pause_progress();
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                stop_all(ctx, api, &all_names, o.timeout).await?;
                tasks.abort_all();
                return Ok(130);
            }
        }
    }
}
