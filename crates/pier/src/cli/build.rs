//! `pier build` (docker's classic builder protocol: the context tar goes up
//! with `POST /build`, JSON messages come back) and `pier builder prune`.

mod context;
mod progress;

use super::container::{confirm, print_prune_report, strings};
use super::opts::labels_map;
use super::ps::filters_json;
use super::{println, Exit};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::{ArgAction, Args, Subcommand};
use context::{DirContext, DockerfileSource};
use http::Method;
use pier_client::{body_reader, query, Client, JsonLines};
use progress::{TtyView, View};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set metadata for an image
    #[arg(long)]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Type of progress output (auto, plain, tty)
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Remove intermediate containers after a successful build
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Size of /dev/shm in RUN steps
    #[arg(long = "shm-size", value_parser = super::opts::ram_in_bytes)]
    pub shm_size: Option<i64>,
    /// PATH | - (a directory, or a tar archive or Dockerfile on stdin)
    pub path: String,
}

// Parsed once per process; boxing would only complicate the clap derive.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Amount of disk space to keep for cache
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
}

/// `--build-arg k=v` -> k: v; `--build-arg k` -> the value of `$k`, or null
/// (declared but unset) when the environment has none, like docker.
fn build_args_json(items: &[String], env: impl Fn(&str) -> Option<String>) -> Value {
    let mut m = Map::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), Value::String(v.to_string())),
            None => m.insert(
                it.to_string(),
                env(it).map(Value::String).unwrap_or(Value::Null),
            ),
        };
    }
    Value::Object(m)
}

/// The `POST /build` query for these flags and the Dockerfile's name in the tar.
fn build_query(a: &BuildArgs, dockerfile: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&str, String)> = a.tag.iter().map(|t| ("t", t.clone())).collect();
    if let Some(d) = dockerfile.filter(|d| !d.is_empty()) {
        q.push(("dockerfile", d.to_string()));
    }
    if !a.build_arg.is_empty() {
        let env = |k: &str| std::env::var(k).ok();
        q.push(("buildargs", build_args_json(&a.build_arg, env).to_string()));
    }
    if !a.label.is_empty() {
        let labels: Map<String, Value> = labels_map(&a.label)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        q.push(("labels", Value::Object(labels).to_string()));
    }
    if let Some(t) = a.target.as_ref().filter(|t| !t.is_empty()) {
        q.push(("target", t.clone()));
    }
    if a.no_cache {
        q.push(("nocache", "1".into()));
    }
    if let Some(n) = a.network.as_ref().filter(|n| !n.is_empty()) {
        q.push(("networkmode", n.clone()));
    }
    if let Some(p) = a.platform.as_ref().filter(|p| !p.is_empty()) {
        q.push(("platform", p.clone()));
    }
    if a.pull {
        q.push(("pull", "1".into()));
    }
    if a.quiet {
        q.push(("q", "1".into()));
    }
    q.push(("rm", if a.rm { "1" } else { "0" }.into()));
    if a.force_rm {
        q.push(("forcerm", "1".into()));
    }
    if !a.cache_from.is_empty() {
        q.push(("cachefrom", Value::from(a.cache_from.clone()).to_string()));
    }
    if !a.add_host.is_empty() {
        q.push(("extrahosts", a.add_host.join(",")));
    }
    if let Some(n) = a.shm_size.filter(|n| *n > 0) {
        q.push(("shmsize", n.to_string()));
    }
    q
}

/// Counts the bytes handed to the HTTP body (for "Sending build context").
struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let added = (buf.filled().len() - before) as u64;
        self.n.fetch_add(added, Ordering::Relaxed);
        r
    }
}

type Upload = (
    pier_client::Body,
    Option<String>,
    Option<std::thread::JoinHandle<Result<()>>>,
    // `piercontext` and `piercontextid` when the daemon reads the directory.
    Vec<(&'static str, String)>,
);

/// The daemon's answer when it cannot see a directory named by path.
const LOCAL_CONTEXT_UNSEEN: &str = "build context directory not visible to the daemon";

/// Reads stdin until `n` bytes or EOF.
async fn read_head(n: usize) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    let mut stdin = tokio::io::stdin().take(n as u64);
    stdin
        .read_to_end(&mut head)
        .await
        .context("reading stdin")?;
    Ok(head)
}

/// The request body (streamed), the Dockerfile's name for the daemon, and
/// the thread writing a directory's tar, if any.
async fn prepare_upload(a: &BuildArgs, sent: Arc<AtomicU64>, by_path: bool) -> Result<Upload> {
    let file = a.file.as_deref();
    if a.path == "-" {
        if file == Some("-") {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let head = read_head(512).await?;
        if context::is_archive(&head) {
            let r = std::io::Cursor::new(head).chain(tokio::io::stdin());
            let body = body_reader(Counting { inner: r, n: sent });
            return Ok((body, file.map(str::to_string), None, Vec::new()));
        }
        let mut all = head;
        tokio::io::stdin()
            .read_to_end(&mut all)
            .await
            .context("reading stdin")?;
        let tar = context::dockerfile_only_tar(&all)?;
        let body = body_reader(Counting {
            inner: std::io::Cursor::new(tar),
            n: sent,
        });
        return Ok((
            body,
            Some(context::DEFAULT_DOCKERFILE.into()),
            None,
            Vec::new(),
        ));
    }
    if a.path.contains("://") || a.path.starts_with("git@") {
        bail!(
            "unable to prepare context: remote contexts ({}) are not supported by pier build",
            a.path
        );
    }
    let cwd = std::env::current_dir().context("current directory")?;
    let (root, src) = context::resolve_dir(Path::new(&a.path), file, &cwd).map_err(|e| {
        if !Path::new(&a.path).exists() {
            anyhow!("unable to prepare context: path {:?} not found", a.path)
        } else {
            anyhow!("unable to prepare context: {e}")
        }
    })?;
    let (name, extra) = match src {
        DockerfileSource::Inside(rel) if by_path => {
            // The daemon is on this host: it reads the directory itself, so
            // an unchanged context costs no tar and no copy (see the
            // server's `local_context`).
            use std::os::unix::fs::MetadataExt;
            let dir = std::fs::canonicalize(&root)
                .with_context(|| format!("unable to prepare context: {}", root.display()))?;
            let m = std::fs::metadata(&dir)
                .with_context(|| format!("unable to prepare context: {}", dir.display()))?;
            let q = vec![
                ("piercontext", dir.display().to_string()),
                ("piercontextid", format!("{}:{}", m.dev(), m.ino())),
            ];
            return Ok((pier_client::body_empty(), Some(rel), None, q));
        }
        DockerfileSource::Inside(rel) => (rel, None),
        DockerfileSource::Outside(p) => {
            let content = std::fs::read(&p)
                .with_context(|| format!("unable to read Dockerfile {}", p.display()))?;
            let n = context::generated_dockerfile_name();
            (n.clone(), Some((n, content)))
        }
        DockerfileSource::Stdin => {
            let mut content = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut content)
                .await
                .context("reading the Dockerfile from stdin")?;
            let n = context::generated_dockerfile_name();
            (n.clone(), Some((n, content)))
        }
    };
    let ctx = tokio::task::spawn_blocking({
        let name = name.clone();
        move || DirContext::new(root, &name, extra)
    })
    .await?
    .map_err(|e| anyhow!("error checking context: {e}"))?;
    // The tar is written by a thread into a socket pair and streamed from
    // the other end, so a large context is never held in memory.
    let (w, r) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
    r.set_nonblocking(true).context("socketpair")?;
    let r = tokio::net::UnixStream::from_std(r).context("socketpair")?;
    let writer = std::thread::spawn(move || -> Result<()> {
        let bw = std::io::BufWriter::with_capacity(256 * 1024, w);
        let mut bw = ctx.write_tar(bw)?;
        bw.flush()?;
        Ok(())
    });
    let body = body_reader(Counting { inner: r, n: sent });
    Ok((body, Some(name), Some(writer), Vec::new()))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub async fn build(client: &Client, a: BuildArgs) -> Result<i32> {
    if let Some(f) = &a.iidfile {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("Removing image ID file: {e}"),
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let upload = prepare_upload(
        &a,
        sent.clone(),
        std::env::var_os("PIER_BUILD_TAR").is_none(),
    );
    let (mut body, mut dockerfile, mut writer, mut local) = match upload.await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{e}");
            return Err(Exit(1).into());
        }
    };
    let stderr_tty = rustix::termios::isatty(std::io::stderr());
    let mut view = if a.quiet {
        View::Quiet
    } else if a.progress == "tty" || (a.progress == "auto" && stderr_tty) {
        if stderr_tty {
            View::Tty(Box::new(TtyView::new()))
        } else {
            View::Plain
        }
    } else {
        View::Plain
    };
    let headers = [("Content-Type", "application/x-tar".to_string())];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut in_place: Option<String>;
    let resp = loop {
        let mut q = build_query(&a, dockerfile.as_deref());
        in_place = local
            .iter()
            .find(|(k, _)| *k == "piercontext")
            .map(|(_, dir)| dir.clone());
        q.append(&mut local);
        let path = format!("/build{}", query(&q));
        let resp = client.request_with(Method::POST, &path, body, &headers);
        tokio::pin!(resp);
        let resp = loop {
            tokio::select! {
                r = &mut resp => break r,
                _ = tick.tick() => view.tick(sent.load(Ordering::Relaxed)),
            }
        };
        let unseen = matches!(&resp, Err(pier_client::ClientError::Daemon { message, .. })
            if message.starts_with(LOCAL_CONTEXT_UNSEEN));
        if !unseen {
            break resp;
        }
        // A daemon in another mount namespace: send the tar after all.
        (body, dockerfile, writer, local) = match prepare_upload(&a, sent.clone(), false).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("{e}");
                return Err(Exit(1).into());
            }
        };
    };
    let mut failure: Option<String> = None;
    let mut id: Option<String> = None;
    let mut quiet_text = String::new();
    match resp {
        Err(e) => failure = Some(e.to_string()),
        Ok(resp) => {
            let mut lines = JsonLines::new(resp);
            let mut first = true;
            loop {
                let m = tokio::select! {
                    m = lines.next::<Value>() => m,
                    _ = tick.tick() => {
                        view.tick(sent.load(Ordering::Relaxed));
                        continue;
                    }
                };
                let m = match m {
                    None => break,
                    Some(Err(e)) => {
                        failure = Some(e.to_string());
                        break;
                    }
                    Some(Ok(m)) => m,
                };
                if first {
                    first = false;
                    match &in_place {
                        Some(dir) => view.context_in_place(dir),
                        None => view.context_sent(sent.load(Ordering::Relaxed)),
                    }
                }
                if let Some(msg) = m
                    .pointer("/errorDetail/message")
                    .and_then(Value::as_str)
                    .or_else(|| m["error"].as_str())
                {
                    failure = Some(msg.to_string());
                    break;
                }
                if let Some(s) = m["stream"].as_str() {
                    if a.quiet {
                        quiet_text.push_str(s);
                    }
                    view.stream(s);
                } else if let Some(i) = m.pointer("/aux/ID").and_then(Value::as_str) {
                    id = Some(i.to_string());
                } else {
                    view.status(&m);
                }
            }
        }
    }
    if let Some(w) = writer {
        let local = match w.join() {
            Ok(r) => r,
            Err(_) => Err(anyhow!("sending the build context failed")),
        };
        if let Err(e) = local {
            // A daemon that stopped reading (it already failed) breaks the pipe.
            if !is_broken_pipe(&e) || failure.is_none() {
                failure = Some(format!("error sending build context: {e:#}"));
            }
        }
    }
    if failure.is_none() && id.is_none() {
        failure = Some("the daemon ended the build without an image ID".into());
    }
    if let Some(msg) = failure {
        view.finish_err();
        eprintln!("{}", msg.trim_end());
        return Err(Exit(1).into());
    }
    let id = id.unwrap_or_default();
    view.finish_ok(&id);
    if a.quiet {
        if quiet_text.trim().is_empty() {
            println(&id);
        } else {
            super::print(&quiet_text);
        }
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("Failed to write image ID to file {f}"))?;
    }
    Ok(0)
}

pub async fn builder(client: &Client, cmd: BuilderCmd) -> Result<i32> {
    match cmd {
        BuilderCmd::Build(a) => build(client, a).await,
        BuilderCmd::Prune(a) => prune(client, a).await,
    }
}

pub async fn prune(client: &Client, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if let Some(k) = &a.keep_storage {
        // Sent in bytes, as the docker CLI sends it.
        q.push(("keep-storage", super::opts::ram_in_bytes(k)?.to_string()));
    }
    if let Some(f) = filters_json(&a.filter) {
        q.push(("filters", f));
    }
    let v: Value = client
        .post_json::<Value, ()>(&format!("/build/prune{}", query(&q)), None)
        .await?;
    let items = strings(&v["CachesDeleted"]);
    print_prune_report(
        &[("Deleted build cache objects", items)],
        v["SpaceReclaimed"].as_u64().unwrap_or(0),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use clap::Parser;

    fn parse(line: &str) -> BuildArgs {
        let argv: Vec<&str> = line.split_whitespace().collect();
        match Cli::try_parse_from(argv).unwrap().cmd {
            Some(Cmd::Build(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    fn q(a: &BuildArgs, df: Option<&str>) -> Vec<(String, String)> {
        build_query(a, df)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn flags_parse_like_docker() {
        let a = parse(
            "pier build -t a:1 --tag b -f sub/Dockerfile --build-arg X=1 --build-arg Y \
             --target stage --no-cache --label l=v -q --iidfile /tmp/id --network none \
             --platform linux/amd64 --pull --progress=plain --rm=false .",
        );
        assert_eq!(a.tag, vec!["a:1", "b"]);
        assert_eq!(a.file.as_deref(), Some("sub/Dockerfile"));
        assert_eq!(a.build_arg, vec!["X=1", "Y"]);
        assert!(a.no_cache && a.quiet && a.pull && !a.rm);
        assert_eq!(a.progress, "plain");
        assert_eq!(a.path, ".");
        let a = parse("pier build -");
        assert_eq!(a.path, "-");
        assert!(a.rm);
        assert_eq!(a.progress, "auto");
        let a = parse("pier build -f - .");
        assert_eq!(a.file.as_deref(), Some("-"));
        assert!(Cli::try_parse_from(["pier", "build", "--progress=fancy", "."]).is_err());
        assert!(Cli::try_parse_from(["pier", "build"]).is_err());
        for line in [
            "pier image build -t x .",
            "pier builder build .",
            "pier builder prune -a -f",
            "pier builder prune --filter until=24h --keep-storage 1g",
        ] {
            Cli::try_parse_from(line.split_whitespace()).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn query_carries_the_flags() {
        let a = parse(
            "pier build -t a:1 -t b --build-arg X=1 --label l=v --label k --target t \
             --no-cache --network host --pull -q .",
        );
        let got = q(&a, Some("Dockerfile"));
        let get = |k: &str| -> Vec<&str> {
            got.iter()
                .filter(|(kk, _)| kk == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("t"), vec!["a:1", "b"]);
        assert_eq!(get("dockerfile"), vec!["Dockerfile"]);
        assert_eq!(get("buildargs"), vec![r#"{"X":"1"}"#]);
        let labels: Value = serde_json::from_str(get("labels")[0]).unwrap();
        assert_eq!(labels, serde_json::json!({"l": "v", "k": ""}));
        assert_eq!(get("target"), vec!["t"]);
        assert_eq!(get("nocache"), vec!["1"]);
        assert_eq!(get("networkmode"), vec!["host"]);
        assert_eq!(get("pull"), vec!["1"]);
        assert_eq!(get("q"), vec!["1"]);
        let plain = parse("pier build .");
        let got = q(&plain, None);
        assert!(got.iter().all(|(k, _)| k == "rm"), "{got:?}");
    }

    #[test]
    fn build_args_from_the_environment() {
        let env = |k: &str| (k == "SET").then(|| "from-env".to_string());
        let v = build_args_json(
            &["A=1".into(), "B=".into(), "SET".into(), "UNSET".into()],
            env,
        );
        assert_eq!(
            v,
            serde_json::json!({"A": "1", "B": "", "SET": "from-env", "UNSET": null})
        );
    }
}
