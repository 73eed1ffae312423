//! The shim's control protocol, shared by the shim and its client.
//!
//! One request per connection on `<state_dir>/shim.sock`: the client sends one
//! JSON line, the shim answers one JSON line; after a successful `attach` the
//! connection carries raw bytes both ways.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Control socket file name inside the state dir.
pub const SOCKET_NAME: &str = "shim.sock";
/// Exit record file name inside the state dir.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's own stderr log inside the state dir.
pub const SHIM_LOG: &str = "shim.log";

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

pub fn exit_file_path(state_dir: &Path) -> PathBuf {
    state_dir.join(EXIT_FILE)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container.
    Start,
    /// Stream the stdio of the container (exec = None) or of an exec.
    Attach {
        #[serde(default)]
        exec: Option<String>,
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Block until the process exits; answers with [`ExitStatus`].
    Wait {
        #[serde(default)]
        exec: Option<String>,
    },
    Kill {
        signal: i32,
    },
    Resize {
        #[serde(default)]
        exec: Option<String>,
        rows: u16,
        cols: u16,
    },
    Pause,
    Resume,
    /// Answers with [`StateReply`].
    State,
    /// Prepare an exec; started by `exec_start`.
    Exec {
        id: String,
        process: Box<oci_spec::runtime::Process>,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        stdin: bool,
    },
    ExecStart {
        id: String,
    },
    /// Clean up and exit (kills the container first if it still runs).
    Shutdown,
    /// Reopen the log file at its path (CRI's ReopenContainerLog, after the
    /// kubelet renamed the old one).
    ReopenLog,
}

/// The generic answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a failed start/exec_start: Docker's code (127 not found, 126 not
    /// executable, 128 other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            ok: true,
            ..Default::default()
        }
    }
    pub fn ok_pid(pid: i32) -> Reply {
        Reply {
            ok: true,
            pid: Some(pid),
            ..Default::default()
        }
    }
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// How a process ended; also the content of `exit.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal when killed by a signal.
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateReply {
    pub status: Status,
    /// The container init's pid on the host (0 if it never ran).
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub oom_killed: bool,
}

/// One line of Docker's json-file log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// How the shim rotates a container's log file, as Docker's json-file and
/// local drivers do: when the file has reached `max_size` bytes it becomes
/// `<file>.1` (older ones shift up, the oldest beyond `max_file` is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogRotation {
    /// 0 = never rotate.
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_file: u32,
    /// Rotated files are gzip'd (`<file>.1.gz`).
    pub compress: bool,
    /// Lines in the kubelet's CRI format (`<RFC3339Nano> <stream> <P|F> <text>`)
    /// instead of json-file's JSON.
    pub cri_format: bool,
}

impl LogRotation {
    /// Command-line arguments of pier-shim carrying this rotation.
    pub fn shim_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.max_size > 0 {
            v.push("--log-max-size".to_string());
            v.push(self.max_size.to_string());
            v.push("--log-max-file".to_string());
            v.push(self.max_file.max(1).to_string());
            if self.compress {
                v.push("--log-compress".to_string());
            }
        }
        if self.cri_format {
            v.push("--log-format-cri".to_string());
        }
        v
    }
}

/// Docker's stdio stream ids in multiplexed frames.
pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;

/// The 8-byte header of a multiplexed frame: `[stream, 0, 0, 0, len as u32 BE]`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Formats a time as RFC 3339 UTC with nanoseconds, like Go's RFC3339Nano but with
/// all nine digits kept (log lines of one second then sort as text).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    // Only years past 9999 fail to format; no clock says that.
    time::OffsetDateTime::from(t).format(f).unwrap_or_default()
}

/// Reads `<state_dir>/exit.json` if the shim wrote it.
pub fn read_exit_file(state_dir: &Path) -> std::io::Result<Option<ExitStatus>> {
    let p = exit_file_path(state_dir);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", p.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", p.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::new(1_795_428_000, 123_456_789);
        assert_eq!(rfc3339_nano(t), "2026-11-23T10:00:00.123456789Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339_nano(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn request_wire_format() {
        let r: Request = serde_json::from_str(r#"{"op":"start"}"#).unwrap();
        assert_eq!(r, Request::Start);
        let r: Request = serde_json::from_str(
            r#"{"op":"attach","exec":null,"stdin":true,"stdout":true,"stderr":false}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::Attach {
                exec: None,
                stdin: true,
                stdout: true,
                stderr: false
            }
        );
        let s = serde_json::to_string(&Request::Resize {
            exec: Some("e".into()),
            rows: 2,
            cols: 3,
        })
        .unwrap();
        assert_eq!(s, r#"{"op":"resize","exec":"e","rows":2,"cols":3}"#);
        let s = serde_json::to_string(&Request::ExecStart { id: "x".into() }).unwrap();
        assert_eq!(s, r#"{"op":"exec_start","id":"x"}"#);
        assert_eq!(
            serde_json::to_string(&Reply::ok_pid(5)).unwrap(),
            r#"{"ok":true,"pid":5}"#
        );
        assert_eq!(frame_header(2, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
