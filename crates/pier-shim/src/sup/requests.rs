//! Handling of control requests.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use nix::unistd::Pid;
use pier_runtime::proto::{rfc3339_nano, ExitStatus, Reply, Request, StateReply, Status};

use super::conns::{reply, write_line};
use super::stdio::nonblock;
use super::{Conn, ConnState, Proc, Sup};
use crate::lc;

impl Sup {
    pub(super) fn handle_request(&mut self, i: usize, mut c: Conn, line: &[u8], rest: Vec<u8>) {
        self.last_activity = Instant::now();
        self.trim = true;
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                reply(&mut c.stream, &Reply::err(format!("bad request: {e}")));
                return;
            }
        };
        match req {
            Request::Start => {
                let r = self.start();
                reply(&mut c.stream, &r);
            }
            Request::Attach {
                exec,
                stdin,
                stdout,
                stderr,
            } => {
                let Some(p) = self.procs.get(&exec) else {
                    reply(
                        &mut c.stream,
                        &Reply::err(format!("no such exec: {exec:?}")),
                    );
                    return;
                };
                let over = p.result.is_some();
                reply(&mut c.stream, &Reply::ok());
                if over {
                    return;
                }
                let mut st = ConnState::Attached {
                    key: exec.clone(),
                    stdin,
                    stdout,
                    stderr,
                    out: Vec::new(),
                    read_closed: false,
                    closing: false,
                };
                // Bytes that came with the request line are stdin already.
                if stdin
                    && !rest.is_empty()
                    && let Some(p) = self.procs.get_mut(&exec)
                {
                    p.stdin_buf.extend_from_slice(&rest);
                }
                if let ConnState::Attached { .. } = &mut st {
                    c.state = st;
                }
                self.conns[i] = Some(c);
            }
            Request::Wait { exec } => match self.procs.get(&exec) {
                None => reply(
                    &mut c.stream,
                    &Reply::err(format!("no such exec: {exec:?}")),
                ),
                Some(p) => match &p.result {
                    Some(st) => {
                        let line = serde_json::to_vec(st).unwrap_or_default();
                        let _ = write_line(&mut c.stream, &line);
                    }
                    None => {
                        c.state = ConnState::Waiting(exec);
                        self.conns[i] = Some(c);
                    }
                },
            },
            Request::Kill { signal } => {
                let r = self.kill(signal);
                reply(&mut c.stream, &r);
            }
            Request::Resize { exec, rows, cols } => {
                let r = match self.procs.get(&exec).and_then(|p| p.master.as_ref()) {
                    Some(m) => match pier_sys::set_winsize(m.as_fd(), rows, cols) {
                        Ok(()) => Reply::ok(),
                        Err(e) => Reply::err(e.to_string()),
                    },
                    None => Reply::err("process has no terminal"),
                };
                reply(&mut c.stream, &r);
            }
            Request::Pause => {
                let r = if self.status != Status::Running {
                    Reply::err(format!("container {} is not running", self.cfg.id))
                } else {
                    match lc::pause(&self.cfg.id, &self.cfg.runtime_root) {
                        Ok(()) => {
                            self.paused = true;
                            self.status = Status::Paused;
                            Reply::ok()
                        }
                        Err(e) => Reply::err(e.message),
                    }
                };
                reply(&mut c.stream, &r);
            }
            Request::Resume => {
                let r = if self.status != Status::Paused {
                    Reply::err(format!("container {} is not paused", self.cfg.id))
                } else {
                    match lc::resume(&self.cfg.id, &self.cfg.runtime_root) {
                        Ok(()) => {
                            self.paused = false;
                            self.status = Status::Running;
                            Reply::ok()
                        }
                        Err(e) => Reply::err(e.message),
                    }
                };
                reply(&mut c.stream, &r);
            }
            Request::State => {
                let init = &self.procs[&None];
                let st = StateReply {
                    status: self.status,
                    pid: init.pid,
                    exit_code: init.result.as_ref().map(|r| r.exit_code),
                    started_at: self.started_at.clone(),
                    finished_at: init.result.as_ref().map(|r| r.finished_at.clone()),
                    oom_killed: init.result.as_ref().map(|r| r.oom_killed).unwrap_or(false),
                };
                let line = serde_json::to_vec(&st).unwrap_or_default();
                let _ = write_line(&mut c.stream, &line);
            }
            Request::Exec {
                id,
                process,
                tty,
                stdin,
            } => {
                let r = self.prepare_exec(id, &process, tty, stdin);
                reply(&mut c.stream, &r);
            }
            Request::ReopenLog => {
                let r = match self.log.reopen() {
                    Ok(()) => Reply::ok(),
                    Err(e) => Reply::err(format!("reopen log: {e}")),
                };
                reply(&mut c.stream, &r);
            }
            Request::ExecStart { id } => {
                let r = self.start_exec(id);
                reply(&mut c.stream, &r);
            }
            Request::Shutdown => {
                self.shutdown = true;
                if !self.finalized {
                    let pid = self.procs[&None].pid;
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(
                            Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                        if self.paused {
                            let _ = lc::resume(&self.cfg.id, &self.cfg.runtime_root);
                        }
                    }
                }
                reply(&mut c.stream, &Reply::ok());
            }
        }
    }

    fn start(&mut self) -> Reply {
        let init = self.procs.get_mut(&None).expect("init exists");
        if let Some(e) = &init.start_error {
            return Reply {
                ok: false,
                error: Some(e.message.clone()),
                exit_code: Some(e.exit_code),
                pid: None,
            };
        }
        if init.started {
            return Reply::err(format!("container {} is already started", self.cfg.id));
        }
        match lc::start(&self.cfg.id, &self.cfg.runtime_root) {
            Ok(()) => {
                init.started = true;
                self.status = Status::Running;
                self.started_at = Some(rfc3339_nano(SystemTime::now()));
                Reply::ok_pid(init.pid)
            }
            Err(e) => Reply {
                ok: false,
                error: Some(e.message),
                exit_code: Some(e.exit_code),
                pid: None,
            },
        }
    }

    fn kill(&mut self, signal: i32) -> Reply {
        let init = &self.procs[&None];
        if init.pid <= 0 || init.raw_exit.is_some() {
            return Reply::err(format!("container {} is not running", self.cfg.id));
        }
        let sig = match nix::sys::signal::Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return Reply::err(format!("invalid signal {signal}")),
        };
        if let Err(e) = nix::sys::signal::kill(Pid::from_raw(init.pid), sig) {
            return Reply::err(format!("kill {}: {e}", init.pid));
        }
        // A frozen process only dies once thawed.
        if self.paused
            && sig == nix::sys::signal::Signal::SIGKILL
            && lc::resume(&self.cfg.id, &self.cfg.runtime_root).is_ok()
        {
            {
                self.paused = false;
                self.status = Status::Running;
            }
        }
        Reply::ok()
    }

    fn prepare_exec(
        &mut self,
        id: String,
        process: &libcontainer::oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> Reply {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Reply::err(format!("invalid exec id {id:?}"));
        }
        if self.procs.contains_key(&Some(id.clone())) {
            return Reply::err(format!("exec {id} already exists"));
        }
        if self.status != Status::Running {
            return Reply::err(format!("container {} is not running", self.cfg.id));
        }
        let file = self.cfg.state_dir.join(format!("exec-{id}.json"));
        let body = match serde_json::to_vec(process) {
            Ok(b) => b,
            Err(e) => return Reply::err(format!("encode exec process: {e}")),
        };
        if let Err(e) = std::fs::write(&file, body) {
            return Reply::err(format!("write {}: {e}", file.display()));
        }
        let mut p = Proc::new(tty);
        p.exec_file = Some(file);
        p.want_stdin = stdin;
        self.procs.insert(Some(id), p);
        Reply::ok()
    }

    fn start_exec(&mut self, id: String) -> Reply {
        let key = Some(id.clone());
        let Some(p) = self.procs.get(&key) else {
            return Reply::err(format!("no such exec: {id}"));
        };
        if p.started {
            return Reply::err(format!("exec {id} is already started"));
        }
        let (tty, want_stdin) = (p.tty, p.want_stdin);
        let Some(file) = p.exec_file.clone() else {
            return Reply::err(format!("no such exec: {id}"));
        };
        self.exec_seq += 1;
        let sock_name = PathBuf::from(format!("exec-{}.sock", self.exec_seq));
        let setup = crate::stdio::prepare(tty, want_stdin, &sock_name);
        let (io, parent) = match setup {
            Ok(x) => x,
            Err(e) => return Reply::err(e.to_string()),
        };
        let r = lc::exec(
            &self.cfg.id,
            &self.cfg.runtime_root,
            &self.cfg.bundle,
            &file,
            tty,
            io,
        );
        let result = match r {
            Ok(pid) => crate::stdio::finish(parent).map(|fds| (pid, fds)),
            Err(e) => {
                let _ = std::fs::remove_file(&sock_name);
                let p = self.procs.get_mut(&key).expect("exists");
                p.started = true;
                let st = ExitStatus {
                    exit_code: e.exit_code,
                    finished_at: rfc3339_nano(SystemTime::now()),
                    oom_killed: false,
                };
                p.result = Some(st.clone());
                self.finish_key(&key, &st);
                return Reply {
                    ok: false,
                    error: Some(e.message),
                    exit_code: Some(e.exit_code),
                    pid: None,
                };
            }
        };
        let _ = std::fs::remove_file(&sock_name);
        let p = self.procs.get_mut(&key).expect("exists");
        p.started = true;
        match result {
            Ok((pid, fds)) => {
                p.pid = pid;
                p.master = fds.master;
                p.stdin = fds.stdin;
                p.out = fds.out;
                for fd in p
                    .out
                    .iter()
                    .flatten()
                    .chain(p.master.iter())
                    .chain(p.stdin.iter())
                {
                    nonblock(fd.as_fd());
                }
                Reply::ok_pid(pid)
            }
            Err(e) => Reply::err(e.to_string()),
        }
    }
}
