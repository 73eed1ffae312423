//! `pier cp` (both directions, via the archive endpoints) and `pier export`.

use super::{stream, Exit};
use crate::format::units::human_size;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use futures::StreamExt;
use http::Method;
use pier_client::{body_bytes, body_chunks, body_reader, query, Client, ClientError};
use serde_json::Value;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

/// `CONTAINER:PATH` or a local path (a local path containing `:` must start with `/` or `.`).
fn split_spec(s: &str) -> (Option<String>, String) {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return (None, s.to_string());
    }
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c.to_string()), p.to_string()),
        _ => (None, s.to_string()),
    }
}

/// The `X-Docker-Container-Path-Stat` header of an archive response.
fn path_stat(resp_headers: &http::HeaderMap) -> Option<Value> {
    let h = resp_headers
        .get("X-Docker-Container-Path-Stat")?
        .to_str()
        .ok()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(h).ok()?;
    serde_json::from_slice(&raw).ok()
}

fn is_dir_mode(stat: &Value) -> bool {
    // Go's os.ModeDir is the top bit of a uint32.
    stat["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0)
}

pub async fn cp(client: &Client, a: CpArgs) -> Result<i32> {
    let (src_c, src_p) = split_spec(&a.src);
    let (dst_c, dst_p) = split_spec(&a.dst);
    match (src_c, dst_c) {
        (Some(c), None) => copy_from(client, &a, &c, &src_p, &dst_p).await,
        (None, Some(c)) => copy_to(client, &a, &src_p, &c, &dst_p).await,
        (Some(_), Some(_)) => {
            eprintln!("copying between containers is not supported");
            Err(Exit(1).into())
        }
        (None, None) => {
            eprintln!("must specify at least one container source");
            Err(Exit(1).into())
        }
    }
}

/// Where an archive entry lands: its first component (the source's base
/// name) becomes `root`; `.` entries of a `dir/.` copy keep their place.
fn rebase(entry: &Path, root: &Path) -> Option<PathBuf> {
    // `./x` entries (a `dir/.` copy) are the directory's contents: keep them all.
    let contents = entry.components().next() == Some(Component::CurDir);
    let mut comps = entry
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .peekable();
    if comps.peek().is_none() {
        return Some(root.to_path_buf());
    }
    if !contents {
        comps.next();
    }
    let mut out = root.to_path_buf();
    for c in comps {
        match c {
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

async fn copy_from(
    client: &Client,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<i32> {
    let resp = client
        .get(&format!(
            "/containers/{container}/archive{}",
            query(&[("path", src.to_string())])
        ))
        .await?;
    let stat = path_stat(resp.headers()).unwrap_or(Value::Null);
    let src_is_dir = is_dir_mode(&stat);
    let mut data = Vec::new();
    let mut chunks = body_chunks(resp);
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(c) = chunks.next().await {
            out.write_all(&c?)?;
        }
        out.flush()?;
        return Ok(0);
    }
    while let Some(c) = chunks.next().await {
        data.extend_from_slice(&c?);
    }
    let dst_path = PathBuf::from(dst);
    let dst_meta = std::fs::metadata(&dst_path).ok();
    let copy_contents = src.ends_with("/.");
    // Docker's rules: into an existing directory keeps the source's name,
    // otherwise the destination path is the new name.
    let root = match &dst_meta {
        Some(m) if m.is_dir() && !copy_contents => {
            let name = Path::new(src.trim_end_matches('/'))
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            dst_path.join(name)
        }
        Some(m) if !m.is_dir() && src_is_dir => bail!("cannot copy a directory to a file: {dst}"),
        None if dst.ends_with('/') && !src_is_dir => {
            bail!("destination directory \"{dst}\" does not exist")
        }
        _ => dst_path.clone(),
    };
    let mut archive = tar::Archive::new(&data[..]);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(a.archive);
    archive.set_overwrite(true);
    let mut total = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(target) = rebase(&path, &root) else {
            continue;
        };
        total += entry.header().size().unwrap_or(0);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    if !a.quiet && stream_is_tty_stderr() {
        eprintln!("Successfully copied {} to {dst}", human_size(total as f64));
    }
    Ok(0)
}

fn stream_is_tty_stderr() -> bool {
    rustix::termios::isatty(std::io::stderr())
}

async fn copy_to(
    client: &Client,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> Result<i32> {
    let mut q = vec![("noOverwriteDirNonDir", "true".to_string())];
    if a.archive {
        q.push(("copyUIDGID", "true".into()));
    }
    if src == "-" {
        q.push(("path", dst.to_string()));
        let resp = client
            .request(
                Method::PUT,
                &format!("/containers/{container}/archive{}", query(&q)),
                body_reader(tokio::io::stdin()),
            )
            .await?;
        pier_client::read_body(resp).await?;
        return Ok(0);
    }
    let mut src_path = PathBuf::from(src);
    let meta = if a.follow_link {
        std::fs::metadata(&src_path)
    } else {
        std::fs::symlink_metadata(&src_path)
    }
    .map_err(|_| anyhow!("lstat {src}: no such file or directory"))?;
    if a.follow_link {
        src_path = std::fs::canonicalize(&src_path).unwrap_or(src_path);
    }
    // What is at the destination decides the name the copy gets.
    let stat = match client
        .request(
            Method::HEAD,
            &format!(
                "/containers/{container}/archive{}",
                query(&[("path", dst.to_string())])
            ),
            pier_client::body_empty(),
        )
        .await
    {
        Ok(resp) => path_stat(resp.headers()),
        Err(ClientError::Daemon { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let copy_contents = src.ends_with("/.");
    let base_name = || {
        Path::new(src.trim_end_matches("/.").trim_end_matches('/'))
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default()
    };
    let (upload_dir, name) = match &stat {
        Some(s) if is_dir_mode(s) => (
            dst.to_string(),
            if copy_contents {
                PathBuf::new()
            } else {
                base_name()
            },
        ),
        Some(_) if meta.is_dir() => bail!("cannot copy a directory to a file: {dst}"),
        _ => {
            if dst.ends_with('/') && stat.is_none() && !meta.is_dir() {
                bail!("destination directory \"{dst}\" does not exist");
            }
            let d = Path::new(dst.trim_end_matches('/'));
            let parent = d
                .parent()
                .map(|p| p.to_string_lossy().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            (parent, d.file_name().map(PathBuf::from).unwrap_or_default())
        }
    };
    let mut builder = tar::Builder::new(Vec::new());
    let name = if name.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        name
    };
    append_tree(&mut builder, &src_path, &name, a.follow_link)
        .with_context(|| format!("cannot read {src}"))?;
    let data = builder.into_inner()?;
    let size = data.len();
    q.push(("path", upload_dir));
    let resp = client
        .request(
            Method::PUT,
            &format!("/containers/{container}/archive{}", query(&q)),
            body_bytes(data),
        )
        .await?;
    pier_client::read_body(resp).await?;
    if !a.quiet && stream_is_tty_stderr() {
        eprintln!(
            "Successfully copied {} to {container}:{dst}",
            human_size(size as f64)
        );
    }
    Ok(0)
}

/// Appends `path` (a directory with everything below it) as `name`. Symlink targets
/// are written as they are: the tar crate's own builder turns a link to `/` into `//`.
fn append_tree(
    b: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    name: &Path,
    follow: bool,
) -> std::io::Result<()> {
    let meta = if follow {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        let target = target.as_os_str().as_encoded_bytes();
        if target.len() > 100 {
            // Long targets need a GNU long-link entry, which only this call writes.
            return b.append_link(&mut h, name, Path::new(path).read_link()?);
        }
        h.set_link_name_literal(target)?;
        h.set_size(0);
        return b.append_data(&mut h, name, std::io::empty());
    }
    if meta.is_file() {
        return b.append_data(&mut h, name, std::fs::File::open(path)?);
    }
    b.append_data(&mut h, name, std::io::empty())?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for e in entries {
            append_tree(b, &path.join(&e), &name.join(&e), follow)?;
        }
    }
    Ok(())
}

/// Writes a streamed body to `-o FILE` or to stdout (never to a terminal).
pub async fn write_stream_out(resp: pier_client::Response, output: Option<&str>) -> Result<()> {
    let mut chunks = body_chunks(resp);
    match output {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("failed to save: cannot create {path}"))?;
            while let Some(c) = chunks.next().await {
                f.write_all(&c?)
                    .with_context(|| format!("cannot write {path}"))?;
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(c) = chunks.next().await {
                out.write_all(&c?)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

pub async fn export(client: &Client, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && stream::stdout_is_tty() {
        eprintln!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        return Ok(1);
    }
    let resp = client
        .get(&format!("/containers/{}/export", a.container))
        .await?;
    write_stream_out(resp, a.output.as_deref()).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            split_spec("web:/etc/hosts"),
            (Some("web".into()), "/etc/hosts".into())
        );
        assert_eq!(split_spec("/tmp/a:b"), (None, "/tmp/a:b".into()));
        assert_eq!(split_spec("./x"), (None, "./x".into()));
        assert_eq!(split_spec("-"), (None, "-".into()));
    }

    #[test]
    fn rebasing() {
        let root = Path::new("/out/new");
        assert_eq!(
            rebase(Path::new("hosts"), root),
            Some(PathBuf::from("/out/new"))
        );
        assert_eq!(
            rebase(Path::new("etc/a/b"), root),
            Some(PathBuf::from("/out/new/a/b"))
        );
        assert_eq!(
            rebase(Path::new("./a/b"), root),
            Some(PathBuf::from("/out/new/a/b"))
        );
        assert_eq!(
            rebase(Path::new("."), root),
            Some(PathBuf::from("/out/new"))
        );
        assert_eq!(rebase(Path::new("etc/../x"), root), None);
    }

    #[test]
    fn dir_mode_bit() {
        assert!(is_dir_mode(&serde_json::json!({"mode": 2147484141u64})));
        assert!(!is_dir_mode(&serde_json::json!({"mode": 420})));
    }
}
