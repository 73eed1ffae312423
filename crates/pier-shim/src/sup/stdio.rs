//! The container side of stdio: output to the log and attach clients, queued
//! input to the process.

use std::os::fd::BorrowedFd;

use pier_runtime::proto::{frame_header, STREAM_STDERR, STREAM_STDOUT};

use super::conns::flush_out;
use super::{ConnState, Sup};

pub(super) fn nonblock(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(fl));
    }
}

impl Sup {
    pub(super) fn read_output(&mut self, pi: usize, s: usize) {
        let Some(key) = self.key_at(pi) else { return };
        let mut buf = [0u8; 16 * 1024];
        let p = self.procs.get_mut(&key).expect("key exists");
        let fd = if p.tty {
            p.master.as_ref()
        } else {
            p.out[s].as_ref()
        };
        let Some(fd) = fd else { return };
        let n = match nix::unistd::read(fd, &mut buf) {
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

    pub(super) fn flush_stdin(&mut self, pi: usize) {
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
}
