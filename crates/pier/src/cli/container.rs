//! Container verbs that are one request per container: stop, kill, restart,
//! rm, wait, pause, unpause, rename, top, diff, commit, port, update, prune.

use super::{opts, print, println, Exit};
use crate::format::table::TabWriter;
use crate::format::units::human_size;
use anyhow::Result;
use clap::{ArgAction, Args};
use pier_client::{query, read_body, Client};
use serde_json::{json, Value};
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub type RestartArgs = StopArgs;

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct OneArgs {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Kernel memory limit (refused: deprecated by the kernel)
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Runs `op` for each name; prints the name on success and the error on
/// failure, like Docker's multi-target verbs; exit 1 if any failed. Like
/// Docker's CLI, up to 50 operations run at once (results still print in
/// the order given).
async fn each<F, Fut>(names: &[String], op: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    each_at_most(PARALLEL, names, op).await
}

/// Docker's CLI limit on concurrent operations of one verb.
const PARALLEL: usize = 50;

async fn each_at_most<F, Fut>(limit: usize, names: &[String], op: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    use futures::StreamExt;
    let mut results = futures::stream::iter(names.iter().map(|n| op(n.clone()))).buffered(limit);
    let mut code = 0;
    let mut i = 0;
    while let Some(r) = results.next().await {
        match r {
            Ok(()) => println(&names[i]),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
        i += 1;
    }
    Ok(code)
}

fn stop_query(a: &StopArgs) -> String {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    query(&q)
}

pub async fn stop(client: &Client, a: StopArgs) -> Result<i32> {
    let q = stop_query(&a);
    each(&a.containers, |c| {
        let q = q.clone();
        async move {
            Ok(client
                .post_unit(&format!("/containers/{c}/stop{q}"))
                .await?)
        }
    })
    .await
}

pub async fn restart(client: &Client, a: RestartArgs) -> Result<i32> {
    let q = stop_query(&a);
    // One at a time, as Docker's CLI restarts.
    each_at_most(1, &a.containers, |c| {
        let q = q.clone();
        async move {
            Ok(client
                .post_unit(&format!("/containers/{c}/restart{q}"))
                .await?)
        }
    })
    .await
}

pub async fn kill(client: &Client, a: KillArgs) -> Result<i32> {
    let q = a
        .signal
        .as_ref()
        .map(|s| query(&[("signal", s.clone())]))
        .unwrap_or_default();
    each(&a.containers, |c| {
        let q = q.clone();
        async move {
            Ok(client
                .post_unit(&format!("/containers/{c}/kill{q}"))
                .await?)
        }
    })
    .await
}

pub async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    if a.link {
        q.push(("link", "1".to_string()));
    }
    let q = query(&q);
    each(&a.containers, |c| {
        let q = q.clone();
        async move {
            let c = c.trim_start_matches('/');
            read_body(client.delete(&format!("/containers/{c}{q}")).await?).await?;
            Ok(())
        }
    })
    .await
}

pub async fn pause(client: &Client, a: IdsArgs, pause: bool) -> Result<i32> {
    let verb = if pause { "pause" } else { "unpause" };
    each(&a.containers, |c| async move {
        Ok(client.post_unit(&format!("/containers/{c}/{verb}")).await?)
    })
    .await
}

pub async fn wait(client: &Client, a: IdsArgs) -> Result<i32> {
    let mut code = 0;
    for c in &a.containers {
        match client
            .post_json::<Value, ()>(&format!("/containers/{c}/wait"), None)
            .await
        {
            Ok(v) => println(&v["StatusCode"].as_i64().unwrap_or(0).to_string()),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn rename(client: &Client, a: RenameArgs) -> Result<i32> {
    if a.new_name.trim().is_empty() {
        eprintln!("Error: neither old nor new names may be empty");
        return Ok(1);
    }
    client
        .post_unit(&format!(
            "/containers/{}/rename{}",
            a.container,
            query(&[("name", a.new_name.clone())])
        ))
        .await?;
    Ok(0)
}

pub async fn top(client: &Client, a: TopArgs) -> Result<i32> {
    let q = if a.ps_args.is_empty() {
        String::new()
    } else {
        query(&[("ps_args", a.ps_args.join(" "))])
    };
    let v: Value = client
        .get_json(&format!("/containers/{}/top{q}", a.container))
        .await?;
    let mut tw = TabWriter::new(20, 3);
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    tw.write(&format!("{}\n", titles.join("\t")));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        tw.write(&format!("{}\n", cells.join("\t")));
    }
    print(&tw.render());
    Ok(0)
}

pub async fn diff(client: &Client, a: OneArgs) -> Result<i32> {
    let v: Value = client
        .get_json(&format!("/containers/{}/changes", a.container))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println(&format!("{kind} {}", c["Path"].as_str().unwrap_or("")));
    }
    Ok(0)
}

/// Splits `repo[:tag]` (a registry port is not a tag).
pub fn split_repo_tag(r: &str) -> (String, String) {
    if let Some((repo, digest)) = r.split_once('@') {
        return (repo.to_string(), format!("@{digest}"));
    }
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), String::new()),
    }
}

pub async fn commit(client: &Client, a: CommitArgs) -> Result<i32> {
    let mut q = vec![("container", a.container.clone())];
    if let Some(r) = &a.repository {
        let (repo, tag) = split_repo_tag(r);
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    q.push(("pause", if a.pause { "1" } else { "0" }.to_string()));
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    let v: Value = client
        .post_json::<Value, Value>(&format!("/commit{}", query(&q)), Some(&json!({})))
        .await?;
    println(v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub async fn port(client: &Client, a: PortArgs) -> Result<i32> {
    let v: Value = client
        .get_json(&format!("/containers/{}/json", a.container))
        .await?;
    let ports = v
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let host = |b: &Value| -> String {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let port = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    if let Some(p) = &a.port {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        if let Some(bs) = ports
            .get(&key)
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        {
            for b in bs {
                println(&host(b));
            }
            return Ok(0);
        }
        eprintln!(
            "Error: No public port '{key}' published for {}",
            a.container
        );
        return Err(Exit(1).into());
    }
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (n, proto) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    for k in keys {
        for b in ports[k].as_array().into_iter().flatten() {
            println(&format!("{k} -> {}", host(b)));
        }
    }
    Ok(0)
}

pub async fn update(client: &Client, a: UpdateArgs) -> Result<i32> {
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: Value| {
        body.insert(k.to_string(), v);
    };
    if let Some(m) = &a.memory {
        set("Memory", json!(opts::ram_in_bytes(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("MemorySwap", json!(opts::memory_swap(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("MemoryReservation", json!(opts::ram_in_bytes(m)?));
    }
    if let Some(c) = &a.cpus {
        set("NanoCpus", json!(opts::nano_cpus(c)?));
    }
    if let Some(c) = a.cpu_shares {
        set("CpuShares", json!(c));
    }
    if let Some(c) = &a.cpuset_cpus {
        set("CpusetCpus", json!(c));
    }
    if let Some(p) = a.pids_limit {
        set("PidsLimit", json!(p));
    }
    if let Some(m) = &a.cpuset_mems {
        set("CpusetMems", json!(m));
    }
    if let Some(p) = a.cpu_period {
        set("CpuPeriod", json!(p));
    }
    if let Some(q) = a.cpu_quota {
        set("CpuQuota", json!(q));
    }
    if let Some(w) = a.blkio_weight {
        set("BlkioWeight", json!(w));
    }
    super::resources::refuse_kernel_memory(&a.kernel_memory)?;
    if let Some(r) = &a.restart {
        set(
            "RestartPolicy",
            serde_json::to_value(opts::restart_policy(r)?)?,
        );
    }
    let body = Value::Object(body);
    let mut code = 0;
    for c in &a.containers {
        match client
            .post_json::<Value, Value>(&format!("/containers/{c}/update"), Some(&body))
            .await
        {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("WARNING: {}", w.as_str().unwrap_or(""));
                }
                println(c);
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Docker's confirmation prompt; anything but `y`/`yes` is a no.
pub fn confirm(warning: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Prints a prune report: the deleted items, then the reclaimed space.
pub fn print_prune_report(sections: &[(&str, Vec<String>)], space: u64) {
    let mut out = String::new();
    for (title, items) in sections {
        if !items.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for i in items {
                out.push_str(i);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(space as f64)
    ));
    print(&out);
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let q = super::ps::filters_json(&a.filter)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = client
        .post_json::<Value, ()>(&format!("/containers/prune{q}"), None)
        .await?;
    print_prune_report(
        &[("Deleted Containers", strings(&v["ContainersDeleted"]))],
        v["SpaceReclaimed"].as_u64().unwrap_or(0),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_split() {
        assert_eq!(split_repo_tag("busybox:1"), ("busybox".into(), "1".into()));
        assert_eq!(
            split_repo_tag("localhost:5000/app"),
            ("localhost:5000/app".into(), "".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app:v2"),
            ("localhost:5000/app".into(), "v2".into())
        );
    }
}
