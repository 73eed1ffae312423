//! `pier pull`, `push`, `login`, `logout`, and the progress display of the
//! daemon's JSON message streams.

use super::container::split_repo_tag;
use super::{println, stream, Exit};
use anyhow::{Context, Result};
use base64::Engine as _;
use clap::Args;
use http::Method;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pier_client::{body_empty, query, Client, JsonLines};
use pier_registry::{AuthConfig, DockerConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

const DEFAULT_REGISTRY: &str = "https://index.docker.io/v1/";

/// The registry part of an image name (`localhost:5000/app` -> `localhost:5000`).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => DEFAULT_REGISTRY.to_string(),
    }
}

/// Docker's normalized name: `busybox` -> `docker.io/library/busybox`.
pub fn normalized(image: &str) -> String {
    if registry_of(image) != DEFAULT_REGISTRY {
        return image.to_string();
    }
    if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

/// The registry host that a login server or an image's registry names
/// (`https://index.docker.io/v1/` -> `docker.io`, `http://h:5000/x` -> `h:5000`).
fn domain_of(server: &str) -> String {
    if server == DEFAULT_REGISTRY {
        return "docker.io".into();
    }
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s).to_string()
}

/// The docker CLI's config (`$DOCKER_CONFIG` or `~/.docker`), shared with it.
fn docker_config() -> Result<DockerConfig> {
    Ok(DockerConfig::load(&pier_registry::default_config_dir())?)
}

/// The `X-Registry-Auth` header for `server`: the stored login, through a
/// credential helper when one is configured; `{}` (anonymous) otherwise.
pub fn registry_auth(server: &str) -> String {
    let domain = domain_of(server);
    match docker_config().and_then(|c| Ok(c.credentials(&domain)?)) {
        Ok(Some(a)) => a.to_header(),
        Ok(None) => base64::engine::general_purpose::URL_SAFE.encode("{}"),
        Err(e) => {
            eprintln!("WARNING: no credentials for {domain}: {e:#}");
            base64::engine::general_purpose::URL_SAFE.encode("{}")
        }
    }
}

/// Shows a JSON message stream: bars per layer on a terminal, plain lines
/// otherwise (progress ticks skipped, as Docker's non-terminal output does).
/// Returns 1 if the stream carried an error.
pub async fn show_progress(
    resp: pier_client::Response,
    quiet: bool,
    to_stderr: bool,
) -> Result<i32> {
    let tty = if to_stderr {
        rustix::termios::isatty(std::io::stderr())
    } else {
        stream::stdout_is_tty()
    };
    let mut lines = JsonLines::new(resp);
    let multi = (tty && !quiet).then(MultiProgress::new);
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let bar_style =
        ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let text_style = ProgressStyle::with_template("{prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let emit = |s: &str| {
        if to_stderr {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{s}");
        } else {
            println(s);
        }
    };
    let mut code = 0;
    while let Some(m) = lines.next::<Value>().await {
        let m = m?;
        if let Some(e) = m["error"]
            .as_str()
            .or_else(|| m.pointer("/errorDetail/message").and_then(Value::as_str))
        {
            if let Some(mp) = &multi {
                let _ = mp.clear();
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{e}");
            code = 1;
            continue;
        }
        if quiet {
            continue;
        }
        if let Some(s) = m["stream"].as_str() {
            match &multi {
                Some(mp) => {
                    let _ = mp.println(s.trim_end_matches('\n'));
                }
                None => emit(s.trim_end_matches('\n')),
            }
            continue;
        }
        let status = m["status"].as_str().unwrap_or("");
        if status.is_empty() {
            continue;
        }
        let id = m["id"].as_str().unwrap_or("");
        let total = m.pointer("/progressDetail/total").and_then(Value::as_u64);
        let current = m.pointer("/progressDetail/current").and_then(Value::as_u64);
        match &multi {
            Some(mp) if !id.is_empty() => {
                let bar = bars.entry(id.to_string()).or_insert_with(|| {
                    let b = mp.add(ProgressBar::new(0));
                    b.set_style(text_style.clone());
                    b.set_prefix(id.to_string());
                    b
                });
                match (current, total) {
                    (Some(c), Some(t)) if t > 0 => {
                        bar.set_style(bar_style.clone());
                        bar.set_length(t);
                        bar.set_position(c);
                    }
                    _ => bar.set_style(text_style.clone()),
                }
                bar.set_message(status.to_string());
            }
            Some(mp) => {
                let _ = mp.println(status);
            }
            None => {
                if total.is_some()
                    || m.get("progress")
                        .is_some_and(|p| p.as_str().is_some_and(|s| !s.is_empty()))
                {
                    continue;
                }
                if id.is_empty() {
                    emit(status);
                } else {
                    emit(&format!("{id}: {status}"));
                }
            }
        }
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(code)
}

/// Pulls `image` (used by `pull`, and by `run`/`create` when it is missing).
pub async fn pull_image(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<()> {
    let (repo, tag) = split_repo_tag(image);
    let mut q = vec![("fromImage", repo)];
    if let Some(d) = tag.strip_prefix('@') {
        q[0].1 = format!("{}@{d}", q[0].1);
    } else {
        q.push((
            "tag",
            if tag.is_empty() {
                "latest".to_string()
            } else {
                tag
            },
        ));
    }
    if let Some(p) = platform {
        q.push(("platform", p.to_string()));
    }
    let auth = registry_auth(&registry_of(image));
    let resp = client
        .request_with(
            Method::POST,
            &format!("/images/create{}", query(&q)),
            body_empty(),
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    if show_progress(resp, quiet, to_stderr).await? != 0 {
        return Err(Exit(1).into());
    }
    Ok(())
}

pub async fn pull(client: &Client, a: PullArgs) -> Result<i32> {
    let (_, tag) = split_repo_tag(&a.image);
    let mut image = a.image.clone();
    if tag.is_empty() && !a.all_tags {
        if !a.quiet {
            println("Using default tag: latest");
        }
        image = format!("{image}:latest");
    }
    pull_image(client, &image, a.platform.as_deref(), a.quiet, false).await?;
    println(&normalized(&image));
    Ok(0)
}

pub async fn push(client: &Client, a: PushArgs) -> Result<i32> {
    let (repo, tag) = split_repo_tag(&a.image);
    if tag.is_empty() && !a.all_tags && !a.quiet {
        println("Using default tag: latest");
    }
    let mut q = Vec::new();
    if !tag.is_empty() {
        q.push(("tag", tag));
    } else if !a.all_tags {
        q.push(("tag", "latest".to_string()));
    }
    let auth = registry_auth(&registry_of(&repo));
    let resp = client
        .request_with(
            Method::POST,
            &format!("/images/{repo}/push{}", query(&q)),
            body_empty(),
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    let code = show_progress(resp, a.quiet, false).await?;
    if code == 0 && a.quiet {
        println(&a.image);
    }
    Ok(code)
}

pub async fn login(conn: &pier_client::ConnectOptions, a: LoginArgs) -> Result<i32> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
    let username = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        eprint!("Password: ");
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    };
    let client = pier_client::connect(conn).await?;
    let body = json!({"username": username, "password": password, "serveraddress": server});
    let v: Value = client.post_json("/auth", Some(&body)).await?;
    let mut login = AuthConfig::basic(&username, &password);
    login.serveraddress = server.clone();
    if let Some(t) = v["IdentityToken"].as_str().filter(|t| !t.is_empty()) {
        login.identitytoken = t.to_string();
    }
    let mut cfg = docker_config()?;
    cfg.store(&domain_of(&server), &login)
        .with_context(|| format!("storing the login in {}", cfg.path().display()))?;
    println(v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

pub async fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| DEFAULT_REGISTRY.to_string());
    let mut cfg = docker_config()?;
    let removed = cfg
        .erase(&domain_of(&server))
        .with_context(|| format!("removing the login from {}", cfg.path().display()))?;
    if !removed {
        println(&format!("Not logged in to {server}"));
        return Ok(0);
    }
    println(&format!("Removing login credentials for {server}"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), DEFAULT_REGISTRY);
        assert_eq!(registry_of("library/busybox"), DEFAULT_REGISTRY);
        assert_eq!(registry_of("localhost:5000/busybox"), "localhost:5000");
        assert_eq!(registry_of("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(
            normalized("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalized("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalized("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(domain_of(DEFAULT_REGISTRY), "docker.io");
        assert_eq!(domain_of("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(domain_of("https://reg.example/v2/"), "reg.example");
    }

    #[test]
    // SAFETY (the `unsafe` env calls): std serialises its own environment
    // access, and no test of this binary calls into C code that reads it.
    #[allow(unsafe_code)]
    fn auth_header_is_url_safe_json() {
        unsafe {
            std::env::set_var(
                "DOCKER_CONFIG",
                std::env::temp_dir().join("pier-no-such-config-dir"),
            )
        };
        let h = registry_auth("localhost:5000");
        let raw = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        assert_eq!(raw, b"{}");
    }
}
