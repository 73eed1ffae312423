//! `pier import`, `pier load`, `pier save`.

use super::cp::write_stream_out;
use super::registry::show_progress;
use super::{println, stream, Exit};
use anyhow::{Context, Result};
use clap::Args;
use http::Method;
use pier_client::{body_empty, body_reader, query, Client, JsonLines};
use serde_json::Value;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- (a tar archive, possibly compressed)
    pub file: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Archive format: docker (a docker-archive that is also an OCI layout) or oci
    /// (an OCI layout with layers kept compressed as stored)
    #[arg(long, default_value = "docker", value_parser = ["docker", "oci"])]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn import(client: &Client, a: ImportArgs) -> Result<i32> {
    let is_url = a.file.starts_with("http://") || a.file.starts_with("https://");
    let mut q = vec![(
        "fromSrc",
        if is_url {
            a.file.clone()
        } else {
            "-".to_string()
        },
    )];
    if let Some(r) = &a.reference {
        q.push(("repo", r.clone()));
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    let path = format!("/images/create{}", query(&q));
    let body = if is_url {
        body_empty()
    } else if a.file == "-" {
        body_reader(tokio::io::stdin())
    } else {
        let f = tokio::fs::File::open(&a.file)
            .await
            .with_context(|| format!("open {}: no such file or directory", a.file))?;
        body_reader(f)
    };
    let resp = client
        .request_with(
            Method::POST,
            &path,
            body,
            &[("Content-Type", "application/x-tar".to_string())],
        )
        .await?;
    let mut lines = JsonLines::new(resp);
    let mut code = 0;
    while let Some(m) = lines.next::<Value>().await {
        let m = m?;
        if let Some(e) = m["error"].as_str() {
            eprintln!("{e}");
            code = 1;
        } else if let Some(s) = m["status"].as_str() {
            println(s);
        }
    }
    Ok(code)
}

pub async fn load(client: &Client, a: LoadArgs) -> Result<i32> {
    let body = match &a.input {
        Some(path) => {
            let f = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("open {path}: no such file or directory"))?;
            body_reader(f)
        }
        None => {
            if stream::stdin_is_tty() {
                eprintln!("requested load from stdin, but stdin is empty");
                return Err(Exit(1).into());
            }
            body_reader(tokio::io::stdin())
        }
    };
    let q = if a.quiet { "?quiet=1" } else { "?quiet=0" };
    let resp = client
        .request_with(
            Method::POST,
            &format!("/images/load{q}"),
            body,
            &[("Content-Type", "application/x-tar".to_string())],
        )
        .await?;
    show_progress(resp, a.quiet, false).await
}

pub async fn save(client: &Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && stream::stdout_is_tty() {
        eprintln!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        return Err(Exit(1).into());
    }
    let mut q: Vec<(&str, String)> = a.images.iter().map(|i| ("names", i.clone())).collect();
    if a.format == "oci" {
        q.push(("format", "oci".into()));
    }
    let resp = client.get(&format!("/images/get{}", query(&q))).await?;
    write_stream_out(resp, a.output.as_deref()).await?;
    Ok(0)
}
