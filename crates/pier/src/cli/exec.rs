//! `pier exec`.

use super::stream::{self, RawGuard, StreamEnd};
use super::{opts, report_error, Exit};
use anyhow::Result;
use clap::Args;
use pier_client::Client;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    pub container: String,
    /// COMMAND [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub async fn exec(client: &Client, a: ExecArgs) -> Result<i32> {
    let keys = match &a.detach_keys {
        Some(k) => match stream::parse_detach_keys(k) {
            Ok(k) => Some(k),
            Err(e) => {
                report_error("exec", &e.to_string());
                return Err(Exit(125).into());
            }
        },
        None => None,
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(opts::parse_kv_file(f, true)?);
    }
    for e in &a.env {
        env.push(opts::env_value(e)?);
    }
    let stdin = a.interactive && !a.detach;
    if stdin && a.tty && !stream::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let mut body = json!({
        "AttachStdin": stdin,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Cmd": a.command,
        "Privileged": a.privileged,
    });
    if !env.is_empty() {
        body["Env"] = json!(env);
    }
    if let Some(u) = &a.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &a.workdir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(k) = &a.detach_keys {
        body["DetachKeys"] = json!(k);
    }
    let size = if a.tty { stream::window_size() } else { None };
    if let Some((h, w)) = size {
        body["ConsoleSize"] = json!([h, w]);
    }
    let created: Value = client
        .post_json(&format!("/containers/{}/exec", a.container), Some(&body))
        .await?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    let mut start = json!({"Detach": a.detach, "Tty": a.tty});
    if let Some((h, w)) = size {
        start["ConsoleSize"] = json!([h, w]);
    }
    if a.detach {
        let resp = client
            .post(&format!("/exec/{id}/start"), Some(&start))
            .await?;
        pier_client::read_body(resp).await?;
        return Ok(0);
    }
    let hijack = match client
        .hijack(
            "POST",
            &format!("/exec/{id}/start"),
            Some(serde_json::to_vec(&start)?),
        )
        .await
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            let code = exec_exit_code(client, &id)
                .await
                .filter(|c| *c != 0)
                .unwrap_or(126);
            return Err(Exit(code).into());
        }
    };
    let raw = if a.tty && stdin {
        Some(RawGuard::new()?)
    } else {
        None
    };
    let mut tasks = Vec::new();
    if a.tty && stream::stdout_is_tty() {
        stream::resize(client, &format!("/exec/{id}")).await;
        tasks.push(stream::spawn_resize_watch(client, format!("/exec/{id}")));
    }
    let end = stream::pump(hijack, a.tty, stdin, keys).await;
    for t in tasks {
        t.abort();
    }
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    Ok(exec_exit_code(client, &id).await.unwrap_or(0))
}

async fn exec_exit_code(client: &Client, id: &str) -> Option<i32> {
    let v: Value = client.get_json(&format!("/exec/{id}/json")).await.ok()?;
    v["ExitCode"].as_i64().map(|c| c as i32)
}
