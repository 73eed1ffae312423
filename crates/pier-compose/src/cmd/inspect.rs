//! `top`, `port` and `images`: what the project's containers run, publish
//! and were made from, in Compose v2's layout.

use crate::api::{split_tag, Summary};
use crate::ctx::{select, Ctx};
use crate::error::{ComposeError, Result};
use crate::load::Project;
use crate::out;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct TopArgs {
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    #[arg(value_name = "PRIVATE_PORT")]
    pub port: u16,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Format the output. Values: [table | json]
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// The project's containers of the named services (one-off ones too when
/// `oneoff` is `None`, as Compose's `top` and `images` list them).
async fn containers(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
    all: bool,
    oneoff: Option<bool>,
) -> Result<(crate::api::Api, Vec<Summary>)> {
    let mut p = p.clone();
    let names = select(&mut p, services)?;
    let api = ctx.api().await?;
    let list = api
        .containers(&p.name, all, oneoff)
        .await?
        .into_iter()
        .filter(|c| names.contains(&c.service))
        .collect();
    Ok((api, list))
}

/// One table for every container, `SERVICE` and `#` first and `CMD` last,
/// as Compose v2 prints it.
pub async fn top(ctx: &Ctx, p: &Project, a: &TopArgs) -> Result<i32> {
    let (api, mut list) = containers(ctx, p, &a.services, false, None).await?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let mut header: Vec<String> = vec!["SERVICE".into(), "#".into()];
    let mut entries: Vec<Vec<(String, String)>> = Vec::new();
    for c in &list {
        let v: Value = api
            .client
            .get_json(&format!("/containers/{}/top", c.id))
            .await?;
        let titles: Vec<String> = v["Titles"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for t in &titles {
            if !header.contains(t) {
                header.push(t.clone());
            }
        }
        for proc_ in v["Processes"].as_array().into_iter().flatten() {
            let mut e = vec![
                ("SERVICE".to_string(), c.service.clone()),
                ("#".to_string(), c.number.to_string()),
            ];
            for (i, t) in titles.iter().enumerate() {
                e.push((t.clone(), proc_[i].as_str().unwrap_or_default().to_string()));
            }
            entries.push(e);
        }
    }
    if entries.is_empty() {
        return Ok(0);
    }
    if let Some(i) = header.iter().position(|h| h == "CMD") {
        let cmd = header.remove(i);
        header.push(cmd);
    }
    let mut rows = vec![header.clone()];
    for e in entries {
        rows.push(
            header
                .iter()
                .map(|h| {
                    e.iter()
                        .find(|(k, _)| k == h)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| "-".into())
                })
                .collect(),
        );
    }
    out::table(&rows, 4, 2);
    Ok(0)
}

/// `port SERVICE PRIVATE_PORT`: `IP:PORT` of the binding.
pub async fn port(ctx: &Ctx, p: &Project, a: &PortArgs) -> Result<i32> {
    let (_, list) =
        containers(ctx, p, std::slice::from_ref(&a.service), false, Some(false)).await?;
    let c = list.iter().find(|c| c.number == a.index).ok_or_else(|| {
        ComposeError::Project(format!(
            "service \"{}\" is not running container #{}",
            a.service, a.index
        ))
    })?;
    let proto = a.protocol.to_lowercase();
    for b in &c.ports {
        if b["PrivatePort"].as_u64() == Some(a.port as u64)
            && b["Type"].as_str() == Some(&proto)
            && let Some(public) = b["PublicPort"].as_u64()
        {
            out::line(&format!("{}:{public}", b["IP"].as_str().unwrap_or("")));
            return Ok(0);
        }
    }
    let have: Vec<String> = c
        .ports
        .iter()
        .map(|b| {
            format!(
                "{}/{}",
                b["PrivatePort"].as_u64().unwrap_or(0),
                b["Type"].as_str().unwrap_or("tcp")
            )
        })
        .collect();
    Err(ComposeError::Project(format!(
        "no port {}/{proto} for container {}: {}",
        a.port,
        c.name,
        have.join(", ")
    )))
}

/// Docker's `HumanSizeWithPrecision(size, 3)`: decimal units, three
/// significant digits, trailing zeros dropped.
pub fn human_size(size: f64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = size;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// The image each container runs: its name as the container was given it,
/// with ID, platform, size and age from the image.
pub async fn images(ctx: &Ctx, p: &Project, a: &ImagesArgs) -> Result<i32> {
    let (api, mut list) = containers(ctx, p, &a.services, true, None).await?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let mut found: Vec<(String, String, String, Value)> = Vec::new();
    for c in &list {
        let by = [&c.image_id, &c.image_label, &c.image]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_default();
        let img: Value = match api.client.get_json(&format!("/images/{by}/json")).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let (repo, tag) = split_tag(&c.image);
        let tag = if c.image.starts_with("sha256:") {
            None
        } else {
            Some(tag.unwrap_or("latest").to_string())
        };
        let repo = if c.image.starts_with("sha256:") {
            String::new()
        } else {
            repo.to_string()
        };
        found.push((c.name.clone(), repo, tag.unwrap_or_default(), img));
    }
    let id_of = |img: &Value| img["Id"].as_str().unwrap_or_default().to_string();
    if a.quiet {
        let mut seen: Vec<String> = Vec::new();
        for (_, _, _, img) in &found {
            let id = id_of(img);
            let id = id.strip_prefix("sha256:").unwrap_or(&id).to_string();
            if !seen.contains(&id) {
                out::line(&id);
                seen.push(id);
            }
        }
        return Ok(0);
    }
    let platform = |img: &Value| {
        let os = img["Os"].as_str().unwrap_or_default();
        let arch = img["Architecture"].as_str().unwrap_or_default();
        match img["Variant"].as_str() {
            Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
            _ => format!("{os}/{arch}"),
        }
    };
    if a.format == "json" {
        let v: Vec<Value> = found
            .iter()
            .map(|(name, repo, tag, img)| {
                json!({
                    "ID": id_of(img),
                    "ContainerName": name,
                    "Repository": repo,
                    "Tag": tag,
                    "Platform": platform(img),
                    "Size": img["Size"].as_i64().unwrap_or(0),
                    "Created": img["Created"],
                })
            })
            .collect();
        out::line(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    let mut rows = vec![[
        "CONTAINER",
        "REPOSITORY",
        "TAG",
        "PLATFORM",
        "IMAGE ID",
        "SIZE",
        "CREATED",
    ]
    .map(str::to_string)
    .to_vec()];
    for (name, repo, tag, img) in &found {
        let id = id_of(img);
        let short: String = id
            .strip_prefix("sha256:")
            .unwrap_or(&id)
            .chars()
            .take(12)
            .collect();
        let or_none = |s: &str| {
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s.to_string()
            }
        };
        let created = img["Created"]
            .as_str()
            .and_then(rfc3339_secs)
            .map(super::ps::ago)
            .unwrap_or_else(|| "N/A".into());
        rows.push(vec![
            name.clone(),
            or_none(repo),
            or_none(tag),
            platform(img),
            short,
            human_size(img["Size"].as_f64().unwrap_or(0.0)),
            created,
        ]);
    }
    out::table(&rows, 20, 3);
    Ok(0)
}

/// Seconds since the epoch of an RFC 3339 time.
fn rfc3339_secs(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(4_261_550.0), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_240.0), "1.24kB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
        assert_eq!(human_size(4_000_000.0), "4MB");
    }

    #[test]
    fn rfc3339_to_epoch() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_secs("2024-02-29T12:30:05.123456789Z"),
            Some(1_709_209_805)
        );
    }
}
