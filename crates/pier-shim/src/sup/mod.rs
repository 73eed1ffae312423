//! The supervisor's single-threaded event loop: control connections, attach
//! streams, container output, child exits.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use pier_runtime::proto::{
    frame_header, rfc3339_nano, ExitStatus, Reply, Status, STREAM_STDERR, STREAM_STDOUT,
};

use crate::lc::{self, StartError};
use crate::logw::LogWriter;

mod requests;

/// Stop reading a process's output while an attach client has this much queued.
const HIGH_WATER: usize = 256 * 1024;
/// After a process exits, how long leaked pipe writers may keep its output open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// With no engine around, how long to keep the exit result served.
const LINGER: Duration = Duration::from_secs(60);

pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub state_dir: PathBuf,
    pub stdin_once: bool,
}

/// Which process a request is about: the container (None) or an exec.
type Key = Option<String>;

/// One supervised process (the container init or an exec) and its stdio.
pub struct Proc {
    pub pid: i32,
    pub tty: bool,
    pub master: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    /// [stdout, stderr] read ends (pipes mode).
    pub out: [Option<OwnedFd>; 2],
    pub stdin_buf: Vec<u8>,
    pub close_stdin_after_buf: bool,
    pub exited_at: Option<Instant>,
    pub raw_exit: Option<i32>,
    pub result: Option<ExitStatus>,
    pub start_error: Option<StartError>,
    pub started: bool,
    /// For a prepared exec: the OCI process file and whether it wants stdin.
    pub exec_file: Option<PathBuf>,
    pub want_stdin: bool,
}

impl Proc {
    pub fn new(tty: bool) -> Proc {
        Proc {
            pid: 0,
            tty,
            master: None,
            stdin: None,
            out: [None, None],
            stdin_buf: Vec::new(),
            close_stdin_after_buf: false,
            exited_at: None,
            raw_exit: None,
            result: None,
            start_error: None,
            started: false,
            exec_file: None,
            want_stdin: false,
        }
    }

    fn output_open(&self) -> bool {
        self.master.is_some() || self.out.iter().any(Option::is_some)
    }
}

enum ConnState {
    Reading(Vec<u8>),
    Attached {
        key: Key,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        out: Vec<u8>,
        read_closed: bool,
        /// Close once `out` is flushed.
        closing: bool,
    },
    Waiting(Key),
}

struct Conn {
    stream: UnixStream,
    state: ConnState,
}

#[derive(Clone, Copy)]
enum Tok {
    Listener,
    Signal,
    Out(usize, usize),
    Stdin(usize),
    Conn(usize),
}

pub struct Sup {
    cfg: Config,
    listener: UnixListener,
    sigfd: SignalFd,
    log: LogWriter,
    procs: BTreeMap<Key, Proc>,
    conns: Vec<Option<Conn>>,
    status: Status,
    started_at: Option<String>,
    paused: bool,
    finalized: bool,
    shutdown: bool,
    last_activity: Instant,
    exec_seq: u32,
    /// Set after work that faulted in code: drop those pages when idle again.
    trim: bool,
    finalized_at: Instant,
}

/// Quiet time after which faulted-in pages are given back.
const TRIM_AFTER_MS: u16 = 50;

fn nonblock(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl));
    }
}

impl Sup {
    pub fn new(
        cfg: Config,
        listener: UnixListener,
        sigfd: SignalFd,
        log: LogWriter,
        init: Proc,
    ) -> Sup {
        listener.set_nonblocking(true).ok();
        for fd in init.out.iter().flatten().chain(init.master.iter()) {
            nonblock(fd.as_fd());
        }
        if let Some(fd) = &init.stdin {
            nonblock(fd.as_fd());
        }
        let status = if init.start_error.is_some() {
            Status::Stopped
        } else {
            Status::Created
        };
        let mut procs = BTreeMap::new();
        procs.insert(None, init);
        Sup {
            cfg,
            listener,
            sigfd,
            log,
            procs,
            conns: Vec::new(),
            status,
            started_at: None,
            paused: false,
            finalized: false,
            shutdown: false,
            last_activity: Instant::now(),
            exec_seq: 0,
            trim: true,
            finalized_at: Instant::now(),
        }
    }

    /// A container that could not even be created is over at once.
    pub fn finish_failed_create(&mut self) {
        let code = self.procs[&None].start_error.as_ref().map(|e| e.exit_code);
        if let Some(code) = code {
            self.finalize_init(code, false);
        }
    }

    pub fn run(&mut self) {
        loop {
            if self.should_exit() {
                break;
            }
            let (toks, mut timeout) = self.poll_set();
            if self.trim {
                // Trim once quiet: reading smaps costs about a millisecond, which
                // must not sit between a client's attach and its start.
                timeout = PollTimeout::from(TRIM_AFTER_MS);
            }
            let revents: Vec<(Tok, PollFlags)> = {
                let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(toks.len());
                for (tok, fd, ev) in &toks {
                    let _ = tok;
                    fds.push(PollFd::new(*fd, *ev));
                }
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(0) if self.trim => {
                        self.trim = false;
                        let _ = pier_sys::release_clean_file_pages();
                        continue;
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        eprintln!("pier-shim: poll: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
                toks.iter()
                    .zip(fds.iter())
                    .filter_map(|((t, _, _), f)| {
                        let r = f.revents().unwrap_or(PollFlags::empty());
                        (!r.is_empty()).then_some((*t, r))
                    })
                    .collect()
            };
            drop(toks);
            for (tok, ev) in revents {
                match tok {
                    Tok::Listener => self.accept(),
                    Tok::Signal => self.reap(),
                    Tok::Out(p, s) => self.read_output(p, s),
                    Tok::Stdin(p) => self.flush_stdin(p),
                    Tok::Conn(i) => self.conn_event(i, ev),
                }
            }
            self.check_drains();
        }
    }

    fn should_exit(&self) -> bool {
        if !self.finalized {
            return false;
        }
        // The runtime helper deletes cgroups and state after the exit has been
        // reported; a shim that is gone has left nothing behind (bounded, in
        // case the helper is stuck). Its exit wakes the loop through SIGCHLD.
        let state = self.cfg.runtime_root.join(&self.cfg.id);
        if state.exists() && self.finalized_at.elapsed() < Duration::from_secs(5) {
            return false;
        }
        let pending_out = self
            .conns
            .iter()
            .flatten()
            .any(|c| matches!(&c.state, ConnState::Attached { out, .. } if !out.is_empty()));
        if self.shutdown {
            return !pending_out || self.last_activity.elapsed() > Duration::from_secs(5);
        }
        self.conns.iter().all(Option::is_none) && self.last_activity.elapsed() > LINGER
    }

    fn proc_keys(&self) -> Vec<Key> {
        self.procs.keys().cloned().collect()
    }

    fn poll_set(&self) -> (Vec<(Tok, BorrowedFd<'_>, PollFlags)>, PollTimeout) {
        let mut v: Vec<(Tok, BorrowedFd<'_>, PollFlags)> = Vec::new();
        v.push((Tok::Listener, self.listener.as_fd(), PollFlags::POLLIN));
        v.push((Tok::Signal, self.sigfd.as_fd(), PollFlags::POLLIN));
        for (pi, (key, p)) in self.procs.iter().enumerate() {
            let backlog = self.conns.iter().flatten().any(|c| {
                matches!(&c.state, ConnState::Attached { key: k, out, .. } if k == key && out.len() > HIGH_WATER)
            });
            if !backlog {
                if let Some(m) = &p.master {
                    v.push((Tok::Out(pi, 0), m.as_fd(), PollFlags::POLLIN));
                }
                for (s, fd) in p.out.iter().enumerate() {
                    if let Some(fd) = fd {
                        v.push((Tok::Out(pi, s), fd.as_fd(), PollFlags::POLLIN));
                    }
                }
            }
            if !p.stdin_buf.is_empty() {
                let fd = if p.tty {
                    p.master.as_ref()
                } else {
                    p.stdin.as_ref()
                };
                if let Some(fd) = fd {
                    v.push((Tok::Stdin(pi), fd.as_fd(), PollFlags::POLLOUT));
                }
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let mut ev = PollFlags::empty();
            match &c.state {
                ConnState::Reading(_) => ev |= PollFlags::POLLIN,
                ConnState::Attached {
                    key,
                    stdin,
                    out,
                    read_closed,
                    ..
                } => {
                    let stdin_full = self
                        .procs
                        .get(key)
                        .map(|p| p.stdin_buf.len() > HIGH_WATER)
                        .unwrap_or(false);
                    if *stdin && !*read_closed && !stdin_full {
                        ev |= PollFlags::POLLIN;
                    }
                    if !out.is_empty() {
                        ev |= PollFlags::POLLOUT;
                    }
                }
                // Notice a waiter that hangs up.
                ConnState::Waiting(_) => ev |= PollFlags::POLLIN,
            }
            v.push((Tok::Conn(i), c.stream.as_fd(), ev));
        }
        let draining = self
            .procs
            .values()
            .any(|p| p.exited_at.is_some() && p.result.is_none());
        let timeout = if draining {
            PollTimeout::from(100u16)
        } else if self.finalized {
            PollTimeout::from(1000u16)
        } else {
            PollTimeout::NONE
        };
        (v, timeout)
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true).ok();
                    self.last_activity = Instant::now();
                    let c = Conn {
                        stream: s,
                        state: ConnState::Reading(Vec::new()),
                    };
                    match self.conns.iter().position(Option::is_none) {
                        Some(i) => self.conns[i] = Some(c),
                        None => self.conns.push(Some(c)),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("pier-shim: accept: {e}");
                    break;
                }
            }
        }
    }

    fn key_at(&self, pi: usize) -> Option<Key> {
        self.procs.keys().nth(pi).cloned()
    }

    fn reap(&mut self) {
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
    fn check_drains(&mut self) {
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

    fn finalize_init(&mut self, code: i32, delete: bool) {
        let oom = if delete {
            match lc::delete(&self.cfg.id, &self.cfg.runtime_root) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("pier-shim: delete container {}: {}", self.cfg.id, e.message);
                    false
                }
            }
        } else {
            false
        };
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
    fn finish_key(&mut self, key: &Key, st: &ExitStatus) {
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

    fn close_flushed(&mut self) {
        for slot in self.conns.iter_mut() {
            if let Some(Conn {
                state:
                    ConnState::Attached {
                        closing: true, out, ..
                    },
                ..
            }) = slot
            {
                if out.is_empty() {
                    *slot = None;
                }
            }
        }
    }

    fn read_output(&mut self, pi: usize, s: usize) {
        let Some(key) = self.key_at(pi) else { return };
        let mut buf = [0u8; 16 * 1024];
        let p = self.procs.get_mut(&key).expect("key exists");
        let fd = if p.tty {
            p.master.as_ref()
        } else {
            p.out[s].as_ref()
        };
        let Some(fd) = fd else { return };
        let n = match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
            // EIO: the pty's last slave closed.
            Err(_) => None,
        };
        let Some(n) = n else {
            if p.tty {
                p.master = None;
            } else {
                p.out[s] = None;
            }
            if key.is_none() {
                self.log.flush(s);
            }
            return;
        };
        let data = &buf[..n];
        if key.is_none() {
            self.log.write(s, data);
        }
        let tty = p.tty;
        let stream = if s == 0 { STREAM_STDOUT } else { STREAM_STDERR };
        for c in self.conns.iter_mut().flatten() {
            if let ConnState::Attached {
                key: k,
                stdout,
                stderr,
                out,
                ..
            } = &mut c.state
            {
                if *k != key || !(if s == 0 { *stdout } else { *stderr }) {
                    continue;
                }
                let was_empty = out.is_empty();
                if !tty {
                    out.extend_from_slice(&frame_header(stream, n));
                }
                out.extend_from_slice(data);
                if was_empty {
                    flush_out(&mut c.stream, out);
                }
            }
        }
    }

    fn flush_stdin(&mut self, pi: usize) {
        let Some(key) = self.key_at(pi) else { return };
        let p = self.procs.get_mut(&key).expect("key exists");
        let fd = if p.tty {
            p.master.as_ref()
        } else {
            p.stdin.as_ref()
        };
        let Some(fd) = fd else {
            // Before an exec starts its input waits; after stdin closed it is dropped.
            if p.started {
                p.stdin_buf = Vec::new();
            }
            return;
        };
        match nix::unistd::write(fd, &p.stdin_buf) {
            Ok(n) => {
                p.stdin_buf.drain(..n);
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => p.stdin_buf = Vec::new(),
        }
        if p.stdin_buf.is_empty() {
            p.stdin_buf = Vec::new();
            if p.close_stdin_after_buf && !p.tty {
                p.stdin = None;
            }
        }
    }

    fn conn_event(&mut self, i: usize, ev: PollFlags) {
        let Some(mut c) = self.conns[i].take() else {
            return;
        };
        let keep = match &mut c.state {
            ConnState::Reading(buf) => {
                let mut tmp = [0u8; 4096];
                match c.stream.read(&mut tmp) {
                    Ok(0) => false,
                    Ok(n) => {
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let rest = std::mem::take(buf);
                            return self.handle_request(i, c, &line, rest);
                        }
                        buf.len() < 1 << 20
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                    Err(_) => false,
                }
            }
            ConnState::Waiting(_) => {
                // Anything readable on a waiter means it hung up (or misbehaves).
                let mut tmp = [0u8; 64];
                match c.stream.read(&mut tmp) {
                    Ok(0) => false,
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                    Ok(_) => true,
                }
            }
            ConnState::Attached {
                key,
                stdin,
                out,
                read_closed,
                closing,
                ..
            } => {
                let mut alive = true;
                if ev.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP)
                    && !out.is_empty()
                {
                    alive = flush_out(&mut c.stream, out);
                }
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) && *stdin && !*read_closed
                {
                    let mut tmp = [0u8; 16 * 1024];
                    match c.stream.read(&mut tmp) {
                        Ok(0) | Err(_) => {
                            *read_closed = true;
                            // Docker closes the container's stdin only with
                            // StdinOnce; an exec's stdin always closes.
                            let close = key.is_some() || self.cfg.stdin_once;
                            if let Some(p) = self.procs.get_mut(key).filter(|_| close) {
                                if p.stdin_buf.is_empty() {
                                    if !p.tty {
                                        p.stdin = None;
                                    }
                                } else {
                                    p.close_stdin_after_buf = true;
                                }
                            }
                        }
                        Ok(n) => {
                            if let Some(p) = self.procs.get_mut(key) {
                                p.stdin_buf.extend_from_slice(&tmp[..n]);
                                let pi = self.procs.keys().position(|k| k == key);
                                if let Some(pi) = pi {
                                    self.flush_stdin(pi);
                                }
                            }
                        }
                    }
                }
                alive && !(*closing && out.is_empty())
            }
        };
        if keep {
            self.conns[i] = Some(c);
        }
    }
}

fn flush_out(s: &mut UnixStream, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match s.write(out) {
            Ok(0) => return false,
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                out.clear();
                return false;
            }
        }
    }
    // Release the memory of a burst.
    *out = Vec::new();
    true
}

fn write_line(s: &mut UnixStream, line: &[u8]) -> std::io::Result<()> {
    // Replies are tiny and the socket is fresh, but it is non-blocking: retry briefly.
    let mut buf = line.to_vec();
    buf.push(b'\n');
    let deadline = Instant::now() + Duration::from_secs(2);
    while !buf.is_empty() {
        match s.write(&buf) {
            Ok(n) => {
                buf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn reply(s: &mut UnixStream, r: &Reply) {
    let line = serde_json::to_vec(r).unwrap_or_default();
    let _ = write_line(s, &line);
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
