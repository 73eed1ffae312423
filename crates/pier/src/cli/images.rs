//! `pier images`, `tag`, `rmi`, `history`, `image prune`.

use super::container::{confirm, print_prune_report, split_repo_tag, strings};
use super::ps::filters_json;
use super::{print, println};
use crate::format::table::Format;
use crate::format::units::{ellipsis, human_size, human_size_prec, short_id, Clock};
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
    })
}

/// One row per repository:tag, like Docker's image formatter. Digests are
/// looked at only when shown (`--digests` or `.Digest` in the format):
/// otherwise a tagged row's digest is `<none>` and a digest-only one's empty.
fn image_rows(
    img: &Value,
    trunc: bool,
    need_digest: bool,
    digests_flag: bool,
    clock: Clock,
) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let tags = strings(&img["RepoTags"]);
    let digests = strings(&img["RepoDigests"]);
    let dangling = (tags.is_empty() && digests.is_empty())
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if dangling {
        rows.push(("<none>".into(), "<none>".into(), "<none>".into()));
    } else {
        // Repositories in the order their first tag comes.
        let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in tags.iter().filter(|t| t.as_str() != "<none>:<none>") {
            let (repo, tag) = split_repo_tag(t);
            match repo_tags.iter_mut().find(|(r, _)| *r == repo) {
                Some((_, ts)) => ts.push(tag),
                None => repo_tags.push((repo, vec![tag])),
            }
        }
        let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in &digests {
            if let Some((repo, dg)) = d.split_once('@').filter(|(r, _)| *r != "<none>") {
                match repo_digests.iter_mut().find(|(r, _)| r == repo) {
                    Some((_, ds)) => ds.push(dg.to_string()),
                    None => repo_digests.push((repo.to_string(), vec![dg.to_string()])),
                }
            }
        }
        for (repo, tags) in &repo_tags {
            let ds = repo_digests
                .iter()
                .position(|(r, _)| r == repo)
                .map(|i| repo_digests.remove(i).1)
                .filter(|_| need_digest)
                .unwrap_or_default();
            for tag in tags {
                if ds.is_empty() {
                    rows.push((repo.clone(), tag.clone(), "<none>".into()));
                }
                for d in &ds {
                    rows.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
        for (repo, ds) in repo_digests {
            if digests_flag {
                for d in ds {
                    rows.push((repo.clone(), "<none>".into(), d));
                }
            } else {
                rows.push((repo, "<none>".into(), String::new()));
            }
        }
    }
    let size_s = human_size_prec(size as f64, 3);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    rows.into_iter()
        .map(|(repo, tag, digest)| {
            json!({
                "Containers": if containers < 0 { "N/A".to_string() } else { containers.to_string() },
                "CreatedAt": clock.time_string(created),
                "CreatedSince": clock.ago(created),
                "Digest": digest,
                "ID": if trunc { short_id(id) } else { id.to_string() },
                "Repository": repo,
                "SharedSize": if shared < 0 { "N/A".to_string() } else { human_size(shared as f64) },
                "Size": size_s,
                "Tag": tag,
                "UniqueSize": if shared < 0 || size < 0 { "N/A".to_string() } else { human_size((size - shared) as f64) },
                "VirtualSize": human_size(size as f64),
            })
        })
        .collect()
}

/// The format `images` renders: `-q`, a `--format` (a table one gains
/// DIGEST with `--digests`), or the default table.
fn images_format(a: &ImagesArgs) -> String {
    if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        if f.starts_with("table") && a.digests && !f.contains("{{.Digest}}") {
            format!("{f}\t{{{{.Digest}}}}")
        } else {
            f
        }
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
    }
}

/// `pier images ls` lists images named `ls`: when there are none, Docker
/// suggests the `image` subcommand that was probably meant.
pub fn ambiguous_hint(name: &str) -> Option<String> {
    const VERBS: &[&str] = &[
        "build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push",
        "rm", "save", "tag",
    ];
    VERBS.contains(&name).then(|| {
        format!("\nNo images found matching \"{name}\": did you mean \"pier image {name}\"?")
    })
}

/// `images` output for the daemon's image list.
pub fn render_images(list: &[Value], a: &ImagesArgs, clock: Clock) -> Result<String> {
    let format = images_format(a);
    let fmt = Format::parse(&format)?;
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let mut rows: Vec<Value> = list
        .iter()
        .flat_map(|i| image_rows(i, !a.no_trunc, need_digest, a.digests, clock))
        .collect();
    if a.quiet {
        // One line per image, not per tag.
        let mut seen = std::collections::HashSet::new();
        rows.retain(|r| seen.insert(r["ID"].as_str().unwrap_or("").to_string()));
    }
    fmt.render(&image_header(), &rows, &|_, _, _| None)
        .map_err(|e| anyhow::anyhow!("failed to execute template: {e}"))
}

pub async fn images(client: &Client, a: ImagesArgs) -> Result<i32> {
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
    print(&render_images(&list, &a, Clock::System)?);
    if let Some(hint) = a
        .repository
        .as_deref()
        .filter(|_| list.is_empty())
        .and_then(ambiguous_hint)
    {
        eprintln!("{hint}");
    }
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

/// 2000-01-01T00:00:00Z: history entries older than this have no age.
const EPOCH_2000: i64 = 946_684_800;

fn history_row(h: &Value, human: bool, trunc: bool, clock: Clock) -> Value {
    let id = h["Id"].as_str().unwrap_or("<missing>");
    let created = h["Created"].as_i64().unwrap_or(0);
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    let size = h["Size"].as_i64().unwrap_or(0);
    json!({
        "Comment": h["Comment"].as_str().unwrap_or(""),
        "CreatedAt": clock.rfc3339(created),
        "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
        "CreatedSince": if !human {
            clock.rfc3339(created)
        } else if created <= EPOCH_2000 {
            // Reproducible builds date layers 1970: Docker shows no age then.
            "N/A".to_string()
        } else {
            clock.ago(created)
        },
        "ID": if id == "<missing>" { id.to_string() } else if trunc { short_id(id) } else { id.to_string() },
        "Size": if human { human_size_prec(size as f64, 3) } else { size.to_string() },
    })
}

/// `history` output for the daemon's `/images/{name}/history` answer.
pub fn render_history(list: &[Value], a: &HistoryArgs, clock: Clock) -> Result<String> {
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if let Some(f) = a.format.clone().filter(|f| !f.is_empty() && f != "table") {
        f
    } else if !a.human {
        "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
    } else {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
    };
    let fmt = Format::parse(&format)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| history_row(h, a.human, !a.no_trunc, clock))
        .collect();
    let header = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
        "Size": "SIZE", "Comment": "COMMENT",
    });
    Ok(fmt.render(&header, &rows, &|_, _, _| None)?)
}

pub async fn history(client: &Client, a: HistoryArgs) -> Result<i32> {
    let list: Vec<Value> = client
        .get_json(&format!("/images/{}/history", a.image))
        .await?;
    print(&render_history(&list, &a, Clock::System)?);
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
        let rows = image_rows(&img, true, true, false, Clock::Fixed { now: 0 });
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[0]["Digest"], "sha256:dd");
        assert_eq!(rows[1]["Repository"], "localhost:5000/busybox");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "4.26MB");
        let dangling = json!({"Id": "sha256:ab", "RepoTags": [], "Size": 0});
        assert_eq!(
            image_rows(&dangling, true, false, false, Clock::Fixed { now: 0 })[0]["Tag"],
            "<none>"
        );
        let f = Format::parse("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}").unwrap();
        let out = f
            .render(&image_header(), &rows[..1], &|_, _, _| None)
            .unwrap();
        assert_eq!(out, "REPOSITORY   TAG       IMAGE ID       SIZE\nbusybox      latest    0123456789ab   4.26MB\n");
    }

    #[test]
    fn history_rows() {
        let h = json!({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"]", "Size": 0});
        let r = history_row(&h, true, true, Clock::Fixed { now: 0 });
        assert_eq!(r["ID"], "<missing>");
        assert_eq!(r["CreatedBy"], "/bin/sh -c #(nop) CMD [\"sh\"]");
        assert_eq!(r["Size"], "0B");
        let r = history_row(&h, false, true, Clock::Fixed { now: 0 });
        assert_eq!(r["Size"], "0");
    }
}
