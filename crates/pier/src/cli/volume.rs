//! `pier volume create|ls|inspect|rm|prune`.

use super::container::{confirm, print_prune_report, strings};
use super::inspect::{inspect, InspectArgs};
use super::opts::{kv, labels_map};
use super::ps::{filters_json, label_hook, labels_string};
use super::{print, println, Exit};
use crate::format::table::Format;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use pier_client::{query, Client};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(name = "ls", visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectOneArgs),
    /// Remove one or more volumes
    #[command(visible_aliases = ["remove"])]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, hide = true)]
    pub name: Option<String>,
    /// [VOLUME]
    pub volume: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectOneArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Go's `sortorder.NaturalLess`: runs of digits compare as numbers, so
/// `vol2` sorts before `vol10` (docker sorts `volume ls`/`network ls` so).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
            // Equal values: fewer leading zeros first.
            let o = (i - si).cmp(&(j - sj));
            if o != Ordering::Equal {
                return o;
            }
        } else if a[i].is_ascii_digit() != b[j].is_ascii_digit() {
            // Digits sort before anything else.
            return if a[i].is_ascii_digit() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    a.len().cmp(&b.len())
}

/// A `map[string]string` as a JSON object.
pub fn string_map(m: std::collections::HashMap<String, String>) -> Value {
    Value::Object(
        m.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<_, _>>(),
    )
}

fn volume_header() -> Value {
    json!({
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
        "Availability": "AVAILABILITY", "Status": "STATUS",
    })
}

fn volume_row(v: &Value) -> Value {
    let usage = |k: &str| -> String {
        match v
            .pointer(&format!("/UsageData/{k}"))
            .and_then(Value::as_i64)
        {
            Some(n) if n >= 0 && k == "Size" => crate::format::units::human_size(n as f64),
            Some(n) if n >= 0 => n.to_string(),
            _ => "N/A".into(),
        }
    };
    json!({
        "Name": v["Name"].as_str().unwrap_or(""),
        "Driver": v["Driver"].as_str().unwrap_or(""),
        "Scope": v["Scope"].as_str().unwrap_or(""),
        "Mountpoint": v["Mountpoint"].as_str().unwrap_or(""),
        "Labels": labels_string(&v["Labels"]),
        "Links": usage("RefCount"),
        "Size": usage("Size"),
        "Group": "",
        "Availability": "N/A",
        "Status": "N/A",
    })
}

pub async fn volume(client: &Client, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create(a) => create(client, a).await,
        VolumeCmd::Ls(a) => ls(client, a).await,
        VolumeCmd::Inspect(a) => {
            let a = InspectArgs {
                format: a.format,
                size: false,
                typ: Some("volume".into()),
                names: a.names,
            };
            inspect(client, a).await
        }
        VolumeCmd::Rm(a) => rm(client, a).await,
        VolumeCmd::Prune(a) => prune(client, a).await,
    }
}

async fn create(client: &Client, a: CreateArgs) -> Result<i32> {
    let name = match (&a.name, &a.volume) {
        (Some(n), Some(v)) if n != v => {
            bail!("conflicting options: either specify --name or provide positional arg, not both")
        }
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    let mut opts = std::collections::HashMap::new();
    for o in &a.opt {
        let (k, v) = kv(o, "option")?;
        opts.insert(k, v);
    }
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": string_map(opts),
        "Labels": string_map(labels_map(&a.label)),
    });
    let v: Value = client.post_json("/volumes/create", Some(&body)).await?;
    println(v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

async fn ls(client: &Client, a: LsArgs) -> Result<i32> {
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else {
        "table {{.Driver}}\t{{.Name}}".into()
    };
    let fmt = Format::parse(&format)?;
    let q = filters_json(&a.filter)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = client.get_json(&format!("/volumes{q}")).await?;
    let mut vols: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    print(&fmt.render(&volume_header(), &rows, &label_hook)?);
    Ok(0)
}

async fn rm(client: &Client, a: RmArgs) -> Result<i32> {
    let q = if a.force { "?force=1" } else { "" };
    let mut failed = false;
    for name in &a.volumes {
        match client.delete(&format!("/volumes/{name}{q}")).await {
            Ok(_) => println(name),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(0)
}

async fn prune(client: &Client, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let q = filters_json(&filters)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = client
        .post_json::<Value, ()>(&format!("/volumes/prune{q}"), None)
        .await?;
    print_prune_report(
        &[("Deleted Volumes", strings(&v["VolumesDeleted"]))],
        v["SpaceReclaimed"].as_u64().unwrap_or(0),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use clap::Parser;

    #[test]
    fn natural_order() {
        let mut v = vec!["vol10", "vol2", "a", "vol02", "Vol1", "vol2x"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["Vol1", "a", "vol2", "vol2x", "vol02", "vol10"]);
    }

    #[test]
    fn ls_table_and_quiet() {
        let v = json!({"Name": "data", "Driver": "local", "Scope": "local",
                       "Mountpoint": "/var/lib/pier/volumes/data/_data", "Labels": {"a": "1"}});
        let row = volume_row(&v);
        let f = Format::parse("table {{.Driver}}\t{{.Name}}").unwrap();
        let out = f
            .render(&volume_header(), std::slice::from_ref(&row), &label_hook)
            .unwrap();
        assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     data\n");
        let f = Format::parse("{{.Name}} {{.Label \"a\"}} {{.Links}}").unwrap();
        assert_eq!(
            f.render(&volume_header(), &[row], &label_hook).unwrap(),
            "data 1 N/A\n"
        );
    }

    #[test]
    fn subcommands_parse() {
        for line in [
            "pier volume create",
            "pier volume create --label a=b -o type=tmpfs -o device=tmpfs data",
            "pier volume ls -q -f dangling=true --format {{.Name}}",
            "pier volume list",
            "pier volume inspect -f {{.Mountpoint}} a b",
            "pier volume rm -f a b",
            "pier volume remove a",
            "pier volume prune -a -f --filter label=x",
        ] {
            match Cli::try_parse_from(line.split_whitespace()) {
                Ok(Cli {
                    cmd: Some(Cmd::Volume(_)),
                    ..
                }) => {}
                other => panic!("{line}: {other:?}"),
            }
        }
        assert!(Cli::try_parse_from(["pier", "volume", "rm"]).is_err());
    }
}
