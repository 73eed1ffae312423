//! `docker logs`: reads the json-file log the shim writes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

use crate::util::{channel_stream, parse_rfc3339, ByteStream};
use crate::{Engine, Result};

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
        let tty = rec.tty();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        let path = rec.log_path.clone();
        let id = rec.id.clone();
        tokio::spawn(async move {
            if rec.state.running() {
                if !opts.follow {
                    this.let_fresh_start_settle(&id, &rec.state.started_at)
                        .await;
                }
                this.sync_output(&id).await;
            }
            let file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !opts.follow {
                        return;
                    }
                    // Not started yet: wait for the shim to create it.
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if let Ok(f) = tokio::fs::File::open(&path).await {
                            break f;
                        }
                        if !this.is_running(&id) {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut reader = BufReader::new(file);
            if let Some(n) = opts.tail {
                let mut all = Vec::new();
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                    if line.ends_with('\n') {
                        all.push(std::mem::take(&mut line));
                    } else {
                        break;
                    }
                }
                let skip = all.len().saturating_sub(n);
                for l in &all[skip..] {
                    if let Some(b) = render(l, &opts, tty) {
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                }
                // Continue after what was read (a partial line is re-read).
                let consumed: usize = all.iter().map(|l| l.len()).sum();
                let _ = reader.seek(std::io::SeekFrom::Start(consumed as u64)).await;
            }
            let mut line = String::new();
            loop {
                match reader.read_line(&mut line).await {
                    Ok(0) => {
                        if !opts.follow {
                            return;
                        }
                        if !this.is_running(&id) {
                            // One more pass: the shim may have written the last lines.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let mut rest = String::new();
                            while reader.read_line(&mut rest).await.unwrap_or(0) > 0 {}
                            line.push_str(&rest);
                            for l in line.split_inclusive('\n') {
                                if let Some(b) = render(l, &opts, tty) {
                                    let _ = tx.send(Ok(b)).await;
                                }
                            }
                            return;
                        }
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(_) => {
                        if !line.ends_with('\n') {
                            continue; // partial line: wait for the rest
                        }
                        if let Some(b) = render(&line, &opts, tty) {
                            if tx.send(Ok(b)).await.is_err() {
                                return;
                            }
                        }
                        line.clear();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
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
