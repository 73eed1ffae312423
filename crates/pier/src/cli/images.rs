//! `pier images`, `tag`, `rmi`, `history`, `image prune`.

use super::container::{confirm, print_prune_report, split_repo_tag};
use super::ps::{filters_json, label_hook, labels_string};
use super::{print, println};
use crate::format::table::Format;
use crate::format::units::{
    ago_unix, ellipsis, go_time_string, human_size_prec, rfc3339_local as rfc3339, short_id,
};
use anyhow::Result;
use clap::{ArgAction, Args};
use pier_client::{query, read_json, Client};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// [REPOSITORY[:TAG]]
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

fn image_header() -> Value {
    json!({
        "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
        "Labels": "LABELS",
    })
}

/// One row per repository:tag, like Docker's image formatter.
fn image_rows(img: &Value, trunc: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let tags: Vec<String> = img["RepoTags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let digests: Vec<String> = img["RepoDigests"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let digest_for = |repo: &str| -> String {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, dg)| dg.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut pairs: Vec<(String, String, String)> = Vec::new();
    for t in tags.iter().filter(|t| t.as_str() != "<none>:<none>") {
        let (repo, tag) = split_repo_tag(t);
        let d = digest_for(&repo);
        pairs.push((repo, tag, d));
    }
    if pairs.is_empty() {
        // Untagged but pulled by digest: show the repository with no tag.
        for d in &digests {
            if let Some((repo, dg)) = d.split_once('@') {
                if repo != "<none>" {
                    pairs.push((repo.to_string(), "<none>".into(), dg.to_string()));
                }
            }
        }
    }
    if pairs.is_empty() {
        pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    let size_s = human_size_prec(size as f64, 3);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    pairs
        .into_iter()
        .map(|(repo, tag, digest)| {
            json!({
                "Containers": if containers < 0 { "N/A".to_string() } else { containers.to_string() },
                "CreatedAt": go_time_string(created),
                "CreatedSince": ago_unix(created),
                "Digest": digest,
                "ID": if trunc { short_id(id) } else { id.to_string() },
                "Labels": labels_string(&img["Labels"]),
                "Repository": repo,
                "SharedSize": if shared < 0 { "N/A".to_string() } else { human_size_prec(shared as f64, 3) },
                "Size": size_s,
                "Tag": tag,
                "UniqueSize": if shared < 0 { "N/A".to_string() } else { human_size_prec((size - shared) as f64, 3) },
                "VirtualSize": size_s,
            })
        })
        .collect()
}

pub async fn images(client: &Client, a: ImagesArgs) -> Result<i32> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    };
    let fmt = Format::parse(&format)?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(&filters) {
        q.push(("filters", f));
    }
    let list: Vec<Value> = client
        .get_json(&format!("/images/json{}", query(&q)))
        .await?;
    let mut rows: Vec<Value> = list
        .iter()
        .flat_map(|i| image_rows(i, !a.no_trunc))
        .collect();
    if a.quiet {
        // One line per image, not per tag.
        let mut seen = std::collections::HashSet::new();
        rows.retain(|r| seen.insert(r["ID"].as_str().unwrap_or("").to_string()));
    }
    print(&fmt.render(&image_header(), &rows, &label_hook)?);
    Ok(0)
}

pub async fn tag(client: &Client, a: TagArgs) -> Result<i32> {
    let (repo, tag) = split_repo_tag(&a.target);
    let mut q = vec![("repo", repo)];
    if !tag.is_empty() {
        q.push(("tag", tag));
    }
    client
        .post_unit(&format!("/images/{}/tag{}", a.source, query(&q)))
        .await?;
    Ok(0)
}

pub async fn rmi(client: &Client, a: RmiArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let q = query(&q);
    let mut code = 0;
    for img in &a.images {
        let res: Result<Vec<Value>, _> = match client.delete(&format!("/images/{img}{q}")).await {
            Ok(resp) => read_json(resp).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i["Untagged"].as_str() {
                        println(&format!("Untagged: {u}"));
                    }
                    if let Some(d) = i["Deleted"].as_str() {
                        println(&format!("Deleted: {d}"));
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn history_row(h: &Value, human: bool, trunc: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("<missing>");
    let created = h["Created"].as_i64().unwrap_or(0);
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    let size = h["Size"].as_i64().unwrap_or(0);
    let tags: Vec<&str> = h["Tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    json!({
        "Comment": h["Comment"].as_str().unwrap_or(""),
        "CreatedAt": rfc3339(created),
        "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
        "CreatedSince": if human { ago_unix(created) } else { rfc3339(created) },
        "ID": if id == "<missing>" { id.to_string() } else if trunc { short_id(id) } else { id.to_string() },
        "Size": if human { human_size_prec(size as f64, 3) } else { size.to_string() },
        "Tags": tags.join(", "),
    })
}

pub async fn history(client: &Client, a: HistoryArgs) -> Result<i32> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
    };
    let fmt = Format::parse(&format)?;
    let list: Vec<Value> = client
        .get_json(&format!("/images/{}/history", a.image))
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| history_row(h, a.human, !a.no_trunc))
        .collect();
    let header = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
        "Size": "SIZE", "Comment": "COMMENT", "Tags": "TAGS",
    });
    print(&fmt.render(&header, &rows, &|_, _, _| None)?);
    Ok(0)
}

pub async fn prune(client: &Client, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (items, space) = prune_images(client, a.all, &a.filter).await?;
    print_prune_report(&[("Deleted Images", items)], space);
    Ok(0)
}

/// POST /images/prune; returns the report lines (`untagged: x`, `deleted: y`) and bytes freed.
pub async fn prune_images(
    client: &Client,
    all: bool,
    filter: &[String],
) -> Result<(Vec<String>, u64)> {
    let mut filters = filter.to_vec();
    if all {
        filters.push("dangling=false".into());
    }
    let q = filters_json(&filters)
        .map(|f| query(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = client
        .post_json::<Value, ()>(&format!("/images/prune{q}"), None)
        .await?;
    let mut items = Vec::new();
    for d in v["ImagesDeleted"].as_array().into_iter().flatten() {
        if let Some(u) = d["Untagged"].as_str() {
            items.push(format!("untagged: {u}"));
        }
        if let Some(x) = d["Deleted"].as_str() {
            items.push(format!("deleted: {x}"));
        }
    }
    Ok((items, v["SpaceReclaimed"].as_u64().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag() {
        let img = json!({
            "Id": "sha256:0123456789abcdef", "Created": 0, "Size": 4_261_234,
            "RepoTags": ["busybox:latest", "localhost:5000/busybox:1"],
            "RepoDigests": ["busybox@sha256:dd"],
        });
        let rows = image_rows(&img, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Digest"], "sha256:dd");
        assert_eq!(rows[1]["Repository"], "localhost:5000/busybox");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "4.26MB");
        let dangling = json!({"Id": "sha256:ab", "RepoTags": [], "Size": 0});
        assert_eq!(image_rows(&dangling, true)[0]["Tag"], "<none>");
        let f = Format::parse("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}").unwrap();
        let out = f.render(&image_header(), &rows[..1], &label_hook).unwrap();
        assert_eq!(out, "REPOSITORY   TAG       IMAGE ID       SIZE\nbusybox      latest    0123456789ab   4.26MB\n");
    }

    #[test]
    fn history_rows() {
        let h = json!({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"]", "Size": 0});
        let r = history_row(&h, true, true);
        assert_eq!(r["ID"], "<missing>");
        assert_eq!(r["CreatedBy"], "/bin/sh -c #(nop) CMD [\"sh\"]");
        assert_eq!(r["Size"], "0B");
        let r = history_row(&h, false, true);
        assert_eq!(r["Size"], "0");
    }
}
