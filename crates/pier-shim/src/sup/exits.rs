//! Exit bookkeeping: reaping children, waiting for their output to drain,
//! recording results and answering those who wait for them.

use std::io::Write;
use std::time::{Instant, SystemTime};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use pier_runtime::proto::{rfc3339_nano, ExitStatus, Status};

use super::conns::write_line;
use super::{Conn, ConnState, Key, Sup, DRAIN_GRACE};
use crate::lc;

impl Sup {
    pub(super) fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    let (pid, code) = match ws {
                        WaitStatus::Exited(p, c) => (p, c),
                        WaitStatus::Signaled(p, s, _) => (p, 128 + s as i32),
                        _ => continue,
                    };
                    let raw = pid.as_raw();
                    if let Some(p) = self
                        .procs
                        .values_mut()
                        .find(|p| p.pid == raw && p.raw_exit.is_none())
                    {
                        p.raw_exit = Some(code);
                        p.exited_at = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Completes processes whose output has ended (or whose grace has run out).
    pub(super) fn check_drains(&mut self) {
        for key in self.proc_keys() {
            let done = {
                let p = &self.procs[&key];
                match (p.raw_exit, p.exited_at, &p.result) {
                    (Some(_), Some(at), None) => !p.output_open() || at.elapsed() > DRAIN_GRACE,
                    _ => false,
                }
            };
            if !done {
                continue;
            }
            let p = self.procs.get_mut(&key).expect("key exists");
            p.master = None;
            p.out = [None, None];
            p.stdin = None;
            p.stdin_buf = Vec::new();
            let code = p.raw_exit.unwrap_or(0);
            if key.is_none() {
                self.log.flush(0);
                self.log.flush(1);
                self.finalize_init(code, true);
            } else {
                let st = ExitStatus {
                    exit_code: code,
                    finished_at: rfc3339_nano(SystemTime::now()),
                    oom_killed: false,
                };
                p.result = Some(st.clone());
                if let Some(f) = p.exec_file.take() {
                    let _ = std::fs::remove_file(f);
                }
                self.finish_key(&key, &st);
            }
        }
    }

    pub(super) fn finalize_init(&mut self, code: i32, delete: bool) {
        let oom = delete && lc::oom_killed(&self.cfg.id, &self.cfg.runtime_root);
        let st = ExitStatus {
            exit_code: code,
            finished_at: rfc3339_nano(SystemTime::now()),
            oom_killed: oom,
        };
        if let Err(e) = write_exit_file(&self.cfg.state_dir, &st) {
            eprintln!("pier-shim: {e}");
        }
        self.status = Status::Stopped;
        self.paused = false;
        self.finalized = true;
        self.finalized_at = Instant::now();
        self.last_activity = Instant::now();
        if let Some(p) = self.procs.get_mut(&None) {
            p.result = Some(st.clone());
        }
        self.finish_key(&None, &st);
        // The exit is reported; the runtime's state goes now (in a helper).
        if delete && let Err(e) = lc::delete(&self.cfg.id, &self.cfg.runtime_root) {
            eprintln!("pier-shim: delete container {}: {}", self.cfg.id, e.message);
        }
        // Execs cannot outlive the container's pid namespace; stop waiting on them.
        for key in self.proc_keys().into_iter().flatten() {
            let k = Some(key);
            let pending = self.procs[&k].result.is_none();
            if pending {
                let st = ExitStatus {
                    exit_code: self.procs[&k].raw_exit.unwrap_or(137),
                    finished_at: rfc3339_nano(SystemTime::now()),
                    oom_killed: false,
                };
                if let Some(p) = self.procs.get_mut(&k) {
                    p.result = Some(st.clone());
                    p.master = None;
                    p.out = [None, None];
                }
                self.finish_key(&k, &st);
            }
        }
    }

    /// Answers waiters of `key` and lets its attach clients end after their queue.
    pub(super) fn finish_key(&mut self, key: &Key, st: &ExitStatus) {
        let line = serde_json::to_vec(st).unwrap_or_default();
        for slot in self.conns.iter_mut() {
            let Some(c) = slot else { continue };
            match &mut c.state {
                ConnState::Waiting(k) if k == key => {
                    let _ = write_line(&mut c.stream, &line);
                    *slot = None;
                }
                ConnState::Attached {
                    key: k, closing, ..
                } if k == key => *closing = true,
                _ => {}
            }
        }
        self.close_flushed();
    }

    pub(super) fn close_flushed(&mut self) {
        for slot in self.conns.iter_mut() {
            if let Some(Conn {
                state:
                    ConnState::Attached {
                        closing: true, out, ..
                    },
                ..
            }) = slot
                && out.is_empty()
            {
                *slot = None;
            }
        }
    }
}

/// Writes exit.json atomically (temp file, rename), for a daemon that was away.
///
/// No fsync: the file lives in the exec root (a tmpfs on most hosts) and only
/// has to survive the daemon, not the machine. After a power loss the
/// container is gone anyway, and the daemon's own record of exits (SQLite with
/// `synchronous=NORMAL`) is not synced per write either; a flush to the
/// device cost 3-4 ms of every container exit where /run is on disk.
pub fn write_exit_file(state_dir: &std::path::Path, st: &ExitStatus) -> std::io::Result<()> {
    let path = pier_runtime::proto::exit_file_path(state_dir);
    let tmp = state_dir.join(".exit.json.tmp");
    let body = serde_json::to_vec(st).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| std::io::Error::new(e.kind(), format!("create {}: {e}", tmp.display())))?;
    f.write_all(&body)
        .map_err(|e| std::io::Error::new(e.kind(), format!("write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("rename to {}: {e}", path.display())))
}
