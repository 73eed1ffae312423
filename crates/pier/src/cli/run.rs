//! `pier run`, `pier start`, `pier attach`: the verbs that stream a container's stdio.

use super::create::{create_container, CreateArgs};
use super::stream::{self, RawGuard, StreamEnd};
use super::{println, report_error, start_error_code, Exit};
use anyhow::Result;
use clap::{ArgAction, Args};
use pier_client::{read_body, Client, ClientError, Hijacked};
use serde_json::Value;

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool) -> String {
    format!(
        "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
        stdin as u8, stdout as u8, stderr as u8
    )
}

/// Reads a `/wait` answer: the exit code, or the daemon's error.
async fn exit_status(resp: pier_client::Response) -> Result<i32> {
    let body = read_body(resp).await?;
    let v: Value = serde_json::from_slice(&body)?;
    if let Some(msg) = v
        .pointer("/Error/Message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        eprintln!("{msg}");
        return Err(Exit(125).into());
    }
    Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

/// Registers a wait and returns once the daemon has it (response headers in).
async fn register_wait(
    client: &Client,
    id: &str,
    condition: &str,
) -> Result<pier_client::Response, ClientError> {
    client
        .post::<()>(
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
        )
        .await
}

/// Watches the TTY size and forwards signals, as the streams need.
struct Helpers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Helpers {
    async fn start(client: &Client, prefix: &str, id: &str, tty: bool, sig_proxy: bool) -> Helpers {
        let mut tasks = Vec::new();
        if tty && stream::stdout_is_tty() {
            stream::resize(client, prefix).await;
            tasks.push(stream::spawn_resize_watch(client, prefix.to_string()));
        }
        if sig_proxy && !tty {
            tasks.push(stream::spawn_sig_proxy(client, id.to_string()));
        }
        Helpers { tasks }
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn detach_keys(spec: &Option<String>, verb: &str) -> Result<Option<Vec<u8>>> {
    match spec {
        None => Ok(None),
        Some(s) => match stream::parse_detach_keys(s) {
            Ok(k) => Ok(Some(k)),
            Err(e) => {
                report_error(verb, &e.to_string());
                Err(Exit(125).into())
            }
        },
    }
}

/// `pier run`: create → (pull when missing) → attach → wait → start → stream → exit code.
pub async fn run(client: &Client, a: RunArgs) -> Result<i32> {
    let mut req = match a.create.build(a.detach) {
        Ok(r) => r,
        Err(e) => {
            report_error("run", &e.to_string());
            return Err(Exit(125).into());
        }
    };
    let keys = detach_keys(&a.detach_keys, "run")?;
    let body = &req.body;
    let (stdin, stdout, stderr) = (
        body.attach_stdin.unwrap_or(false),
        body.attach_stdout.unwrap_or(false),
        body.attach_stderr.unwrap_or(false),
    );
    let tty = a.create.tty;
    let auto_remove = a.create.rm;
    if !a.detach && stdin && tty && !stream::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Err(Exit(1).into());
    }
    if tty && let (Some((h, w)), Some(hc)) = (stream::window_size(), req.body.host_config.as_mut())
    {
        hc.console_size = Some(vec![h as usize, w as usize]);
    }
    let id = match create_container(client, &a.create, &req).await {
        Ok(id) => id,
        Err(e) => {
            report_error("run", &e.to_string());
            return Err(Exit(125).into());
        }
    };
    let start_path = format!("/containers/{id}/start");

    if a.detach {
        if let Err(e) = client.post_unit(&start_path).await {
            let msg = e.to_string();
            report_error("run", &msg);
            return Err(Exit(start_error_code(&msg)).into());
        }
        println(&id);
        return Ok(0);
    }

    // Attach before start so no output is lost, and register the wait before
    // start so a fast exit is not missed; both at once to save a round trip.
    let attaching = stdin || stdout || stderr;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let (hijack, wait) = tokio::join!(
        async {
            if attaching {
                Some(
                    client
                        .hijack("POST", &attach_path(&id, stdin, stdout, stderr), None)
                        .await,
                )
            } else {
                None
            }
        },
        register_wait(client, &id, condition)
    );
    let hijack: Option<Hijacked> = match hijack.transpose() {
        Ok(h) => h,
        Err(e) => {
            report_error("run", &e.to_string());
            return Err(Exit(125).into());
        }
    };
    let wait = match wait {
        Ok(w) => w,
        Err(e) => {
            report_error("run", &e.to_string());
            return Err(Exit(125).into());
        }
    };

    let raw = if tty && stdin && stream::stdin_is_tty() {
        Some(RawGuard::new()?)
    } else {
        None
    };
    if let Err(e) = client.post_unit(&start_path).await {
        drop(raw);
        let msg = e.to_string();
        report_error("run", &msg);
        if auto_remove {
            // Docker waits for the removal; bounded so a daemon that never
            // reports it cannot hang us.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read_body(wait)).await;
        }
        return Err(Exit(start_error_code(&msg)).into());
    }
    let helpers = Helpers::start(client, &format!("/containers/{id}"), &id, tty, a.sig_proxy).await;
    let end = match hijack {
        Some(h) => stream::pump(h, tty, stdin, keys).await,
        None => Ok(StreamEnd::Eof),
    };
    drop(helpers);
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    exit_status(wait).await
}

/// `pier start`: starts containers, or with `-a` streams one and returns its exit code.
pub async fn start(client: &Client, a: StartArgs) -> Result<i32> {
    if !a.attach && !a.interactive {
        let mut failed = Vec::new();
        for c in &a.containers {
            match client.post_unit(&format!("/containers/{c}/start")).await {
                Ok(()) => println(c),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(c.clone());
                }
            }
        }
        if !failed.is_empty() {
            eprintln!("Error: failed to start containers: {}", failed.join(", "));
            return Ok(1);
        }
        return Ok(0);
    }
    if a.containers.len() > 1 {
        eprintln!("you cannot start and attach multiple containers at once");
        return Ok(1);
    }
    let keys = detach_keys(&a.detach_keys, "start")?;
    let name = &a.containers[0];
    let info: Value = client.get_json(&format!("/containers/{name}/json")).await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let auto_remove = info
        .pointer("/HostConfig/AutoRemove")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = a.interactive && open_stdin;
    let path = attach_path(&id, stdin, true, true);
    let (hijack, wait) = tokio::join!(
        client.hijack("POST", &path, None),
        register_wait(
            client,
            &id,
            if auto_remove { "removed" } else { "next-exit" }
        )
    );
    let (hijack, wait) = (hijack?, wait?);
    let raw = if tty && stdin && stream::stdin_is_tty() {
        Some(RawGuard::new()?)
    } else {
        None
    };
    if let Err(e) = client.post_unit(&format!("/containers/{id}/start")).await {
        drop(raw);
        let msg = e.to_string();
        eprintln!("{msg}");
        return Err(Exit(start_error_code(&msg)).into());
    }
    let helpers = Helpers::start(client, &format!("/containers/{id}"), &id, tty, true).await;
    let end = stream::pump(hijack, tty, stdin, keys).await;
    drop(helpers);
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    exit_status(wait).await
}

/// `pier attach`: streams a running container until it exits or we detach.
pub async fn attach(client: &Client, a: AttachArgs) -> Result<i32> {
    let keys = detach_keys(&a.detach_keys, "attach")?;
    let info: Value = client
        .get_json(&format!("/containers/{}/json", a.container))
        .await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    if !info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        eprintln!("You cannot attach to a stopped container, start it first");
        return Ok(1);
    }
    if info
        .pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        eprintln!("You cannot attach to a paused container, unpause it first");
        return Ok(1);
    }
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stdin = !a.no_stdin
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if stdin && tty && !stream::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let path = attach_path(&id, stdin, true, true);
    let (hijack, wait) = tokio::join!(
        client.hijack("POST", &path, None),
        register_wait(client, &id, "not-running")
    );
    let (hijack, wait) = (hijack?, wait?);
    let raw = if tty && stdin {
        Some(RawGuard::new()?)
    } else {
        None
    };
    let helpers = Helpers::start(client, &format!("/containers/{id}"), &id, tty, a.sig_proxy).await;
    let end = stream::pump(hijack, tty, stdin, keys).await;
    drop(helpers);
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    exit_status(wait).await
}
