//! The supervisor's single-threaded event loop: control connections, attach
//! streams, container output, child exits.
//!
//! This file holds the state and the loop (what to poll, when to leave); each
//! kind of event has its own file: `conns` (clients and attach streams),
//! `requests` (control requests), `stdio` (the processes' output and input) and
//! `exits` (reaping, draining, recording and reporting exits).

mod conns;
mod exits;
mod requests;
mod stdio;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use pier_runtime::proto::{ExitStatus, Status};

use crate::lc::StartError;
use crate::logw::LogWriter;
use stdio::nonblock;

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

    fn key_at(&self, pi: usize) -> Option<Key> {
        self.procs.keys().nth(pi).cloned()
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
}
