//! `pier system df`: the daemon's `/system/df` as Docker's CLI prints it
//! (docker/cli `formatter/disk_usage.go`).

use super::container::{split_repo_tag, strings};
use super::print;
use super::ps::container_row;
use crate::format::table::Format;
use crate::format::template::Template;
use crate::format::units::{human_size, human_size_prec, short_id, Clock};
use anyhow::Result;
use clap::Args;
use pier_client::Client;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub async fn df(client: &Client, a: DfArgs) -> Result<i32> {
    let v: Value = client.get_json("/system/df").await?;
    print(&render_df(&v, &a, Clock::System)?);
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

fn num(x: &Value, k: &str) -> f64 {
    x[k].as_f64().unwrap_or(0.0).max(0.0)
}

fn volume_usage(x: &Value, k: &str) -> Option<f64> {
    x.pointer(&format!("/UsageData/{k}"))
        .and_then(Value::as_f64)
}

/// `/system/df` as `system df` prints it: the summary, or with `-v` every
/// image, container, volume and build cache record.
pub fn render_df(v: &Value, a: &DfArgs, clock: Clock) -> Result<String> {
    let empty = Vec::new();
    let arr = |k: &str| v[k].as_array().unwrap_or(&empty).as_slice();
    let (images, containers, volumes, cache) = (
        arr("Images"),
        arr("Containers"),
        arr("Volumes"),
        arr("BuildCache"),
    );
    let format = a.format.as_deref().filter(|f| !f.is_empty());
    if a.verbose {
        return match format.filter(|f| *f != "table") {
            None => Ok(verbose_tables(images, containers, volumes, cache, clock)?),
            Some(f) => {
                // Docker runs such a template once over all four lists.
                let f = if f == "json" { "{{json .}}" } else { f };
                let data = verbose_data(images, containers, volumes, cache, false, clock);
                let mut out = Template::parse(f)?.render(&data)?;
                out.push('\n');
                Ok(out)
            }
        };
    }

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

    let running = |c: &&Value| c["State"].as_str() == Some("running");
    let ctr_size: f64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let ctr_active = containers.iter().filter(running).count();
    let ctr_reclaim: f64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| num(c, "SizeRw"))
        .sum();

    let size = |x: &Value| volume_usage(x, "Size").unwrap_or(0.0).max(0.0);
    let in_use = |x: &&Value| volume_usage(x, "RefCount").unwrap_or(0.0) > 0.0;
    let vol_size: f64 = volumes.iter().map(size).sum();
    let vol_active = volumes.iter().filter(in_use).count();
    let vol_reclaim: f64 = volumes.iter().filter(|x| !in_use(x)).map(size).sum();

    let shared = |c: &&Value| c["Shared"].as_bool() == Some(true);
    let used = |c: &&Value| c["InUse"].as_bool() == Some(true);
    let bc_size: f64 = cache
        .iter()
        .filter(|c| !shared(c))
        .map(|c| num(c, "Size"))
        .sum();
    let bc_active = cache.iter().filter(used).count();
    let bc_reclaim: f64 = cache
        .iter()
        .filter(|c| !used(c) && !shared(c))
        .map(|c| num(c, "Size"))
        .sum();

    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(), "Size": human_size(layers), "Reclaimable": pct(img_reclaim, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": ctr_active.to_string(), "Size": human_size(ctr_size), "Reclaimable": pct(ctr_reclaim, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": vol_active.to_string(), "Size": human_size(vol_size), "Reclaimable": pct(vol_reclaim, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": bc_active.to_string(), "Size": human_size(bc_size), "Reclaimable": human_size(bc_reclaim)}),
    ];
    let format = format
        .filter(|f| *f != "table")
        .unwrap_or("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}");
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    Ok(Format::parse(format)?.render(&header, &rows, &|_, _, _| None)?)
}

/// The rows of `-v`, as Docker's image, container, volume and build cache
/// formatters give them (`trunc` only for the tables).
fn verbose_data(
    images: &[Value],
    containers: &[Value],
    volumes: &[Value],
    cache: &[Value],
    trunc: bool,
    clock: Clock,
) -> Value {
    let images: Vec<Value> = images
        .iter()
        .map(|i| {
            let tags = strings(&i["RepoTags"]);
            let (repo, tag) = match tags.first().filter(|t| t.as_str() != "<none>:<none>") {
                Some(t) => split_repo_tag(t),
                None => ("<none>".into(), "<none>".into()),
            };
            let id = i["Id"].as_str().unwrap_or("");
            let size = i["Size"].as_i64().unwrap_or(0);
            let shared = i["SharedSize"].as_i64().unwrap_or(-1);
            let containers = i["Containers"].as_i64().unwrap_or(-1);
            let created = i["Created"].as_i64().unwrap_or(0);
            let na = |n: i64, s: String| if n < 0 { "N/A".to_string() } else { s };
            json!({
                "Containers": na(containers, containers.to_string()),
                "CreatedAt": clock.time_string(created),
                "CreatedSince": clock.ago(created),
                "Digest": "",
                "ID": if trunc { short_id(id) } else { id.to_string() },
                "Repository": repo,
                "SharedSize": na(shared, human_size(shared as f64)),
                "Size": human_size_prec(size as f64, 3),
                "Tag": tag,
                "UniqueSize": na(shared.min(size), human_size((size - shared) as f64)),
            })
        })
        .collect();
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            // Docker shows only the writable layer here.
            let mut c = c.clone();
            c["SizeRootFs"] = json!(0);
            container_row(&c, trunc, clock)
        })
        .collect();
    let volumes: Vec<Value> = volumes
        .iter()
        .map(|x| {
            let (links, size) = match (volume_usage(x, "RefCount"), volume_usage(x, "Size")) {
                (Some(r), Some(s)) => ((r as i64).to_string(), human_size(s)),
                _ => ("N/A".into(), "N/A".into()),
            };
            json!({
                "Driver": x["Driver"].as_str().unwrap_or(""),
                "Links": links,
                "Mountpoint": x["Mountpoint"].as_str().unwrap_or(""),
                "Name": x["Name"].as_str().unwrap_or(""),
                "Scope": x["Scope"].as_str().unwrap_or(""),
                "Size": size,
            })
        })
        .collect();
    let mut cache: Vec<&Value> = cache.iter().collect();
    // Docker's buildCacheSort: never used first, then by last use, then ID.
    cache.sort_by(|a, b| {
        let key = |c: &Value| {
            (
                c["LastUsedAt"].as_str().map(str::to_string),
                c["ID"].as_str().unwrap_or("").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let cache: Vec<Value> = cache
        .into_iter()
        .map(|c| {
            let id = c["ID"].as_str().unwrap_or("");
            let mut id = if trunc { short_id(id) } else { id.to_string() };
            if c["InUse"].as_bool() == Some(true) {
                id.push('*');
            }
            let since = |k: &str| {
                c[k].as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|t| clock.ago(t.unix_timestamp()))
                    .unwrap_or_default()
            };
            json!({
                "CacheType": c["Type"].as_str().unwrap_or(""),
                "CreatedSince": since("CreatedAt"),
                "Description": c["Description"].as_str().unwrap_or(""),
                "ID": id,
                "InUse": c["InUse"].as_bool().unwrap_or(false).to_string(),
                "LastUsedSince": since("LastUsedAt"),
                "Shared": c["Shared"].as_bool().unwrap_or(false).to_string(),
                "Size": human_size_prec(num(c, "Size"), 3),
                "UsageCount": c["UsageCount"].as_i64().unwrap_or(0).to_string(),
            })
        })
        .collect();
    json!({"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": cache})
}

fn verbose_tables(
    images: &[Value],
    containers: &[Value],
    volumes: &[Value],
    cache: &[Value],
    clock: Clock,
) -> Result<String> {
    let data = verbose_data(images, containers, volumes, cache, true, clock);
    let rows = |k: &str| data[k].as_array().cloned().unwrap_or_default();
    let table = |format: &str, header: Value, k: &str| -> Result<String> {
        Ok(Format::parse(format)?.render(&header, &rows(k), &|_, _, _| None)?)
    };
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}),
        "Images",
    )?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        super::ps::container_header(),
        "Containers",
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&table(
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
        "Volumes",
    )?);
    let bc_size: f64 = cache
        .iter()
        .filter(|c| c["Shared"].as_bool() != Some(true))
        .map(|c| num(c, "Size"))
        .sum();
    out.push_str(&format!("\nBuild cache usage: {}\n\n", human_size(bc_size)));
    out.push_str(&table(
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        json!({"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}),
        "BuildCache",
    )?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct(0.0, 0.0), "0B");
        assert_eq!(pct(500.0, 1000.0), "500B (50%)");
    }
}
