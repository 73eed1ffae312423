//! Running one plugin binary: config on stdin, `CNI_*` in the environment,
//! the answer on stdout. Its stdout is read only up to a limit and the whole
//! run has a deadline; past either the plugin's process group is killed, so
//! an `iptables` it started goes too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{CniError, Result};

/// Stderr kept for an error message.
const STDERR_LIMIT: u64 = 64 << 10;

/// The commands of the spec that Pier sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }
}

/// Who runs, for error messages.
pub(crate) struct Who<'a> {
    pub network: &'a str,
    pub plugin: &'a str,
    pub command: Command,
}

impl Who<'_> {
    fn bad_output(&self, msg: String) -> CniError {
        CniError::BadOutput {
            network: self.network.to_string(),
            plugin: self.plugin.to_string(),
            command: self.command.as_str(),
            msg,
        }
    }
}

pub(crate) struct Limits {
    pub timeout: Duration,
    pub stdout: usize,
}

/// The first `dirs` entry holding an executable `name`.
pub(crate) fn find_plugin(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|d| d.join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The error object of the spec.
#[derive(Deserialize)]
struct PluginError {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// Runs `path` and returns its stdout when it exits 0.
pub(crate) async fn run(
    who: &Who<'_>,
    path: &Path,
    env: &[(&str, String)],
    stdin: Vec<u8>,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let mut cmd = tokio::process::Command::new(path);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| CniError::Io {
        what: "run CNI plugin",
        path: path.to_path_buf(),
        source: e,
    })?;
    let pgid = child.id();
    let mut input = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdout_limit = limits.stdout;
    let work = async {
        let write = async {
            if let Some(mut w) = input.take() {
                // A plugin may exit without reading its config: not our error.
                let _ = w.write_all(&stdin).await;
            }
        };
        let read_out = async {
            let out = read_bounded(stdout, stdout_limit as u64 + 1).await;
            // Killed at once: blocked on a full pipe, it would never exit.
            if out.len() > stdout_limit {
                kill_group(pgid);
            }
            out
        };
        let (_, out, err) = tokio::join!(write, read_out, read_bounded(stderr, STDERR_LIMIT));
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(limits.timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(pgid);
            return Err(CniError::Timeout {
                network: who.network.to_string(),
                plugin: who.plugin.to_string(),
                command: who.command.as_str(),
                secs: limits.timeout.as_secs(),
            });
        }
    };
    let status = status.map_err(|e| CniError::Io {
        what: "wait for CNI plugin",
        path: path.to_path_buf(),
        source: e,
    })?;
    if out.len() > stdout_limit {
        return Err(who.bad_output(format!("output exceeds {stdout_limit} bytes")));
    }
    let stderr_text = String::from_utf8_lossy(&err).trim().to_string();
    if status.success() {
        if !stderr_text.is_empty() {
            tracing::debug!(
                "CNI plugin {} {} for {}: {stderr_text}",
                who.plugin,
                who.command.as_str(),
                who.network
            );
        }
        return Ok(out);
    }
    // As libcni: the error object on stdout, else what stderr said.
    let (code, msg, details) = match serde_json::from_slice::<PluginError>(&out) {
        Ok(e) if !e.msg.is_empty() || e.code != 0 => (e.code, e.msg, e.details),
        _ if !out.is_empty() => (
            0,
            format!(
                "{status}, and its output is no error object: {}",
                String::from_utf8_lossy(&out).trim()
            ),
            stderr_text,
        ),
        _ if !stderr_text.is_empty() => (0, stderr_text, String::new()),
        _ => (0, format!("{status} with no error message"), String::new()),
    };
    Err(CniError::Plugin {
        network: who.network.to_string(),
        plugin: who.plugin.to_string(),
        command: who.command.as_str(),
        code,
        msg,
        details,
    })
}

async fn read_bounded(r: Option<impl AsyncRead + Unpin>, limit: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.take(limit).read_to_end(&mut buf).await;
    }
    buf
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
