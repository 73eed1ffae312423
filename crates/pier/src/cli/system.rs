//! `pier version`, `info`, `system df`, `system prune`, `events`.

use super::container::{confirm, print_prune_report, strings};
use super::images::prune_images;
use super::logs::timestamp_param;
use super::ps::filters_json;
use super::{print, println, Exit};
use crate::format::template::Template;
use crate::format::units::bytes_size;
use anyhow::Result;
use clap::Args;
use pier_client::{query, Client, JsonLines};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct SwarmArgs {
    /// Whatever follows `swarm`: every form gets the same answer
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `pier swarm ...`: says where Pier's cluster path lies instead of failing
/// on the daemon's 503.
pub fn swarm() -> i32 {
    eprintln!(
        "pier: swarm mode is not part of Pier: its cluster path is Kubernetes.\nSee 'pier --help'."
    );
    1
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn client_version() -> Value {
    json!({
        "Platform": {"Name": "Pier"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": pier_client::CLIENT_API_VERSION,
        "DefaultAPIVersion": pier_client::CLIENT_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

pub async fn version(conn: &pier_client::ConnectOptions, a: VersionArgs) -> Result<i32> {
    let mut client = client_version();
    // The context in use, as docker's CLI shows it.
    let context = pier_client::resolve(conn).map_or_else(|_| "default".to_string(), |t| t.context);
    client["Context"] = json!(context);
    let server = match pier_client::connect(conn).await {
        Ok(c) => c
            .get_json::<Value>("/version")
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Template::parse(f)?;
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        println(&t.render(&data)?);
        return match server {
            Ok(_) => Ok(0),
            Err(e) => {
                eprintln!("{e}");
                Err(Exit(1).into())
            }
        };
    }
    let mut out = format!(
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n Context:           {}\n",
        s(&client, "/Version"),
        s(&client, "/ApiVersion"),
        s(&client, "/Os"),
        s(&client, "/Arch"),
        s(&client, "/Context"),
    );
    match server {
        Ok(v) => {
            out.push_str(&format!(
                "\nServer: {}\n",
                v.pointer("/Platform/Name")
                    .and_then(Value::as_str)
                    .unwrap_or("Pier Engine")
            ));
            out.push_str(&format!(
                " Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Kernel Version:   {}\n  Experimental:     false\n",
                s(&v, "/Version"),
                s(&v, "/ApiVersion"),
                s(&v, "/MinAPIVersion"),
                s(&v, "/Os"),
                s(&v, "/Arch"),
                s(&v, "/KernelVersion"),
            ));
            print(&out);
            Ok(0)
        }
        Err(e) => {
            print(&out);
            eprintln!("{e}");
            Err(Exit(1).into())
        }
    }
}

pub async fn info(client: &Client, a: InfoArgs) -> Result<i32> {
    let v: Value = client.get_json("/info").await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let mut data = v.clone();
        data["ClientInfo"] = json!({"Debug": false, "Context": "default"});
        let t = Template::parse(if f == "json" { "{{json .}}" } else { f })?;
        println(&t.render(&data)?);
        return Ok(0);
    }
    let n = |p: &str| v.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let mut out = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n",
        n("/Containers"),
        n("/ContainersRunning"),
        n("/ContainersPaused"),
        n("/ContainersStopped"),
        n("/Images")
    ));
    let line = |out: &mut String, label: &str, p: &str| {
        if let Some(val) = v.pointer(p) {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => return,
                other => other.to_string(),
            };
            out.push_str(&format!(" {label}: {text}\n"));
        }
    };
    line(&mut out, "Server Version", "/ServerVersion");
    line(&mut out, "Storage Driver", "/Driver");
    line(&mut out, "Logging Driver", "/LoggingDriver");
    line(&mut out, "Cgroup Driver", "/CgroupDriver");
    line(&mut out, "Cgroup Version", "/CgroupVersion");
    line(&mut out, "Default Runtime", "/DefaultRuntime");
    line(&mut out, "Kernel Version", "/KernelVersion");
    line(&mut out, "Operating System", "/OperatingSystem");
    line(&mut out, "OSType", "/OSType");
    line(&mut out, "Architecture", "/Architecture");
    line(&mut out, "CPUs", "/NCPU");
    if let Some(m) = v["MemTotal"].as_f64() {
        out.push_str(&format!(" Total Memory: {}\n", bytes_size(m)));
    }
    line(&mut out, "Name", "/Name");
    line(&mut out, "ID", "/ID");
    line(&mut out, "Docker Root Dir", "/DockerRootDir");
    line(&mut out, "Debug Mode", "/Debug");
    line(&mut out, "Experimental", "/ExperimentalBuild");
    // As the docker CLI: the section only when there are mirrors.
    let mirrors = v
        .pointer("/RegistryConfig/Mirrors")
        .and_then(Value::as_array);
    if let Some(mirrors) = mirrors.filter(|m| !m.is_empty()) {
        out.push_str(" Registry Mirrors:\n");
        for m in mirrors {
            out.push_str(&format!("  {}\n", m.as_str().unwrap_or("")));
        }
    }
    line(&mut out, "Live Restore Enabled", "/LiveRestoreEnabled");
    for w in v["Warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("{}\n", w.as_str().unwrap_or("")));
    }
    print(&out);
    Ok(0)
}

pub async fn prune(client: &Client, a: SystemPruneArgs) -> Result<i32> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str("  - all images without at least one container associated to them\n");
    } else {
        warning.push_str("  - all dangling images\n");
    }
    warning.push_str("  - unused build cache\n");
    if !a.force && !confirm(&warning) {
        return Ok(0);
    }
    let q = filters_json(&a.filter)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let mut space = 0u64;
    let c: Value = client
        .post_json::<Value, ()>(&format!("/containers/prune{q}"), None)
        .await?;
    space += c["SpaceReclaimed"].as_u64().unwrap_or(0);
    let n: Value = client
        .post_json::<Value, ()>(&format!("/networks/prune{q}"), None)
        .await
        .unwrap_or(Value::Null);
    let mut sections = vec![
        ("Deleted Containers", strings(&c["ContainersDeleted"])),
        ("Deleted Networks", strings(&n["NetworksDeleted"])),
    ];
    if a.volumes {
        let v: Value = client
            .post_json::<Value, ()>(&format!("/volumes/prune{q}"), None)
            .await
            .unwrap_or(Value::Null);
        space += v["SpaceReclaimed"].as_u64().unwrap_or(0);
        sections.push(("Deleted Volumes", strings(&v["VolumesDeleted"])));
    }
    let (imgs, img_space) = prune_images(client, a.all, &a.filter).await?;
    space += img_space;
    sections.push(("Deleted Images", imgs));
    let bq = if a.all { "?all=1" } else { "" };
    let b: Value = client
        .post_json::<Value, ()>(&format!("/build/prune{bq}"), None)
        .await
        .unwrap_or(Value::Null);
    space += b["SpaceReclaimed"].as_u64().unwrap_or(0);
    sections.push(("Deleted build cache objects", strings(&b["CachesDeleted"])));
    print_prune_report(&sections, space);
    Ok(0)
}

/// Docker's plain event line: time, type, action, actor ID, sorted attributes.
pub fn event_line(e: &Value) -> String {
    event_line_in(e, crate::format::units::local_offset)
}

/// [`event_line`] with the zone given: `offset` of the event's time.
fn event_line_in(e: &Value, offset: impl Fn(time::OffsetDateTime) -> time::UtcOffset) -> String {
    let mut out = String::new();
    let nanos = e["timeNano"].as_i64().unwrap_or(0);
    let secs = e["time"].as_i64().unwrap_or(0);
    let t = if nanos != 0 {
        Some(nanos)
    } else if secs != 0 {
        Some(secs * 1_000_000_000)
    } else {
        None
    };
    if let Some(t) = t.and_then(|t| time::OffsetDateTime::from_unix_timestamp_nanos(t.into()).ok())
    {
        let f = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9][offset_hour sign:mandatory]:[offset_minute] "
        );
        let text = t.to_offset(offset(t)).format(f).unwrap_or_default();
        out.push_str(&text.replace("+00:00 ", "Z "));
    }
    let typ = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().or(e["status"].as_str()).unwrap_or("");
    let id = e
        .pointer("/Actor/ID")
        .and_then(Value::as_str)
        .or(e["id"].as_str())
        .unwrap_or("");
    out.push_str(&format!("{typ} {action} {id}"));
    if let Some(attrs) = e
        .pointer("/Actor/Attributes")
        .and_then(Value::as_object)
        .filter(|a| !a.is_empty())
    {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        kv.sort();
        out.push_str(&format!(" ({})", kv.join(", ")));
    }
    out
}

pub async fn events(client: &Client, a: EventsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(s) = &a.since {
        q.push(("since", timestamp_param(s)));
    }
    if let Some(u) = &a.until {
        q.push(("until", timestamp_param(u)));
    }
    if let Some(f) = filters_json(&a.filter) {
        q.push(("filters", f));
    }
    let tmpl = match a.format.as_deref() {
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) if !f.is_empty() => Some(Template::parse(f)?),
        _ => None,
    };
    let resp = client.get(&format!("/events{}", query(&q))).await?;
    let mut lines = JsonLines::new(resp);
    while let Some(e) = lines.next::<Value>().await {
        let e = e?;
        match &tmpl {
            Some(t) => println(&t.render(&e)?),
            None => println(&event_line(&e)),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let e = json!({
            "Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "time": 1700000000, "timeNano": 1700000000123456789i64,
        });
        assert_eq!(
            event_line_in(&e, |_| time::UtcOffset::UTC),
            "2023-11-14T22:13:20.123456789Z container start abc (image=busybox, name=web)"
        );
        let west = |_| time::UtcOffset::from_hms(-5, 0, 0).unwrap();
        let e = json!({"Type": "network", "Action": "create", "Actor": {"ID": "n1"}, "time": 1700000000});
        assert_eq!(
            event_line_in(&e, west),
            "2023-11-14T17:13:20.000000000-05:00 network create n1"
        );
    }
}
