//! `pier version`, `info`, `system df`, `system prune`, `events`.

use super::container::{confirm, print_prune_report, strings};
use super::images::prune_images;
use super::logs::timestamp_param;
use super::ps::filters_json;
use super::{print, println, Exit};
use crate::format::table::{Format, TabWriter};
use crate::format::template::Template;
use crate::format::units::{bytes_size, human_size, short_id};
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
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
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

pub async fn version(host: Option<&str>, a: VersionArgs) -> Result<i32> {
    let client = client_version();
    let server = match pier_client::connect(host).await {
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
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n Context:           default\n",
        s(&client, "/Version"),
        s(&client, "/ApiVersion"),
        s(&client, "/Os"),
        s(&client, "/Arch"),
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
    line(&mut out, "Live Restore Enabled", "/LiveRestoreEnabled");
    for w in v["Warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("{}\n", w.as_str().unwrap_or("")));
    }
    print(&out);
    Ok(0)
}

fn pct(reclaimable: f64, total: f64) -> String {
    if total > 0.0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable),
            (reclaimable * 100.0 / total) as i64
        )
    } else {
        human_size(reclaimable)
    }
}

pub async fn df(client: &Client, a: DfArgs) -> Result<i32> {
    let v: Value = client.get_json("/system/df").await?;
    let empty = Vec::new();
    let arr = |k: &str| v[k].as_array().unwrap_or(&empty).clone();
    let images = arr("Images");
    let containers = arr("Containers");
    let volumes = arr("Volumes");
    let cache = arr("BuildCache");
    let num = |x: &Value, k: &str| x[k].as_f64().unwrap_or(0.0).max(0.0);

    let layers = v["LayersSize"].as_f64().unwrap_or(0.0);
    let img_active = images.iter().filter(|i| num(i, "Containers") > 0.0).count();
    let img_used: f64 = images
        .iter()
        .filter(|i| num(i, "Containers") > 0.0)
        .map(|i| num(i, "Size") - num(i, "SharedSize"))
        .sum::<f64>()
        + if img_active > 0 {
            images
                .iter()
                .map(|i| num(i, "SharedSize"))
                .fold(0.0, f64::max)
        } else {
            0.0
        };
    let img_reclaim = (layers - img_used).max(0.0);

    let ctr_size: f64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let ctr_active = containers
        .iter()
        .filter(|c| c["State"].as_str() == Some("running"))
        .count();
    let ctr_reclaim: f64 = containers
        .iter()
        .filter(|c| c["State"].as_str() != Some("running"))
        .map(|c| num(c, "SizeRw"))
        .sum();

    let vol_size: f64 = volumes
        .iter()
        .map(|x| {
            x.pointer("/UsageData/Size")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0)
        })
        .sum();
    let vol_active = volumes
        .iter()
        .filter(|x| {
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        })
        .count();
    let vol_reclaim: f64 = volumes
        .iter()
        .filter(|x| {
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
        })
        .map(|x| {
            x.pointer("/UsageData/Size")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0)
        })
        .sum();

    let bc_size: f64 = cache
        .iter()
        .filter(|c| c["Shared"].as_bool() != Some(true))
        .map(|c| num(c, "Size"))
        .sum();
    let bc_active = cache
        .iter()
        .filter(|c| c["InUse"].as_bool() == Some(true))
        .count();
    let bc_reclaim: f64 = cache
        .iter()
        .filter(|c| c["InUse"].as_bool() != Some(true) && c["Shared"].as_bool() != Some(true))
        .map(|c| num(c, "Size"))
        .sum();

    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(), "Size": human_size(layers), "Reclaimable": pct(img_reclaim, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": ctr_active.to_string(), "Size": human_size(ctr_size), "Reclaimable": pct(ctr_reclaim, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": vol_active.to_string(), "Size": human_size(vol_size), "Reclaimable": pct(vol_reclaim, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": bc_active.to_string(), "Size": human_size(bc_size), "Reclaimable": human_size(bc_reclaim)}),
    ];
    if !a.verbose {
        let format = a
            .format
            .clone()
            .filter(|f| !f.is_empty() && f != "table")
            .unwrap_or_else(|| {
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
            });
        let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
        print(&Format::parse(&format)?.render(&header, &rows, &|_, _, _| None)?);
        return Ok(0);
    }
    let mut out = String::from("Images space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    for i in &images {
        let tags = strings(&i["RepoTags"]);
        let tag = tags
            .first()
            .cloned()
            .unwrap_or_else(|| "<none>:<none>".into());
        let (repo, t) = super::container::split_repo_tag(&tag);
        tw.write(&format!(
            "{repo}\t{t}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            short_id(i["Id"].as_str().unwrap_or("")),
            crate::format::units::ago_unix(i["Created"].as_i64().unwrap_or(0)),
            crate::format::units::human_size_prec(num(i, "Size"), 3),
            crate::format::units::human_size_prec(num(i, "SharedSize"), 3),
            crate::format::units::human_size_prec(num(i, "Size") - num(i, "SharedSize"), 3),
            num(i, "Containers") as i64,
        ));
    }
    out.push_str(&tw.render());
    out.push_str("\nContainers space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for c in &containers {
        let row = super::ps::container_row(c, true);
        tw.write(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            row["ID"].as_str().unwrap_or(""),
            row["Image"].as_str().unwrap_or(""),
            row["Command"].as_str().unwrap_or(""),
            row["LocalVolumes"].as_str().unwrap_or(""),
            crate::format::units::human_size_prec(num(c, "SizeRw"), 3),
            row["RunningFor"].as_str().unwrap_or(""),
            row["Status"].as_str().unwrap_or(""),
            row["Names"].as_str().unwrap_or(""),
        ));
    }
    out.push_str(&tw.render());
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("VOLUME NAME\tLINKS\tSIZE\n");
    for x in &volumes {
        tw.write(&format!(
            "{}\t{}\t{}\n",
            x["Name"].as_str().unwrap_or(""),
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            crate::format::units::human_size_prec(
                x.pointer("/UsageData/Size")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
                    .max(0.0),
                3
            ),
        ));
    }
    out.push_str(&tw.render());
    out.push_str("\nBuild cache usage: ");
    out.push_str(&human_size(bc_size));
    out.push('\n');
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

    #[test]
    fn percentages() {
        assert_eq!(pct(0.0, 0.0), "0B");
        assert_eq!(pct(500.0, 1000.0), "500B (50%)");
    }
}
