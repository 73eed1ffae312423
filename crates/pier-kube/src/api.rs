//! The Engine API calls `kube` needs beyond pier-compose's (listing by label,
//! copying files in, building).

use crate::error::{KubeError, Result};
use pier_client::{query, read_body, Client, ClientError, JsonLines};
use serde_json::{json, Value};
use std::path::Path;

pub use pier_compose::api::Api;

fn enc(s: &str) -> String {
    query(&[("x", s.to_string())])
        .trim_start_matches("?x=")
        .to_string()
}

/// Every container (running or not) carrying `label` (`k` or `k=v`).
pub async fn containers_with(c: &Client, label: &str) -> Result<Vec<Value>> {
    let filters = json!({ "label": [label] }).to_string();
    Ok(c.get_json(&format!(
        "/containers/json{}",
        query(&[("all", "1".into()), ("filters", filters)])
    ))
    .await?)
}

pub async fn volumes_with(c: &Client, label: &str) -> Result<Vec<String>> {
    let filters = json!({ "label": [label] }).to_string();
    let v: Value = c
        .get_json(&format!("/volumes{}", query(&[("filters", filters)])))
        .await?;
    Ok(v["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["Name"].as_str().map(str::to_string))
        .collect())
}

/// Extracts `tar` into directory `path` of the container.
pub async fn put_archive(c: &Client, id: &str, path: &str, tar: Vec<u8>) -> Result<()> {
    let q = query(&[("path", path.to_string())]);
    let resp = c
        .request_with(
            http::Method::PUT,
            &format!("/containers/{}/archive{q}", enc(id)),
            pier_client::body_bytes(tar),
            &[("Content-Type", "application/x-tar".into())],
        )
        .await?;
    read_body(resp).await?;
    Ok(())
}

pub async fn image_inspect(c: &Client, name: &str) -> Result<Option<Value>> {
    match c.get_json(&format!("/images/{}/json", enc(name))).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The daemon's answer when it cannot read the context directory by path.
const LOCAL_CONTEXT_UNSEEN: &str = "build context directory not visible to the daemon";

/// Builds `dir` (with its `dockerfile`) as `tag`, printing the build's output on stderr.
pub async fn build(c: &Client, dir: &Path, dockerfile: &str, tag: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let canon = std::fs::canonicalize(dir).map_err(|e| KubeError::io(dir.display(), e))?;
    let m = std::fs::metadata(&canon).map_err(|e| KubeError::io(canon.display(), e))?;
    let q = vec![
        ("t", tag.to_string()),
        ("dockerfile", dockerfile.to_string()),
        ("rm", "1".to_string()),
    ];
    let mut by_path = q.clone();
    by_path.push(("piercontext", canon.display().to_string()));
    by_path.push(("piercontextid", format!("{}:{}", m.dev(), m.ino())));
    // A daemon on this host reads the directory in place; otherwise it gets a tar.
    let resp = match c
        .request(
            http::Method::POST,
            &format!("/build{}", query(&by_path)),
            pier_client::body_empty(),
        )
        .await
    {
        Err(ClientError::Daemon { message, .. }) if message.contains(LOCAL_CONTEXT_UNSEEN) => {
            let mut b = tar::Builder::new(Vec::new());
            b.follow_symlinks(false);
            b.append_dir_all(".", &canon)
                .map_err(|e| KubeError::io(canon.display(), e))?;
            let tar = b
                .into_inner()
                .map_err(|e| KubeError::io(canon.display(), e))?;
            c.request_with(
                http::Method::POST,
                &format!("/build{}", query(&q)),
                pier_client::body_bytes(tar),
                &[("Content-Type", "application/x-tar".into())],
            )
            .await?
        }
        r => r?,
    };
    let mut lines = JsonLines::new(resp);
    while let Some(m) = lines.next::<Value>().await {
        let m = m?;
        if let Some(e) = m["error"].as_str() {
            return Err(KubeError::Invalid(format!(
                "building {tag} from {}: {}",
                canon.display(),
                e.trim_end()
            )));
        }
        if let Some(s) = m["stream"].as_str() {
            eprint!("{s}");
        }
    }
    Ok(())
}
