//! `POST /build` (the classic builder protocol: a context tar in, a JSON
//! progress stream out) and `POST /build/prune`.

use std::collections::BTreeMap;
use std::io::Write as _;

use axum::body::Body;
use axum::extract::{Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::body::{blocking_reader, blocking_stream, qbool, Query as Q};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

fn json_map<T: serde::de::DeserializeOwned + Default>(q: &Q, key: &str) -> ApiResult<T> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(T::default()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
    }
}

/// Build parameters of Docker's API that Pier's builder does not apply (resource
/// limits of RUN steps other than /dev/shm's size, Windows isolation, squash). Clients send most of them on
/// every build with an empty or zero value; any other value is refused rather
/// than dropped.
const UNAPPLIED: &[&str] = &[
    "memory",
    "memswap",
    "cpushares",
    "cpusetcpus",
    "cpusetmems",
    "cpuperiod",
    "cpuquota",
    "ulimits",
    "cgroupparent",
    "isolation",
    "squash",
];

fn refuse_unapplied(q: &Q) -> ApiResult<()> {
    for key in UNAPPLIED {
        let Some(v) = q.get(*key) else { continue };
        let v = v.trim();
        let unset = match *key {
            "cpusetcpus" | "cpusetmems" | "cgroupparent" => v.is_empty(),
            "isolation" => matches!(v, "" | "default"),
            "ulimits" => matches!(v, "" | "null" | "[]"),
            "squash" => matches!(v, "" | "0" | "false" | "False"),
            _ => matches!(v, "" | "0"),
        };
        if !unset {
            return Err(ApiError::bad_request(format!(
                "not supported by Pier: build option {key}={v}"
            )));
        }
    }
    Ok(())
}

async fn build(
    State(e): State<AppState>,
    Query(q): Query<Q>,
    raw: RawQuery,
    body: Body,
) -> ApiResult<Response> {
    refuse_unapplied(&q)?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.0.as_deref().unwrap_or("")).unwrap_or_default();
    let tags: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "t" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let build_args: BTreeMap<String, Option<String>> = json_map(&q, "buildargs")?;
    let labels: BTreeMap<String, String> = json_map(&q, "labels")?;
    let network = match q.get("networkmode").map(String::as_str) {
        Some("none") => pier_build::Network::None,
        Some("host") => pier_build::Network::Host,
        None | Some("") | Some("default") | Some("bridge") => pier_build::Network::Default,
        Some(other) => pier_build::Network::Named(other.to_string()),
    };
    // Repeated `extrahosts=name:ip` (Docker's CLI and docker-py).
    let extra_hosts: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "extrahosts" && !v.is_empty())
        .flat_map(|(_, v)| v.split(',').map(|h| h.trim().replacen('=', ":", 1)))
        .collect();
    let cache_from: Vec<String> = json_map(&q, "cachefrom")?;
    // The first value, as Go's FormValue: docker-py sends a Dockerfile from
    // outside the context as `dockerfile=<name in the tar>&dockerfile=<text>`.
    let dockerfile = pairs
        .iter()
        .find(|(k, _)| k == "dockerfile")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let shm_size = shm_size(&q)?;
    let local = local_context(&q)?;
    let opts = pier_build::BuildOptions {
        context: local.clone().unwrap_or_default(),
        context_shared: local.is_some(),
        dockerfile,
        dockerfile_contents: None,
        tags,
        build_args,
        target: q.get("target").cloned().filter(|t| !t.is_empty()),
        no_cache: qbool(&q, "nocache"),
        labels,
        network,
        extra_hosts,
        cache_from,
        platform: q.get("platform").cloned().filter(|p| !p.is_empty()),
        pull: qbool(&q, "pull"),
        secrets: Default::default(),
        shm_size,
    };
    let quiet = qbool(&q, "q");
    let reader = blocking_reader(body);
    let rt = tokio::runtime::Handle::current();
    let scratch = e.data_root().join("build-contexts");
    let resp = blocking_stream("application/json", move |w| {
        let backend = pier_engine::EngineBackend::new(e.clone(), rt);
        std::fs::create_dir_all(&scratch)
            .map_err(|err| pier_engine::EngineError::from_io(&scratch, err))?;
        let mut progress = pier_build::JsonProgress::new(QuietFilter {
            inner: w,
            quiet,
            held: Vec::new(),
            flushed: false,
        });
        let r = if opts.context_shared {
            drop(reader);
            pier_build::build(&backend, &opts, &mut progress)
        } else {
            pier_build::build_tar(&backend, reader, &scratch, &opts, &mut progress)
        };
        let mut filter = progress.into_inner();
        match r {
            // As Docker's postBuild: a failure before anything reached the
            // client is an HTTP error; later ones stay in the 200 stream
            // (the builder already wrote them as errorDetail).
            Err(err) if !filter.flushed => return Err(err.into()),
            Err(_) => {
                let held = std::mem::take(&mut filter.held);
                let _ = filter.inner.write_all(&held);
                let _ = filter.inner.flush();
            }
            // As Docker with `q=1`: the image ID is the one stream message.
            Ok(r) if quiet => {
                let msg = serde_json::json!({ "stream": format!("{}\n", r.image_id) });
                let _ = filter.inner.write_all(format!("{msg}\r\n").as_bytes());
                let _ = filter.inner.flush();
            }
            Ok(_) => {}
        }
        Ok(())
    })
    .await;
    Ok(resp)
}

/// `shmsize` in bytes, as Docker parses it (an integer; 0 or absent = the
/// 64 MB default).
fn shm_size(q: &Q) -> ApiResult<i64> {
    match q.get("shmsize").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "invalid shmsize: {s:?}: not a number of bytes"
            ))),
        },
    }
}

/// Pier's own extension for a local `pier build`: `piercontext=<dir>` and
/// `piercontextid=<dev>:<inode>` name the context directory instead of
/// sending it as a tar (which is then empty), so a rebuild reads only the
/// files it needs. The id proves the daemon sees the same directory as the
/// client (not another mount namespace's); if not, the client sends a tar.
fn local_context(q: &Q) -> ApiResult<Option<std::path::PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = q.get("piercontext").filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = std::path::PathBuf::from(dir);
    let seen = std::fs::metadata(&dir)
        .ok()
        .filter(|m| dir.is_absolute() && m.is_dir())
        .map(|m| format!("{}:{}", m.dev(), m.ino()));
    if seen.is_none() || seen.as_deref() != q.get("piercontextid").map(String::as_str) {
        return Err(ApiError::bad_request(format!(
            "{LOCAL_CONTEXT_UNSEEN}: {}",
            dir.display()
        )));
    }
    Ok(Some(dir))
}

/// The start of the error for a context directory the daemon cannot see;
/// the CLI falls back to sending a tar when it reads it.
const LOCAL_CONTEXT_UNSEEN: &str = "build context directory not visible to the daemon";

/// With `q=1` Docker sends only the final ID and errors. Error messages are
/// held back until something else has been sent, so that a build failing
/// before any output can still answer with an HTTP error status.
struct QuietFilter<'a> {
    inner: &'a mut pier_engine::ChannelWriter,
    quiet: bool,
    held: Vec<u8>,
    flushed: bool,
}

impl std::io::Write for QuietFilter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = String::from_utf8_lossy(buf);
        if self.quiet && s.contains("\"stream\"") && !s.contains("\"aux\"") {
            return Ok(buf.len());
        }
        if !self.flushed && s.contains("\"errorDetail\"") {
            self.held.extend_from_slice(buf);
            return Ok(buf.len());
        }
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.inner.write_all(&held)?;
        }
        self.flushed = true;
        self.inner.write_all(buf)?;
        self.inner.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

async fn prune(State(e): State<AppState>, Query(q): Query<Q>) -> ApiResult<Response> {
    // API 1.48 names keep-storage `reserved-space`; its two other limits are
    // refused rather than ignored.
    for k in ["max-used-space", "min-free-space"] {
        if crate::params::qint(&q, k)?.unwrap_or(0) != 0 {
            return Err(ApiError::bad_request(format!(
                "not supported by Pier: build cache prune {k}"
            )));
        }
    }
    let keep = crate::params::qint(&q, "reserved-space")?
        .or(crate::params::qint(&q, "keep-storage")?)
        .unwrap_or(0);
    let o = pier_engine::BuildPruneOptions {
        all: qbool(&q, "all"),
        keep_bytes: keep,
        filters: crate::body::filters(&q)?,
    };
    let r = tokio::task::spawn_blocking(move || e.prune_build_cache(&o)).await??;
    Ok(
        axum::Json(serde_json::json!({"CachesDeleted": r.deleted, "SpaceReclaimed": r.reclaimed}))
            .into_response(),
    )
}

#[cfg(test)]
mod unapplied_tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Q {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn zero_values_pass_and_real_ones_are_refused() {
        // What docker's CLI sends on every classic build.
        let defaults = q(&[
            ("shmsize", "0"),
            ("memory", "0"),
            ("memswap", "0"),
            ("cpushares", "0"),
            ("cpusetcpus", ""),
            ("cpuperiod", "0"),
            ("cpuquota", "0"),
            ("ulimits", "null"),
            ("cgroupparent", ""),
        ]);
        assert!(refuse_unapplied(&defaults).is_ok());
        assert!(refuse_unapplied(&q(&[("ulimits", "[]"), ("squash", "false")])).is_ok());
        for (k, v) in [
            ("memory", "1g"),
            ("squash", "1"),
            ("isolation", "hyperv"),
            ("cpusetcpus", "0"),
        ] {
            let e = refuse_unapplied(&q(&[(k, v)])).unwrap_err();
            assert!(
                format!("{e:?}").contains(&format!("build option {k}")),
                "{e:?}"
            );
        }
    }
}
