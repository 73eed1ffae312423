//! `docker logs`: reads the json-file log the shim writes (see logread.rs
//! for the files and the tail).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::util::{channel_stream, parse_rfc3339, ByteStream};
use crate::{logread, Engine, Result};

/// Query of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Unix seconds (fractional), 0 = no bound.
    pub since: f64,
    pub until: f64,
    /// Last N lines; None = all.
    pub tail: Option<usize>,
}

#[derive(Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

/// Frames `payload` in Docker's multiplexed stream format.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[stream, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

fn render(line: &str, opts: &LogOptions, tty: bool) -> Option<Bytes> {
    let l: Line = serde_json::from_str(line).ok()?;
    let stream = if l.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !opts.stdout) || (stream == 2 && !opts.stderr) {
        return None;
    }
    if opts.since > 0.0 || opts.until > 0.0 {
        let t = parse_rfc3339(&l.time)?;
        let ts = t.unix_timestamp_nanos() as f64 / 1e9;
        if opts.since > 0.0 && ts < opts.since {
            return None;
        }
        if opts.until > 0.0 && ts > opts.until {
            return None;
        }
    }
    let text = if opts.timestamps {
        format!("{} {}", l.time, l.log)
    } else {
        l.log
    };
    Some(if tty {
        Bytes::from(text.into_bytes())
    } else {
        frame(stream, text.as_bytes())
    })
}

/// How long after its start a container's log is left to settle before a
/// `logs` call that does not follow reads it. Clients (docker-py's tests among
/// them) start a quick command and ask for its logs at once; Docker's slower
/// start path happens to give the command time to write, so they expect its
/// output. Waiting until the command exits or this much time has passed since
/// its start, whichever comes first, gives them the same answer at a bounded
/// cost, only to calls made right after a start.
const FRESH_START: Duration = Duration::from_millis(25);

impl Engine {
    async fn let_fresh_start_settle(&self, id: &str, started_at: &str) {
        let Some(t) = parse_rfc3339(started_at) else {
            return;
        };
        let age = (time::OffsetDateTime::now_utc() - t).max(time::Duration::ZERO);
        let Some(left) = FRESH_START.checked_sub(age.unsigned_abs()) else {
            return;
        };
        let mut rx = self.exits.subscribe();
        if !self.is_running(id) {
            return;
        }
        let _ = tokio::time::timeout(left, crate::wait::wait_exit(&mut rx, id)).await;
    }

    /// Makes what the container wrote before now reach its log file (right
    /// after `start`, a quick command's output may still be in the pipe).
    async fn sync_output(&self, id: &str) {
        if let Ok(shim) = self.shim_of(id) {
            let _ = shim.sync_output().await;
        }
    }

    /// Returns whether the container has a TTY (raw stream) and the stream.
    pub fn container_logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogOptions,
    ) -> Result<(bool, ByteStream)> {
        let rec = self.find_container(key)?;
        let driver = crate::logconf::resolved_of(rec.host_config.log_config.as_ref()).driver;
        if driver == crate::logconf::Driver::None || rec.log_path.is_empty() {
            return Err(crate::EngineError::not_implemented(
                "configured logging driver does not support reading",
            ));
        }
        let tty = rec.tty();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        let path = PathBuf::from(&rec.log_path);
        let id = rec.id.clone();
        tokio::spawn(async move {
            if rec.state.running() {
                if !opts.follow {
                    this.let_fresh_start_settle(&id, &rec.state.started_at)
                        .await;
                }
                this.sync_output(&id).await;
            }
            // File reads block: run them off the async workers.
            let _ = tokio::task::spawn_blocking(move || {
                let r = Reader {
                    engine: &this,
                    id: &id,
                    path: &path,
                    opts: &opts,
                    tty,
                    tx: &tx,
                };
                if let Err(e) = r.run() {
                    let _ = tx.blocking_send(Err(e));
                }
            })
            .await;
        });
        Ok((tty, channel_stream(rx)))
    }

    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.meta
            .container::<crate::ContainerRecord>(id)
            .ok()
            .flatten()
            .is_some_and(|r| r.state.running())
    }
}

type Tx = tokio::sync::mpsc::Sender<std::io::Result<Bytes>>;

/// One `logs` call reading the files (on a blocking thread).
struct Reader<'a> {
    engine: &'a Engine,
    id: &'a str,
    path: &'a Path,
    opts: &'a LogOptions,
    tty: bool,
    tx: &'a Tx,
}

/// How often a follower looks for new lines.
const POLL: Duration = Duration::from_millis(50);

impl Reader<'_> {
    /// Sends a line; false once the client is gone.
    fn send(&self, line: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(line) else {
            return true;
        };
        match render(text, self.opts, self.tty) {
            Some(b) => self.tx.blocking_send(Ok(b)).is_ok(),
            None => true,
        }
    }

    fn open_live(&self) -> std::io::Result<Option<File>> {
        loop {
            match File::open(self.path) {
                Ok(f) => return Ok(Some(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Not started yet: wait for the shim to create it.
                    if !self.opts.follow || !self.engine.is_running(self.id) || self.tx.is_closed()
                    {
                        return Ok(None);
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", self.path.display()),
                    ))
                }
            }
        }
    }

    fn run(&self) -> std::io::Result<()> {
        let rotated = logread::rotated_files(self.path);
        let Some(mut live) = self.open_live()? else {
            return Ok(());
        };
        let end = live.metadata()?.len();
        let mut pos = match self.opts.tail {
            Some(n) => {
                let (lines, stop) = logread::tail(&live, end, &rotated, n)?;
                for l in &lines {
                    if !self.send(l) {
                        return Ok(());
                    }
                }
                stop
            }
            None => {
                if !logread::read_rotated(&rotated, |l| self.send(&l))? {
                    return Ok(());
                }
                0
            }
        };
        // The live file from `pos`, then (following) what gets written.
        let mut partial = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_pass = false;
        let mut drained = false;
        loop {
            let n = live.read_at(&mut buf, pos)?;
            if n > 0 {
                pos += n as u64;
                let mut data = &buf[..n];
                while let Some(i) = data.iter().position(|b| *b == b'\n') {
                    let (line, rest) = data.split_at(i + 1);
                    let ok = if partial.is_empty() {
                        self.send(line)
                    } else {
                        partial.extend_from_slice(line);
                        let l = std::mem::take(&mut partial);
                        self.send(&l)
                    };
                    if !ok {
                        return Ok(());
                    }
                    data = rest;
                }
                partial.extend_from_slice(data);
                continue;
            }
            if !self.opts.follow || last_pass {
                return Ok(());
            }
            if !logread::same_file(&live, self.path) {
                if !drained {
                    // Rotated: first read what the shim wrote before renaming.
                    drained = true;
                    continue;
                }
                match File::open(self.path) {
                    Ok(f) => {
                        // Rotated more than once since the last look: the
                        // files between the one read and the new one first.
                        for mid in logread::between(self.path, &live, &f).unwrap_or_default() {
                            if !logread::read_rotated_file(mid, |l| self.send(&l))? {
                                return Ok(());
                            }
                        }
                        live = f;
                        pos = 0;
                        partial.clear();
                        drained = false;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            } else if live.metadata()?.len() < pos {
                // Truncated in place (max-file=1).
                pos = 0;
                partial.clear();
                continue;
            }
            if !self.engine.is_running(self.id) {
                // One more pass: the shim may have written the last lines.
                std::thread::sleep(Duration::from_millis(20));
                last_pass = true;
                continue;
            }
            if self.tx.is_closed() {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_json_file_lines() {
        let opts = LogOptions {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        let out = r#"{"log":"hi\n","stream":"stdout","time":"2026-11-23T10:00:00.5Z"}"#;
        let err = r#"{"log":"oops\n","stream":"stderr","time":"2026-11-23T10:00:00.5Z"}"#;
        assert_eq!(&render(out, &opts, true).unwrap()[..], b"hi\n");
        assert_eq!(
            &render(out, &opts, false).unwrap()[..],
            b"\x01\0\0\0\0\0\0\x03hi\n"
        );
        assert!(render(err, &opts, false).is_none());
        let ts = LogOptions {
            stdout: true,
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            &render(out, &ts, true).unwrap()[..],
            b"2026-11-23T10:00:00.5Z hi\n"
        );
    }
}
